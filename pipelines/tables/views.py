"""SQL views over the governed tables, for analysts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conf import LakecastConfig
from pipelines.tables.specs import JOB_RUN_EVENTS, JOB_RUNS_VIEW, sql_quote

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Which event of a run is its state: an ended one (succeeded or failed) over `running`, and of two
# ended ones the later (a row written by hand, or copied in twice).
LATEST_EVENT_ORDER = "ended_at DESC NULLS LAST, status DESC"


def job_runs_sql(cfg: LakecastConfig) -> str:
    """`job_runs`: one row per run, its latest event in `job_run_events`, with the table's column
    comments. Re-created by every job that checks the tables, so it follows the spec."""
    cols = ", ".join(c.name for c in JOB_RUN_EVENTS.columns)
    described = ",\n  ".join(f"`{c.name}` COMMENT '{sql_quote(c.comment)}'" for c in JOB_RUN_EVENTS.columns)
    return f"""
CREATE OR REPLACE VIEW {cfg.table(JOB_RUNS_VIEW)} (
  {described}
)
COMMENT 'One row per lakecast job run: what ran, with which parameters, what it read and wrote
(the latest row of each run in job_run_events)'
AS SELECT {cols}
FROM (
  SELECT e.*, row_number() OVER (PARTITION BY run_id ORDER BY {LATEST_EVENT_ORDER}) AS rn
  FROM {cfg.table(JOB_RUN_EVENTS.name)} e
) WHERE rn = 1
"""


def latest_runs(events: DataFrame) -> DataFrame:
    """The `job_runs` view over `job_run_events` read some other way (by path, from another
    catalog): one row per run, its latest event."""
    from pyspark.sql import functions as F

    rank = F.expr(f"row_number() OVER (PARTITION BY run_id ORDER BY {LATEST_EVENT_ORDER})")
    return events.withColumn("rn", rank).where("rn = 1").select(*JOB_RUN_EVENTS.column_names)


def forecasts_latest_sql(cfg: LakecastConfig) -> str:
    """Newest live forecast per (series_id, target_ts): the latest origin, then the latest score.

    Shadow forecasts (`model_role = 'challenger'`) are left out: analysts see what the champion
    said. Re-created by every job (CREATE OR REPLACE), so a home made before shadow scoring
    gets the filter on its next run.
    """
    return f"""
CREATE OR REPLACE VIEW {cfg.table("forecasts_latest")}
COMMENT 'Newest live forecast per series and target (latest origin, then scored_at); shadow challengers left out'
AS SELECT series_id, forecast_origin, target_ts, horizon_step, p10, p50, p90,
          model_name, model_version, model_run_id, source_version, job_run_id, scored_at, model_role
FROM (
  SELECT f.*, row_number() OVER (
    PARTITION BY series_id, target_ts ORDER BY forecast_origin DESC, scored_at DESC, model_version DESC
  ) AS rn
  FROM {cfg.table("forecasts")} f
  WHERE f.model_role IS NULL OR f.model_role <> 'challenger'
) WHERE rn = 1
"""


def accuracy_by_version_sql(cfg: LakecastConfig) -> str:
    """Live accuracy per model version, horizon step and day of origin (UTC), with seasonal naive's
    MASE on the same targets as the reference."""
    return f"""
CREATE VIEW IF NOT EXISTS {cfg.table("accuracy_by_version")}
COMMENT 'Live accuracy per model version, horizon step and day of origin (UTC): n, MAE, MASE, bias,
pinball, p10-p90 coverage, seasonal naive MASE on the same targets'
AS SELECT model_name, model_version, horizon_step, CAST(forecast_origin AS DATE) AS origin_day,
          count(*) AS n, avg(abs_error) AS mae, avg(scaled_abs_error) AS mase, avg(error) AS bias,
          avg((pinball_p10 + pinball_p50 + pinball_p90) / 3) AS pinball,
          avg(CAST(inside_p10_p90 AS DOUBLE)) AS coverage_p10_p90,
          avg(CASE WHEN scaled_abs_error IS NOT NULL THEN snaive_scaled_abs_error END) AS snaive_mase
FROM {cfg.table("forecast_accuracy")}
GROUP BY model_name, model_version, horizon_step, CAST(forecast_origin AS DATE)
"""


def accuracy_by_series_sql(cfg: LakecastConfig) -> str:
    """Per model version and series over the version's last `monitor.window` origins; ORDER BY mase
    DESC for the worst. Re-created by every job, so it follows the configured window."""
    fa, window = cfg.table("forecast_accuracy"), cfg.monitor.window
    return f"""
CREATE OR REPLACE VIEW {cfg.table("accuracy_by_series")}
COMMENT 'Live accuracy per model version and series over its last {window} origins (monitor.window)'
AS WITH origins AS (
  SELECT model_name, model_version, forecast_origin,
         dense_rank() OVER (PARTITION BY model_name, model_version ORDER BY forecast_origin DESC) AS r
  FROM (SELECT DISTINCT model_name, model_version, forecast_origin FROM {fa})
)
SELECT a.model_name, a.model_version, a.series_id, count(DISTINCT a.forecast_origin) AS origins,
       count(*) AS n, avg(a.scaled_abs_error) AS mase, avg(a.abs_error) AS mae, avg(a.error) AS bias,
       avg(CAST(a.inside_p10_p90 AS DOUBLE)) AS coverage_p10_p90,
       avg(CASE WHEN a.scaled_abs_error IS NOT NULL THEN a.snaive_scaled_abs_error END) AS snaive_mase
FROM {fa} a JOIN origins o ON a.model_name = o.model_name AND a.model_version = o.model_version
  AND a.forecast_origin = o.forecast_origin AND o.r <= {int(window)}
GROUP BY a.model_name, a.model_version, a.series_id
"""


def ensure_views(spark: SparkSession, cfg: LakecastConfig) -> None:
    spark.sql(job_runs_sql(cfg))
    spark.sql(forecasts_latest_sql(cfg))
    spark.sql(accuracy_by_version_sql(cfg))
    spark.sql(accuracy_by_series_sql(cfg))
