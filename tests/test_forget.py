"""`lakecast forget`: the series leaves every table, snapshot and data file; audit by salted hash only."""

from __future__ import annotations

import json
import os
import shutil
import stat
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import mlflow
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from conf import LakecastConfig
from conf.errors import ForgetError
from jobs.cli import main
from models.registry import use_tracking
from pipelines.flows import evaluate, forget, ingest
from pipelines.sinks.forecasts import merge_forecasts
from pipelines.sinks.forget_log import salt_path
from pipelines.tables.ensure import delta_version, ensure_tables
from pipelines.tables.purge import RETENTION_CHECK
from pipelines.windows.transfer import snapshot_root
from tests.conftest import make_config

SUBJECT = "a-subject-7"  # sorts first: the min of its files' statistics
KEEP = ("k1", "k2")
NOW = datetime(2024, 6, 1, tzinfo=UTC)


def _csv(path: Path) -> Path:
    lines = ["series_id,ts,value"]
    for sid in (SUBJECT, *KEEP):
        lines += [f"{sid},2024-01-01T{h:02d}:00:00Z,{h + len(sid)}" for h in range(6)]
    lines += [f" {SUBJECT} ,2024-01-01T07:00:00Z,seven",  # bad value: quarantined with the raw id
              f"{SUBJECT},2024-13-45 99:00,1",              # bad timestamp
              "k1,2024-01-01T08:00:00Z,eight"]
    path.write_text("\n".join(lines) + "\n")
    return path


def _forecasts(spark: Any, cfg: LakecastConfig, bump: float) -> None:
    """Forecast rows for every observation, MERGEd as `predict` would (the second MERGE updates:
    the Change Data Feed then holds pre- and post-images of the subject's rows)."""
    df = spark.sql(f"""SELECT series_id, ts AS forecast_origin, ts + INTERVAL 1 HOUR AS target_ts,
        1 AS horizon_step, value + {bump} - 1 AS p10, value + {bump} AS p50, value + {bump} + 1 AS p90,
        'm' AS model_name, '1' AS model_version, 'r' AS model_run_id, CAST(0 AS BIGINT) AS source_version,
        'test' AS job_run_id, current_timestamp() AS scored_at, 'champion' AS model_role, 1.0 AS mase_scale
        FROM {cfg.table('observations')}""")
    merge_forecasts(spark, cfg, df, run_id=f"test-forecasts-{bump}")


def _ids_in_parquet(warehouse: Path) -> dict[str, set[str]]:
    """Every Parquet file under the warehouse (data, `_change_data`, checkpoints): its series ids."""
    found: dict[str, set[str]] = {}
    for f in sorted(warehouse.rglob("*.parquet")):
        schema = pq.read_schema(f)
        ids: set[str] = set()
        if "series_id" in schema.names:
            col = pq.read_table(f, columns=["series_id"]).column("series_id")
            ids = {str(v).strip() for v in col.to_pylist() if v is not None}
        found[str(f.relative_to(warehouse))] = ids
    return found


def _holding(found: dict[str, set[str]], sid: str) -> list[str]:
    return [f for f, ids in found.items() if sid in ids]


def _warehouse(cfg: LakecastConfig) -> Path:
    return cfg.home / "warehouse" / f"{cfg.catalog.database}.db"


def _all_text(spark: Any, table: str) -> list[str]:
    from pyspark.sql import functions as F

    return [r[0] for r in spark.table(table).select(F.to_json(F.struct("*"))).collect()]


@pytest.fixture(scope="module")
def home_db(spark: Any, lakecast_home: Path, tmp_path_factory: pytest.TempPathFactory) -> LakecastConfig:
    """Observations (deletion vectors on), quarantine, forecasts (Change Data Feed) and forecast_accuracy
    holding SUBJECT."""
    tag = uuid.uuid4().hex[:8]
    cfg = make_config(lakecast_home, f"catalog.database=f_{tag}", f"mlflow.experiment=forget_{tag}")
    ensure_tables(spark, cfg)
    spark.sql(f"ALTER TABLE {cfg.table('observations')} SET TBLPROPERTIES ('delta.enableDeletionVectors' = 'true')")
    ingest.run(spark, cfg, str(_csv(tmp_path_factory.mktemp("raw") / "batch.csv")), now=NOW)
    _forecasts(spark, cfg, 0.0)
    _forecasts(spark, cfg, 0.5)
    assert evaluate.run(spark, cfg).counts["evaluated"] == 15  # targets of hours 1-5, 3 series
    return cfg


@dataclass(frozen=True)
class Forgotten:
    cfg: LakecastConfig
    before: dict[str, set[str]]
    out: forget.ForgetResult
    snapshots: tuple[Path, Path]  # (holding the series, other series only)
    runs: tuple[str, str]  # MLflow runs (trained before the forget, on a later version)
    retention_check: tuple[str, str]  # the setting before and after


@pytest.fixture(scope="module")
def forgotten(spark: Any, home_db: LakecastConfig) -> Iterator[Forgotten]:
    """SUBJECT forgotten once, with a leftover training snapshot and two MLflow runs around."""
    cfg = home_db
    before = _ids_in_parquet(_warehouse(cfg))
    left = snapshot_root(cfg.home, f"train-{cfg.catalog.database}-left") / "train"
    other = snapshot_root(cfg.home, f"train-{cfg.catalog.database}-other") / "train"
    for path, sids in ((left, [SUBJECT, "k1"]), (other, ["k1", "k2"])):
        path.mkdir(parents=True)
        pq.write_table(pa.table({"series_id": sids}), path / "part-0.parquet")
    use_tracking(cfg)
    run_ids = []
    for v in (delta_version(spark, cfg.table("observations")), 10**6):
        with mlflow.start_run() as run:
            mlflow.set_tags({"lakecast.table": cfg.table("observations"),
                             "lakecast.observations_delta_version": str(v)})
            run_ids.append(run.info.run_id)
    check = spark.conf.get(RETENTION_CHECK)
    out = forget.run(spark, cfg, [f" {SUBJECT} ", SUBJECT], reason="DSR-2024-17")
    yield Forgotten(cfg, before, out, (left, other), (run_ids[0], run_ids[1]),
                    (check, spark.conf.get(RETENTION_CHECK)))
    shutil.rmtree(other.parent, ignore_errors=True)


def test_no_data_or_change_data_file_holds_the_series(spark: Any, forgotten: Forgotten) -> None:
    cfg, out = forgotten.cfg, forgotten.out
    holding = _holding(forgotten.before, SUBJECT)  # the scan does see the series before
    assert {f.split("/")[0] for f in holding} == {"observations", "quarantine", "forecasts", "forecast_accuracy"}
    assert any("/_change_data/" in f for f in holding)

    after = _ids_in_parquet(_warehouse(cfg))  # every Parquet file: data, _change_data, checkpoints
    assert _holding(after, SUBJECT) == []
    # no commit's own record names it (a DELETE's predicate, literals and all, would stay in the log and in
    # DESCRIBE HISTORY; files' min/max statistics may hold it until log retention, as the README says)
    infos = [ln for f in _warehouse(cfg).rglob("_delta_log/*.json") for ln in f.read_text().splitlines()
             if ln.startswith('{"commitInfo"')]
    assert any('"operation":"MERGE"' in ln and out.job_run_id in ln for ln in infos)  # the delete, tagged
    assert not [ln for ln in infos if SUBJECT in ln]
    assert {f.split("/")[0] for f in _holding(after, "k1")} == {"observations", "quarantine", "forecasts",
                                                                 "forecast_accuracy"}
    assert {f.split("/")[0] for f in _holding(after, "k2")} == {"observations", "forecasts", "forecast_accuracy"}
    assert {t.table.split(".")[1]: t.rows_removed for t in out.tables} == {
        "observations": 6, "quarantine": 2, "forecasts": 6, "forecast_accuracy": 5}  # quarantine's raw " id " too
    for t in ("observations", "forecasts"):
        assert spark.table(cfg.table(t)).where(f"series_id = '{SUBJECT}'").count() == 0
        assert spark.table(cfg.table(t)).where("series_id = 'k2'").count() == 6

    left, other = forgotten.snapshots
    assert not left.parent.exists() and other.exists()
    assert [r.run_id for r in out.trained_runs] == [forgotten.runs[0]]
    assert forgotten.retention_check[0] == forgotten.retention_check[1]  # relaxed inside forget only


def test_audit_holds_the_salted_hash_never_the_id(spark: Any, forgotten: Forgotten) -> None:
    cfg, out = forgotten.cfg, forgotten.out
    (h,) = out.hashes
    assert stat.S_IMODE(os.stat(salt_path(cfg.home)).st_mode) == 0o600
    rows = spark.table(cfg.table("forget_log")).where(f"forget_run_id = '{out.job_run_id}'").collect()
    assert {(r["series_hash"], r["table_name"].split(".")[1], r["rows_removed"]) for r in rows} == {
        (h, "observations", 6), (h, "quarantine", 2), (h, "forecasts", 6), (h, "forecast_accuracy", 5)}
    assert all(r["delete_version"] is not None and r["purged_version"] > r["delete_version"] for r in rows)
    job = spark.table(cfg.table("job_runs")).where(f"run_id = '{out.job_run_id}'").head()
    assert job["status"] == "succeeded" and json.loads(job["parameters"])["series_hashes"] == [h]
    assert job["row_counts"]["rows_removed"] == 19
    assert job["versions_written"]["observations"] == out.tables[0].delete_version
    for table in ("forget_log", "job_run_events"):  # every column of every row (every run's every event), as text
        text = _all_text(spark, cfg.table(table))
        assert any(h in row for row in text) and not any(SUBJECT in row for row in text), table
    with pytest.raises(ForgetError, match="must not contain a series id"):
        forget.run(spark, cfg, [SUBJECT], reason=f"request about {SUBJECT}")


def test_rerun_is_an_audited_no_op(spark: Any, forgotten: Forgotten) -> None:
    cfg = forgotten.cfg
    versions = {t.table: delta_version(spark, t.table) for t in forgotten.out.tables}
    again = forget.run(spark, cfg, [SUBJECT], reason="DSR-2024-17")
    assert again.nothing_to_forget and again.hashes == forgotten.out.hashes
    assert [(t.rows_removed, t.delete_version) for t in again.tables] == [(0, None)] * 4
    for t in again.tables:  # nothing but the purge was committed: the data is unchanged
        ops = {r["operation"] for r in spark.sql(f"DESCRIBE HISTORY {t.table}").collect()
               if r["version"] > versions[t.table]}
        assert ops <= {"REORG", "VACUUM START", "VACUUM END"}, (t.table, ops)
    assert [r.run_id for r in again.trained_runs] == [forgotten.runs[0]]  # still listed
    rows = spark.table(cfg.table("forget_log")).where(f"forget_run_id = '{again.job_run_id}'").collect()
    assert sorted((r["rows_removed"], r["delete_version"]) for r in rows) == [(0, None)] * 4
    job = spark.table(cfg.table("job_runs")).where(f"run_id = '{again.job_run_id}'").head()
    assert job["status"] == "succeeded" and job["row_counts"]["rows_removed"] == 0
    assert _holding(_ids_in_parquet(_warehouse(cfg)), SUBJECT) == []


def test_cli_needs_a_series_and_a_reason(tmp_path: Path) -> None:
    ids = tmp_path / "ids.txt"
    ids.write_text("# only a comment\n\n")
    res = CliRunner().invoke(main, ["forget", "--series-file", str(ids), "--reason", "r"])
    assert res.exit_code == 2 and "no series to forget" in res.output
    res = CliRunner().invoke(main, ["forget", "--series", "x"])
    assert res.exit_code == 2 and "--reason" in res.output
    ids.write_text("# subjects\n a \n\nb\n")
    assert forget.read_series_file(ids) == ["a", "b"]
