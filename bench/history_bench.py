"""`lakecast predict` on series with a long history: the bounded read against every row.

    python -m bench.history_bench                       # 2,000 hourly series x one year
    python -m bench.history_bench --series 500 --days 90

In one SparkSession on a temporary home: hourly observations (`--days` of history per series,
appended directly to the governed table), a registered model of the configured shape (random
weights, fp32), then per round a full predict at the newest origin with
`scoring.bounded_history=false` (every series' whole history shuffled and sorted, as before it
existed) and with `true` (the rows a window can reach and each series' first row), each timed
as the flow's whole run. The forecasts of the two must agree to 1e-5 (checked every round).
`RESULT predict_history_bounded_speedup` is the median full-history time over the median
bounded time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench.incremental_bench import _register, _stage_seconds
from bench.scoring_bench import _config, observations_df, write_observations


def _forecasts(spark: Any, cfg: Any) -> Any:
    return (spark.table(cfg.table("forecasts")).select("series_id", "target_ts", "p10", "p50", "p90")
            .toPandas().sort_values(["series_id", "target_ts"]).reset_index(drop=True))


def main(argv: list[str] | None = None) -> int:
    from pipelines.flows import predict
    from pipelines.session.builder import build_session
    from pipelines.tables.ensure import ensure_tables

    ap = argparse.ArgumentParser(prog="python -m bench.history_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=2_000)
    ap.add_argument("--days", type=int, default=365, help="hourly history per series")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lakecast-history-bench-") as tmp:
        cfg = _config(Path(tmp) / "home", ("scoring.precision=fp32",))
        bounded = {flag: cfg.model_copy(update={"scoring": cfg.scoring.model_copy(
            update={"bounded_history": flag})}) for flag in (False, True)}
        spark = build_session(cfg)
        ensure_tables(spark, cfg)
        points = 24 * a.days
        t0 = time.perf_counter()
        write_observations(spark, cfg, observations_df(spark, a.series, points))
        print(f"{a.series:,} series x {points:,} hourly points written in {time.perf_counter() - t0:.0f} s "
              f"(lookback {cfg.windows.lookback})", flush=True)
        _register(cfg)
        as_of = predict.run(spark, bounded[True]).as_of  # untimed: the JVM's first MERGE and scoring stage
        times: dict[bool, list[float]] = {False: [], True: []}
        for r in range(a.rounds):
            got = {}
            for flag in (False, True):
                t0 = time.perf_counter()
                res = predict.run(spark, bounded[flag], as_of=as_of)
                times[flag].append(time.perf_counter() - t0)
                got[flag] = _forecasts(spark, cfg)
                print(f"  round {r + 1} bounded_history={str(flag).lower()}: {times[flag][-1]:.1f} s, "
                      f"{res.counts.get('scored_series', 0):,} series "
                      f"{_stage_seconds(spark, cfg, res.run_id)}", flush=True)
            full, part = got[False], got[True]
            same = (full[["series_id", "target_ts"]].equals(part[["series_id", "target_ts"]]) and np.allclose(
                full[["p10", "p50", "p90"]].to_numpy(), part[["p10", "p50", "p90"]].to_numpy(), rtol=1e-5, atol=1e-5))
            if not same:
                raise SystemExit("the bounded read changed the forecasts: a bug, not a benchmark result")
        spark.stop()
    full_s, bounded_s = statistics.median(times[False]), statistics.median(times[True])
    print(f"\n{a.series:,} series x {points:,} hourly points, median of {a.rounds} rounds; forecasts equal to 1e-5")
    print(f"RESULT predict_full_history_seconds={full_s:.1f}")
    print(f"RESULT predict_bounded_history_seconds={bounded_s:.1f}")
    print(f"RESULT predict_history_bounded_speedup={full_s / bounded_s:.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
