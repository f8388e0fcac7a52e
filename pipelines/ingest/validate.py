"""Ingest: read raw time-series sources as strings, then validate them into observations + quarantine.

Reading (`read_source`) is the only I/O here; it fails with `SourceError` before anything is
written when a source cannot be used at all. Validation (`validate`) is a pure
DataFrame -> DataFrame step: every input row ends up exactly once as a valid observation,
an exact in-batch duplicate, or a quarantine row with a reason, so that

    read = valid + duplicates + quarantined

holds by construction (and `IngestCounts.check` asserts it). Nothing is collected to the
driver except counts and a few sample values per file for error messages.
"""

from __future__ import annotations

import glob
import logging
import os
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pyspark.sql import Column, DataFrame, Window
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf import LakecastConfig
from conf.errors import LakecastError, SourceError
from conf.freq import Freq, parse_freq

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "delta")
_CSV_EXT = (".csv", ".tsv", ".txt")
_PARQUET_EXT = (".parquet", ".pq")
_COMPRESSED_EXT = (".gz", ".bz2", ".zst", ".lz4", ".snappy", ".deflate")

# Quarantine reason codes, in the order they are checked (a row gets the first that applies).
REASONS: dict[str, str] = {
    "missing_series_id": "the series id is null or blank",
    "missing_timestamp": "the timestamp is null or blank",
    "bad_timestamp": "the timestamp cannot be parsed (ISO 8601 expected, or ingest.timestamp_format)",
    "missing_value": "the value is null or blank",
    "bad_value": "the value is not a number",
    "non_finite_value": "the value is NaN or infinite",
    "off_grid": "the timestamp is not on the data.freq grid (UTC)",
    "future_timestamp": "the timestamp is later than the ingest time (--as-of, default now) + data.max_future",
    "conflicting_duplicate": "the batch holds different values for the same (series_id, ts)",
}
# A file whose every row fails for one of these is unusable as a whole (wrong column, format
# or --freq): that is a fatal SourceError rather than a quarantine of the whole file.
_FATAL_IF_ALL = ("missing_series_id", "missing_timestamp", "bad_timestamp", "missing_value",
                 "bad_value", "off_grid")
_FATAL_HINT = {
    "missing_series_id": "check --series-col (data.series_col)",
    "missing_timestamp": "check --time-col (data.time_col)",
    "bad_timestamp": "check --time-col, or set ingest.timestamp_format for non-ISO timestamps",
    "missing_value": "check --value-col (data.value_col)",
    "bad_value": "check --value-col (data.value_col)",
    "off_grid": "check --freq (data.freq) and data.timezone",
}

STATUS_VALID, STATUS_DUPLICATE, STATUS_QUARANTINED = "valid", "duplicate", "quarantined"

# Columns of the raw frame that `read_source` returns and `validate` takes (all strings).
RAW_COLUMNS = ("series_raw", "ts_raw", "value_raw", "raw", "source_file")

# An explicit zone after a time of day: Z, +01:00, +0100, UTC, GMT+1 or a region id.
_ZONE_RE = (r"\d{1,2}:\d{2}(:\d{2}([.,]\d+)?)?\s*"
            r"(Z|[+-]\d{2}(:?\d{2})?|(UTC|GMT|UT)([+-]\d{1,2}(:?\d{2})?)?|[A-Za-z_]+/[A-Za-z_/+-]+)$")
_SUNDAY_EPOCH_US = 3 * 86_400 * 1_000_000  # 1970-01-04, the first Sunday: pandas' W is W-SUN


class AccountingError(LakecastError):
    """Row counts do not add up: a bug, reported rather than hidden."""


@dataclass(frozen=True)
class ColumnNames:
    """Which source columns hold the series id, the timestamp and the value."""

    series: str
    time: str
    value: str

    @classmethod
    def from_config(cls, cfg: LakecastConfig, series: str | None = None, time: str | None = None,
                    value: str | None = None) -> ColumnNames:
        return cls(series or cfg.data.series_col, time or cfg.data.time_col, value or cfg.data.value_col)


@dataclass(frozen=True)
class IngestRules:
    """What a valid observation is: its grid, how naive timestamps are read, how far ahead it may be."""

    freq: Freq
    timezone: str = "UTC"
    max_future: timedelta = timedelta(days=1)
    timestamp_format: str | None = None
    columns: ColumnNames = field(default_factory=lambda: ColumnNames("series_id", "ts", "value"))

    @classmethod
    def from_config(cls, cfg: LakecastConfig, freq: str | None = None,
                    columns: ColumnNames | None = None) -> IngestRules:
        return cls(
            freq=parse_freq(freq or cfg.data.freq),
            timezone=cfg.data.timezone,
            max_future=parse_freq(cfg.data.max_future).step,
            timestamp_format=cfg.ingest.timestamp_format,
            columns=columns or ColumnNames.from_config(cfg),
        )


# ---------------------------------------------------------------------------------------------
# Reading: any source -> raw string columns
# ---------------------------------------------------------------------------------------------


def _is_remote(source: str) -> bool:
    return "://" in source


def _visible(p: Path) -> bool:
    """Spark skips files starting with _ or . (e.g. _SUCCESS, .crc); so does lakecast."""
    return not p.name.startswith(("_", "."))


def _local_files(source: str) -> list[Path]:
    """Files a local file/folder/glob source names; SourceError when it names none."""
    matches = [Path(m) for m in sorted(glob.glob(source))] if glob.has_magic(source) else [Path(source)]
    if not matches or not all(m.exists() for m in matches):
        raise SourceError(f"source {source}: no such file or folder (nothing matches); check the path")
    files: list[Path] = []
    for m in matches:
        if m.is_dir():
            files.extend(p for p in sorted(m.rglob("*")) if p.is_file() and _visible(p)
                         and all(_visible(a) for a in p.relative_to(m).parents if str(a) != "."))
        elif _visible(m):
            files.append(m)
    if not files:
        raise SourceError(f"source {source}: the folder holds no data files; it is an empty source")
    return files


def _suffix(p: Path) -> str:
    name = p.name.lower()
    for c in _COMPRESSED_EXT:
        if name.endswith(c):
            name = name[: -len(c)]
    return Path(name).suffix


def _infer_format(source: str, files: list[Path]) -> str:
    kinds = {("csv" if _suffix(f) in _CSV_EXT else "parquet" if _suffix(f) in _PARQUET_EXT else "?")
             for f in files}
    if kinds == {"csv"} or kinds == {"parquet"}:
        return kinds.pop()
    other = sorted({f.name for f in files if _suffix(f) not in _CSV_EXT + _PARQUET_EXT})[:5]
    if other:
        raise SourceError(
            f"source {source}: {', '.join(other)} is not CSV or Parquet (by its extension); "
            "pass --format csv|parquet if it is, or convert it"
        )
    raise SourceError(f"source {source}: mixes CSV and Parquet files; ingest them separately")


def _head(path: Path, n: int) -> bytes:
    with open(path, "rb") as fh:
        return fh.read(n)


def _check_files(source: str, files: list[Path], fmt: str) -> None:
    """Cheap checks on local files that turn Spark's long errors into a line naming the file."""
    if all(f.stat().st_size == 0 for f in files):
        raise SourceError(f"source {source}: every file is empty (0 bytes); it is an empty source")
    for f in files:
        size = f.stat().st_size
        if size == 0:
            continue
        head = _head(f, 4096)
        if fmt == "parquet":
            with open(f, "rb") as fh:
                fh.seek(max(0, size - 4))
                tail = fh.read(4)
            if not (head.startswith(b"PAR1") and tail == b"PAR1"):
                raise SourceError(f"file {f} is not a Parquet file; pass --format csv if it is CSV")
        elif _suffix(f) == f.suffix.lower():  # uncompressed CSV: look at the bytes
            if head.startswith(b"PAR1"):
                raise SourceError(f"file {f} is a Parquet file, not CSV; pass --format parquet")
            if b"\x00" in head:
                raise SourceError(f"file {f} is binary, not CSV text; pass the right --format or convert it")


def _as_string(c: str, dtype: T.DataType) -> Column:
    """A source column as text, keeping the instant of typed timestamps (offset rendered)."""
    col = F.col(f"`{c}`")
    if isinstance(dtype, T.TimestampType):
        return F.date_format(col, "yyyy-MM-dd'T'HH:mm:ss.SSSSSSXXX")
    if isinstance(dtype, T.TimestampNTZType):
        return F.date_format(col, "yyyy-MM-dd'T'HH:mm:ss.SSSSSS")
    if isinstance(dtype, T.StringType):
        return col
    if isinstance(dtype, T.StructType | T.ArrayType | T.MapType):
        return F.to_json(col)
    return col.cast("string")


def _to_raw(df: DataFrame, source: str, columns: ColumnNames, source_file: Column) -> DataFrame:
    existing = list(df.columns)
    required = [columns.series, columns.time, columns.value]
    missing = [c for c in dict.fromkeys(required) if c not in existing]
    if missing:
        raise SourceError(
            f"source {source}: required column(s) {', '.join(missing)} not found; it has columns "
            f"{', '.join(existing) or '(none)'}. Pass --series-col/--time-col/--value-col or set "
            "data.series_col/data.time_col/data.value_col"
        )
    types = {f.name: f.dataType for f in df.schema.fields}
    text = df.select(*[_as_string(c, types[c]).alias(c) for c in existing], source_file.alias("_source_file"))
    return text.select(
        F.col(f"`{columns.series}`").alias("series_raw"),
        F.col(f"`{columns.time}`").alias("ts_raw"),
        F.col(f"`{columns.value}`").alias("value_raw"),
        F.to_json(F.struct(*[F.col(f"`{c}`") for c in existing]), {"ignoreNullFields": "false"}).alias("raw"),
        F.col("_source_file").alias("source_file"),
    )


def read_source(spark: Any, source: str, columns: ColumnNames, cfg: LakecastConfig,
                fmt: str | None = None) -> DataFrame:
    """Read a file, folder, glob (CSV/Parquet) or Delta path/table as the raw string frame.

    Returns columns RAW_COLUMNS. Raises SourceError naming the source before any write when
    it does not exist, is not CSV/Parquet, is empty (no bytes) or lacks a required column.
    """
    if fmt is not None and fmt not in FORMATS:
        raise SourceError(f"source {source}: unknown --format {fmt!r}; use one of {', '.join(FORMATS)}")
    if fmt == "delta" or (fmt is None and not _is_remote(source) and (Path(source) / "_delta_log").is_dir()):
        return _read_delta(spark, source, columns)
    if _is_remote(source):
        if fmt is None:
            raise SourceError(f"source {source}: pass --format csv|parquet for a remote source")
    else:
        files = _local_files(source)
        fmt = fmt or _infer_format(source, files)
        _check_files(source, files, fmt)
    reader = spark.read
    if fmt == "csv":
        reader = reader.options(header=str(cfg.ingest.csv_header).lower(), sep=cfg.ingest.csv_delimiter,
                                inferSchema="false", mode="PERMISSIVE")
    paths = [source] if _is_remote(source) else [str(f) for f in files]
    df = reader.format(fmt).load(paths)
    log.info("reading %s source %s (%s)", fmt, source,
             "remote" if _is_remote(source) else f"{len(paths)} file(s)")
    return _to_raw(df, source, columns, F.col("_metadata.file_path"))


def _read_delta(spark: Any, source: str, columns: ColumnNames) -> DataFrame:
    is_path = _is_remote(source) or "/" in source or Path(source).exists()
    if is_path:
        if not _is_remote(source) and not (Path(source) / "_delta_log").is_dir():
            raise SourceError(f"source {source}: not a Delta table folder (no _delta_log inside)")
        df = spark.read.format("delta").load(source)
    else:
        if not spark.catalog.tableExists(source):
            raise SourceError(f"source {source}: no such table in the catalog; give a Delta path or "
                              "a table name such as db.table")
        df = spark.table(source)
    log.info("reading Delta source %s", source)
    return _to_raw(df, source, columns, F.lit(source))


# ---------------------------------------------------------------------------------------------
# Validation: raw frame -> classified frame (pure)
# ---------------------------------------------------------------------------------------------


def parse_timestamp(raw: Column, rules: IngestRules) -> Column:
    """Raw text -> UTC TIMESTAMP (NULL if unparsable). Naive text is wall-clock in rules.timezone.

    Relies on the lakecast session time zone being UTC (pipelines/session.py sets it), which
    `validate` checks.
    """
    text = F.trim(raw)
    if rules.timestamp_format:
        parsed = F.try_to_timestamp(text, F.lit(rules.timestamp_format))
    else:
        parsed = text.try_cast("timestamp")
    if rules.timezone == "UTC":
        return parsed
    naive = ~text.rlike(_ZONE_RE)
    return F.when(naive, F.to_utc_timestamp(parsed, rules.timezone)).otherwise(parsed)


def on_grid(ts: Column, freq: Freq) -> Column:
    """True where a UTC timestamp lies on the frequency grid.

    Fixed steps are counted from the Unix epoch (weeks from Sunday 1970-01-04, as pandas' W);
    calendar steps (MS, QS) are midnight UTC on the first day of a month whose index is a
    multiple of the step (QS: Jan, Apr, Jul, Oct).
    """
    if freq.is_calendar:
        month_index = F.year(ts) * 12 + F.month(ts) - 1
        return (F.date_trunc("month", ts) == ts) & (month_index % F.lit(freq.months) == 0)
    step_us = int(freq.step.total_seconds() * 1_000_000)
    anchor = _SUNDAY_EPOCH_US if freq.unit == "W" else 0
    return ((F.unix_micros(ts) - F.lit(anchor)) % F.lit(step_us)) == 0


def _blank(c: Column) -> Column:
    return c.isNull() | (F.trim(c) == "")


def _reason_text(code: str, rules: IngestRules, ts: Column, cutoff: datetime) -> Column:
    cols = rules.columns
    iso = F.date_format(ts, "yyyy-MM-dd'T'HH:mm:ss'Z'")
    texts: dict[str, Column] = {
        "missing_series_id": F.lit(f"series id column '{cols.series}' is null or blank"),
        "missing_timestamp": F.lit(f"timestamp column '{cols.time}' is null or blank"),
        "bad_timestamp": F.format_string(
            "timestamp '%s' in column '" + cols.time + "' cannot be parsed; use ISO 8601 "
            "(e.g. 2024-01-31T13:00:00Z) or set ingest.timestamp_format", F.col("ts_raw")),
        "missing_value": F.lit(f"value column '{cols.value}' is null or blank"),
        "bad_value": F.format_string(
            "value '%s' in column '" + cols.value + "' is not a number", F.col("value_raw")),
        "non_finite_value": F.format_string("value '%s' is not finite (NaN or infinite)", F.col("value_raw")),
        "off_grid": F.format_string(
            "timestamp %s (UTC) is not on the '" + rules.freq.alias + "' grid; check data.freq "
            "and data.timezone", iso),
        "future_timestamp": F.format_string(
            "timestamp %s (UTC) is after the ingest time (--as-of, default now) + data.max_future ("
            + cutoff.strftime("%Y-%m-%dT%H:%M:%SZ") + ")", iso),
        "conflicting_duplicate": F.format_string(
            "series '%s' has %d different rows at %s (UTC) in this batch with values from %s to %s; "
            "fix the source and re-ingest", F.col("series_id"), F.col("_n"), iso,
            F.col("_vmin").cast("string"), F.col("_vmax").cast("string")),
    }
    return texts[code]


def validate(raw: DataFrame, rules: IngestRules, now: datetime | None = None) -> DataFrame:
    """Classify every raw row: the classified frame (one row in, one row out).

    Columns: series_id, ts (UTC), value, source_file, ts_raw, value_raw, series_raw, raw,
    status (valid | duplicate | quarantined), reason_code, reason. Exact duplicates of a
    (series_id, ts, value) within the batch keep one `valid` row; the rest are `duplicate`.
    Different values for one (series_id, ts) are all quarantined as conflicting_duplicate.
    """
    tz = raw.sparkSession.conf.get("spark.sql.session.timeZone")
    if tz != "UTC":
        raise LakecastError(
            f"spark.sql.session.timeZone is {tz!r}; lakecast stores UTC and needs it to be UTC "
            "(remove the spark.conf override)"
        )
    now = now or datetime.now(UTC)
    cutoff = (now if now.tzinfo else now.replace(tzinfo=UTC)) + rules.max_future
    series = F.trim(F.col("series_raw"))
    ts = parse_timestamp(F.col("ts_raw"), rules)
    value = F.trim(F.col("value_raw")).try_cast("double")
    df = raw.select(
        *RAW_COLUMNS,
        F.when(~_blank(F.col("series_raw")), series).alias("series_id"),
        ts.alias("ts"),
        value.alias("value"),
    )
    checks: list[tuple[str, Column]] = [
        ("missing_series_id", F.col("series_id").isNull()),
        ("missing_timestamp", _blank(F.col("ts_raw"))),
        ("bad_timestamp", F.col("ts").isNull()),
        ("missing_value", _blank(F.col("value_raw"))),
        ("bad_value", F.col("value").isNull()),
        ("non_finite_value", F.isnan("value") | (F.abs("value") == float("inf"))),
        ("off_grid", ~on_grid(F.col("ts"), rules.freq)),
        ("future_timestamp", F.col("ts") > F.lit(cutoff)),
    ]
    code: Column = F.lit(None).cast("string")
    for name, cond in reversed(checks):
        code = F.when(cond, F.lit(name)).otherwise(code)
    df = df.withColumn("_row_code", code)

    # In-batch duplicates among rows that passed the row checks: one window per (series_id, ts).
    bad = F.col("_row_code").isNotNull()
    ok_value = F.when(~bad, F.col("value"))
    # One spec (same partitioning and order) for all four, so Spark sorts once.
    ordered = Window.partitionBy("series_id", "ts").orderBy(bad.asc(), F.col("source_file").asc_nulls_last())
    whole = ordered.rowsBetween(Window.unboundedPreceding, Window.unboundedFollowing)
    df = df.select(
        "*",
        F.count(ok_value).over(whole).alias("_n"),
        F.min(ok_value).over(whole).alias("_vmin"),
        F.max(ok_value).over(whole).alias("_vmax"),
        F.row_number().over(ordered).alias("_rn"),
    )
    conflict = ~bad & (F.col("_vmin") != F.col("_vmax"))
    reason_code = F.when(bad, F.col("_row_code")).when(conflict, F.lit("conflicting_duplicate"))
    df = df.withColumn("reason_code", reason_code)
    reason: Column = F.lit(None).cast("string")
    for name in reversed(REASONS):
        reason = F.when(F.col("reason_code") == name, _reason_text(name, rules, F.col("ts"), cutoff)
                        ).otherwise(reason)
    status = (F.when(F.col("reason_code").isNotNull(), F.lit(STATUS_QUARANTINED))
              .when(F.col("_rn") > 1, F.lit(STATUS_DUPLICATE))
              .otherwise(F.lit(STATUS_VALID)))
    return df.select(
        "series_id", "ts", "value", "source_file", "series_raw", "ts_raw", "value_raw", "raw",
        status.alias("status"), "reason_code", reason.alias("reason"),
    )


def valid_observations(classified: DataFrame) -> DataFrame:
    """The rows to MERGE into observations: series_id, ts, value, source_file (keys unique)."""
    valid = classified.filter(F.col("status") == STATUS_VALID)
    return valid.select("series_id", "ts", "value", "source_file")


def quarantine_rows(classified: DataFrame, batch_id: str, quarantined_at: datetime) -> DataFrame:
    """The rows to append to quarantine, in the quarantine table's column order."""
    return classified.filter(F.col("status") == STATUS_QUARANTINED).select(
        F.lit(batch_id).alias("batch_id"),
        "source_file",
        "reason_code",
        "reason",
        F.col("series_raw").alias("series_id"),
        "ts_raw",
        "value_raw",
        "raw",
        F.lit(quarantined_at).cast("timestamp").alias("quarantined_at"),
    )


# ---------------------------------------------------------------------------------------------
# Counting: aggregates only
# ---------------------------------------------------------------------------------------------


@dataclass
class IngestCounts:
    """Row counts of one batch; `check` asserts that every row read is accounted for."""

    read: int = 0
    valid: int = 0
    duplicates: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())

    def check(self, merged: bool = True) -> None:
        """Raise AccountingError unless read = valid + duplicates + quarantined (and after the
        MERGE, valid = inserted + updated + unchanged)."""
        if self.read != self.valid + self.duplicates + self.quarantined:
            raise AccountingError(
                f"rows do not add up: read {self.read} != valid {self.valid} + duplicates "
                f"{self.duplicates} + quarantined {self.quarantined}"
            )
        if merged and self.valid != self.inserted + self.updated + self.unchanged:
            raise AccountingError(
                f"rows do not add up: valid {self.valid} != inserted {self.inserted} + updated "
                f"{self.updated} + unchanged {self.unchanged}"
            )

    def row_counts(self) -> dict[str, int]:
        """The job_runs.row_counts map."""
        counts = {
            "read": self.read, "inserted": self.inserted, "updated": self.updated,
            "unchanged": self.unchanged, "duplicates": self.duplicates, "quarantined": self.quarantined,
        }
        counts.update({f"quarantined.{k}": v for k, v in sorted(self.quarantined_by_reason.items())})
        return counts


@dataclass(frozen=True)
class _FileOutcome:
    status: str
    reason_code: str | None
    rows: int
    sample: str | None


def count_outcomes(classified: DataFrame, source: str, rules: IngestRules) -> IngestCounts:
    """Count the classified rows (one aggregate job); raise SourceError, before any write, for
    an empty source or a file of which every row fails the same way (it is unusable as a whole).
    """
    code = F.col("reason_code")
    sample = (F.when(code.isin("missing_series_id"), F.col("raw"))
              .when(code.isin("missing_timestamp", "bad_timestamp", "off_grid"), F.col("ts_raw"))
              .when(code.isin("missing_value", "bad_value"), F.col("value_raw")))
    rows = (classified.groupBy("source_file", "status", "reason_code")
            .agg(F.count(F.lit(1)).alias("n"), F.first(sample, ignorenulls=True).alias("sample"))
            .collect())
    per_file: dict[str, list[_FileOutcome]] = defaultdict(list)
    counts = IngestCounts()
    for r in rows:
        per_file[r["source_file"]].append(_FileOutcome(r["status"], r["reason_code"], r["n"], r["sample"]))
        counts.read += r["n"]
        if r["status"] == STATUS_VALID:
            counts.valid += r["n"]
        elif r["status"] == STATUS_DUPLICATE:
            counts.duplicates += r["n"]
        else:
            counts.quarantined_by_reason[r["reason_code"]] = (
                counts.quarantined_by_reason.get(r["reason_code"], 0) + r["n"])
    if counts.read == 0:
        raise SourceError(f"source {source} has no data rows; it is an empty source (nothing was written)")
    _check_usable(per_file, rules)
    counts.check(merged=False)
    log.info("validated %d rows: %d valid, %d duplicates, %d quarantined %s", counts.read, counts.valid,
             counts.duplicates, counts.quarantined, dict(sorted(counts.quarantined_by_reason.items())))
    return counts


def _check_usable(per_file: dict[str, list[_FileOutcome]], rules: IngestRules) -> None:
    problems: list[str] = []
    for file, outcomes in sorted(per_file.items()):
        codes = {o.reason_code for o in outcomes}
        if len(codes) != 1 or None in codes:
            continue
        code = next(iter(codes))
        if code not in _FATAL_IF_ALL:
            continue
        n = sum(o.rows for o in outcomes)
        example = next((o.sample for o in outcomes if o.sample is not None), None)
        shown = f" (e.g. {example!r})" if example is not None else ""
        grid = f" '{rules.freq.alias}'" if code == "off_grid" else ""
        problems.append(
            f"file {file}: all {n} rows fail with {code}{grid}{shown}: {REASONS[code]}; {_FATAL_HINT[code]}"
        )
    if problems:
        raise SourceError("unusable source, nothing was written:\n  " + "\n  ".join(problems))


def new_batch_id(prefix: str = "ingest") -> str:
    """A batch id for callers without a job run (the ingest job uses its run id)."""
    return f"{prefix}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{os.urandom(4).hex()}"
