"""`lakecast report OUT.html`: the live-accuracy page, written where asked (read-only on the tables)."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from conf import LakecastConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def run(spark: SparkSession, cfg: LakecastConfig, out: str | Path, *, worst: int = 6) -> Path:
    """Read the accuracy figures, render the page, write it atomically (a reader never sees half)."""
    from conf.errors import LakecastError
    from pipelines.report.data import read_report_data
    from pipelines.report.page import render

    for name in ("forecast_accuracy", "observations"):
        if not spark.catalog.tableExists(cfg.table(name)):
            raise LakecastError(f"table {cfg.table(name)} does not exist: run `lakecast init` (or `lakecast migrate` "
                                "for an older home), then `lakecast evaluate`, before `lakecast report`")
    path = Path(out).resolve()
    path.parent.mkdir(parents=True, exist_ok=True)
    html = render(read_report_data(spark, cfg, worst=worst), datetime.now(UTC))
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(path)
    log.info("wrote the accuracy report to %s (%d bytes)", path, len(html))
    return path
