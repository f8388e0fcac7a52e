"""`lakecast metastore init-schema`: load the Hive schema into an empty PostgreSQL database.

Run once per team before the first job on `catalog.metastore: postgres`; idempotent.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
from pathlib import Path
from typing import TYPE_CHECKING

import click

from conf import LakecastConfig
from jobs._cli.context import JobContext, common_options
from jobs._cli.output import print_rows
from pipelines.tooling.metastore_schema import SCHEMA_DIR, MetastoreError, SchemaStatus, init_schema

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


def run(spark: SparkSession, cfg: LakecastConfig, scripts_dir: Path = SCHEMA_DIR) -> SchemaStatus:
    """Create the schema through this session's JVM, or report the one already there."""
    return init_schema(spark.sparkContext._gateway, cfg, scripts_dir)


@click.group("metastore")
def cli() -> None:
    """The PostgreSQL-backed Hive metastore that lets many jobs run at once."""


@cli.command("init-schema")
@click.option("--scripts", type=click.Path(file_okay=False, exists=True, path_type=Path),
              default=None, help=f"Directory of the schema scripts (default: {SCHEMA_DIR}).")
@common_options
def init_schema_cli(job: JobContext, scripts: Path | None) -> None:
    """Create the Hive 2.3 schema in catalog.jdbc_url (safe to re-run).

    Example: lakecast metastore init-schema --conf conf/cluster.yaml
    """
    if job.cfg.catalog.metastore != "postgres":
        raise MetastoreError(
            "catalog.metastore is 'derby' (embedded, created on first use); init-schema is for a "
            "PostgreSQL metastore: pass --conf conf/cluster.yaml or --set catalog.metastore=postgres "
            "--set catalog.jdbc_url=jdbc:postgresql://HOST:5432/DB"
        )
    status = run(job.spark, job.cfg, scripts or SCHEMA_DIR)
    print_rows(["database", "status", "schema version", "tables"],
               [(job.cfg.catalog.jdbc_url, status.status, status.version, status.tables)],
               title="lakecast metastore init-schema")


if __name__ == "__main__":
    cli()
