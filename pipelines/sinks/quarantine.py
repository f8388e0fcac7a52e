"""Writer of the governed `quarantine` table: rejected rows are appended, never dropped silently.

A row already in quarantine from an earlier batch (the same file, reason code and raw row: the
same file ingested again) is not appended twice, so re-running an ingest adds no rows; the
batch counts it as `already_quarantined`.
"""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from conf import LakecastConfig
from pipelines.tables.commits import Commit, commit_of_run
from pipelines.tables.specs import QUARANTINE

log = logging.getLogger(__name__)


# What makes two quarantine rows the same rejection.
SAME_REJECTION = ("source_file", "reason_code", "raw")


def not_yet_quarantined(rows: DataFrame, quarantine: DataFrame) -> DataFrame:
    """`rows` less those `quarantine` already holds (the same file, reason code and raw row).

    Only the quarantine rows of the batch's own files are read into the join (the file names are
    few: broadcast). Two ingests of one file at the same moment may both append."""
    from pyspark.sql import functions as F

    files = F.broadcast(rows.select("source_file").distinct())
    held = quarantine.select(*SAME_REJECTION).join(files, "source_file", "left_semi").distinct()
    cond = [rows[c].eqNullSafe(held[c]) for c in SAME_REJECTION]
    return rows.join(held, cond, "left_anti")


def append_quarantine(spark: SparkSession, cfg: LakecastConfig, rows: DataFrame, *, n_rows: int,
                      run_id: str) -> Commit | None:
    """Append quarantined rows (already in the table's column order) in one commit tagged `run_id`.

    Returns that commit (found by run id; its `numOutputRows` is Delta's count of the rows
    written); with no rows nothing is written and None is returned.
    """
    table = cfg.table(QUARANTINE.name)
    if n_rows <= 0:
        log.info("no rows to quarantine; %s left unchanged", table)
        return None
    (rows.select(*QUARANTINE.column_names).write.format("delta").mode("append")
     .option("userMetadata", run_id).saveAsTable(table))
    commit = commit_of_run(spark, table, run_id)
    log.info("appended %d rows to %s (version %d)", commit.metric("numOutputRows"), table, commit.version)
    return commit
