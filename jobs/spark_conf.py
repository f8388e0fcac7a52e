"""`lakecast spark-conf`: lakecast's Spark settings as a properties file for spark-submit.

`spark-submit jobs/<job>.py` starts the driver JVM before any lakecast code runs, so the
Delta JARs, the metastore and the Python interpreter must reach spark-submit up front:

    lakecast spark-conf --conf conf/cluster.yaml --out lakecast.properties
    spark-submit --properties-file lakecast.properties jobs/predict.py \
        --conf conf/cluster.yaml --as-of 2024-05-01
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
from pathlib import Path

import click

from conf import LakecastConfig
from jobs._cli.context import JobContext, common_options
from pipelines.session.jars import ensure_jdbc_driver
from pipelines.session.submit import (
    properties_text,
    submit_properties,
    thrift_server_properties,
    write_properties,
)


def run(cfg: LakecastConfig, *, thrift: bool = False) -> dict[str, str]:
    """The settings spark-submit needs; fetches the metastore's JDBC driver if it is missing."""
    if cfg.catalog.metastore == "postgres":
        ensure_jdbc_driver(cfg)
    return thrift_server_properties(cfg) if thrift else submit_properties(cfg)


@click.command("spark-conf")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the properties file here (default: print it).")
@click.option("--thrift", is_flag=True,
              help="Settings for the Thrift SQL server (Delta JARs on the driver class path).")
@common_options
def cli(job: JobContext, out: Path | None, thrift: bool) -> None:
    """Print (or write with --out) a Spark properties file for `spark-submit --properties-file`."""
    settings = run(job.cfg, thrift=thrift)
    if out is None:
        click.echo(properties_text(settings), nl=False)
    else:
        write_properties(settings, out)
        click.echo(f"wrote {len(settings)} Spark settings to {out}", err=True)


if __name__ == "__main__":
    cli()
