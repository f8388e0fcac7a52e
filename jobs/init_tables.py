"""`lakecast init`: create the governed tables and views; report drift. Idempotent."""

from __future__ import annotations

from typing import Any

import click

from conf import LakecastConfig
from conf.errors import SchemaDriftError
from jobs.context import JobContext, common_options
from jobs.output import print_rows
from pipelines.tables.specs import TableStatus, ensure_tables


def run(spark: Any, cfg: LakecastConfig) -> list[TableStatus]:
    """Create what is missing; raise SchemaDriftError listing every drifted table."""
    statuses = ensure_tables(spark, cfg)
    drifted = [s for s in statuses if s.status == "drifted"]
    if drifted:
        lines = [f"{s.table}: {p}" for s in drifted for p in s.problems]
        raise SchemaDriftError(
            "schema drift (tables were left unchanged; migrate them or use a new database):\n  "
            + "\n  ".join(lines)
        )
    return statuses


@click.command("init")
@common_options
def cli(job: JobContext) -> None:
    """Create the lakecast database, tables and views (safe to re-run)."""
    statuses = run(job.spark, job.cfg)
    print_rows(["table", "status"], [(s.table, s.status) for s in statuses], title="lakecast init")


if __name__ == "__main__":
    cli()
