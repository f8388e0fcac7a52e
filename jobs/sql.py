"""`lakecast sql`: the operator's SQL shell over the lakecast catalog."""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import console, print_rows
from pipelines.session.spark_errors import format_spark_error
from pipelines.tables.sql_query import run_statement, use_database


@click.command("sql")
@click.argument("statement")
@click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
              show_default=True, help="Output format.")
@click.option("--limit", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Most rows printed; 0: no limit. A note on stderr says when rows were cut.")
@common_options
def cli(job: JobContext, statement: str, fmt: str, limit: int) -> None:
    """Run a Spark SQL STATEMENT (query, DML or DDL) against the catalog and print the result.

    The current database is the lakecast one, so `select * from forecasts_latest` works.
    """
    spark = job.spark
    use_database(spark, job.cfg.catalog.database)
    try:
        cols, rows, cut = run_statement(spark, statement, limit)
    except Exception as e:
        # Spark's error class and message on one line (a CHECK constraint's name and the
        # offending values); pyspark's JSON stack-trace line went to logs/spark-errors.log.
        msg = format_spark_error(e)
        if msg is None:
            raise
        raise click.ClickException(f"SQL failed: {msg}") from None
    if cols:
        print_rows(cols, rows, fmt)
        if cut:  # on stderr, so an export's stdout holds only rows, and the cut is never silent
            click.echo(f"lakecast sql: result cut at --limit {limit} rows; --limit 0 prints all", err=True)
    elif fmt == "table":
        console.print("OK")


if __name__ == "__main__":
    cli()
