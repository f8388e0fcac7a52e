"""`lakecast sql`: the operator's SQL shell over the lakecast catalog."""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import console, print_rows
from pipelines.tables.sql_query import run_statement, use_database


@click.command("sql")
@click.argument("statement")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--limit", type=int, default=1000, show_default=True, help="Most rows printed.")
@common_options
def cli(job: JobContext, statement: str, fmt: str, limit: int) -> None:
    """Run a Spark SQL STATEMENT (query, DML or DDL) against the catalog and print the result.

    The current database is the lakecast one, so `select * from forecasts_latest` works.
    """
    spark = job.spark
    use_database(spark, job.cfg.catalog.database)
    try:
        cols, rows, cut = run_statement(spark, statement, limit)
    except Exception as e:  # noqa: BLE001 - Spark's analysis/parse errors, shown without a trace
        msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise click.ClickException(f"SQL failed: {msg}") from None
    if cols:
        print_rows(cols, rows, fmt)
        if cut:
            console.print(f"[yellow](first {limit} rows shown; use --limit to see more)[/yellow]",
                          highlight=False) if fmt == "table" else None
    elif fmt == "table":
        console.print("OK")


if __name__ == "__main__":
    cli()
