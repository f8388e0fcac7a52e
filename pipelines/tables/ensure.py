"""Create the governed tables that are missing and report drift of existing ones.

`ensure_tables` never alters an existing table, so re-running `lakecast init` changes nothing;
`lakecast migrate` (flows/migrate.py) brings a drifted table to its spec.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conf import LakecastConfig
from pipelines.tables.migrate_plan import CreateTable, plan_table
from pipelines.tables.specs import ALL_TABLES
from pipelines.tables.views import ensure_views

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableStatus:
    table: str
    status: str  # created | ok | drifted
    problems: tuple[str, ...] = ()


def table_exists(spark: SparkSession, cfg: LakecastConfig, name: str) -> bool:
    return bool(spark.catalog.tableExists(cfg.table(name)))


def ensure_tables(spark: SparkSession, cfg: LakecastConfig) -> list[TableStatus]:
    """Create the database and any missing table; report drift of existing ones."""
    db = cfg.catalog.database
    spark.sql(
        f"CREATE DATABASE IF NOT EXISTS {db} COMMENT 'lakecast governed forecasting tables'"
    )
    result: list[TableStatus] = []
    for spec in ALL_TABLES:
        plan = plan_table(spark, spec, cfg)
        if len(plan.steps) == 1 and isinstance(plan.steps[0], CreateTable) and not plan.blockers:
            for sql in plan.steps[0].statements():
                spark.sql(sql)
            log.info("created table %s", plan.table)
            result.append(TableStatus(plan.table, "created"))
        else:  # a table of the previous release under its old name is drift too: migrate renames it
            result.append(TableStatus(plan.table, "drifted" if plan.problems else "ok", tuple(plan.problems)))
    if not any(r.status == "drifted" for r in result):  # views over a drifted table wait for `migrate`
        ensure_views(spark, cfg)
    return result


def delta_version(spark: SparkSession, table: str) -> int:
    """Current Delta version of a table (the lineage number stored in forecasts/job_runs)."""
    from delta.tables import DeltaTable

    row = DeltaTable.forName(spark, table).history(1).select("version").head()
    return int(row["version"]) if row is not None else -1
