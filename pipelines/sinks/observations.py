"""Writer of the governed `observations` table: one keyed MERGE per ingest batch.

The MERGE is one Delta transaction keyed on (series_id, ts), so a re-run replaces rather than
duplicates; a first load into an empty table is an insert-only MERGE, a single pass. Its commit
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
from pipelines.tables.commits import Commit, commit_of_run, commits_tagged
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.specs import OBSERVATIONS

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ObservationsMerge:
    """What one MERGE into observations did, by Delta's own metrics of its commit."""

    source_rows: int
    inserted: int
    updated: int
    unchanged: int
    version: int


def merge_observations(spark: SparkSession, cfg: LakecastConfig, valid: DataFrame, *, run_id: str,
                       batch_id: str, now: datetime, insert_first: bool | None = None) -> ObservationsMerge:
    """MERGE valid rows (unique series_id, ts) into observations in one transaction.

    New keys are inserted; a key whose value differs is updated (value, batch, source file,
    updated_at; ingested_at is kept); a key with the same value is left untouched, so
    re-ingesting a file rewrites nothing. The commit carries `run_id`; its metrics give the
    counts: numSourceRows, numTargetRowsInserted, numTargetRowsUpdated, and `unchanged` = source
    rows matched but left as they were (Delta has no metric for those; with unique keys every
    source row is inserted, updated or unchanged). Deleted rows would be a bug: LineageError.

    A first load into an empty table takes the insert-only path: an insert-only MERGE reads the
    source once (no join to find matches, no second pass), about half the full MERGE's time. Should
    another ingest commit between the emptiness check and that MERGE, its keys are skipped there
    (its metrics show fewer inserted than read) and the full MERGE then runs over the same rows, so
    nothing is lost and the counts add both commits. `insert_first`: None decides by the table
    being empty; tests force it.
    """
    table = cfg.table(OBSERVATIONS.name)
    stamp = utc_lit(now)  # epoch micros: a naive datetime literal would be read in the host's zone
    source = valid.select(
        "series_id", "ts", "value", "source_file",
        F.lit(batch_id).alias("batch_id"), stamp.alias("ingested_at"), stamp.alias("updated_at"),
    )
    inserted_first = 0
    if insert_first if insert_first is not None else _is_empty(spark, table):
        first = _merge(spark, table, source, run_id, insert_only=True)
        inserted_first = first.metric("numTargetRowsInserted")
        if inserted_first == first.metric("numSourceRows"):
            return _result(table, first, 0)
        log.info("%s received other rows since it was found empty: %d of %d rows were inserted; the "
                 "keyed MERGE takes the rest", table, inserted_first, first.metric("numSourceRows"))
    return _result(table, _merge(spark, table, source, run_id, insert_only=False), inserted_first)


def _is_empty(spark: SparkSession, table: str) -> bool:
    """True when the table holds no data file (a first load); Delta answers from its log."""
    (row,) = spark.sql(f"DESCRIBE DETAIL {table}").select("numFiles").collect()
    return int(row["numFiles"]) == 0


def _merge(spark: SparkSession, table: str, source: DataFrame, run_id: str, *, insert_only: bool) -> Commit:
    """One MERGE of `source` into `table`, committed with `run_id`; its commit."""
    from delta.tables import DeltaTable

    def run() -> None:
        merge = DeltaTable.forName(spark, table).alias("t").merge(
            source.alias("s"), "t.series_id = s.series_id AND t.ts = s.ts")
        if not insert_only:
            merge = merge.whenMatchedUpdate(condition="NOT (t.value <=> s.value)", set={
                "value": "s.value", "batch_id": "s.batch_id", "source_file": "s.source_file",
                "updated_at": "s.updated_at",
            })
        merge.whenNotMatchedInsert(values={c: f"s.{c}" for c in OBSERVATIONS.column_names}).execute()

    with commits_tagged(spark, run_id):
        retry_on_conflict(run, what=f"MERGE into {table}")  # concurrent ingests of other files
    commit = commit_of_run(spark, table, run_id)
    if commit.metric("numTargetRowsDeleted"):
        raise LineageError(f"MERGE version {commit.version} of {table} (run {run_id}) deleted "
                           f"{commit.metric('numTargetRowsDeleted')} rows; an ingest never deletes")
    return commit


def _result(table: str, commit: Commit, inserted_before: int) -> ObservationsMerge:
    """The counts of the run's last MERGE `commit`, plus the rows its insert-only pass inserted before."""
    source_rows = commit.metric("numSourceRows")
    inserted = inserted_before + commit.metric("numTargetRowsInserted")
    updated = commit.metric("numTargetRowsUpdated")
    result = ObservationsMerge(source_rows, inserted, updated, source_rows - inserted - updated, commit.version)
    log.info("merged into %s: %d source rows, %d inserted, %d updated, %d unchanged (version %d)",
             table, source_rows, result.inserted, result.updated, result.unchanged, commit.version)
    return result
