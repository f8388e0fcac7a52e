"""`forecasts` is partitioned by origin and a run's MERGE names its origins: it touches only
their files, whatever the history, and runs for different origins commit without a conflict."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse

import pytest

from conf import LakecastConfig
from pipelines.sinks.forecasts import merge_forecasts, replace_series_forecasts
from pipelines.tables.commits import commit_of_run
from tests.conftest import collect_utc

O1, O2, O3 = "2024-01-01 00:00:00", "2024-01-02 00:00:00", "2024-01-03 00:00:00"


def forecast_rows(spark: Any, origin: str, *, series: int = 3, steps: int = 2, p50: float = 1.0) -> Any:
    """Forecast rows of `series` series x `steps` steps from `origin` (UTC)."""
    return spark.range(series * steps).selectExpr(
        f"concat('s', CAST(id DIV {steps} AS STRING)) AS series_id",
        f"TIMESTAMP'{origin}Z' AS forecast_origin",
        f"TIMESTAMP'{origin}Z' + make_interval(0, 0, 0, 0, CAST(id % {steps} + 1 AS INT)) AS target_ts",
        f"CAST(id % {steps} + 1 AS INT) AS horizon_step",
        f"{p50} - 1 AS p10", f"DOUBLE({p50}) AS p50", f"{p50} + 1 AS p90",
        "'m' AS model_name", "'1' AS model_version", "'mlrun' AS model_run_id", "0L AS source_version",
        "'job' AS job_run_id", "current_timestamp() AS scored_at", "'champion' AS model_role",
        "CAST(NULL AS DOUBLE) AS mase_scale")


def _files_of(spark: Any, table: str, origin: str) -> set[Path]:
    rows = spark.table(table).where(f"forecast_origin = TIMESTAMP'{origin}Z'") \
        .selectExpr("input_file_name() AS f").distinct().collect()
    return {Path(unquote(urlparse(r["f"]).path)) for r in rows}


def test_a_merge_reads_and_rewrites_only_its_origin(spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    cfg = fresh_db()
    table = cfg.table("forecasts")
    detail = spark.sql(f"DESCRIBE DETAIL {table}").head()
    assert list(detail["partitionColumns"]) == ["forecast_origin"]
    for i, o in enumerate((O1, O2)):
        merge_forecasts(spark, cfg, forecast_rows(spark, o), run_id=f"r{i}")
    # The files of the other origin vanish from storage behind Delta's back: a MERGE that
    # read them (an unpruned scan of the history) would fail with a missing file.
    gone = _files_of(spark, table, O1)
    assert gone
    for f in gone:
        f.unlink()
    merged = merge_forecasts(spark, cfg, forecast_rows(spark, O2, p50=5.0), run_id="again")
    assert (merged.inserted, merged.updated) == (0, 6)
    m = commit_of_run(spark, table, "again").metrics
    assert m["numTargetRowsCopied"] == 0 and m["numTargetFilesRemoved"] == 1, m  # O2's one file only
    rows = spark.table(table).where(f"forecast_origin = TIMESTAMP'{O2}Z'").select("p50").collect()
    assert sorted(r["p50"] for r in rows) == [5.0] * 6


def test_a_new_origin_inserts_only_and_a_run_that_lost_the_race_merges_the_rest(
        spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    """Where the origin holds no forecast of the version yet (a scheduled run), the MERGE is
    insert-only. A run that found it empty but lost a race to another run for the same origin
    inserts its new keys, then the keyed MERGE replaces the rest: counts over both commits."""
    cfg = fresh_db()
    table = cfg.table("forecasts")

    def passes(run_id: str) -> list[bool]:
        rows = spark.sql(f"DESCRIBE HISTORY {table}").where(f"userMetadata = '{run_id}'").orderBy("version")
        return [r.operationParameters["matchedPredicates"] == "[]" for r in rows.collect()]

    first = merge_forecasts(spark, cfg, forecast_rows(spark, O1, series=3), run_id="new-origin")
    assert (first.source_rows, first.inserted, first.updated) == (6, 6, 0) and passes("new-origin") == [True]
    raced = merge_forecasts(spark, cfg, forecast_rows(spark, O1, series=4, p50=5.0), run_id="raced",
                            insert_first=True)  # as if O1 had been empty when checked
    assert (raced.source_rows, raced.inserted, raced.updated) == (8, 2, 6) and passes("raced") == [True, False]
    assert len(raced.versions) == 2 and raced.version == raced.versions[-1]
    assert sorted(r.p50 for r in spark.table(table).collect()) == [5.0] * 8  # nothing kept from before
    again = merge_forecasts(spark, cfg, forecast_rows(spark, O1, series=4, p50=6.0), run_id="again")
    assert (again.inserted, again.updated) == (0, 8) and passes("again") == [False]
    other = forecast_rows(spark, O1, series=1).selectExpr(
        *[c if c != "model_version" else "'2' AS model_version" for c in forecast_rows(spark, O1).columns])
    assert merge_forecasts(spark, cfg, other, run_id="v2").inserted == 2 and passes("v2") == [True]


def test_replacing_named_series_touches_exactly_their_rows(spark: Any,
                                                          fresh_db: Callable[..., LakecastConfig]) -> None:
    """`replace_series_forecasts` (what `predict --changed-only` writes with): the rows of the series
    the source holds, per model version, are replaced in one overwrite; awkward ids (a quote, a
    backslash) are quoted, other series and other versions are untouched, a series new to the
    origin is inserted, never duplicated, and the counts are Delta's."""
    cfg = fresh_db()
    table = cfg.table("forecasts")
    base = forecast_rows(spark, O1, series=4)
    v2 = base.selectExpr(*[c if c != "model_version" else "'2' AS model_version" for c in base.columns])
    merge_forecasts(spark, cfg, base.unionByName(v2), run_id="base")
    merge_forecasts(spark, cfg, forecast_rows(spark, O2, series=4), run_id="other-origin")
    again = forecast_rows(spark, O1, series=4, p50=9.0).where("series_id IN ('s0', 's3')")
    renamed = forecast_rows(spark, O1, series=2, p50=7.0).selectExpr(
        "CASE series_id WHEN 's0' THEN 'it\\'s' ELSE 'back\\\\slash' END AS series_id",
        *[c for c in base.columns if c != "series_id"])
    out = replace_series_forecasts(spark, cfg, again.unionByName(renamed), run_id="named")
    assert (out.source_rows, out.inserted, out.updated) == (8, 4, 4)
    commit = commit_of_run(spark, table, "named")
    assert commit.operation == "WRITE" and commit.metric("numDeletedRows") == 4
    (params,) = spark.sql(f"DESCRIBE HISTORY {table}").where(f"version = {out.version}") \
        .select("operationParameters").collect()
    assert "series_id IN ('back\\\\slash', 'it\\'s', 's0', 's3')" in params[0]["predicate"], params[0]
    got = {(r["series_id"], r["forecast_origin"].isoformat(), r["model_version"], r["horizon_step"]): r["p50"]
           for r in collect_utc(spark.table(table))}
    assert len(got) == 28 and spark.table(table).count() == 28   # 16 + 8 others + 4 new: no duplicate key
    assert {k: v for k, v in got.items() if v != 1.0} == {
        (s, "2024-01-01T00:00:00", "1", h): p for s, p in (("s0", 9.0), ("s3", 9.0), ("it's", 7.0),
                                                         ("back\\slash", 7.0)) for h in (1, 2)}
    # the same rows again: all replaced, still no duplicate
    out = replace_series_forecasts(spark, cfg, again.unionByName(renamed), run_id="named2")
    assert (out.inserted, out.updated) == (0, 8) and spark.table(table).count() == 28


def test_replacing_more_series_than_can_be_named_merges(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Above MAX_NAMED_SERIES names the condition would be too long: the keyed MERGE writes instead."""
    from pipelines.sinks import forecasts

    cfg = fresh_db()
    merge_forecasts(spark, cfg, forecast_rows(spark, O1, series=3), run_id="base")
    monkeypatch.setattr(forecasts, "MAX_NAMED_SERIES", 2)
    out = replace_series_forecasts(spark, cfg, forecast_rows(spark, O1, series=3, p50=4.0), run_id="many")
    assert (out.inserted, out.updated) == (0, 6)
    assert commit_of_run(spark, cfg.table("forecasts"), "many").operation == "MERGE"
    assert sorted(r.p50 for r in spark.table(cfg.table("forecasts")).collect()) == [4.0] * 6


@pytest.mark.filterwarnings("ignore:Cannot infer the eval type")
def test_runs_for_different_origins_do_not_conflict(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                                    tmp_path: Path) -> None:
    """Run A's MERGE is held after it read the table until run B (another origin) has committed."""
    from pyspark.sql import functions as F
    from pyspark.sql.types import StringType

    cfg = fresh_db()
    table = cfg.table("forecasts")
    merge_forecasts(spark, cfg, forecast_rows(spark, O3), run_id="history")
    sig = str(tmp_path)

    def gate(series_id: str, step: int) -> str:  # runs in a Python worker: signals by files
        import time as t
        from pathlib import Path as P

        d = P(sig)
        if (series_id, step) == ("s0", 1):
            with (d / "calls").open("a") as f:
                f.write("x")
            if (d / "calls").stat().st_size == 1:  # the MERGE evaluates it (the origins need no series)
                (d / "holding").touch()
                for _ in range(1200):
                    if (d / "released").exists():
                        break
                    t.sleep(0.05)
        return series_id

    gated = F.udf(gate, StringType())
    spark_a, spark_b = spark.newSession(), spark.newSession()  # each run tags its own commits
    source_a = forecast_rows(spark_a, O1).coalesce(1).withColumn("series_id", gated("series_id", "horizon_step"))
    errors: list[BaseException] = []

    def run_a() -> None:
        try:
            merge_forecasts(spark_a, cfg, source_a, run_id="run-a")
        except Exception as e:  # noqa: BLE001 - asserted below, in the test thread
            errors.append(e)

    thread = threading.Thread(target=run_a)
    thread.start()
    deadline = time.monotonic() + 120
    while not (tmp_path / "holding").exists() and thread.is_alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert (tmp_path / "holding").exists(), errors
    try:
        merge_forecasts(spark_b, cfg, forecast_rows(spark_b, O2), run_id="run-b")
    finally:
        (tmp_path / "released").touch()
        thread.join(120)
    assert not errors, errors
    history = {r["userMetadata"]: r for r in spark.sql(f"DESCRIBE HISTORY {table}").collect()}
    a, b = history["run-a"], history["run-b"]
    # A read the table before B committed and committed after it, on its first try (a retry
    # after a conflict would have read B's version).
    assert a["readVersion"] < b["version"] < a["version"], (a["readVersion"], b["version"], a["version"])
    assert spark.table(table).count() == 18
