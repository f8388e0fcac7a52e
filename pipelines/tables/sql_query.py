"""One SQL statement against the catalog, its rows capped: `lakecast sql` and the demo's queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run_statement(spark: SparkSession, statement: str, limit: int,
                  ) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """Run one statement; return columns, up to `limit` rows and whether more were cut."""
    df = spark.sql(statement)
    cols = list(df.columns)
    if not cols:
        return [], [], False
    rows = [tuple(r) for r in df.limit(limit + 1).collect()]
    return cols, rows[:limit], len(rows) > limit


def use_database(spark: SparkSession, database: str) -> None:
    """Make `database` the current one when it exists (so bare table names resolve in it)."""
    if spark.catalog.databaseExists(database):
        spark.catalog.setCurrentDatabase(database)
