"""Timestamps <-> epoch microseconds, always in UTC (every layer shares these two).

lakecast keeps time as naive UTC datetimes or as microseconds since the epoch (what Arrow
and numpy carry). Naive input is read as UTC, aware input is converted, so no local time
zone ever leaks in. pyspark itself reads a naive datetime in the HOST's zone (and returns
TIMESTAMP values from `collect()` as naive host-local times), so a datetime handed to
pyspark is made aware first (`utc_aware`) and timestamps are read back as micros.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def to_utc_micros(t: datetime | str) -> int:
    """Microseconds since the epoch; naive datetimes and strings are read as UTC."""
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t)
        except ValueError as e:
            raise ValueError(f"{t!r} is not an ISO timestamp (e.g. 2024-01-31T23:00:00)") from e
    if not isinstance(t, datetime):
        raise TypeError(f"expected a datetime or ISO string, got {type(t).__name__}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    return (t - _EPOCH) // timedelta(microseconds=1)


def from_utc_micros(us: int) -> datetime:
    """A naive UTC datetime (e.g. from `unix_micros(ts)` read back from Spark)."""
    return datetime(1970, 1, 1) + timedelta(microseconds=int(us))


def utc_aware(t: datetime | str) -> datetime:
    """The same instant as an aware UTC datetime: what pyspark converts without the host's zone."""
    return _EPOCH + timedelta(microseconds=to_utc_micros(t))


def naive_utc(t: datetime | str) -> datetime:
    """The same instant as a naive UTC datetime (lakecast's in-Python convention)."""
    return from_utc_micros(to_utc_micros(t))
