"""`lakecast evaluate` after one new day: a year of forecast history against an empty history.

    python -m bench.evaluate_bench                         # 10,000 daily series, 365 origins, horizon 7
    python -m bench.evaluate_bench --series 2000 --days 90 # smaller

Two databases in one home and one SparkSession, both daily (`data.freq=D`):
- `year`: a year of daily forecasts (`--days` origins x `--series` x `--horizon` rows in
  `forecasts`), the accuracy rows of every forecast whose actual had arrived (as a year of daily
  evaluates would have left `forecast_accuracy`), and the observations since the first origin's
  lookback;
- `empty`: only what the new day needs: the last `--horizon` origins' forecasts, five weeks of
  observations, an empty `forecast_accuracy`.
Both start with a previous evaluate recorded in `job_runs` (its marks at the loaded versions), so
each timed run is the incremental one a daily schedule makes. Then, three days in a row
(alternating between the two, so both see the same machine; the first day warms up and is not
counted): a new day's actuals and the new origin's forecasts are
appended, and `pipelines.flows.evaluate.run` is timed (the whole command after Spark is up:
change data, pairs, seasonal naive, MERGE, live stats, job_runs). Ends with RESULT lines; the
claim is evaluate_history_ratio near 1 (cost grows with the new actuals, not the history).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

DAY0 = "2025-01-01 00:00:00"  # the first observation
LOOKBACK = 28                 # days of observations before the first origin


def _day(expr: str) -> str:
    return f"TIMESTAMP'{DAY0}Z' + make_interval(0, 0, 0, CAST({expr} AS INT))"


def _value(day: str) -> str:
    """A weekly pattern and a per-series level, plus deterministic noise."""
    return (f"100 + 5 * (sid % 7) + 10 * sin(2 * pi() * ({day}) / 7) "
            f"+ (hash(sid, {day}) % 1000) / 100.0")


def observations(spark: Any, series: int, first_day: int, last_day: int) -> Any:
    days = last_day - first_day + 1
    return spark.range(series * days).selectExpr(f"id % {series} AS sid", f"{first_day} + id DIV {series} AS d") \
        .selectExpr("concat('s', CAST(sid AS STRING)) AS series_id", f"{_day('d')} AS ts",
                    f"{_value('d')} AS value", "'bench' AS batch_id", "'bench' AS source_file",
                    "current_timestamp() AS ingested_at", "current_timestamp() AS updated_at")


def _forecast_cols(horizon: int) -> list[str]:
    return ["concat('s', CAST(sid AS STRING)) AS series_id", f"{_day('o')} AS forecast_origin",
            f"{_day('o + h')} AS target_ts", "CAST(h AS INT) AS horizon_step",
            f"{_value('o + h')} - 12 + h AS p10", f"{_value('o + h')} + 1.5 AS p50",
            f"{_value('o + h')} + 15 - h AS p90"]


def _grid(spark: Any, series: int, first_origin: int, origins: int, horizon: int) -> Any:
    return spark.range(series * origins * horizon).selectExpr(
        f"id % {series} AS sid", f"{first_origin} + (id DIV {series}) DIV {horizon} AS o",
        f"(id DIV {series}) % {horizon} + 1 AS h")


def forecasts(spark: Any, series: int, first_origin: int, origins: int, horizon: int) -> Any:
    return _grid(spark, series, first_origin, origins, horizon).selectExpr(
        *_forecast_cols(horizon), "'bench' AS model_name", "'1' AS model_version", "'r' AS model_run_id",
        "0L AS source_version", "'bench' AS job_run_id", "current_timestamp() AS scored_at",
        "'champion' AS model_role", "8.0 AS mase_scale")


def accuracy(spark: Any, series: int, first_origin: int, origins: int, horizon: int, last_actual: int) -> Any:
    """The rows a daily evaluate would have written for targets up to `last_actual`."""
    g = _grid(spark, series, first_origin, origins, horizon).where(f"o + h <= {last_actual}")
    return g.selectExpr("*", f"{_value('o + h')} AS actual", f"{_value('o + h')} + 1.5 AS p50v").selectExpr(
        "concat('s', CAST(sid AS STRING)) AS series_id", f"{_day('o')} AS forecast_origin",
        f"{_day('o + h')} AS target_ts", "'bench' AS model_name", "'1' AS model_version",
        "CAST(h AS INT) AS horizon_step", "actual", "p50v - 13.5 + h AS p10", "p50v AS p50", "p50v + 13.5 - h AS p90",
        "actual - p50v AS error", "abs(actual - p50v) AS abs_error", "abs(actual - p50v) / 8.0 AS scaled_abs_error",
        "actual AS snaive_forecast", "0.0 AS snaive_scaled_abs_error", "0.1 AS pinball_p10", "0.75 AS pinball_p50",
        "0.1 AS pinball_p90", "true AS inside_p10_p90", "'champion' AS model_role",
        "current_timestamp() AS evaluated_at", "'bench' AS job_run_id")


def mark_evaluated(spark: Any, cfg: Any) -> None:
    """A previous incremental evaluate in job_runs, at the tables' current versions."""
    from pipelines.sinks.job_runs import record_run
    from pipelines.tables.ensure import delta_version

    with record_run(spark, cfg, "evaluate", {"bench": "setup"}) as rec:
        rec.versions_read = {t: delta_version(spark, cfg.table(t)) for t in ("observations", "forecasts")}
        rec.details = {"mode": "bench-setup", "advances_marks": True}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--series", type=int, default=10_000)
    ap.add_argument("--days", type=int, default=365, help="daily origins of history (default 365)")
    ap.add_argument("--horizon", type=int, default=7)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)
    n, days, hz = args.series, args.days, args.horizon

    from conf import load_config
    from pipelines.flows import evaluate
    from pipelines.session.builder import build_session, stop_session
    from pipelines.tables.ensure import ensure_tables
    from pipelines.tables.specs import FORECAST_ACCURACY, FORECASTS, OBSERVATIONS

    home = Path(tempfile.mkdtemp(prefix="lakecast_evaluate_bench_"))
    common = [f"home={home}", "data.freq=D", "monitor.window=7", *args.set]
    cfgs = {label: load_config(None, [*common, f"catalog.database=bench_{label}"], env={})
            for label in ("empty", "year")}
    spark = build_session(cfgs["year"])
    first_origin = LOOKBACK
    last_origin = first_origin + days - 1          # the newest origin already scored
    try:
        t0 = time.perf_counter()
        for label, cfg in cfgs.items():
            ensure_tables(spark, cfg)
            full = label == "year"
            obs_from = 0 if full else last_origin - 35
            observations(spark, n, obs_from, last_origin).select(*OBSERVATIONS.column_names) \
                .write.insertInto(cfg.table("observations"))
            fc_from = first_origin if full else last_origin - hz + 1
            forecasts(spark, n, fc_from, last_origin - fc_from + 1, hz).select(*FORECASTS.column_names) \
                .write.insertInto(cfg.table("forecasts"))
            if full:
                accuracy(spark, n, first_origin, days, hz, last_origin) \
                    .select(*FORECAST_ACCURACY.column_names).write.insertInto(cfg.table("forecast_accuracy"))
            mark_evaluated(spark, cfg)
            sizes = {t: spark.table(cfg.table(t)).count() for t in ("observations", "forecasts", "forecast_accuracy")}
            print(f"{label:5s}: {', '.join(f'{t} {v:,d} rows' for t, v in sizes.items())}", flush=True)
        print(f"set-up: {time.perf_counter() - t0:.0f} s", flush=True)

        secs: dict[str, list[float]] = {"empty": [], "year": []}
        for d in (1, 2, 3):  # a new day's actuals and the new origin's forecasts, then evaluate
            day = last_origin + d
            for label, cfg in cfgs.items():
                observations(spark, n, day, day).select(*OBSERVATIONS.column_names) \
                    .write.insertInto(cfg.table("observations"))
                forecasts(spark, n, day, 1, hz).select(*FORECASTS.column_names) \
                    .write.insertInto(cfg.table("forecasts"))
                t1 = time.perf_counter()
                out = evaluate.run(spark, cfg)
                s = time.perf_counter() - t1
                assert out.mode == evaluate.INCREMENTAL and out.counts["evaluated"] == n * hz, out.counts
                if d > 1:  # day 1 warms up (first use of the code paths in this JVM)
                    secs[label].append(s)
                print(f"{label:5s} day +{d}: evaluate {s:.1f} s ({out.counts['evaluated']:,d} rows, "
                      f"{out.counts.get('inserted', 0):,d} new)", flush=True)
        e, y = statistics.median(secs["empty"]), statistics.median(secs["year"])
        hist = n * days * hz
        print(f"RESULT evaluate_empty_history_s={e:.1f}")
        print(f"RESULT evaluate_year_history_s={y:.1f}")
        print(f"RESULT evaluate_history_forecast_rows={hist}")
        print(f"RESULT evaluate_history_ratio={y / e:.2f}")
    finally:
        stop_session(spark)


if __name__ == "__main__":
    main()
