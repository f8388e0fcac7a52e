"""Rebuild a Delta table with a new partitioning (or new NOT NULL columns), every row kept.

Delta cannot change a table's partitioning in place, Delta's writers (DataFrame overwrite,
REPLACE … AS SELECT) make every column nullable, and Spark refuses `SET NOT NULL` on an
existing column. So the table is rebuilt in two commits: REPLACE TABLE with its full
definition (columns with NOT NULL and comments, partitioning, comment, properties and CHECK
constraints), then INSERT of every row of the version before, read by time travel. The row
counts must agree; if not, the table is restored to the version it had. A reader between the
two commits sees an empty table: run migrate while no job writes or reads.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conf.errors import MigrationError
from pipelines.tables.specs import PROTOCOL_VERSION_KEYS, sql_quote

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Rewrite:
    table: str
    rows: int
    version_before: int
    version_after: int


def _version(spark: SparkSession, table: str) -> int:
    from delta.tables import DeltaTable

    row = DeltaTable.forName(spark, table).history(1).select("version").head()
    return int(row["version"]) if row is not None else -1


def _count(spark: SparkSession, table: str, version: int) -> int:
    row = spark.sql(f"SELECT count(*) AS n FROM {table} VERSION AS OF {version}").head()
    return int(row["n"]) if row is not None else 0


def replace_sql(spark: SparkSession, table: str, partition_by: tuple[str, ...], not_null: Collection[str]) -> str:
    """REPLACE TABLE with the table's own definition, `partition_by` and NOT NULL on `not_null` too."""
    detail = spark.sql(f"DESCRIBE DETAIL {table}").head()
    assert detail is not None
    cols = []
    for f in spark.table(table).schema.fields:
        null = "" if f.nullable and f.name not in not_null else " NOT NULL"
        comment = f" COMMENT '{sql_quote(f.metadata['comment'])}'" if "comment" in f.metadata else ""
        cols.append(f"`{f.name}` {f.dataType.simpleString()}{null}{comment}")
    props = {r["key"]: r["value"] for r in spark.sql(f"SHOW TBLPROPERTIES {table}").collect()
             if r["key"] not in PROTOCOL_VERSION_KEYS}
    part = f" PARTITIONED BY ({', '.join(f'`{c}`' for c in partition_by)})" if partition_by else ""
    comment = f" COMMENT '{sql_quote(detail['description'])}'" if detail["description"] else ""
    tblprops = ", ".join(f"'{k}' = '{sql_quote(v)}'" for k, v in props.items())
    return (f"REPLACE TABLE {table} ({', '.join(cols)}) USING DELTA{part}{comment}"
            + (f" TBLPROPERTIES ({tblprops})" if tblprops else ""))


def rewrite_table(spark: SparkSession, table: str, partition_by: tuple[str, ...], *,
                  not_null: Collection[str] = ()) -> Rewrite:
    """Rebuild `table` partitioned by `partition_by` with its rows at the current version."""
    before = _version(spark, table)
    rows = _count(spark, table, before)
    spark.sql(replace_sql(spark, table, partition_by, not_null))
    try:
        spark.sql(f"INSERT INTO {table} SELECT * FROM {table} VERSION AS OF {before}")
    except Exception:
        spark.sql(f"RESTORE TABLE {table} TO VERSION AS OF {before}")
        raise
    after = _version(spark, table)
    rows_after = _count(spark, table, after)
    if rows_after != rows:
        spark.sql(f"RESTORE TABLE {table} TO VERSION AS OF {before}")
        raise MigrationError(
            f"rebuilding {table} partitioned by ({', '.join(partition_by)}) gave {rows_after} rows at version "
            f"{after} for {rows} at version {before}; the table was restored to version {before}: "
            "run `lakecast migrate` again with no other job writing to it")
    log.info("rebuilt %s partitioned by (%s): %d rows, version %d -> %d", table, ", ".join(partition_by),
             rows, before, after)
    return Rewrite(table, rows, before, after)
