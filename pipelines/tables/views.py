"""SQL views over the governed tables, for analysts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conf import LakecastConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def forecasts_latest_sql(cfg: LakecastConfig) -> str:
    """Newest forecast per (series_id, target_ts): the latest origin, then the latest score."""
    return f"""
CREATE VIEW IF NOT EXISTS {cfg.table("forecasts_latest")}
COMMENT 'Newest forecast per series and target time (latest forecast_origin, then scored_at)'
AS SELECT series_id, forecast_origin, target_ts, horizon_step, p10, p50, p90,
          model_name, model_version, model_run_id, source_version, job_run_id, scored_at
FROM (
  SELECT f.*, row_number() OVER (
    PARTITION BY series_id, target_ts ORDER BY forecast_origin DESC, scored_at DESC, model_version DESC
  ) AS rn
  FROM {cfg.table("forecasts")} f
) WHERE rn = 1
"""


def ensure_views(spark: SparkSession, cfg: LakecastConfig) -> None:
    spark.sql(forecasts_latest_sql(cfg))
