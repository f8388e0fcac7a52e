"""Printing results for people (rich tables) and for machines (csv, json)."""

from __future__ import annotations

import csv
import json
import sys
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from models.evaluate import Backtest

console = Console()


def print_rows(columns: Sequence[str], rows: Sequence[Sequence[Any]], fmt: str = "table",
               title: str | None = None) -> None:
    if fmt == "csv":
        w = csv.writer(sys.stdout, lineterminator="\n")  # as `psql --csv`: scripts compare values
        w.writerow(columns)
        w.writerows([["" if v is None else v for v in r] for r in rows])
    elif fmt == "json":
        print(json.dumps([dict(zip(columns, r, strict=True)) for r in rows], default=str, indent=1))
    else:
        # Text, not str: a value or title holding brackets ("[datasets]", "[1, 2]") is data, not markup.
        t = Table(title=None if title is None else Text(title), show_lines=False)
        for c in columns:
            t.add_column(str(c), overflow="fold")
        for r in rows:
            t.add_row(*[Text("NULL" if v is None else str(v)) for v in r])
        console.print(t)


def print_summary(title: str, facts: Mapping[str, Any]) -> None:
    t = Table(title=Text(title), show_header=False)
    t.add_column("what", style="bold")
    t.add_column("value")
    for k, v in facts.items():
        t.add_row(Text(str(k)), Text(str(v)))
    console.print(t)


def print_backtest(bt: Backtest, title: str) -> None:
    """The backtest's metrics per forecaster, then per horizon step."""
    cols, rows = bt.table()
    print_rows(cols, rows, title=title)
    cols, rows = bt.step_table()
    print_rows(cols, rows, title="per horizon step")
