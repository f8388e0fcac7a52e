"""The `lakecast` command: one subcommand per job module in this package."""

from __future__ import annotations

import importlib

import click

# Each module holds one job: its `run(...)` and its click command `cli`.
COMMAND_MODULES = (
    "jobs.init_tables",
    "jobs.sql",
    "jobs.demo",
    "jobs.ingest",
    "jobs.generate",
    "jobs.datasets",
    "jobs.predict",
    "jobs.train", "jobs.promote",
    "jobs.spark_conf", "jobs.metastore", "jobs.sql_server",
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lakecast")
def main() -> None:
    """lakecast: batch forecasting on a Delta lakehouse with Spark, PyTorch and MLflow.

    Every command takes --conf FILE and --set key=value; LAKECAST_HOME picks the home
    (catalog, warehouse, MLflow store, JAR cache).
    """


for _name in COMMAND_MODULES:
    _cmd = importlib.import_module(_name).cli
    main.add_command(_cmd)


if __name__ == "__main__":
    main()
