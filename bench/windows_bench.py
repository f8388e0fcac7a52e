"""Training-window throughput of the window strategies on the same observations.

    python -m bench.windows_bench                       # 1,000 series x 8,760 hourly points
    python -m bench.windows_bench --series 100 --points 2000 --strategies numpy
    python -m bench.windows_bench --set windows.lookback=336

Generates hourly observations in Spark (daily cycle + noise, about 1 % of the steps
missing), writes them to Parquet once, then for each strategy (`windows.strategy`) times
`training_windows` over all of them on `local[*]`, forcing every window to be built
(a count of windows and of their input and target floats, so no column is pruned away).
Peak memory is the largest resident set of the whole process tree (driver Python, JVM,
Python workers) sampled every 0.1 s during the phase, plus the JVM's own high-water mark.
Ends with RESULT lines; the first strategy listed is the baseline of the ratios.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]


def _tree_rss_mb(root: int) -> float:
    """Resident set of `root` and all its descendants (from /proc, no psutil)."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
            statm = (d / "statm").read_text().split()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(d.name))
        rss[int(d.name)] = int(statm[1]) * os.sysconf("SC_PAGE_SIZE")
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += children.get(pid, [])
    return total / 2**20


class PeakSampler:
    """Samples the process tree's RSS in a thread; `peak_mb` after `stop()`."""

    def __init__(self, interval: float = 0.1) -> None:
        self.interval, self.peak_mb = interval, 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak_mb = max(self.peak_mb, _tree_rss_mb(os.getpid()))
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _jvm_hwm_mb(spark: Any) -> float:
    proc = getattr(spark.sparkContext._gateway, "proc", None)
    if proc is None:
        return float("nan")
    for line in Path(f"/proc/{proc.pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def generate(spark: Any, path: Path, series: int, points: int, seed: int = 7) -> int:
    """Hourly observations on 2023's grid; returns the row count written."""
    from pyspark.sql import functions as F

    k = F.col("id") % points
    df = spark.range(series * points).select(
        F.format_string("s%05d", (F.col("id") / points).cast("long")).alias("series_id"),
        F.timestamp_micros(F.lit(1_672_531_200_000_000) + k * F.lit(3_600_000_000)).alias("ts"),
        (10.0 + 5.0 * F.sin(k * (2 * 3.141592653589793 / 24)) + F.randn(seed)).alias("value"),
    ).where(F.rand(seed + 1) >= 0.01)
    df.write.mode("overwrite").parquet(str(path))
    return int(spark.read.parquet(str(path)).count())


def time_strategy(spark: Any, obs: Any, cfg: Any, rows: int) -> dict[str, float]:
    from pyspark.sql import functions as F

    from pipelines.windows.build import training_windows

    w = training_windows(obs, cfg)
    agg = w.agg(F.count("*").alias("windows"), F.count("skip_reason").alias("skipped"),
                F.sum(F.size("inputs")).alias("floats_in"), F.sum(F.size("targets")).alias("floats_out"))
    t0 = time.perf_counter()
    with PeakSampler() as mem:
        r = agg.head()
    secs = time.perf_counter() - t0
    assert r is not None  # an aggregate without grouping has one row
    return {"seconds": secs, "windows": r["windows"], "skipped": r["skipped"],
            "floats": (r["floats_in"] or 0) + (r["floats_out"] or 0), "rows_per_s": rows / secs,
            "windows_per_s": r["windows"] / secs, "peak_mb": mem.peak_mb, "jvm_hwm_mb": _jvm_hwm_mb(spark)}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=1000)
    ap.add_argument("--points", type=int, default=8760, help="hourly points per series")
    ap.add_argument("--strategies", default="sql,numpy", help="comma-separated; the first is the baseline")
    ap.add_argument("--repeat", type=int, default=1, help="timed runs per strategy (the best is kept)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)

    from conf import load_config
    from conf.auto_steps import steps
    from pipelines.session.builder import build_session, stop_session

    work = Path(tempfile.mkdtemp(prefix="lakecast_windows_bench_"))
    # The network's window (168), as every recorded run measured it; `auto` would add the hourly
    # members' four weeks (`--set model.statistical_lookback=auto` measures that).
    base = [f"home={work / 'home'}", "spark.master=local[*]", f"spark.ivy_dir={REPO / '.lakecast' / 'ivy'}",
            "model.statistical_lookback=168", *args.set]
    cfg = load_config(None, base, env={})
    spark = build_session(cfg)
    try:
        t0 = time.perf_counter()
        rows = generate(spark, work / "obs", args.series, args.points)
        print(f"generated {rows:,d} observations ({args.series:,d} series x {args.points:,d} hourly points, "
              f"~1 % missing) in {time.perf_counter() - t0:.1f} s; master {cfg.spark.master}, "
              f"{os.cpu_count()} cores; lookback {steps(cfg).lookback}, horizon {steps(cfg).horizon}, "
              f"stride {steps(cfg).stride}", flush=True)
        obs = spark.read.parquet(str(work / "obs"))
        names = args.strategies.split(",")
        configs = {n: load_config(None, [*base, f"windows.strategy={n}"], env={}) for n in names}
        few = obs.where(obs.series_id < "s00005")
        for name in names:  # warm up workers and code paths, untimed, on 5 series
            time_strategy(spark, few, configs[name], 1)
        results: dict[str, dict[str, float]] = {}
        for name in names:
            c = configs[name]
            runs = [time_strategy(spark, obs, c, rows) for _ in range(args.repeat)]
            best = min(runs, key=lambda r: r["seconds"])
            results[name] = best
            print(f"{name:6s} {best['windows']:>9,.0f} windows ({best['skipped']:,.0f} skipped, "
                  f"{best['floats'] / 1e6:,.0f} M floats) in {best['seconds']:6.1f} s = "
                  f"{best['rows_per_s']:>10,.0f} rows/s, {best['windows_per_s']:>8,.0f} windows/s; "
                  f"peak RSS (all processes) {best['peak_mb']:,.0f} MB, "
                  f"JVM high-water {best['jvm_hwm_mb']:,.0f} MB",
                  flush=True)
    finally:
        stop_session(spark)
    baseline = names[0]
    fastest = min(names, key=lambda n: results[n]["seconds"])
    for n in names:
        r = results[n]
        print(f"RESULT windows_{n}_rows_per_s={r['rows_per_s']:.0f}")
        print(f"RESULT windows_{n}_windows_per_s={r['windows_per_s']:.0f}")
        print(f"RESULT windows_{n}_seconds={r['seconds']:.1f}")
        print(f"RESULT windows_{n}_peak_rss_mb={r['peak_mb']:.0f}")
    for n in names[1:]:
        speedup = results[baseline]["seconds"] / results[n]["seconds"]
        print(f"RESULT windows_speedup_{n}_vs_{baseline}={speedup:.2f}")
    print(f"RESULT windows_fastest={fastest}")


if __name__ == "__main__":
    main()
