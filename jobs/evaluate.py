"""`lakecast evaluate`: score the forecasts against the actuals that have arrived, into `forecast_accuracy`.

The flow (versions, changes since the last run, pairs, MERGE, job_runs) is
pipelines.flows.evaluate; the metrics are pipelines.accuracy.rows.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from conf.errors import AccuracyAlertError
from jobs._cli.context import JobContext, as_of_option, common_options
from jobs._cli.output import print_summary
from pipelines.flows import evaluate


@click.command("evaluate")
@as_of_option("Use only actuals at or before T (ISO, UTC) and read everything; later runs still "
              "start from the previous incremental run. Default: every actual that arrived.")
@click.option("--fail-on-alert", is_flag=True,
              help="Exit non-zero with a one-line reason when the champion's live accuracy breaches a "
                   "monitor.* threshold (for a scheduler to alert on); the accuracy rows are written either way.")
@common_options
def cli(job: JobContext, as_of: str | None, fail_on_alert: bool) -> None:
    """Join forecasts with their actuals into forecast_accuracy (incremental; idempotent).

    Each run reads only the observations and forecasts new or changed since the last evaluate
    (their Change Data Feed), so a corrected actual updates its rows and a re-run with nothing
    new writes nothing. One row per forecast and actual: error, absolute and scaled error
    (MASE's), seasonal naive's, pinball loss per quantile, inside p10-p90. Then the champion's
    live MASE and coverage over the last monitor.window origins are checked against its
    backtest, seasonal naive and the nominal 80 %: breaches are printed and kept in job_runs.
    """
    result = evaluate.run(job.spark, job.cfg, as_of=as_of)
    print_summary("lakecast evaluate", result.summary())
    if fail_on_alert and result.alerts:
        raise AccuracyAlertError(f"{len(result.alerts)} accuracy alert(s): " + "; ".join(result.alerts))


if __name__ == "__main__":
    cli()
