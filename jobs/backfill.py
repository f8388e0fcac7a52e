"""`lakecast backfill --start T1 --end T2 [--every 1d] [--force]`: predict over a range of as-of times, resumably.

The flow (one pinned model, skip what it already scored, one MERGE per time) is pipelines.flows.backfill.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import print_summary
from pipelines.flows import backfill


@click.command("backfill")
@click.option("--start", required=True, metavar="T1", help="First as-of time (ISO, UTC).")
@click.option("--end", required=True, metavar="T2", help="Last as-of time, inclusive (ISO, UTC).")
@click.option("--every", default="1d", show_default=True,
              help="Step between as-of times: 1d, 6h, 30min, 1W, 1MS ...")
@click.option("--force", is_flag=True, help="Rescore times already scored by the same model version.")
@click.option("--alias", default=None, help="Registry alias to score with (default: champion).")
@click.option("--version", "version", type=int, default=None,
              help="A fixed model version instead of an alias.")
@common_options
def cli(job: JobContext, start: str, end: str, every: str, force: bool, alias: str | None,
        version: int | None) -> None:
    """Run predict for every as-of time from T1 to T2; safe to interrupt and re-run.

    Times already scored by the same model version are skipped unless --force.
    """
    if alias is not None and version is not None:
        raise click.UsageError("give --alias or --version, not both")
    backfill.parse_every(every)  # a bad step fails before Spark starts
    result = backfill.run(job.spark, job.cfg, start=start, end=end, every=every, force=force, alias=alias,
                          version=version)
    print_summary("lakecast backfill", result.summary())


if __name__ == "__main__":
    cli()
