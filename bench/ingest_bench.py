"""Ingest throughput and peak memory against a plain Delta append of the same rows.

    python -m bench.ingest_bench --rows 1          # 1 million generated rows (CSV)
    python -m bench.ingest_bench --rows 10 --set spark.driver_memory=4g

Generates the sample (in a child process, so its memory is not counted), then in one
SparkSession on a temporary home times, each on the same files:
  baseline  read + cast + append to a plain Delta table (no validation, no MERGE);
  ingest    `pipelines.flows.ingest.run` into empty governed tables (validate, dedup, MERGE, quarantine);
  reingest  the same files again: MERGE against the full table, every row unchanged.
Peak memory is the resident set high-water mark (VmHWM) of the driver's Python process and
of the JVM, reset before each phase. Ends with RESULT lines.
"""

from __future__ import annotations

import argparse
import contextlib
import math
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
DAYS = 100  # hourly rows per series = DAYS * 24


def _hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _reset_hwm(pid: int) -> None:
    # Where not permitted, the figure is the process's lifetime peak.
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def _jvm_pid(spark: Any) -> int | None:
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    if proc is None:
        return None
    comm = Path(f"/proc/{proc.pid}/comm")
    return proc.pid if comm.exists() and comm.read_text().strip() == "java" else None


def _phase(name: str, spark: Any, rows: int, fn: Callable[[], object]) -> dict[str, float]:
    import os

    jvm = _jvm_pid(spark)
    for pid in (os.getpid(), jvm):
        if pid:
            _reset_hwm(pid)
    t0 = time.perf_counter()
    fn()
    secs = time.perf_counter() - t0
    out = {"seconds": secs, "rows_per_s": rows / secs, "driver_mb": _hwm_mb(os.getpid()),
           "jvm_mb": _hwm_mb(jvm) if jvm else float("nan")}
    print(f"{name:9s} {rows:>11,d} rows in {secs:7.1f} s = {out['rows_per_s']:>9,.0f} rows/s; "
          f"peak RSS driver {out['driver_mb']:,.0f} MB, JVM {out['jvm_mb']:,.0f} MB", flush=True)
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=float, default=1.0, help="millions of generated rows (default 1)")
    ap.add_argument("--format", choices=("csv", "parquet"), default="csv")
    ap.add_argument("--no-reingest", action="store_true", help="skip the second (all unchanged) ingest")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)

    series = max(1, math.ceil(args.rows * 1e6 / (DAYS * 24)))
    work = Path(tempfile.mkdtemp(prefix="lakecast_ingest_bench_"))
    data = work / "data"
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c",
                    "import sys; from pipelines.tooling.sample_data import generate_sample; "
                    f"generate_sample(None, {str(data)!r}, series={series}, days={DAYS}, seed=1, "
                    f"fmt={args.format!r})"], check=True, cwd=REPO)
    size_mb = sum(p.stat().st_size for p in data.iterdir()) / 2**20
    print(f"generated {series} series x {DAYS} days ({args.format}, {size_mb:,.0f} MB) in "
          f"{time.perf_counter() - t0:.1f} s under {work}", flush=True)

    from conf import load_config
    from pipelines.flows import ingest
    from pipelines.session.builder import build_session, stop_session
    from pipelines.tables.ensure import ensure_tables

    cfg = load_config(None, [f"home={work / 'home'}", f"spark.ivy_dir={REPO / '.lakecast' / 'ivy'}",
                             *args.set], env={})
    spark = build_session(cfg)
    try:
        ensure_tables(spark, cfg)
        from pyspark.sql import functions as F

        def baseline() -> None:
            reader = spark.read.option("header", "true") if args.format == "csv" else spark.read
            df = reader.format(args.format).load(str(data))
            df.select(F.col("series_id"), F.col("ts").try_cast("timestamp").alias("ts"),
                      F.col("value").try_cast("double").alias("value")) \
                .write.format("delta").mode("overwrite").save(str(work / "baseline_delta"))

        read_rows = spark.read.option("header", "true").format(args.format).load(str(data)).count()
        base = _phase("baseline", spark, read_rows, baseline)
        results: dict[str, Any] = {}
        first = _phase("ingest", spark, read_rows,
                       lambda: results.update(first=ingest.run(spark, cfg, str(data))))
        c = results["first"].counts
        print(f"          read {c.read:,}, inserted {c.inserted:,}, duplicates {c.duplicates:,}, "
              f"quarantined {c.quarantined:,} {c.quarantined_by_reason}")
        again = None
        if not args.no_reingest:
            again = _phase("reingest", spark, read_rows,
                           lambda: results.update(again=ingest.run(spark, cfg, str(data))))
            c2 = results["again"].counts
            print(f"          unchanged {c2.unchanged:,}, inserted {c2.inserted:,}, updated {c2.updated:,}")
    finally:
        stop_session(spark)

    tag = f"{args.rows:g}M_{args.format}"
    print(f"ingest / plain append throughput: {first['rows_per_s'] / base['rows_per_s']:.2f}x")
    print(f"RESULT ingest_rows_per_s_{tag}={first['rows_per_s']:.0f}")
    print(f"RESULT baseline_append_rows_per_s_{tag}={base['rows_per_s']:.0f}")
    print(f"RESULT ingest_vs_append_{tag}={first['rows_per_s'] / base['rows_per_s']:.3f}")
    if args.format == "csv":  # the name for the same ratio (target >= 0.7)
        print(f"RESULT ingest_vs_append_{args.rows:g}m={first['rows_per_s'] / base['rows_per_s']:.3f}")
    if again is not None:
        print(f"RESULT reingest_rows_per_s_{tag}={again['rows_per_s']:.0f}")
    print(f"RESULT ingest_peak_driver_rss_mb_{tag}={first['driver_mb']:.0f}")
    print(f"RESULT ingest_peak_jvm_rss_mb_{tag}={first['jvm_mb']:.0f}")


if __name__ == "__main__":
    main()
