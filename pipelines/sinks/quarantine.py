"""Writer of the governed `quarantine` table: rejected rows are appended, never dropped silently."""

from __future__ import annotations

import logging

from pyspark.sql import DataFrame, SparkSession

from conf import LakecastConfig
from pipelines.tables.ensure import delta_version
from pipelines.tables.specs import QUARANTINE

log = logging.getLogger(__name__)


def append_quarantine(spark: SparkSession, cfg: LakecastConfig, rows: DataFrame, *, n_rows: int) -> int:
    """Append quarantined rows (already in the table's column order); return the table version.

    With no rows nothing is written and the current version is returned.
    """
    table = cfg.table(QUARANTINE.name)
    if n_rows > 0:
        rows.select(*QUARANTINE.column_names).write.format("delta").mode("append").saveAsTable(table)
    version = delta_version(spark, table)
    log.info("appended %d rows to %s (version %d)", n_rows, table, version)
    return version
