"""Writers of the governed Delta tables, one section per table.

Each writer is one Delta transaction keyed so that a re-run replaces rather than duplicates,
and returns what it did (row counts from the Delta operation, the new table version).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from conf import LakecastConfig
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.specs import OBSERVATIONS, QUARANTINE, delta_version

log = logging.getLogger(__name__)


# ---------------------------------------------------------------------------------------------
# observations
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ObservationsMerge:
    """What one MERGE into observations did."""

    inserted: int
    updated: int
    unchanged: int
    version: int


def merge_observations(spark: Any, cfg: LakecastConfig, valid: DataFrame, *, valid_rows: int,
                       batch_id: str, now: datetime) -> ObservationsMerge:
    """MERGE valid rows (unique series_id, ts) into observations in one transaction.

    New keys are inserted; a key whose value differs is updated (value, batch, source file,
    updated_at; ingested_at is kept); a key with the same value is left untouched, so
    re-ingesting a file rewrites nothing. `valid_rows` (counted before) gives `unchanged` as
    valid_rows - inserted - updated, from the MERGE's own metrics row.
    """
    from delta.tables import DeltaTable

    table = cfg.table(OBSERVATIONS.name)
    stamp = F.lit(now).cast("timestamp")
    source = valid.select(
        "series_id", "ts", "value", "source_file",
        F.lit(batch_id).alias("batch_id"), stamp.alias("ingested_at"), stamp.alias("updated_at"),
    )
    changed = "NOT (t.value <=> s.value)"
    metrics = retry_on_conflict(lambda: (
        DeltaTable.forName(spark, table).alias("t")
        .merge(source.alias("s"), "t.series_id = s.series_id AND t.ts = s.ts")
        .whenMatchedUpdate(condition=changed, set={
            "value": "s.value", "batch_id": "s.batch_id", "source_file": "s.source_file",
            "updated_at": "s.updated_at",
        })
        .whenNotMatchedInsert(values={c: f"s.{c}" for c in OBSERVATIONS.column_names})
        .execute()
        .head()
    ), what=f"MERGE into {table}")  # concurrent ingests of other files
    inserted = int(metrics["num_inserted_rows"]) if metrics is not None else 0
    updated = int(metrics["num_updated_rows"]) if metrics is not None else 0
    version = delta_version(spark, table)
    result = ObservationsMerge(inserted, updated, valid_rows - inserted - updated, version)
    log.info("merged into %s: %d inserted, %d updated, %d unchanged (version %d)",
             table, result.inserted, result.updated, result.unchanged, version)
    return result


# ---------------------------------------------------------------------------------------------
# quarantine
# ---------------------------------------------------------------------------------------------


def append_quarantine(spark: Any, cfg: LakecastConfig, rows: DataFrame, *, n_rows: int) -> int:
    """Append quarantined rows (already in the table's column order); return the table version.

    With no rows nothing is written and the current version is returned.
    """
    table = cfg.table(QUARANTINE.name)
    if n_rows > 0:
        rows.select(*QUARANTINE.column_names).write.format("delta").mode("append").saveAsTable(table)
    version = delta_version(spark, table)
    log.info("appended %d rows to %s (version %d)", n_rows, table, version)
    return version


# ---------------------------------------------------------------------------------------------
# forecasts (scoring: `lakecast predict`)
# ---------------------------------------------------------------------------------------------

FORECAST_KEY = ("series_id", "forecast_origin", "target_ts", "model_name")


@dataclass(frozen=True)
class ForecastsMerge:
    """What one MERGE into forecasts did."""

    inserted: int
    updated: int
    version: int


def merge_forecasts(spark: Any, cfg: LakecastConfig, forecasts: DataFrame) -> ForecastsMerge:
    """MERGE a run's forecasts (fully computed) into `forecasts` as one Delta transaction.

    Keyed on (series_id, forecast_origin, target_ts, model_name): re-running the same as-of
    replaces the rows (new values and lineage), never duplicates them. A run that fails
    before or during the MERGE commits nothing, so no partial forecasts are ever visible.
    """
    from delta.tables import DeltaTable

    from pipelines.tables.specs import FORECASTS

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
