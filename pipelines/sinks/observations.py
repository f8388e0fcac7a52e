"""Writer of the governed `observations` table: one keyed MERGE per ingest batch.

The MERGE is one Delta transaction keyed on (series_id, ts), so a re-run replaces rather than
duplicates; a first load into an empty table is an insert-only MERGE, a single pass (two commits
only if another ingest wins a race for the same keys: `tables.keyed_merge`). Its commit
carries the job run id (Delta userMetadata); what it did (row counts, version) is read from that
commit's own operation metrics, found by the run id.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession
from pyspark.sql import functions as F

from conf import LakecastConfig
from conf.errors import LineageError
from pipelines.spark_utc import utc_lit
from pipelines.tables.keyed_merge import keyed_merge
from pipelines.tables.specs import OBSERVATIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObservationsMerge:
    """What the batch's MERGE into observations did, by Delta's own metrics of its commit(s)."""

    source_rows: int
    inserted: int
    updated: int
    versions: tuple[int, ...]     # the batch's commits: two only on the insert-only race path

    @property
    def unchanged(self) -> int:
        """Source rows matched but left as they were (unique keys: the rest of the source)."""
        return self.source_rows - self.inserted - self.updated

    @property
    def version(self) -> int:
        """The batch's last commit."""
        return self.versions[-1]


def merge_observations(spark: SparkSession, cfg: LakecastConfig, valid: DataFrame, *, run_id: str,
                       batch_id: str, now: datetime, insert_first: bool | None = None) -> ObservationsMerge:
    """MERGE valid rows (unique series_id, ts) into observations in one transaction.

    New keys are inserted; a key whose value differs is updated (value, batch, source file,
    updated_at; ingested_at is kept); a key with the same value is left untouched, so
    re-ingesting a file rewrites nothing. The commit carries `run_id`; its metrics give the
    counts: numSourceRows, numTargetRowsInserted, numTargetRowsUpdated, and `unchanged` = source
    rows matched but left as they were (Delta has no metric for those; with unique keys every
    source row is inserted, updated or unchanged). Deleted rows would be a bug: LineageError.

    A first load into an empty table is an insert-only MERGE (`tables.keyed_merge`: one pass over
    the source instead of two; a load that lost a race to another ingest merges the rest).
    `insert_first`: None decides by the table being empty; tests force it.
    """
    table = cfg.table(OBSERVATIONS.name)
    stamp = utc_lit(now)  # epoch micros: a naive datetime literal would be read in the host's zone
    source = valid.select(
        "series_id", "ts", "value", "source_file",
        F.lit(batch_id).alias("batch_id"), stamp.alias("ingested_at"), stamp.alias("updated_at"),
    )
    merged = keyed_merge(
        spark, table, source, "t.series_id = s.series_id AND t.ts = s.ts", run_id=run_id,
        insert_first=_is_empty(spark, table) if insert_first is None else insert_first,
        update={"value": "s.value", "batch_id": "s.batch_id", "source_file": "s.source_file",
                "updated_at": "s.updated_at"},
        update_condition="NOT (t.value <=> s.value)",
        insert={c: f"s.{c}" for c in OBSERVATIONS.column_names})
    commit = merged.commit
    if commit.metric("numTargetRowsDeleted"):
        raise LineageError(f"MERGE version {commit.version} of {table} (run {run_id}) deleted "
                           f"{commit.metric('numTargetRowsDeleted')} rows; an ingest never deletes")
    result = ObservationsMerge(merged.source_rows, merged.inserted, merged.updated, merged.versions)
    log.info("merged into %s: %d source rows, %d inserted, %d updated, %d unchanged (version %d)",
             table, result.source_rows, result.inserted, result.updated, result.unchanged, commit.version)
    return result


def _is_empty(spark: SparkSession, table: str) -> bool:
    """True when the table holds no data file (a first load); Delta answers from its log."""
    (row,) = spark.sql(f"DESCRIBE DETAIL {table}").select("numFiles").collect()
    return int(row["numFiles"]) == 0
