"""`lakecast predict --changed-only` after late data for 1 % of the series, against a full predict.

    python -m bench.incremental_bench                    # 100,000 hourly series, 1 % changed
    python -m bench.incremental_bench --series 20000 --changed 0.05

In one SparkSession on a temporary home: hourly observations (one lookback and two steps per
series, appended directly to the governed table), a registered model of the configured shape
(random weights: the cost of scoring does not depend on them; fp32), one full predict at the
newest origin. Then, per round: a correction of the newest value of `--changed` of the series
(one Delta UPDATE, untimed), `predict --changed-only` at that origin, and a full `predict` at
the same origin (which rescores everything), each timed as the flow's whole run (job_runs,
model pin, scoring, MERGE). Median of the rounds; `RESULT incremental_1pct_vs_full` is the
changed-only time over the full time (issue 17's target: at most 0.10).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.scoring_bench import _config, observations_df, write_observations


def _register(cfg: Any) -> Any:
    import mlflow
    import numpy as np

    from conf.auto_steps import steps
    from models import registry
    from models.lakecast_forecaster.lstm import LSTMSpec, build_model
    from models.lakecast_forecaster.predictor import ModelMeta
    from models.pyfunc import log_pyfunc
    from pipelines.windows.features import feature_names

    names = tuple(feature_names(cfg))
    s = steps(cfg)
    spec = LSTMSpec(n_features=len(names), lookback=s.lookback, horizon=s.horizon,
                    hidden_size=cfg.model.hidden_size, num_layers=cfg.model.num_layers, dropout=0.0)
    module = build_model(spec, 0).eval()
    meta = ModelMeta(s.lookback, len(names), names, s.horizon, cfg.model.quantiles, cfg.data.freq, spec)
    registry.use_tracking(cfg)
    with mlflow.start_run(run_name="incremental-bench") as run:
        info = log_pyfunc(module, meta, np.zeros((2, s.lookback, len(names)), dtype=np.float32))
    return registry.register(cfg, info.model_uri, run_id=run.info.run_id)[0]


def _stage_seconds(spark: Any, cfg: Any, run_id: str) -> dict[str, float]:
    """The flow's own stage timings (job_runs.details.seconds) of one run."""
    import json

    (row,) = spark.sql(f"SELECT details FROM {cfg.table('job_runs')} WHERE run_id = '{run_id}'").collect()
    return dict(json.loads(row.details).get("seconds", {}))


def main(argv: list[str] | None = None) -> int:
    from pipelines.flows import predict
    from pipelines.session.builder import build_session
    from pipelines.tables.ensure import ensure_tables

    ap = argparse.ArgumentParser(prog="python -m bench.incremental_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--changed", type=float, default=0.01, help="share of series corrected per round")
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lakecast-incremental-bench-") as tmp:
        cfg = _config(Path(tmp) / "home", ("scoring.precision=fp32",))
        spark = build_session(cfg)
        ensure_tables(spark, cfg)
        points = cfg.windows.lookback + 2
        t0 = time.perf_counter()
        write_observations(spark, cfg, observations_df(spark, a.series, points))
        print(f"{a.series:,} series x {points} hourly points written in {time.perf_counter() - t0:.0f} s", flush=True)
        _register(cfg)
        first = predict.run(spark, cfg)
        as_of = first.as_of
        print(f"first full predict as of {as_of}: {first.counts.get('scored_series', 0):,} series", flush=True)
        every = max(1, round(1 / a.changed))
        obs = cfg.table("observations")
        times: dict[str, list[float]] = {"changed": [], "full": []}
        n_changed = 0
        for r in range(a.rounds):
            spark.sql(f"UPDATE {obs} SET value = value + {r + 1} WHERE ts = TIMESTAMP'{as_of.isoformat()}Z' "
                      f"AND CAST(substr(series_id, 2) AS BIGINT) % {every} = {r % every}")
            t0 = time.perf_counter()
            inc = predict.run(spark, cfg, as_of=as_of, changed_only=True)
            times["changed"].append(time.perf_counter() - t0)
            n_changed = inc.counts.get("changed_series", 0)
            t0 = time.perf_counter()
            full = predict.run(spark, cfg, as_of=as_of)
            times["full"].append(time.perf_counter() - t0)
            print(f"  round {r + 1}: changed-only {times['changed'][-1]:.1f} s ({n_changed:,} series rescored) "
                  f"{_stage_seconds(spark, cfg, inc.run_id)}\n           full {times['full'][-1]:.1f} s "
                  f"({full.counts.get('scored_series', 0):,} series) {_stage_seconds(spark, cfg, full.run_id)}",
                  flush=True)
        spark.stop()
    inc_s, full_s = statistics.median(times["changed"]), statistics.median(times["full"])
    pct = round(100 * a.changed)
    print(f"\n{a.series:,} series, {n_changed:,} changed per round, median of {a.rounds} rounds")
    print(f"RESULT incremental_{pct}pct_seconds={inc_s:.1f}")
    print(f"RESULT incremental_full_seconds={full_s:.1f}")
    print(f"RESULT incremental_{pct}pct_vs_full={inc_s / full_s:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
