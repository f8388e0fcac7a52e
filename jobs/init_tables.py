"""`lakecast init`: create the governed tables and views; report drift. Idempotent."""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import print_rows
from pipelines.flows import init_tables


@click.command("init")
@common_options
def cli(job: JobContext) -> None:
    """Create the lakecast database, tables and views (safe to re-run)."""
    statuses = init_tables.run(job.spark, job.cfg)
    print_rows(["table", "status"], [(s.table, s.status) for s in statuses], title="lakecast init")


if __name__ == "__main__":
    cli()
