"""Ingest, step 1: read any source (file, folder, glob, Delta path or table) as raw string columns.

This is the only I/O of ingest. It fails with `SourceError`, naming the source or file,
before anything is written when a source cannot be used at all (missing, empty, not
CSV/Parquet, lacking a required column); the cheap checks on local files turn Spark's long
errors into one line. Every column is read as text so that validation sees what the source held.

Local CSV files (plain or gzip) are read by each file's own header: files whose first lines differ
are read apart and their columns matched by name (Spark would otherwise apply the first file's
header to every file by position). A remote source, and local files compressed otherwise, are
read as Spark reads them: their files must share one header. A line with more or fewer fields
than its header (an unquoted delimiter in a value, such as a decimal comma) keeps its text in
`malformed`, and validation quarantines it: Spark's permissive parser would keep the first fields
and drop the rest without a word.
"""

from __future__ import annotations

import glob
import gzip
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from pyspark.sql import Column, DataFrame, SparkSession
from pyspark.sql import functions as F
from pyspark.sql import types as T

from conf import LakecastConfig
from conf.errors import SourceError

log = logging.getLogger(__name__)

FORMATS = ("csv", "parquet", "delta")
_CSV_EXT = (".csv", ".tsv", ".txt")
_PARQUET_EXT = (".parquet", ".pq")
_COMPRESSED_EXT = (".gz", ".bz2", ".zst", ".lz4", ".snappy", ".deflate")

# Columns of the raw frame that `read_source` returns and `validate` takes (all strings).
# `malformed`: a CSV line whose field count differs from its header's (else NULL).
RAW_COLUMNS = ("series_raw", "ts_raw", "value_raw", "raw", "source_file", "malformed")
_MALFORMED = "_lakecast_malformed"  # Spark's corrupt-record column while reading CSV


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
    existing = [c for c in df.columns if c != _MALFORMED]
    required = [columns.series, columns.time, columns.value]
    missing = [c for c in dict.fromkeys(required) if c not in existing]
    if missing:
        raise SourceError(
            f"source {source}: required column(s) {', '.join(missing)} not found; it has columns "
            f"{', '.join(existing) or '(none)'}. Pass --series-col/--time-col/--value-col or set "
            "data.series_col/data.time_col/data.value_col"
        )
    types = {f.name: f.dataType for f in df.schema.fields}
    malformed = F.col(_MALFORMED) if _MALFORMED in df.columns else F.lit(None).cast("string")
    text = df.select(*[_as_string(c, types[c]).alias(c) for c in existing], source_file.alias("_source_file"),
                     malformed.alias("_malformed"))
    as_json = F.to_json(F.struct(*[F.col(f"`{c}`") for c in existing]), {"ignoreNullFields": "false"})
    return text.select(
        F.col(f"`{columns.series}`").alias("series_raw"),
        F.col(f"`{columns.time}`").alias("ts_raw"),
        F.col(f"`{columns.value}`").alias("value_raw"),
        F.coalesce(F.col("_malformed"), as_json).alias("raw"),  # a malformed row: its line as it was
        F.col("_source_file").alias("source_file"),
        F.col("_malformed").alias("malformed"),
    )


def read_source(spark: SparkSession, source: str, columns: ColumnNames, cfg: LakecastConfig,
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
    # absolute: the JVM resolves relative paths against its own working directory (the home)
    paths = [source] if _is_remote(source) else [str(f.resolve()) for f in files]
    log.info("reading %s source %s (%s)", fmt, source,
             "remote" if _is_remote(source) else f"{len(paths)} file(s)")
    if fmt != "csv":
        return _to_raw(spark.read.format(fmt).load(paths), source, columns, F.col("_metadata.file_path"))
    groups = [paths] if _is_remote(source) else _by_header(files, cfg.ingest.csv_header)
    if not groups:
        raise SourceError(f"source {source}: every file is blank; it is an empty source")
    if len(groups) > 1:
        log.info("source %s: %d different CSV headers; each group of files is read by its own", source,
                 len(groups))
    parts = [_to_raw(_read_csv(spark, group, cfg),
                     source if len(groups) == 1 else f"{source} (file {group[0]}, a header of its own)",
                     columns, F.col("_metadata.file_path"))
             for group in groups]
    out = parts[0]
    for part in parts[1:]:
        out = out.unionByName(part)
    return out


def _first_line(f: Path) -> bytes | None:
    """A local CSV file's first non-blank line (Spark skips blank lines; gzip read through): b"" where
    it holds none (no header, no rows), None where it cannot be read cheaply."""
    if _suffix(f) == f.suffix.lower():
        head = _head(f, 65536)
    elif f.name.lower().endswith(".gz"):
        try:
            with gzip.open(f, "rb") as fh:
                head = fh.read(65536)
        except (OSError, EOFError):  # not gzip after all, or cut short: Spark's reader names the file
            return None
    else:
        return None
    return next((ln for ln in head.removeprefix(b"\xef\xbb\xbf").splitlines() if ln.strip()), b"")


def _by_header(files: Iterable[Path], header: bool) -> list[list[str]]:
    """Absolute paths grouped by their first line: one group without headers. Files compressed
    other than with gzip form a group of their own, read as Spark reads them (the first file's
    header for all)."""
    groups: dict[bytes | None, list[str]] = {}
    for f in files:
        line = _first_line(f) if f.stat().st_size else b""
        if line != b"":  # a file without a non-blank line holds no rows (and no header to read others by)
            groups.setdefault(line if header else b"", []).append(str(f.resolve()))
    return list(groups.values())


def _read_csv(spark: SparkSession, paths: list[str], cfg: LakecastConfig) -> DataFrame:
    """CSV files sharing one header, every column as text, with the corrupt-record column."""
    options = {"header": str(cfg.ingest.csv_header).lower(), "sep": cfg.ingest.csv_delimiter,
               "inferSchema": "false", "mode": "PERMISSIVE"}
    names = spark.read.options(**options).csv(paths[:1]).columns
    schema = T.StructType([T.StructField(n, T.StringType()) for n in names]
                          + [T.StructField(_MALFORMED, T.StringType())])
    return (spark.read.options(**options, columnNameOfCorruptRecord=_MALFORMED).schema(schema).csv(paths))


def _read_delta(spark: SparkSession, source: str, columns: ColumnNames) -> DataFrame:
    is_path = _is_remote(source) or "/" in source or Path(source).exists()
    if is_path:
        if not _is_remote(source) and not (Path(source) / "_delta_log").is_dir():
            raise SourceError(f"source {source}: not a Delta table folder (no _delta_log inside)")
        df = spark.read.format("delta").load(source if _is_remote(source) else str(Path(source).resolve()))
    else:
        if not spark.catalog.tableExists(source):
            raise SourceError(f"source {source}: no such table in the catalog; give a Delta path or "
                              "a table name such as db.table")
        df = spark.table(source)
    log.info("reading Delta source %s", source)
    return _to_raw(df, source, columns, F.lit(source))
