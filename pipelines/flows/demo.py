"""`lakecast demo`: the main job end to end on generated data and the embedded defaults.

init -> generate sample files (the last day held back) -> ingest (quarantine the bad rows) ->
train + register -> promote -> predict -> the held-back day arrives: ingest, evaluate ->
predict from the newest data -> the accuracy report -> query with SQL. Re-running it is safe:
the sample is deterministic, ingest, predict and evaluate are idempotent, and each train adds
a model version.
What each stage produced goes to a `DemoReport` (the CLI prints it) as the stage ends.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from conf import LakecastConfig
from pipelines.flows import evaluate, ingest, init_tables, predict, promote, train
from pipelines.flows import report as report_flow
from pipelines.tables.sql_query import run_statement

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from models.evaluate import Backtest

STAGES = 9


class DemoReport(Protocol):
    """Where the demo shows its progress: a title per stage, then what the stage produced."""

    def stage(self, n: int, total: int, title: str) -> None: ...

    def note(self, text: str) -> None: ...

    def facts(self, title: str, facts: Mapping[str, Any]) -> None: ...

    def backtest(self, bt: Backtest, title: str) -> None: ...

    def rows(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None: ...


HOLD_BACK_HOURS = 24  # the demo's last day arrives after the first forecasts were made


def run(spark: SparkSession, cfg: LakecastConfig, report: DemoReport, *, series: int, days: int,
        seed: int) -> dict[str, Any]:
    """Run every stage in one Spark session; return the headline facts."""
    from pipelines.tooling.sample_data import generate_sample, hold_back

    report.stage(1, STAGES, "init: governed tables")
    init_tables.run(spark, cfg)

    report.stage(2, STAGES, f"generate: {series} hourly series over {days} days")
    src = generate_sample(spark, cfg.home / "demo_data", series=series, days=days, seed=seed, fmt="csv")
    arriving = hold_back(src, HOLD_BACK_HOURS)
    report.note(f"sample written to {src}; its last {HOLD_BACK_HOURS} hours held back in {arriving} "
                "(they arrive as actuals after the first forecasts)")

    report.stage(3, STAGES, "ingest: validate into observations, bad rows to quarantine")
    ing = ingest.run(spark, cfg, str(src / "part-*.csv"), fmt="csv")
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
    first = predict.run(spark, cfg)
    report.facts("predict", first.summary())

    report.stage(7, STAGES, "actuals arrive: ingest the held-back day, evaluate the forecasts against it")
    late = ingest.run(spark, cfg, str(arriving), fmt="csv")
    report.note(f"ingested {late.counts.inserted} arriving actuals ({late.counts.quarantined} quarantined)")
    ev = evaluate.run(spark, cfg)
    report.facts("evaluate", ev.summary())
    cols, rows, _ = run_statement(spark, f"""
        SELECT model_version, horizon_step, sum(n) AS n, round(avg(mase), 3) AS mase,
               round(avg(snaive_mase), 3) AS snaive_mase, round(avg(coverage_p10_p90), 3) AS coverage
        FROM {cfg.table('accuracy_by_version')} GROUP BY model_version, horizon_step
        ORDER BY model_version, horizon_step""", 48)
    report.rows("accuracy_by_version (live, by horizon step)", cols, rows)

    report.stage(8, STAGES, "predict: the next forecasts, from the newest actuals")
    pd_ = predict.run(spark, cfg)
    report.facts("predict", pd_.summary())
    page = report_flow.run(spark, cfg, cfg.home / "report.html")
    report.note(f"accuracy report written to {page} (open it in a browser; no network needed)")

    report.stage(9, STAGES, "query: forecasts_latest and job_runs with SQL")
    cols, rows, _ = run_statement(
        spark,
        f"""SELECT series_id, target_ts, horizon_step, round(p10, 2) AS p10, round(p50, 2) AS p50,
                   round(p90, 2) AS p90, model_version
            FROM {cfg.table('forecasts_latest')} WHERE target_ts > (SELECT max(ts) FROM {cfg.table('observations')})
            ORDER BY series_id, target_ts""",
        8,
    )
    report.rows("forecasts_latest: the next hours (first rows)", cols, rows)
    cols, rows, _ = run_statement(
        spark,
        f"""SELECT job, status, started_at, ended_at FROM {cfg.table('job_runs')}
            ORDER BY started_at DESC""",
        8,
    )
    report.rows("job_runs (newest first)", cols, rows)
    return {
        "rows ingested": sum(c.inserted + c.updated + c.unchanged for c in (ing.counts, late.counts)),
        "rows quarantined": ing.counts.quarantined + late.counts.quarantined,
        "model": f"{tr.model.name} v{tr.model.version}",
        "champion": f"v{pr.decision.champion}",
        "forecast rows": pd_.counts.get("forecast_rows", 0),
        "evaluated forecasts": ev.counts.get("evaluated", 0),
        "report": str(page),
        "home": str(cfg.home),
    }
