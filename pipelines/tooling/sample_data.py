"""A deterministic generator of realistic hourly raw data, for the demo, tests and benchmarks.

Each series has a level, daily and weekly seasonality, a trend, noise, sometimes a level
shift and a missing stretch, and a few bad rows of the kinds ingest must quarantine (or
collapse, for exact duplicates). Series `i` depends only on (seed, i), so the output is the
same whatever the chunking and whether Spark or pyarrow writes it. Rows are produced in
chunks of whole series (about `rows_per_file` rows each, one part file per chunk), so no
driver-side list ever holds the whole data set.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from conf.errors import LakecastError

log = logging.getLogger(__name__)

# The sample ends here (exclusive) and starts `days` before: always in the past, so rows are
# never quarantined as future unless they are meant to be.
SAMPLE_END = datetime(2025, 1, 1, tzinfo=UTC)
FUTURE_TS = datetime(2099, 1, 1, tzinfo=UTC)
HOUR_US = 3_600_000_000
FORMATS = ("csv", "parquet")
# Bad-row kinds; text-only ones (an unparsable timestamp or value) exist only in CSV.
BAD_KINDS_TYPED = ("non_finite_value", "missing_value", "off_grid", "missing_series_id", "future_timestamp",
                   "exact_duplicate", "conflicting_duplicate")
BAD_KINDS_CSV = (*BAD_KINDS_TYPED, "bad_timestamp", "bad_value")


class SampleError(LakecastError):
    """The sample cannot be written where asked."""


def series_name(index: int, series: int) -> str:
    return f"s{index:0{max(5, len(str(series - 1)))}d}"


def _one_series(index: int, hours: int, start_us: int, seed: int, bad_frac: float,
                kinds: tuple[str, ...]) -> dict[str, np.ndarray]:
    """Arrays of one series: ts (us), value, and masks/overrides for its bad rows."""
    rng = np.random.default_rng([seed, index])
    h = np.arange(hours, dtype=np.int64)
    hod, dow = h % 24, (h // 24 + _weekday(start_us)) % 7
    level = rng.lognormal(4.0, 1.0)
    daily = rng.uniform(0.1, 0.5) * np.sin(2 * np.pi * hod / 24 - rng.uniform(0, 2 * np.pi))
    weekly = rng.uniform(0.05, 0.3) * np.sin(2 * np.pi * (dow * 24 + hod) / 168 - rng.uniform(0, 2 * np.pi))
    trend = level * rng.normal(0.0, 0.3) * h / max(hours, 1)
    y = level * (1 + daily + weekly) + trend + rng.normal(0.0, level * rng.uniform(0.03, 0.1), hours)
    if rng.random() < 0.3:  # a level shift somewhere in the middle
        y[rng.integers(hours // 4, max(hours // 4 + 1, 3 * hours // 4)):] += level * rng.uniform(-0.4, 0.6)
    keep = np.ones(hours, dtype=bool)
    if rng.random() < 0.3:  # a missing stretch of 6 to 72 hours
        gap = int(rng.integers(6, 73))
        s = int(rng.integers(0, max(1, hours - gap)))
        keep[s:s + gap] = False
    ts = start_us + h[keep] * HOUR_US
    value = np.round(y[keep], 3)
    n = len(ts)
    null_series = np.zeros(n, dtype=bool)
    null_value = np.zeros(n, dtype=bool)
    bad_ts = np.zeros(n, dtype=bool)
    bad_value = np.zeros(n, dtype=bool)
    n_bad = int(rng.binomial(n, bad_frac)) if n else 0
    pos = rng.choice(n, n_bad, replace=False) if n_bad else np.empty(0, dtype=np.int64)
    kind = rng.choice(len(kinds), n_bad)
    extra_ts: list[int] = []
    extra_value: list[float] = []
    for p, k in zip(pos, kind, strict=True):
        match kinds[k]:
            case "non_finite_value":
                value[p] = np.nan if p % 2 else np.inf
            case "missing_value":
                null_value[p] = True
            case "off_grid":
                ts[p] += 17 * 60 * 1_000_000
            case "missing_series_id":
                null_series[p] = True
            case "future_timestamp":
                ts[p] = _us(FUTURE_TS) + int(p) * HOUR_US
            case "bad_timestamp":
                bad_ts[p] = True
            case "bad_value":
                bad_value[p] = True
            case "exact_duplicate" | "conflicting_duplicate" as dup:
                extra_ts.append(int(ts[p]))
                extra_value.append(float(value[p]) + (1.0 if dup == "conflicting_duplicate" else 0.0))
    m = len(extra_ts)
    no = np.zeros(m, dtype=bool)
    return {
        "ts": np.concatenate([ts, np.array(extra_ts, dtype=np.int64)]),
        "value": np.concatenate([value, np.array(extra_value, dtype=np.float64)]),
        "null_series": np.concatenate([null_series, no]),
        "null_value": np.concatenate([null_value, no]),
        "bad_ts": np.concatenate([bad_ts, no]),
        "bad_value": np.concatenate([bad_value, no]),
    }


def _us(t: datetime) -> int:
    return int((t - datetime(1970, 1, 1, tzinfo=UTC)).total_seconds()) * 1_000_000


def _weekday(start_us: int) -> int:
    return int((start_us // (24 * HOUR_US) + 3) % 7)  # 1970-01-01 was a Thursday (Mon=0)


def sample_table(lo: int, hi: int, *, series: int, days: int, seed: int, fmt: str,
                 bad_frac: float = 0.0005) -> pa.Table:
    """Series lo..hi-1 of the sample as one Arrow table (strings for CSV, typed for Parquet)."""
    hours = days * 24
    start_us = _us(SAMPLE_END) - hours * HOUR_US
    kinds = BAD_KINDS_CSV if fmt == "csv" else BAD_KINDS_TYPED
    parts = [_one_series(i, hours, start_us, seed, bad_frac, kinds) for i in range(lo, hi)]
    lengths = np.array([len(p["ts"]) for p in parts], dtype=np.int64)
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]} if parts else None
    if cat is None:
        return _empty(fmt)
    names = pa.array([series_name(i, series) for i in range(lo, hi)], pa.string())
    sid = pc.take(names, pa.array(np.repeat(np.arange(hi - lo), lengths)))
    sid = pc.if_else(pa.array(cat["null_series"]), pa.scalar(None, pa.string()), sid)
    ts = pa.array(cat["ts"], pa.timestamp("us", tz="UTC"))
    value = pa.array(cat["value"], pa.float64(), mask=cat["null_value"])
    if fmt != "csv":
        return pa.table({"series_id": sid, "ts": ts, "value": value})
    ts_text = pc.if_else(pa.array(cat["bad_ts"]), pa.scalar("31/12/2024 25:61"),
                         pc.strftime(ts, format="%Y-%m-%dT%H:%M:00Z"))
    value_text = pc.if_else(pa.array(cat["bad_value"]), pa.scalar("n/a"), pc.cast(value, pa.string()))
    return pa.table({"series_id": sid, "ts": ts_text, "value": value_text})


def _empty(fmt: str) -> pa.Table:
    if fmt == "csv":
        return pa.table({c: pa.array([], pa.string()) for c in ("series_id", "ts", "value")})
    return pa.table({"series_id": pa.array([], pa.string()), "ts": pa.array([], pa.timestamp("us", tz="UTC")),
                     "value": pa.array([], pa.float64())})


def chunks(series: int, days: int, rows_per_file: int) -> list[tuple[int, int]]:
    """Series ranges of about `rows_per_file` rows each (at least one series per chunk)."""
    per = max(1, rows_per_file // max(1, days * 24))
    return [(lo, min(series, lo + per)) for lo in range(0, series, per)]


def _ours(p: Path) -> bool:
    """A file an earlier sample wrote: a part file or Spark's markers and checksums."""
    return p.name.startswith(("part-", "_", ".part-", "._")) and p.is_file()


def _prepare(out: Path) -> None:
    """Refuse to overwrite a folder that holds anything other than an earlier sample (and the
    `arriving` part files `hold_back` moved out of it: the demo re-runs in the same home)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise SampleError(f"{out} exists and is not a folder; choose another OUT_DIR")
    foreign = [p.name for p in out.iterdir() if not (_ours(p) or (p.name == ARRIVING and p.is_dir()
                                                             and all(_ours(q) for q in p.iterdir())))]
    if foreign:
        raise SampleError(f"{out} is not empty (holds {', '.join(sorted(foreign)[:5])}); choose an empty "
                          "or new OUT_DIR, or one written by `lakecast generate`")
    shutil.rmtree(out)


def generate_sample(spark: Any, out_dir: str | Path, series: int = 50, days: int = 60, seed: int = 0,
                    fmt: str = "csv", rows_per_file: int = 1_000_000, bad_frac: float = 0.0005) -> Path:
    """Write the sample (series x days x 24 hourly rows, plus a few bad rows) as part files.

    With a SparkSession the chunks are generated in parallel by Python workers and written by
    Spark; without one (None), pyarrow writes them one by one. Returns the folder.
    """
    if fmt not in FORMATS:
        raise SampleError(f"unknown sample format {fmt!r}; use one of {', '.join(FORMATS)}")
    if series < 1 or days < 1:
        raise SampleError(f"--series and --days must be at least 1 (got {series} and {days})")
    out = Path(out_dir).resolve()
    _prepare(out)
    parts = chunks(series, days, rows_per_file)
    if spark is None:
        out.mkdir(parents=True)
        for k, (lo, hi) in enumerate(parts):
            table = sample_table(lo, hi, series=series, days=days, seed=seed, fmt=fmt, bad_frac=bad_frac)
            path = out / f"part-{k:05d}.{fmt}"
            if fmt == "csv":
                pacsv.write_csv(table, path, pacsv.WriteOptions(quoting_style="needed"))
            else:
                pq.write_table(table, path)
    else:
        _write_with_spark(spark, out, parts, series=series, days=days, seed=seed, fmt=fmt, bad_frac=bad_frac)
    log.info("generated %d series x %d days of hourly %s sample in %s (%d part files, seed %d)",
             series, days, fmt, out, len(parts), seed)
    return out


def _write_with_spark(spark: Any, out: Path, parts: list[tuple[int, int]], *, series: int, days: int,
                      seed: int, fmt: str, bad_frac: float) -> None:
    schema = ("series_id string, ts string, value string" if fmt == "csv"
              else "series_id string, ts timestamp, value double")

    def make(batches: Iterator[pa.RecordBatch]) -> Iterator[pa.RecordBatch]:
        for batch in batches:
            for k in batch.column(0).to_pylist():
                lo, hi = parts[k]
                table = sample_table(lo, hi, series=series, days=days, seed=seed, fmt=fmt, bad_frac=bad_frac)
                yield from table.to_batches(max_chunksize=100_000)

    df = spark.range(0, len(parts), numPartitions=len(parts)).mapInArrow(make, schema)
    writer = df.write.mode("errorifexists").format(fmt)
    if fmt == "csv":
        writer = writer.option("header", "true")
    writer.save(str(out))


ARRIVING = "arriving"


def hold_back(folder: str | Path, hours: int) -> Path:
    """Move the sample's last `hours` hours (before SAMPLE_END) out of the CSV part files into
    `folder/arriving/`, to be ingested later as actuals that arrive after the forecasts were made.

    Every row stays in exactly one file (bad rows stay where they were), so ingesting the whole
    folder still gives the whole sample. Returns the `arriving` folder.
    """
    from datetime import timedelta

    src = Path(folder)
    parts = sorted(p for p in src.glob("part-*.csv") if p.is_file())
    if not parts:
        raise SampleError(f"no CSV part files in {src} to hold the last {hours} hours back from")
    since = (SAMPLE_END - timedelta(hours=hours)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = SAMPLE_END.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = src / ARRIVING
    out.mkdir(exist_ok=True)
    opts = pacsv.ConvertOptions(column_types={c: pa.string() for c in ("series_id", "ts", "value")},
                                strings_can_be_null=False)
    later = []
    for p in parts:
        table = pacsv.read_csv(p, convert_options=opts)
        ts = pc.fill_null(table.column("ts"), "")
        mask = pc.and_(pc.greater_equal(ts, since), pc.less(ts, end))  # ISO strings order as times
        mask = pc.and_(mask, pc.match_substring_regex(ts, r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$"))
        later.append(table.filter(mask))
        pacsv.write_csv(table.filter(pc.invert(mask)), p, pacsv.WriteOptions(quoting_style="needed"))
        (p.parent / f".{p.name}.crc").unlink(missing_ok=True)  # Hadoop's checksum of the old content
    pacsv.write_csv(pa.concat_tables(later), out / "part-arriving.csv", pacsv.WriteOptions(quoting_style="needed"))
    return out
