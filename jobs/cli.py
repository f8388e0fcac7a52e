"""The `lakecast` command: one subcommand per job module in this package."""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import ast
import importlib
import importlib.util
from pathlib import Path

import click

# Command name -> the job module holding its click command `cli` (the work is in pipelines.flows).
# Modules load only when their command runs, so `lakecast --help` and `lakecast sql` do
# not pay for importing torch and MLflow.
COMMANDS = {
    "init": "jobs.init_tables",
    "migrate": "jobs.migrate",
    "sql": "jobs.sql",
    "demo": "jobs.demo",
    "generate": "jobs.generate",
    "datasets": "jobs.datasets",
    "ingest": "jobs.ingest",
    "train": "jobs.train",
    "promote": "jobs.promote",
    "predict": "jobs.predict",
    "backfill": "jobs.backfill",
    "evaluate": "jobs.evaluate",
    "report": "jobs.report",
    "forget": "jobs.forget",
    "spark-conf": "jobs.spark_conf",
    "metastore": "jobs.metastore",
    "sql-server": "jobs.sql_server",
    "driver": "jobs.driver",
}


def _short_help(module: str) -> str:
    """First line of the module docstring after its "`lakecast X`:" prefix, read without importing."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return ""
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    first = doc.strip().splitlines()[0] if doc.strip() else ""
    text = first.split("`: ", 1)[-1].rstrip(".")
    return text[:1].upper() + text[1:]


class LazyGroup(click.Group):
    """A group whose subcommands are imported on use."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        module = COMMANDS.get(cmd_name)
        if module is None:
            return None
        cmd = importlib.import_module(module).cli
        if not isinstance(cmd, click.Command) or cmd.name != cmd_name:
            raise RuntimeError(f"{module}.cli is not the click command {cmd_name!r}")
        return cmd

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        rows = [(name, _short_help(module)) for name, module in COMMANDS.items()]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="lakecast")
def main() -> None:
    """lakecast: batch forecasting on a Delta lakehouse with Spark, PyTorch and MLflow.

    Every command takes --conf FILE and --set key=value; LAKECAST_HOME picks the home
    (catalog, warehouse, MLflow store, JAR cache).
    """


if __name__ == "__main__":
    main()
