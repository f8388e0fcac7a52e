"""`lakecast forget`: remove a data subject's series from every governed table, snapshot and data file.

The flow (hash, DELETE, purge deletion vectors, VACUUM, snapshots, forget_log, MLflow runs,
record) is pipelines.flows.forget. Only salted hashes of the ids are stored or printed.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import print_rows, print_summary
from pipelines.flows import forget


@click.command("forget")
@click.option("--series", "series", multiple=True, metavar="ID", help="A series id to forget (repeatable).")
@click.option("--series-file", type=click.Path(exists=True, dir_okay=False), default=None, metavar="F",
              help="A file of series ids, one per line (# comments and blank lines ignored).")
@click.option("--reason", required=True, metavar="TEXT",
              help="Why (e.g. a request reference); stored in forget_log, so never the id itself.")
@common_options
def cli(job: JobContext, series: tuple[str, ...], series_file: str | None, reason: str) -> None:
    """Delete every row of the series (observations, quarantine, forecasts, ...) and the files holding them.

    Deletion vectors are purged and the tables VACUUMed with governance.forget_retention_hours
    (0: no data file keeps the series; time travel before the purge is gone). Audited by a
    salted hash in forget_log and job_runs. Re-running is a no-op.
    """
    ids = [*series, *(forget.read_series_file(series_file) if series_file else [])]
    if not any(s.strip() for s in ids):
        raise click.UsageError("no series to forget: give --series ID (repeatable) or --series-file F")
    out = forget.run(job.spark, job.cfg, ids, reason=reason)
    rows = [[t.table, t.rows_removed, "-" if t.delete_version is None else t.delete_version, t.purged_version]
            for t in out.tables]
    print_rows(["table", "rows removed", "DELETE version", "version after purge"], rows,
               title="nothing to forget: no rows of these series are left" if out.nothing_to_forget
               else "lakecast forget")
    print_summary("lakecast forget", {
        "series (salted hash)": "\n".join(out.hashes),
        "rows removed": out.rows_removed,
        "training snapshots removed": len(out.snapshots_removed),
        "retention (hours)": job.cfg.governance.forget_retention_hours,
        "forget_log version": out.forget_log_version,
        "job run": out.job_run_id,
    })
    if out.trained_runs:
        click.echo(f"{len(out.trained_runs)} MLflow run(s) were trained on observations that included these "
                   "series; their models and artifacts may reflect them. Delete or keep them (your decision):")
        for r in out.trained_runs:
            click.echo(f"  {r.run_id}  (observations version {r.observations_version}, {r.run_name})")


if __name__ == "__main__":
    cli()
