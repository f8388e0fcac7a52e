"""`lakecast migrate` brings a home of the previous release to the current specs, in place."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from conf import LakecastConfig
from conf.errors import MigrationError, SchemaDriftError
from pipelines.flows import init_tables, migrate
from pipelines.sinks.job_runs import record_run
from pipelines.tables.ensure import delta_version
from pipelines.tables.specs import ALL_TABLES

# The previous release's `forecasts` (unpartitioned), as its `lakecast init` created it.
OLD_FORECASTS_DDL = """CREATE TABLE {table} (
  `series_id` STRING NOT NULL COMMENT 'Series identifier',
  `forecast_origin` TIMESTAMP NOT NULL COMMENT 'Last observed grid step the forecast starts from (UTC)',
  `target_ts` TIMESTAMP NOT NULL COMMENT 'Time being forecast (UTC)',
  `horizon_step` INT NOT NULL COMMENT 'Steps ahead of the origin, 1-based',
  `p10` DOUBLE NOT NULL COMMENT '10th percentile forecast',
  `p50` DOUBLE NOT NULL COMMENT 'Median forecast',
  `p90` DOUBLE NOT NULL COMMENT '90th percentile forecast',
  `model_name` STRING NOT NULL COMMENT 'Registered MLflow model name',
  `model_version` STRING NOT NULL COMMENT 'Registered model version used',
  `model_run_id` STRING COMMENT 'MLflow run that trained the model',
  `source_version` BIGINT COMMENT 'Delta version of observations that was read',
  `job_run_id` STRING COMMENT 'job_runs.run_id of the scoring run',
  `scored_at` TIMESTAMP COMMENT 'When the forecast was written'
) USING DELTA
COMMENT 'Probabilistic forecasts with lineage; one row per (series_id, forecast_origin, target_ts, model_name).'
TBLPROPERTIES ('data_owner' = 'unknown', 'data_classification' = 'internal', 'pipeline' = 'lakecast',
  'pipeline_version' = '0.15.0', 'delta.enableChangeDataFeed' = 'true')"""
# The previous release's `job_runs`: a table with one row per run, MERGEd at the run's end.
OLD_JOB_RUNS_DDL = """CREATE TABLE {table} (
  `run_id` STRING NOT NULL COMMENT 'Unique run id',
  `job` STRING NOT NULL COMMENT 'Job name, e.g. ingest, train, predict',
  `status` STRING NOT NULL COMMENT 'running | succeeded | failed',
  `parameters` STRING COMMENT 'Run parameters and resolved config as JSON',
  `started_at` TIMESTAMP NOT NULL COMMENT 'Start time (UTC)',
  `ended_at` TIMESTAMP COMMENT 'End time (UTC)',
  `row_counts` MAP<STRING, BIGINT> COMMENT 'Row counts by kind (read, inserted, quarantined...)',
  `versions_read` MAP<STRING, BIGINT> COMMENT 'Delta versions read, by table',
  `versions_written` MAP<STRING, BIGINT> COMMENT 'Delta versions written, by table',
  `details` STRING COMMENT 'Other facts of the run as JSON (model version, precision...)',
  `error` STRING COMMENT 'Error message of a failed run'
) USING DELTA
COMMENT 'One row per lakecast job run: what ran, with which parameters, what it read and wrote.'
TBLPROPERTIES ('data_owner' = 'unknown', 'data_classification' = 'internal', 'pipeline' = 'lakecast',
  'pipeline_version' = '0.15.0')"""
OLD_RUN = "predict-20240101T000000-0ld0ld00"
OLD_FORECASTS_CHECKS = {
    "quantiles_ordered": "p10 <= p50 AND p50 <= p90",
    "horizon_step_positive": "horizon_step >= 1",
    "target_after_origin": "target_ts > forecast_origin",
}


def _old_home(spark: Any, fresh_db: Callable[..., LakecastConfig]) -> LakecastConfig:
    """A home of the previous release: its forecasts table (with rows of 3 origins), observations
    without a Change Data Feed and with an old comment, no forecast_accuracy table, its runs in a
    `job_runs` table (one succeeded run, updated in place) and no `job_run_events`."""
    cfg = fresh_db()
    spark.sql(f"DROP VIEW {cfg.table('job_runs')}")
    spark.sql(f"DROP TABLE {cfg.table('job_run_events')}")
    spark.sql(OLD_JOB_RUNS_DDL.format(table=cfg.table("job_runs")))
    spark.sql(f"ALTER TABLE {cfg.table('job_runs')} ADD CONSTRAINT status_known "
              "CHECK (status IN ('running', 'succeeded', 'failed'))")
    spark.sql(f"""INSERT INTO {cfg.table('job_runs')} VALUES ('{OLD_RUN}', 'predict', 'running', '{{}}',
        TIMESTAMP'2024-01-01 00:00:00Z', NULL, map(), map(), map(), '{{}}', NULL)""")
    spark.sql(f"""UPDATE {cfg.table('job_runs')} SET status = 'succeeded', ended_at = TIMESTAMP'2024-01-01 00:01:00Z',
        row_counts = map('scored', 3L) WHERE run_id = '{OLD_RUN}'""")
    spark.sql(f"DROP TABLE {cfg.table('forecast_accuracy')}")
    spark.sql(f"ALTER TABLE {cfg.table('observations')} SET TBLPROPERTIES ('delta.enableChangeDataFeed' = 'false')")
    table = cfg.table("forecasts")
    spark.sql(f"DROP TABLE {table}")
    spark.sql(OLD_FORECASTS_DDL.format(table=table))
    for name, expr in OLD_FORECASTS_CHECKS.items():
        spark.sql(f"ALTER TABLE {table} ADD CONSTRAINT {name} CHECK ({expr})")
    spark.sql(f"""INSERT INTO {table} SELECT concat('s', CAST((id DIV 2) % 4 AS STRING)),
        TIMESTAMP'2024-01-01 00:00:00Z' + make_interval(0, 0, 0, CAST(id DIV 8 AS INT)),
        TIMESTAMP'2024-01-01 00:00:00Z' + make_interval(0, 0, 0, CAST(id DIV 8 AS INT), CAST(id % 2 + 1 AS INT)),
        CAST(id % 2 + 1 AS INT), 0.5, 1.0 + id, 2.0 + id, 'm', '1', 'run', 3L, 'job', current_timestamp()
        FROM range(24)""")
    spark.sql(f"ALTER TABLE {cfg.table('observations')} ALTER COLUMN value COMMENT 'old comment'")
    return cfg


def _state(spark: Any, cfg: LakecastConfig) -> dict[str, int]:
    """Delta version of every table of the home (the previous release's `job_runs` included)."""
    names = [t.name for t in ALL_TABLES] + ["job_runs"]
    return {n: delta_version(spark, cfg.table(n)) for n in names
            if spark.catalog.tableExists(cfg.table(n)) and spark.catalog.getTable(cfg.table(n)).tableType != "VIEW"}


def _rows(spark: Any, cfg: LakecastConfig) -> list[tuple[Any, ...]]:
    return sorted(tuple(r) for r in spark.table(cfg.table("forecasts"))
                  .selectExpr("series_id", "unix_micros(forecast_origin)", "unix_micros(target_ts)", "p50").collect())


def test_migrate_brings_an_old_home_to_the_spec(spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    cfg = _old_home(spark, fresh_db)
    forecasts = cfg.table("forecasts")
    rows = _rows(spark, cfg)
    with pytest.raises(SchemaDriftError, match=r"(?s)run `lakecast migrate`.*forecasts: table is not "
                                               r"partitioned, expected partitioned by \(forecast_origin\).*"
                                               r"job_run_events: table is missing: \S+\.job_runs, its previous "
                                               r"release's table, is to be renamed to it"):
        init_tables.run(spark, cfg)
    before = _state(spark, cfg)
    # A job that checks no table (predict, train, promote) says what to do rather than write elsewhere.
    with (pytest.raises(SchemaDriftError, match=r"job_run_events is missing.*`lakecast migrate` renames"),
          record_run(spark, cfg, "predict", {})):
        pass
    assert _state(spark, cfg) == before

    dry = migrate.run(spark, cfg, dry_run=True)
    assert [(s.table.split(".")[-1], type(s).__name__) for s in dry.steps] == [
        ("observations", "SetColumnComment"), ("observations", "SetProperty"),
        ("forecasts", "Repartition"), ("forecasts", "AddColumn"), ("forecasts", "AddColumn"),
        ("forecasts", "SetTableComment"),  # the key now includes model_version (shadow scoring)
        ("forecasts", "AddConstraint"), ("forecasts", "AddConstraint"),  # init created forecast_accuracy
        ("forecasts", "SetProperty"),  # deletion vectors: `predict --changed-only` rewrites only what changed
        ("job_run_events", "RenameTable"), ("job_run_events", "SetTableComment"),  # the run event log
        ("job_run_events", "SetProperty")]  # append-only
    assert _state(spark, cfg) == before and dry.job_run_id is None  # nothing written, not even job_runs

    out = migrate.run(spark, cfg)
    assert _rows(spark, cfg) == rows and len(rows) == 24
    assert out.rows_rewritten == {forecasts: 24}
    detail = spark.sql(f"DESCRIBE DETAIL {forecasts}").head()
    assert list(detail["partitionColumns"]) == ["forecast_origin"]
    assert detail["properties"].get("delta.enableDeletionVectors") == "true"
    assert [s.status for s in init_tables.run(spark, cfg)] == ["ok"] * len(ALL_TABLES)  # the spec, all of it
    history = spark.sql(f"DESCRIBE HISTORY {forecasts}").where(f"userMetadata = '{out.job_run_id}'")
    ops = [(r["operation"], r["operationMetrics"].get("numOutputRows")) for r in history.orderBy("version").collect()]
    assert ops[:2] == [("REPLACE TABLE", None), ("WRITE", "24")], ops  # the new layout, then every row
    assert {op for op, _ in ops[2:]} <= {"ADD COLUMNS", "ADD CONSTRAINT", "SET TBLPROPERTIES"}, ops  # new columns
    assert spark.table(forecasts).where("model_role IS NULL AND mase_scale IS NULL").count() == 24
    run = spark.table(cfg.table("job_runs")).where(f"run_id = '{out.job_run_id}'").head()
    assert run["job"] == "migrate" and run["status"] == "succeeded"
    # The old runs are rows of the event log, history and all, and read through the job_runs view.
    assert spark.catalog.getTable(cfg.table("job_runs")).tableType == "VIEW"
    old = spark.table(cfg.table("job_runs")).where(f"run_id = '{OLD_RUN}'").collect()
    assert [(r["status"], r["row_counts"]) for r in old] == [("succeeded", {"scored": 3})]
    ops = [r["operation"] for r in spark.sql(f"DESCRIBE HISTORY {cfg.table('job_run_events')}")
           .orderBy("version").collect()]
    assert ops[:4] == ["CREATE TABLE", "ADD CONSTRAINT", "WRITE", "UPDATE"], ops
    with pytest.raises(Exception, match="DELTA_CANNOT_MODIFY_APPEND_ONLY"):
        spark.sql(f"DELETE FROM {cfg.table('job_run_events')} WHERE run_id = '{OLD_RUN}'")
    assert run["versions_written"]["forecasts"] == out.versions["forecasts"]
    assert spark.table(cfg.table("forecasts_latest")).count() == 24  # views over it keep working
    with pytest.raises(Exception, match=r"(?s)DELTA_VIOLATE_CONSTRAINT.*quantiles_ordered"):
        spark.sql(f"INSERT INTO {forecasts} SELECT 's9', TIMESTAMP'2024-02-01 00:00:00Z', "
                  "TIMESTAMP'2024-02-01 01:00:00Z', 1, 3.0, 2.0, 1.0, 'm', '1', 'r', 0L, 'j', current_timestamp(), "
                  "'champion', 1.0")

    after = _state(spark, cfg)
    again = migrate.run(spark, cfg)  # idempotent: plans nothing, writes nothing
    assert again.steps == [] and again.job_run_id is None and _state(spark, cfg) == after


def test_migrate_finishes_an_interrupted_move_to_the_event_log(
        spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    """A migrate stopped between renaming the old `job_runs` table and creating the view has nothing
    left to plan; running it again puts the view back, and writes no table."""
    cfg = fresh_db()
    with record_run(spark, cfg, "predict", {}) as rec:
        pass
    spark.sql(f"DROP VIEW {cfg.table('job_runs')}")
    assert migrate.run(spark, cfg, dry_run=True).steps == []
    before = _state(spark, cfg)
    again = migrate.run(spark, cfg)
    assert again.steps == [] and again.job_run_id is None and _state(spark, cfg) == before
    assert [r["status"] for r in spark.table(cfg.table("job_runs")).collect()] == ["succeeded"]
    comments = {r["col_name"]: r["comment"] for r in spark.sql(f"DESCRIBE TABLE {cfg.table('job_runs')}").collect()}
    assert comments["status"] == "running | succeeded | failed" and comments["run_id"] == "Unique run id"
    assert rec.run_id in {r["run_id"] for r in spark.table(cfg.table("job_runs")).collect()}


def test_an_old_job_runs_table_beside_the_event_log_is_refused(
        spark: Any, fresh_db: Callable[..., LakecastConfig]) -> None:
    """Two places for the runs (the log, and an old `job_runs` table where the view should be):
    migrate cannot know which rows to keep, so it changes nothing and says what to do; an old
    table's own blockers name that table, not the log it is to become."""
    cfg = fresh_db()
    spark.sql(f"DROP VIEW {cfg.table('job_runs')}")
    spark.sql(OLD_JOB_RUNS_DDL.format(table=cfg.table("job_runs")))
    before = _state(spark, cfg)
    with pytest.raises(MigrationError, match=r"job_run_events: \S+\.job_runs is still a table of the previous "
                                             r"release beside it: move its rows into"):
        migrate.run(spark, cfg)
    assert _state(spark, cfg) == before
    spark.sql(f"DROP TABLE {cfg.table('job_run_events')}")
    spark.sql(f"ALTER TABLE {cfg.table('job_runs')} ADD COLUMNS (host STRING)")
    with pytest.raises(MigrationError, match=r"job_run_events: in \S+\.job_runs, to be renamed to it: "
                                             r"unexpected column host"):
        migrate.run(spark, cfg)
    assert not spark.catalog.tableExists(cfg.table("job_run_events"))  # nothing renamed


def test_a_spec_naming_a_protocol_key_is_refused_at_definition() -> None:
    """The drift check reads a table's configuration, which never lists Delta's protocol keys: a
    spec naming one would report drift on every run, so it is refused where it is written."""
    from pipelines.tables.specs import Column, TableSpec

    cols = (Column("a", "STRING", "a column"),)
    for key in ("delta.feature.deletionVectors", "delta.minWriterVersion"):
        with pytest.raises(ValueError, match=f"table spec t: protocol keys are not table properties: \\['{key}'\\]"):
            TableSpec("t", "a table", cols, properties={key: "supported"})
    assert TableSpec("t", "a table", cols, properties={"delta.enableDeletionVectors": "true"}).properties
