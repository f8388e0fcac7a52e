"""`lakecast promote [--version N]`: decide which registered version is `champion`.

The flow (resolve both, backtest both on the newest windows, the rule, move the alias, record)
is pipelines.flows.promote.
"""

from __future__ import annotations

import jobs._script  # noqa: F401  - first: as a script, jobs/ must not shadow installed packages

# isort: split
import click

from jobs._cli.context import JobContext, as_of_option, common_options
from jobs._cli.output import print_rows, print_summary
from pipelines.flows import promote


@click.command("promote")
@click.option("--version", type=click.IntRange(min=1), default=None, metavar="N",
              help="Make version N champion on purpose (rollback), without the rule.")
@as_of_option("Backtest on the windows ending at T (ISO time, UTC); default: the latest data.")
@common_options
def cli(job: JobContext, version: int | None, as_of: str | None) -> None:
    """Score challenger and champion on the latest backtest windows; promote the challenger if it wins.

    It must beat the champion's MASE by promote.mase_margin AND beat the seasonal naive.
    """
    out = promote.run(job.spark, job.cfg, version, as_of)
    if out.comparison is not None and out.challenger and out.champion:
        cols, rows = out.comparison.rows(out.challenger, out.champion)
        c = out.comparison
        print_rows(cols, rows, title=f"backtest on {c.n_windows} most recent windows "
                                     f"(origins {c.first_origin} .. {c.last_origin})")
    d = out.decision
    print_summary("lakecast promote", {
        "decision": d.outcome, "reason": d.reason,
        "champion": f"v{d.previous_champion} -> v{d.champion}" if d.moved else f"v{d.champion} (unchanged)",
        "job run": out.job_run_id,
    })


if __name__ == "__main__":
    cli()
