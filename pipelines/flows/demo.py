"""`lakecast demo`: the main job end to end on generated data and the embedded defaults.

init -> generate sample files -> ingest (quarantine the bad rows) -> train + register ->
promote -> predict -> query the forecasts with SQL. Re-running it is safe: the sample is
deterministic, ingest and predict are idempotent, and each train adds a model version.
What each stage produced goes to a `DemoReport` (the CLI prints it) as the stage ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from conf import LakecastConfig
from pipelines.flows import ingest, init_tables, predict, promote, train
from pipelines.tables.sql_query import run_statement

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from models.evaluate import Backtest

STAGES = 7


class DemoReport(Protocol):
    """Where the demo shows its progress: a title per stage, then what the stage produced."""

    def stage(self, n: int, total: int, title: str) -> None: ...

    def note(self, text: str) -> None: ...

    def facts(self, title: str, facts: Mapping[str, Any]) -> None: ...

    def backtest(self, bt: Backtest, title: str) -> None: ...

    def rows(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


def run(spark: SparkSession, cfg: LakecastConfig, report: DemoReport, *, series: int, days: int,
        seed: int) -> dict[str, Any]:
    """Run every stage in one Spark session; return the headline facts."""
    from pipelines.tooling.sample_data import generate_sample

    report.stage(1, STAGES, "init: governed tables")
    init_tables.run(spark, cfg)

    report.stage(2, STAGES, f"generate: {series} hourly series over {days} days")
    src = generate_sample(spark, cfg.home / "demo_data", series=series, days=days, seed=seed, fmt="csv")
    report.note(f"sample written to {src}")

    report.stage(3, STAGES, "ingest: validate into observations, bad rows to quarantine")
    ing = ingest.run(spark, cfg, str(src), fmt="csv")
    report.facts("ingest", ing.summary())

    report.stage(4, STAGES, "train: LSTM, backtest, MLflow run, registry")
    tr = train.run(spark, cfg)
    report.backtest(tr.backtest, f"backtest on {tr.backtest.n_windows} test windows")
    report.note(f"registered {tr.model.name} v{tr.model.version}"
                + (" as challenger and champion" if tr.became_champion else " as challenger"))

    report.stage(5, STAGES, "promote: challenger vs champion")
    pr = promote.run(spark, cfg)
    d = pr.decision
    report.note(f"decision: {d.outcome} ({d.reason}); champion is v{d.champion}")

    report.stage(6, STAGES, "predict: distributed scoring with the champion")
    pd_ = predict.run(spark, cfg)
    report.facts("predict", pd_.summary())

    report.stage(7, STAGES, "query: forecasts_latest and job_runs with SQL")
    cols, rows, _ = run_statement(
        spark,
        f"""SELECT series_id, target_ts, horizon_step, round(p10, 2) AS p10, round(p50, 2) AS p50,
                   round(p90, 2) AS p90, model_version
            FROM {cfg.table('forecasts_latest')} ORDER BY series_id, target_ts""",
        8,
    )
    report.rows("forecasts_latest (first rows)", cols, rows)
    cols, rows, _ = run_statement(
        spark,
        f"""SELECT job, status, started_at, ended_at FROM {cfg.table('job_runs')}
            ORDER BY started_at DESC""",
        6,
    )
    report.rows("job_runs (newest first)", cols, rows)
    return {
        "rows ingested": ing.counts.inserted + ing.counts.updated + ing.counts.unchanged,
        "rows quarantined": ing.counts.quarantined,
        "model": f"{tr.model.name} v{tr.model.version}",
        "champion": f"v{pr.decision.champion}",
        "forecast rows": pd_.counts.get("forecast_rows", 0),
        "home": str(cfg.home),
    }
