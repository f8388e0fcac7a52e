"""Writer of the governed `observations` table: one keyed MERGE per ingest batch.

The MERGE is one Delta transaction keyed on (series_id, ts), so a re-run replaces rather than
duplicates, and it returns what it did (row counts from the Delta operation, the new version).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conf import LakecastConfig
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.ensure import delta_version
from pipelines.tables.specs import OBSERVATIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObservationsMerge:
    """What one MERGE into observations did."""

    inserted: int
    updated: int
    unchanged: int
    version: int


def merge_observations(spark: SparkSession, cfg: LakecastConfig, valid: DataFrame, *, valid_rows: int,
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
