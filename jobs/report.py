"""`lakecast report OUT.html`: one self-contained page of live accuracy (opens without network access).

Live MASE and p10-p90 coverage over time per model version against seasonal naive, error by
horizon step, and the champion's worst series as fan charts; read from `forecast_accuracy`
(fill it with `lakecast evaluate`). The flow is pipelines.flows.report.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import console
from pipelines.flows import report


@click.command("report")
@click.argument("out", type=click.Path(dir_okay=False, writable=True), metavar="OUT.html")
@click.option("--worst", type=click.IntRange(min=0, max=50), default=6, show_default=True,
              help="How many of the champion's worst series to draw as fan charts.")
@common_options
def cli(job: JobContext, out: str, worst: int) -> None:
    """Write the live-accuracy report to OUT.html (self-contained: inline SVG, no script, no network)."""
    path = report.run(job.spark, job.cfg, out, worst=worst)
    console.print(f"wrote {path}")


if __name__ == "__main__":
    cli()
