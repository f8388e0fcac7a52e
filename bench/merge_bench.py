"""MERGE time into `forecasts` with a large history of older origins against an empty history.

    python -m bench.merge_bench                       # 30 M history rows (365 daily origins)
    python -m bench.merge_bench --history-rows 5      # millions of history rows

In one SparkSession on a temporary home: a run's forecasts (20 series x 24 steps, one new
origin) are MERGEd by `pipelines.sinks.forecasts.merge_forecasts` into two governed
`forecasts` tables of the same home: one emptied before each MERGE (untimed), one holding the
history (older daily origins, appended directly to the Delta table from spark.range). The
MERGEs alternate (empty, history) so both see the same machine load; a first round warms up,
then the median of 3 rounds each. Ends with RESULT lines; the target is
forecasts_merge_history_ratio <= 1.2 (issue 17).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

SERIES, STEPS, REPEATS, HISTORY_ORIGINS = 20, 24, 3, 365
NEW = "2026-01-01 00:00:00"  # after every history origin


def _columns() -> list[str]:
    """The forecasts table's columns in order (a column added to the spec fails here, by name)."""
    from pipelines.tables.specs import FORECASTS

    return list(FORECASTS.column_names)


def run_rows(spark: Any, origin_hours: int) -> Any:
    """20 series x 24 steps of one origin, `origin_hours` after NEW."""
    return spark.range(SERIES * STEPS).selectExpr(
        f"concat('s', CAST(id DIV {STEPS} AS STRING)) AS series_id",
        f"TIMESTAMP'{NEW}Z' + make_interval(0, 0, 0, 0, {origin_hours}) AS forecast_origin",
        f"TIMESTAMP'{NEW}Z' + make_interval(0, 0, 0, 0, {origin_hours} + CAST(id % {STEPS} + 1 AS INT)) AS target_ts",
        f"CAST(id % {STEPS} + 1 AS INT) AS horizon_step",
        "0.5 AS p10", "1.0 AS p50", "1.5 AS p90", "'bench' AS model_name", "'1' AS model_version",
        "'r' AS model_run_id", "0L AS source_version", "'bench' AS job_run_id", "current_timestamp() AS scored_at",
        "'champion' AS model_role", "1.0 AS mase_scale").select(*_columns())


def append_history(spark: Any, table: str, rows: int) -> None:
    """`rows` forecast rows over HISTORY_ORIGINS daily origins before NEW, by a plain Delta append."""
    per_origin = max(STEPS, rows // HISTORY_ORIGINS)
    spark.range(rows).selectExpr(
        f"concat('h', CAST((id % {per_origin}) DIV {STEPS} AS STRING)) AS series_id",
        f"TIMESTAMP'{NEW}Z' - make_interval(0, 0, 0, CAST(id DIV {per_origin} AS INT) + 1) AS forecast_origin",
        f"TIMESTAMP'{NEW}Z' - make_interval(0, 0, 0, CAST(id DIV {per_origin} AS INT) + 1) "
        f"+ make_interval(0, 0, 0, 0, CAST(id % {STEPS} + 1 AS INT)) AS target_ts",
        f"CAST(id % {STEPS} + 1 AS INT) AS horizon_step",
        "0.5 AS p10", "1.0 AS p50", "1.5 AS p90", "'bench' AS model_name", "'1' AS model_version",
        "'r' AS model_run_id", "0L AS source_version", "'hist' AS job_run_id", "current_timestamp() AS scored_at",
        "'champion' AS model_role", "1.0 AS mase_scale",
    ).select(*_columns()).write.insertInto(table)  # by position: the table's column order


def timed_merge(spark: Any, cfg: Any, label: str, hour: int) -> float:
    """Seconds of one MERGE of a new origin's 480 rows into the `forecasts` of `cfg`."""
    from pipelines.sinks.forecasts import merge_forecasts

    src = run_rows(spark, hour).cache()
    src.count()
    t0 = time.perf_counter()
    out = merge_forecasts(spark, cfg, src, run_id=f"{label}-{hour}")
    secs = time.perf_counter() - t0
    assert out.inserted == SERIES * STEPS, out
    src.unpersist()
    print(f"{label:8s} MERGE (origin +{hour} h): {secs:.2f} s", flush=True)
    return secs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--history-rows", type=float, default=30.0, help="millions of history rows (default 30)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)

    from conf import load_config
    from pipelines.session.builder import build_session, stop_session
    from pipelines.tables.ensure import ensure_tables

    home = Path(tempfile.mkdtemp(prefix="lakecast_merge_bench_"))
    cfg = load_config(None, [f"home={home}", *args.set], env={})
    empty_cfg = load_config(None, [f"home={home}", "catalog.database=lakecast_empty", *args.set], env={})
    spark = build_session(cfg)
    try:
        for c in (cfg, empty_cfg):
            ensure_tables(spark, c)
        rows = int(args.history_rows * 1e6)
        t0 = time.perf_counter()
        append_history(spark, cfg.table("forecasts"), rows)
        files = spark.sql(f"DESCRIBE DETAIL {cfg.table('forecasts')}").collect()[0]["numFiles"]
        print(f"history: {rows:,d} rows, {HISTORY_ORIGINS} origins, {files} files, appended in "
              f"{time.perf_counter() - t0:.0f} s", flush=True)
        empty: list[float] = []
        history: list[float] = []
        for i in range(REPEATS + 1):  # alternating, so both see the same machine; round 0 warms up
            spark.sql(f"DELETE FROM {empty_cfg.table('forecasts')}")  # empty again, untimed
            e = timed_merge(spark, empty_cfg, "empty", i)
            h = timed_merge(spark, cfg, "history", i)
            if i:
                empty.append(e)
                history.append(h)
        e, h = statistics.median(empty), statistics.median(history)
        print(f"RESULT forecasts_merge_empty_s={e:.2f}")
        print(f"RESULT forecasts_merge_history_s={h:.2f}")
        print(f"RESULT forecasts_merge_history_rows={rows}")
        print(f"RESULT forecasts_merge_history_ratio={h / e:.2f}")
    finally:
        stop_session(spark)


if __name__ == "__main__":
    main()
