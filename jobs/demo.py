"""`lakecast demo`: the main job end to end on the embedded defaults."""

from __future__ import annotations

import click

from jobs import init_tables
from jobs.context import JobContext, common_options
from jobs.output import console, print_rows
from jobs.sql import run as run_sql


@click.command("demo")
@common_options
def cli(job: JobContext) -> None:
    """Create the tables, then show what the catalog holds."""
    spark, cfg = job.spark, job.cfg
    console.rule("1/2 init")
    init_tables.run(spark, cfg)
    console.rule("2/2 query")
    cols, rows, _ = run_sql(spark, f"SHOW TABLES IN {cfg.catalog.database}", 100)
    print_rows(cols, rows)


if __name__ == "__main__":
    cli()
