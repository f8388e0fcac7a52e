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
@click.option("--by", "by", type=click.Choice([promote.BACKTEST, promote.LIVE]), default=promote.BACKTEST,
              show_default=True,
              help="What the rule is applied to: the newest backtest windows, or the live accuracy of both "
                   "versions on the targets both were shadow-scored on (`predict --shadow`, then `evaluate`; "
                   "at least promote.min_live_targets of them).")
@common_options
def cli(job: JobContext, version: int | None, as_of: str | None, by: str) -> None:
    """Compare challenger and champion; promote the challenger if it wins.

    It must beat the champion's MASE by promote.mase_margin AND beat the seasonal naive, on the
    latest backtest windows (default) or on their shared live targets (--by live).
    """
    if version is not None and by == promote.LIVE:
        raise click.UsageError("--version pins a version without the rule: give --version or --by live, not both")
    out = promote.run(job.spark, job.cfg, version, as_of, by=by)
    if out.live is not None and out.challenger and out.champion:
        lv = out.live
        print_rows(["model", "version", "live MASE"], [
            ["challenger", out.challenger.version, f"{lv.challenger_mase:.4g}"],
            ["champion", out.champion.version, f"{lv.champion_mase:.4g}"],
            ["seasonal naive", "-", f"{lv.seasonal_naive_mase:.4g}"]],
            title=f"live accuracy on {lv.n} shared targets ({lv.origins} origins {lv.first_origin} .. "
                  f"{lv.last_origin})")
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
