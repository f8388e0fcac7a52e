"""`lakecast train [--as-of T]`: train the LSTM on `observations`, backtest, log to MLflow, register.

The flow (read, window, snapshot, fit, backtest, MLflow, registry, record) is pipelines.flows.train.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, as_of_option, common_options
from jobs._cli.output import print_backtest, print_summary
from models.evaluate import MODEL, SEASONAL_NAIVE
from pipelines.flows import train


@click.command("train")
@as_of_option("Use observations up to T (ISO time, UTC) as if it were now; default: all.")
@common_options
def cli(job: JobContext, as_of: str | None) -> None:
    """Train the global LSTM, backtest it against naive baselines, log it to MLflow and register it."""
    out = train.run(job.spark, job.cfg, as_of)
    r, bt, c = out.result, out.backtest, out.cutoffs
    if bt.n_windows:
        print_backtest(bt, f"backtest on {bt.n_windows} test windows (original units)")
    print_summary("lakecast train", {
        "model": f"{out.model.name} v{out.model.version}",
        "aliases": "challenger, champion (first version)" if out.became_champion else "challenger",
        "test MASE": (f"{bt.mase(MODEL):.4f} (seasonal naive {bt.mase(SEASONAL_NAIVE):.4f})" if bt.n_windows
                      else "none: no test split (train.test_periods=0, a short history)"),
        "windows train/val/test": f"{r.n_train}/{r.n_val}/{out.backtest.n_windows}",
        "epochs": f"{len(r.history)} (best {r.best_epoch}{', stopped early' if r.stopped_early else ''})"
                  + (f", {r.windows_per_epoch} windows each (train.max_windows_per_epoch)"
                     if r.windows_per_epoch < r.n_train else ""),
        "training time": f"{r.seconds:.1f}s on {r.device}",
        "split": f"train <= {c.train_end} < val <= {c.val_end}"
                 + (f" < test <= {c.end}" if c.end > c.val_end else " (no test split)"),
        "auto settings": out.auto.line.partition(": ")[2] if out.auto and out.auto.line else "none",
        "forecast floor": "none" if out.floor is None else f"{out.floor:g} (model.nonnegative)",
        "observations version": out.observations_version,
        "mlflow run": out.mlflow_run_id,
        "job run": out.job_run_id,
    })


if __name__ == "__main__":
    cli()
