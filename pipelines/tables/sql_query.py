"""One SQL statement against the catalog, its rows capped: `lakecast sql` and the demo's queries."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pipelines.spark_utc import collected_as_utc

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run_statement(spark: SparkSession, statement: str, limit: int,
                  ) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """Run one statement; return columns, up to `limit` rows and whether more were cut.

    `limit` 0 means every row. One row more than `limit` is fetched to know whether rows were cut.
    """
    df = spark.sql(statement)
    cols = list(df.columns)
    if not cols:
        return [], [], False
    # collect() returns TIMESTAMPs in the host's zone; shown as UTC like everything lakecast stores.
    if limit <= 0:
        return cols, collected_as_utc(df.schema, df.collect()), False
    rows = collected_as_utc(df.schema, df.limit(limit + 1).collect())
    return cols, rows[:limit], len(rows) > limit


def use_database(spark: SparkSession, database: str) -> None:
    """Make `database` the current one when it exists (so bare table names resolve in it)."""
    if spark.catalog.databaseExists(database):
        spark.catalog.setCurrentDatabase(database)
