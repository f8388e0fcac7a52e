"""`lakecast generate`: write the deterministic hourly sample as files `lakecast ingest` takes.

It touches no table, so it starts no Spark (pyarrow writes the files) and records no job run.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import print_summary
from pipelines.tooling.sample_data import FORMATS, generate_sample


@click.command("generate")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--series", type=click.IntRange(min=1), default=50, show_default=True, help="Number of series.")
@click.option("--days", type=click.IntRange(min=1), default=60, show_default=True,
              help="Days of hourly data per series (ending 2025-01-01 UTC).")
@click.option("--seed", type=int, default=0, show_default=True, help="Random seed; same seed, same files.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="csv", show_default=True,
              help="File format.")
@common_options
def cli(job: JobContext, out_dir: str, series: int, days: int, seed: int, fmt: str) -> None:
    """Write a sample of SERIES hourly series over DAYS days into OUT_DIR (part files).

    The data has daily and weekly seasonality, trend, noise, level shifts, missing stretches
    and a few bad rows, which `lakecast ingest OUT_DIR` quarantines.
    """
    path = generate_sample(None, out_dir, series=series, days=days, seed=seed, fmt=fmt,
                           rows_per_file=job.cfg.ingest.sample_rows_per_file)
    print_summary("lakecast generate", {
        "folder": path, "series": series, "days": days, "rows (about)": series * days * 24,
        "format": fmt, "seed": seed, "next": f"lakecast ingest {path} --freq h",
    })


if __name__ == "__main__":
    cli()
