"""Governed tables on a real SparkSession: idempotent init, constraints, drift, job_runs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest

from conf import LakecastConfig
from conf.errors import SchemaDriftError
from pipelines.flows import init_tables
from pipelines.sinks.job_runs import record_run
from pipelines.tables.ensure import delta_version, ensure_tables
from pipelines.tables.specs import ALL_TABLES
from pipelines.tables.views import latest_runs


def _versions(spark: Any, cfg: LakecastConfig) -> dict[str, int]:
    return {t.name: delta_version(spark, cfg.table(t.name)) for t in ALL_TABLES}


def test_init_is_idempotent(spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    cfg = fresh_db()
    before = _versions(spark, cfg)
    statuses = init_tables.run(spark, cfg)
    assert [s.status for s in statuses] == ["ok"] * len(ALL_TABLES)
    assert _versions(spark, cfg) == before
    tables = {r["tableName"] for r in spark.sql(f"SHOW TABLES IN {cfg.catalog.database}").collect()}
    assert {"observations", "quarantine", "forecasts", "job_runs", "forecasts_latest"} <= tables


def test_governance_lives_in_the_table(spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    cfg = fresh_db("catalog.owner=forecasting-team", "catalog.classification=confidential")
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {cfg.table('forecasts')}").collect()}
    assert props["data_owner"] == "forecasting-team"
    assert props["data_classification"] == "confidential"
    assert props["delta.enableChangeDataFeed"] == "true"
    assert props["delta.constraints.quantiles_ordered"] == "p10 <= p50 AND p50 <= p90"
    assert props["delta.constraints.horizon_step_positive"] == "horizon_step >= 1"
    cols = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {cfg.table('observations')}").collect()}
    assert cols["series_id"] == "Series identifier"
    schema = {f.name: f.nullable for f in spark.table(cfg.table("observations")).schema.fields}
    assert schema["series_id"] is False and schema["ts"] is False and schema["value"] is True
    detail = spark.sql(f"DESCRIBE TABLE EXTENDED {cfg.table('job_runs')}").collect()
    comment = next(r["data_type"] for r in detail if r["col_name"] == "Comment")
    assert "One row per lakecast job run" in comment  # the view analysts query
    log = spark.sql(f"DESCRIBE DETAIL {cfg.table('job_run_events')}").head()  # the table under it
    assert log["description"].startswith("Event log of lakecast job runs")
    assert log["properties"]["delta.appendOnly"] == "true" and log["properties"]["data_owner"] == "forecasting-team"


def _forecast_row(p10: float, p50: float, p90: float, step: int = 1, role: str = "champion") -> str:
    return (f"('s1', TIMESTAMP'2024-01-01 00:00:00', TIMESTAMP'2024-01-01 01:00:00', {step}, "
            f"{p10}, {p50}, {p90}, 'm', '1', 'run', 0, 'job', current_timestamp(), '{role}', 1.5)")


def test_constraints_reject_bad_rows(spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    cfg = fresh_db()
    table = cfg.table("forecasts")
    spark.sql(f"INSERT INTO {table} VALUES {_forecast_row(1.0, 2.0, 3.0)}")
    with pytest.raises(Exception, match=r"(?s)DELTA_VIOLATE_CONSTRAINT.*quantiles_ordered"):
        spark.sql(f"INSERT INTO {table} VALUES {_forecast_row(3.0, 2.0, 1.0)}")
    with pytest.raises(Exception, match=r"(?s)DELTA_VIOLATE_CONSTRAINT.*horizon_step_positive"):
        spark.sql(f"INSERT INTO {table} VALUES {_forecast_row(1.0, 2.0, 3.0, step=0)}")
    with pytest.raises(Exception, match=r"(?s)DELTA_VIOLATE_CONSTRAINT.*model_role_known"):
        spark.sql(f"INSERT INTO {table} VALUES {_forecast_row(1.0, 2.0, 3.0, role='boss')}")
    with pytest.raises(Exception, match=r"(?s)NOT NULL|NOT_NULL"):
        spark.sql(f"INSERT INTO {cfg.table('observations')} VALUES "
                  "(NULL, TIMESTAMP'2024-01-01', 1.0, 'b', 'f', current_timestamp(), NULL)")
    assert spark.table(table).count() == 1


def test_drift_is_reported_not_altered(spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    cfg = fresh_db()
    spark.sql(f"ALTER TABLE {cfg.table('observations')} ADD COLUMNS (unit STRING)")
    spark.sql(f"ALTER TABLE {cfg.table('forecasts')} DROP CONSTRAINT quantiles_ordered")
    version = delta_version(spark, cfg.table("observations"))
    statuses = {s.table: s for s in ensure_tables(spark, cfg)}
    assert statuses[cfg.table("observations")].status == "drifted"
    assert statuses[cfg.table("observations")].problems == ("unexpected column unit",)
    assert statuses[cfg.table("quarantine")].status == "ok"
    with pytest.raises(SchemaDriftError, match=r"forecasts: CHECK constraint quantiles_ordered .* is missing"):
        init_tables.run(spark, cfg)
    assert delta_version(spark, cfg.table("observations")) == version
    assert "unit" in spark.table(cfg.table("observations")).columns


@pytest.mark.tz
def test_job_runs_records_success_and_failure(spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    cfg = fresh_db()
    began = time.time()
    with record_run(spark, cfg, "unit", {"as_of": "2024-01-01"}) as run:
        running = spark.table(cfg.table("job_runs")).where(f"run_id = '{run.run_id}'").head()
        assert running["status"] == "running"
        run.row_counts["read"] = 10
        run.versions_read["observations"] = 3
        run.details["note"] = "x"
    with pytest.raises(ValueError, match="boom"), record_run(spark, cfg, "unit", {}) as failed:
        raise ValueError("boom")
    rows = {r["run_id"]: r for r in spark.table(cfg.table("job_runs")).collect()}
    assert len(rows) == 2
    ok = rows[run.run_id]
    assert ok["status"] == "succeeded" and ok["row_counts"] == {"read": 10}
    assert ok["versions_read"] == {"observations": 3}
    assert json.loads(ok["parameters"])["as_of"] == "2024-01-01"
    assert json.loads(ok["details"]) == {"note": "x"}
    assert isinstance(ok["ended_at"], datetime) and ok["ended_at"] >= ok["started_at"]
    # Real UTC instants whatever the host's zone (read as epoch micros, not through pyspark's local time).
    stamps = spark.table(cfg.table("job_runs")).selectExpr(
        "unix_micros(started_at) / 1e6 AS s", "unix_micros(ended_at) / 1e6 AS e").collect()
    assert all(began - 60 <= r[c] <= time.time() + 60 for r in stamps for c in ("s", "e")), (began, stamps)
    bad = rows[failed.run_id]
    assert bad["status"] == "failed" and bad["error"] == "ValueError: boom"
    # Underneath, each state change was appended: the log keeps both events of each run, and the
    # view's rows are what `latest_runs` makes of the log read as a DataFrame (the by-path reader).
    events = spark.table(cfg.table("job_run_events"))
    assert sorted((r["run_id"], r["status"]) for r in events.collect()) == sorted(
        [(run.run_id, "running"), (run.run_id, "succeeded"), (failed.run_id, "running"), (failed.run_id, "failed")])
    assert sorted(map(tuple, latest_runs(events).collect())) == sorted(map(tuple, rows.values()))
    ops = {r["operation"] for r in spark.sql(f"DESCRIBE HISTORY {cfg.table('job_run_events')}").collect()}
    assert ops == {"CREATE TABLE", "WRITE"}, ops  # appends only: no MERGE, no UPDATE
