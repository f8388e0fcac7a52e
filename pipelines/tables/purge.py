"""Remove a set of series from a Delta table and from its files: DELETE, purge deletion vectors, VACUUM.

A DELETE alone only hides rows: the replaced Parquet files stay for time travel, a deletion
vector marks rows in a file that still holds them, and a Change Data Feed table writes the
deleted rows into `_change_data/` files. `REORG TABLE … APPLY (PURGE)` rewrites the files that
carry deletion vectors; `VACUUM … RETAIN n HOURS` then deletes every file that the current
version no longer references and that is older than n hours (`_change_data/` files included:
no snapshot references them, so they go by age alone).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from pipelines.session.settings import session_conf
from pipelines.tables.commits import Commit, commit_of_run, commits_tagged
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.ensure import delta_version

if TYPE_CHECKING:
    from pyspark.sql import Column, SparkSession

log = logging.getLogger(__name__)

# Delta refuses a VACUUM retention below the table's `delta.deletedFileRetentionDuration`
# (7 days), because a reader or writer still on an older version could lose its files.
RETENTION_CHECK = "spark.databricks.delta.retentionDurationCheck.enabled"


def series_condition(ids: Sequence[str]) -> Column:
    """Rows of these series; trimmed too, as quarantine keeps the id as read (ingest trims it)."""
    from pyspark.sql import functions as F

    col = F.col("series_id")
    return col.isin(list(ids)) | F.trim(col).isin(list(ids))


def count_by_series(spark: SparkSession, table: str, ids: Sequence[str]) -> dict[str, int]:
    """Rows per (trimmed) series id in the table's current version; ids without rows are absent."""
    from pyspark.sql import functions as F

    rows = (spark.table(table).where(series_condition(ids))
            .groupBy(F.trim(F.col("series_id")).alias("sid")).count().collect())
    return {str(r["sid"]): int(r["count"]) for r in rows}


def delete_series(spark: SparkSession, table: str, ids: Sequence[str], *, tag: str) -> Commit:
    """Delete the series' rows in one commit carrying `tag` (the job run id); that commit, found by
    the tag, so a concurrent writer's commit is never taken for it.

    A MERGE whose source rows are the ids, not a DELETE: Delta writes a DELETE's predicate, literals
    and all, into the table's commit log (`DESCRIBE HISTORY`), which VACUUM does not remove, while a
    MERGE's log holds only its join condition."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    source = F.broadcast(spark.createDataFrame([(i,) for i in dict.fromkeys(ids)], "forget_id string"))
    cond = "t.series_id = s.forget_id OR trim(t.series_id) = s.forget_id"  # as series_condition
    with commits_tagged(spark, tag):
        retry_on_conflict(lambda: DeltaTable.forName(spark, table).alias("t").merge(source.alias("s"), cond)
                          .whenMatchedDelete().execute(),
                          what=f"delete from {table}")  # keyed: running it again is safe
    return commit_of_run(spark, table, tag)


def purge_files(spark: SparkSession, table: str, *, retention_hours: int, tag: str) -> int:
    """Rewrite files with deletion vectors, then VACUUM with `retention_hours`; the version after.

    Delta's retention check is relaxed for these two statements only and restored after,
    whatever happens.
    """
    with commits_tagged(spark, tag), session_conf(spark, RETENTION_CHECK, "false"):
        spark.sql(f"REORG TABLE {table} APPLY (PURGE)").collect()
        spark.sql(f"VACUUM {table} RETAIN {int(retention_hours)} HOURS").collect()
    version = delta_version(spark, table)
    log.info("purged %s: deletion vectors rewritten, VACUUM RETAIN %d HOURS (version %d)",
             table, retention_hours, version)
    return version
