"""`lakecast demo`: the main job end to end on generated data and the embedded defaults.

The flow (init, generate, ingest, train, promote, predict, the held-back day arriving and
evaluated, predict again, the accuracy report, query) is pipelines.flows.demo;
this module prints what it reports between the stages.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import click

from jobs._cli.context import JobContext, common_options
from jobs._cli.output import console, print_backtest, print_rows, print_summary
from pipelines.flows import demo

if TYPE_CHECKING:
    from models.evaluate import Backtest


class ConsoleReport:
    """The demo's progress on the terminal: a rule per stage, then its tables."""

    def stage(self, n: int, total: int, title: str) -> None:
        console.rule(f"[bold]{n}/{total} {title}")

    def note(self, text: str) -> None:
        console.print(text)

    def facts(self, title: str, facts: Mapping[str, Any]) -> None:
        print_summary(title, facts)

    def backtest(self, bt: Backtest, title: str) -> None:
        print_backtest(bt, title)

    def rows(self, title: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        print_rows(columns, rows, title=title)


@click.command("demo")
@click.option("--series", type=click.IntRange(min=1), default=20, show_default=True,
              help="Number of generated series.")
@click.option("--days", type=click.IntRange(min=30), default=90, show_default=True,
              help="Days of hourly history per series.")
@click.option("--seed", type=int, default=0, show_default=True, help="Sample seed.")
@common_options
def cli(job: JobContext, series: int, days: int, seed: int) -> None:
    """Run the whole pipeline on generated data: init, ingest, train, promote, predict, evaluate, report, query.

    The sample's last day is held back and ingested after the first forecasts, as actuals that
    arrive: `lakecast evaluate` holds the forecasts to account against it (forecast_accuracy),
    predict runs again from the newest data, and the accuracy report is written to
    $LAKECAST_HOME/report.html.
    """
    facts = demo.run(job.spark, job.cfg, ConsoleReport(), series=series, days=days, seed=seed)
    print_summary("lakecast demo: done", facts)
    console.print(f'query it from another shell: lakecast sql "SELECT * FROM '
                  f'{job.cfg.table("forecasts_latest")} LIMIT 10"')


if __name__ == "__main__":
    cli()
