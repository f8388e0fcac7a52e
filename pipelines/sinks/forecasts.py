"""Writer of the governed `forecasts` table (scoring: `lakecast predict`).

One keyed MERGE per run, so a re-run of the same as-of replaces rather than duplicates, and
a run that fails commits nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from conf import LakecastConfig
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.ensure import delta_version
from pipelines.tables.specs import FORECASTS

log = logging.getLogger(__name__)

FORECAST_KEY = ("series_id", "forecast_origin", "target_ts", "model_name")


@dataclass(frozen=True)
class ForecastsMerge:
    """What one MERGE into forecasts did."""

    inserted: int
    updated: int
    version: int


def merge_forecasts(spark: SparkSession, cfg: LakecastConfig, forecasts: DataFrame) -> ForecastsMerge:
    """MERGE a run's forecasts (fully computed) into `forecasts` as one Delta transaction.

    Keyed on (series_id, forecast_origin, target_ts, model_name): re-running the same as-of
    replaces the rows (new values and lineage), never duplicates them. A run that fails
    before or during the MERGE commits nothing, so no partial forecasts are ever visible.
    """
    from delta.tables import DeltaTable

    table = cfg.table(FORECASTS.name)
    source = forecasts.select(*FORECASTS.column_names)
    on = " AND ".join(f"t.{k} = s.{k}" for k in FORECAST_KEY)
    metrics = retry_on_conflict(lambda: (
        DeltaTable.forName(spark, table).alias("t")
        .merge(source.alias("s"), on)
        .whenMatchedUpdateAll()
        .whenNotMatchedInsertAll()
        .execute()
        .head()
    ), what=f"MERGE into {table}")  # predict runs for other as-of times may write at once
    inserted = int(metrics["num_inserted_rows"]) if metrics is not None else 0
    updated = int(metrics["num_updated_rows"]) if metrics is not None else 0
    version = delta_version(spark, table)
    log.info("merged into %s: %d inserted, %d replaced (version %d)", table, inserted, updated, version)
    return ForecastsMerge(inserted, updated, version)
