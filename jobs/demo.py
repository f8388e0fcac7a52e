"""`lakecast demo`: the main job end to end on generated data and the embedded defaults.

init -> generate sample files -> ingest (quarantine the bad rows) -> train + register ->
promote -> predict -> query the forecasts with SQL. Re-running it is safe: the sample is
deterministic, ingest and predict are idempotent, and each train adds a model version.
"""

from __future__ import annotations

import logging
from typing import Any

import click

from conf import LakecastConfig
from jobs import ingest, init_tables, predict, promote, train
from jobs.context import JobContext, common_options
from jobs.output import console, print_rows, print_summary
from jobs.sql import run as run_sql

log = logging.getLogger(__name__)

STAGES = 7


def _stage(n: int, title: str) -> None:
    console.rule(f"[bold]{n}/{STAGES} {title}")


def run(spark: Any, cfg: LakecastConfig, *, series: int, days: int, seed: int) -> dict[str, Any]:
    """Run every stage in one Spark session; return the headline facts."""
    from pipelines.tooling.sample_data import generate_sample

    _stage(1, "init: governed tables")
    init_tables.run(spark, cfg)

    _stage(2, f"generate: {series} hourly series over {days} days")
    src = generate_sample(spark, cfg.home / "demo_data", series=series, days=days, seed=seed, fmt="csv")
    console.print(f"sample written to {src}")

    _stage(3, "ingest: validate into observations, bad rows to quarantine")
    ing = ingest.run(spark, cfg, str(src), fmt="csv")
    print_summary("ingest", ingest.summary(ing))

    _stage(4, "train: LSTM, backtest, MLflow run, registry")
    tr = train.run(spark, cfg)
    train.print_backtest(tr.backtest, f"backtest on {tr.backtest.n_windows} test windows")
    console.print(f"registered {tr.model.name} v{tr.model.version}"
                  + (" as challenger and champion" if tr.became_champion else " as challenger"))

    _stage(5, "promote: challenger vs champion")
    pr = promote.run(spark, cfg)
    d = pr.decision
    console.print(f"decision: {d.outcome} ({d.reason}); champion is v{d.champion}")

    _stage(6, "predict: distributed scoring with the champion")
    pd_ = predict.run(spark, cfg)
    print_summary("predict", pd_.summary())

    _stage(7, "query: forecasts_latest and job_runs with SQL")
    cols, rows, _ = run_sql(
        spark,
        f"""SELECT series_id, target_ts, horizon_step, round(p10, 2) AS p10, round(p50, 2) AS p50,
                   round(p90, 2) AS p90, model_version
            FROM {cfg.table('forecasts_latest')} ORDER BY series_id, target_ts""",
        8,
    )
    print_rows(cols, rows, title="forecasts_latest (first rows)")
    cols, rows, _ = run_sql(
        spark,
        f"""SELECT job, status, started_at, ended_at FROM {cfg.table('job_runs')}
            ORDER BY started_at DESC""",
        6,
    )
    print_rows(cols, rows, title="job_runs (newest first)")
    return {
        "rows ingested": ing.counts.inserted + ing.counts.updated + ing.counts.unchanged,
        "rows quarantined": ing.counts.quarantined,
        "model": f"{tr.model.name} v{tr.model.version}",
        "champion": f"v{pr.decision.champion}",
        "forecast rows": pd_.counts.get("forecast_rows", 0),
        "home": str(cfg.home),
    }


@click.command("demo")
@click.option("--series", type=click.IntRange(min=1), default=20, show_default=True,
              help="Number of generated series.")
@click.option("--days", type=click.IntRange(min=30), default=90, show_default=True,
              help="Days of hourly history per series.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sample seed.")
@common_options
def cli(job: JobContext, series: int, days: int, seed: int) -> None:
    """Run the whole pipeline on generated data: init, ingest, train, promote, predict, query."""
    facts = run(job.spark, job.cfg, series=series, days=days, seed=seed)
    print_summary("lakecast demo: done", facts)
    console.print(f'query it from another shell: lakecast sql "SELECT * FROM '
                  f'{job.cfg.table("forecasts_latest")} LIMIT 10"')


if __name__ == "__main__":
    cli()
