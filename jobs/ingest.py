"""`lakecast ingest`: validate a raw source into observations; quarantine what fails; account for all.

The flow (read, validate, count, MERGE, quarantine, check, record) is pipelines.flows.ingest.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, as_of_option, common_options
from jobs._cli.output import print_summary
from pipelines.flows import ingest
from pipelines.ingest.read import FORMATS


@click.command("ingest")
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Source format; by default from the file extensions (a folder with _delta_log is Delta).")
@click.option("--series-col", default=None, help="Series id column of the source (default: data.series_col).")
@click.option("--time-col", default=None, help="Timestamp column of the source (default: data.time_col).")
@click.option("--value-col", default=None, help="Value column of the source (default: data.value_col).")
@click.option("--freq", default=None, help="Series frequency, a pandas alias such as h, 15min, D, MS "
              "(default: data.freq).")
@as_of_option("The batch's logical time (ISO, UTC; a scheduler's date): rows later than T + "
              "data.max_future are quarantined as future_timestamp. Default: now.")
@common_options
def cli(job: JobContext, source: str, fmt: str | None, series_col: str | None, time_col: str | None,
        value_col: str | None, freq: str | None, as_of: str | None) -> None:
    """Validate SOURCE (a CSV/Parquet file, folder or glob, or a Delta path/table) into observations.

    Rows that fail validation go to the quarantine table with a reason; re-ingesting the same
    source changes nothing.
    """
    if freq is not None:
        from conf.freq import parse_freq

        try:
            parse_freq(freq)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--freq") from None
    result = ingest.run(job.spark, job.cfg, source, fmt=fmt, series_col=series_col, time_col=time_col,
                        value_col=value_col, freq=freq, as_of=as_of, create_tables=True)
    print_summary(f"lakecast ingest {source}", result.summary())


if __name__ == "__main__":
    cli()
