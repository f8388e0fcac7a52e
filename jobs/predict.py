"""`lakecast predict`: score every series with ONE pinned model version into `forecasts`.

The flow (pin the model, read, window, score, MERGE, record) is pipelines.flows.predict.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, as_of_option, common_options
from jobs._cli.output import print_summary
from pipelines.flows import predict


@click.command("predict")
@as_of_option("Forecast from the last grid step at or before T (ISO, UTC); default: the latest "
              "complete period.")
@click.option("--alias", default=None, help="Registry alias to score with (default: champion).")
@click.option("--version", "version", type=int, default=None,
              help="A fixed model version instead of an alias.")
@click.option("--shadow", is_flag=True, default=False,
              help="Also score the challenger on the same observations in the same run (one read, one MERGE): "
                   "its forecasts sit beside the champion's with model_role 'challenger', for "
                   "`lakecast evaluate` and `lakecast promote --by live`.")
@click.option("--changed-only", "changed_only", is_flag=True, default=False,
              help="For an origin already scored: rescore only the series whose observations at or before it "
                   "changed since (late data, corrections; read from the observations' Change Data Feed); every "
                   "other forecast stays as it is. With no forecasts at that origin yet, scores every series.")
@common_options
def cli(job: JobContext, as_of: str | None, alias: str | None, version: int | None, shadow: bool,
        changed_only: bool) -> None:
    """Forecast every series with the live model and MERGE the forecasts into `forecasts`."""
    if alias is not None and version is not None:
        raise click.UsageError("give --alias or --version, not both")
    if shadow and (alias is not None or version is not None):
        raise click.UsageError("--shadow scores the champion and the challenger: give no --alias or --version")
    result = predict.run(job.spark, job.cfg, as_of=as_of, alias=alias, version=version, shadow=shadow,
                         changed_only=changed_only)
    print_summary("lakecast predict", result.summary())


if __name__ == "__main__":
    cli()
