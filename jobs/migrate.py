"""`lakecast migrate`: bring the governed tables of an existing home to the current schema and layout.

The flow (plan per table, rewrite for a layout change, ALTERs, job_runs) is
pipelines.flows.migrate; the comparison with the specs is pipelines.tables.migrate_plan.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import print_rows, print_summary
from pipelines.flows import migrate


@click.command("migrate")
@click.option("--dry-run", is_flag=True, help="Print the plan and change nothing.")
@common_options
def cli(job: JobContext, dry_run: bool) -> None:
    """Bring every governed table to the current spec in place (idempotent).

    Compares columns, partitioning, NOT NULL, CHECK constraints, comments and table properties
    with the specs; a partitioning or NOT NULL change rebuilds the table (REPLACE TABLE, then
    every row of the version before; counts checked, restored on a mismatch): run it while no
    other job uses the home. Recorded in job_runs. Differences it cannot fix without losing
    data are listed, and then nothing is changed.
    """
    out = migrate.run(job.spark, job.cfg, dry_run=dry_run)
    rows = [[s.table, type(s).__name__, s.problem] for s in out.steps]
    rows += [[b.split(": ", 1)[0], "cannot migrate", b.split(": ", 1)[1]] for b in out.blockers]
    title = ("nothing to migrate: every governed table matches its spec" if not rows
             else "lakecast migrate --dry-run (nothing changed)" if dry_run else "lakecast migrate")
    print_rows(["table", "step", "difference"], rows, title=title)
    if not dry_run and out.steps:
        print_summary("lakecast migrate", {
            **{f"{t} version": v for t, v in out.versions.items()},
            **{f"{t} rows kept": n for t, n in out.rows_rewritten.items()},
            "job run": out.job_run_id,
        })


if __name__ == "__main__":
    cli()
