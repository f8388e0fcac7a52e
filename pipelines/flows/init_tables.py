"""`lakecast init`: create the governed tables and views; refuse to touch drifted ones. Idempotent."""

from __future__ import annotations

from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.errors import SchemaDriftError
from pipelines.tables.ensure import TableStatus, ensure_tables

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run(spark: SparkSession, cfg: LakecastConfig) -> list[TableStatus]:
    """Create what is missing; raise SchemaDriftError listing every drifted table."""
    statuses = ensure_tables(spark, cfg)
    drifted = [s for s in statuses if s.status == "drifted"]
    if drifted:
        lines = [f"{s.table}: {p}" for s in drifted for p in s.problems]
        raise SchemaDriftError(
            "schema drift (tables were left unchanged; run `lakecast migrate` to bring them to the "
            "current schema, `lakecast migrate --dry-run` to see the plan):\n  "
            + "\n  ".join(lines)
        )
    return statuses
