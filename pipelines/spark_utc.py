"""Timestamps across the Python <-> Spark boundary, independent of the host's time zone.

pyspark converts a naive `datetime` with the PROCESS's local zone (not the session's), both
in `F.lit(...)`/`createDataFrame` and in the values `collect()` returns. So lakecast never
hands Spark a naive datetime nor reads a TIMESTAMP back as one: literals go in as epoch
microseconds, values come out through `unix_micros` (conf/utc.py converts both ways).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conf.utc import from_utc_micros, to_utc_micros

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame
    from pyspark.sql.types import StructType


def utc_lit(t: datetime | str) -> Column:
    """A TIMESTAMP literal for the instant `t` (naive or ISO without offset = UTC)."""
    from pyspark.sql import functions as F

    return F.timestamp_micros(F.lit(to_utc_micros(t)))


def utc_sql_literal(t: datetime | str) -> str:
    """A SQL TIMESTAMP literal for the instant `t`, with its zone spelled out (`Z`), so it means
    the same instant under any session zone and Delta can prune partitions with it."""
    return f"TIMESTAMP'{from_utc_micros(to_utc_micros(t)):%Y-%m-%d %H:%M:%S.%f}Z'"


def max_utc(df: DataFrame, col: str) -> datetime | None:
    """The newest value of TIMESTAMP column `col` as a naive UTC datetime (None when empty)."""
    from pyspark.sql import functions as F

    row = df.agg(F.max(F.unix_micros(F.col(col))).alias("us")).head()
    return None if row is None or row["us"] is None else from_utc_micros(row["us"])


def distinct_utc(df: DataFrame, col: str) -> list[datetime]:
    """The distinct values of TIMESTAMP column `col`, sorted, as naive UTC datetimes."""
    from pyspark.sql import functions as F

    rows = df.select(F.unix_micros(F.col(col)).alias("us")).where("us IS NOT NULL").distinct().collect()
    return sorted(from_utc_micros(r["us"]) for r in rows)


def collected_as_utc(schema: StructType, rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows from `collect()` with their top-level TIMESTAMP values turned back into naive UTC.

    pyspark built those with `datetime.fromtimestamp` (host zone, `fold` set), so converting
    them back through the host zone is exact, whatever that zone is.
    """
    from pyspark.sql.types import TimestampType

    ts_cols = {i for i, f in enumerate(schema.fields) if isinstance(f.dataType, TimestampType)}
    if not ts_cols:
        return [tuple(r) for r in rows]
    return [tuple(v.astimezone(UTC).replace(tzinfo=None) if i in ts_cols and isinstance(v, datetime) else v
                  for i, v in enumerate(r)) for r in rows]
