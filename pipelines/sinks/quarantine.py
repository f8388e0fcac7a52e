"""Writer of the governed `quarantine` table: rejected rows are appended, never dropped silently."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from conf import LakecastConfig
from pipelines.tables.commits import Commit, commit_of_run
from pipelines.tables.specs import QUARANTINE

log = logging.getLogger(__name__)


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
