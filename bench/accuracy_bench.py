"""Accuracy on real data: lakecast, through its own commands, against statsforecast's standards.

For each public dataset lakecast exports (`lakecast datasets list`), in one run on the same
splits: hold out the last h steps, run lakecast (fresh LAKECAST_HOME: ingest -> train ->
predict --as-of the holdout origin, forecasts read back with `lakecast sql`), and fit
AutoETS, AutoARIMA, AutoTheta and SeasonalNaive. Prints MASE, sMAPE, scaled pinball loss,
p10-p90 coverage and wall time per dataset and method, updates the "Accuracy against
statistical methods" section of bench/RESULTS.md (full runs only), and ends with
`RESULT accuracy_<dataset>_mase_vs_best_stat` and `RESULT accuracy_<dataset>_coverage`.

    python -m bench.accuracy_bench [--datasets aus_retail,tourism] [--max-series N] [--keep DIR] [--short F]
                                   [--set KEY=VALUE ...] [--earlier K] [--lakecast-only]
                                   [--compare KEY=VALUE ... [--origins N]]

`--set` passes a lakecast setting to every command (e.g. `model.statistical_blend_power=2`), to
try a setting on real data before making it a default; `--earlier K` holds out the horizon that
ends K horizons before the data's last step, to see whether one holdout's verdict holds at other
origins. Such runs, like `--short` and `--max-series`, are printed but not recorded in RESULTS.md.
`--lakecast-only` runs lakecast (and the seasonal naive forecast that stands in for a series it
skips) without statsforecast's Auto* methods and compares it with the rows a full run recorded in
RESULTS.md for the same split: an experiment with `--set` on m3_monthly then takes 5 minutes, not 16.
`--compare KEY=VALUE` (repeatable) runs lakecast twice per dataset and origin, once as given (the
defaults and `--set`) and once with the compared settings too, at the holdout and the `--origins N` - 1
origins a horizon apart before it (from the origin `--earlier K` picks), and ends with the pairs' table and
`RESULT compare_mase_gmean_change` (the candidate over the baseline, geometric mean over the
set-and-origin pairs), `compare_pinball_gmean_change`, `compare_better`, `compare_worse` and
`compare_worst`: what a setting is chosen on, measured in one run (statsforecast is not run).
A dataset lakecast cannot run (a command exits non-zero: a history too short for the horizon, say)
is reported with the command's last lines and skipped; the others still run, and the exit code is 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

from bench import _accuracy_compare as compare
from bench import _accuracy_lakecast as lakecast
from bench._accuracy_data import SETS, BenchSet, regular, split
from bench._accuracy_metrics import coverage, mase, scaled_pinball, seasonal_naive_scale, smape
from bench._accuracy_report import Row, recorded_rows, update_results
from bench._accuracy_stats import METHODS, STATISTICAL, fit_predict
from conf import ConfigError, load_config

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def _row(bs: BenchSet, method: str, n_series: int, y: np.ndarray, q: tuple[np.ndarray, ...],
         scale: np.ndarray, seconds: float, note: str = "") -> Row:
    p10, p50, p90 = q
    return Row(bs.name, f"{bs.freq}, h={bs.horizon}, {n_series} series", method, mase(y, p50, scale),
               smape(y, p50), scaled_pinball(y, [p10, p50, p90], scale), coverage(y, p10, p90), seconds, note)


class NoHoldout(RuntimeError):
    """The split left nothing to train on (an origin earlier than the data reaches)."""


def bench_dataset(bs: BenchSet, work: Path, max_series: int | None, short: float = 0.0,
                  extra: dict[str, str] | None = None, earlier: int = 0,
                  methods: tuple[str, ...] = METHODS) -> list[Row]:
    """lakecast's row and one per statistical method of `methods` (SeasonalNaive always: it stands in
    for a series lakecast skips)."""
    methods = tuple(dict.fromkeys((*methods, "SeasonalNaive")))
    home, log = work / "home", work / "lakecast.log"
    home.mkdir(parents=True)
    src = lakecast.export(bs.name, work / "export", home, log)
    # young series: between one and three horizons of history (the auto lookback is 2-4 horizons)
    sp = split(src, bs, max_series, short=short, short_steps=(bs.horizon, 3 * bs.horizon), earlier=earlier)
    if sp.train.empty:
        raise NoHoldout(f"{bs.name}: no series has a row before the origin {sp.origin:%Y-%m-%d} "
                        f"(--earlier {earlier}: the data does not reach that far back)")
    train_csv = work / f"{bs.name}_train.csv"
    out = sp.train.assign(ts=sp.train["ts"].dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    out.to_csv(train_csv, index=False)
    origin = sp.origin.strftime("%Y-%m-%dT%H:%M:%SZ")
    print(f"{bs.name}: {len(sp.series)} series, {len(sp.train):,} training rows, origin {origin}, "
          f"h={bs.horizon}, season {bs.season}", flush=True)
    scale = seasonal_naive_scale(sp.history, bs.season)

    stats = {}
    df = regular(sp.train, bs.freq, bs.stats_history)
    for m in methods:
        stats[m] = fit_predict(m, df, bs.freq, bs.season, bs.horizon, sp.series)
        print(f"  {m}: {stats[m].seconds:.1f} s", flush=True)

    lc = lakecast.run(train_csv, origin, sp.series, bs.horizon, {**bs.settings(), **(extra or {})}, home, log)
    # A series lakecast skipped (too short, stale) gets the seasonal naive forecast, so that
    # every method is scored on the same series; the note says how many.
    missing = np.isnan(lc.p50).any(axis=1)
    naive = stats["SeasonalNaive"]
    q = tuple(np.where(missing[:, None], getattr(naive, k), getattr(lc, k)) for k in ("p10", "p50", "p90"))
    note = f"{missing.sum()} series skipped -> seasonal naive; " if missing.any() else ""
    note += "ingest {ingest:.0f} s + train {train:.0f} s + predict {predict:.0f} s".format(**lc.seconds)
    rows = [_row(bs, "lakecast", len(sp.series), sp.actuals, q, scale, lc.wall, note)]
    for m in methods:
        s = stats[m]
        rows.append(_row(bs, m, len(sp.series), sp.actuals, (s.p10, s.p50, s.p90), scale, s.seconds))
    if sp.short.any():  # the young series alone: how lakecast does where its lookback is not filled
        young = sp.short
        print(f"  {young.sum()} series cut to {bs.horizon}-{3 * bs.horizon} steps; on them: "
              f"lakecast MASE {mase(sp.actuals[young], q[1][young], scale[young]):.3f} "
              f"({int(missing[young].sum())} skipped), " + ", ".join(
                  f"{m} {mase(sp.actuals[young], stats[m].p50[young], scale[young]):.3f}" for m in methods),
              flush=True)
    return rows


def print_table(rows: list[Row]) -> None:
    print(f"\n{'dataset':<11} {'method':<14} {'MASE':>7} {'sMAPE%':>7} {'sPinball':>8} {'cover':>6} {'wall s':>7}")
    for r in rows:
        print(f"{r.dataset:<11} {r.method:<14} {r.mase:7.3f} {r.smape:7.2f} {r.pinball:8.3f} "
              f"{r.coverage:6.3f} {r.seconds:7.1f}  {r.note}", flush=True)


def compare_recorded(name: str, data: str, recorded: list[tuple[Row, str]], same_split: bool) -> list[Row]:
    """What a `--lakecast-only` run is compared with: the rows a full run recorded for this split,
    printed; none (and why) where the split differs, nothing was recorded, the recorded rows
    describe other data (`data`: "MS, h=18, 617 series") or lack one of the statistical methods."""
    if not same_split:
        print(f"  {name}: another split than the recorded one (--max-series, --short or --earlier): "
              "no recorded figures to compare with", flush=True)
        return []
    if not recorded:
        print(f"  {name}: nothing recorded in {RESULTS.name} yet: run it once without --lakecast-only "
              "and --set", flush=True)
        return []
    other = sorted({r.data for r, _ in recorded} - {data})
    missing = [m for m in STATISTICAL if m not in {r.method for r, _ in recorded}]
    if other or missing:
        why = (f"they describe {', '.join(other)}, this run {data}" if other
               else f"{', '.join(missing)} not among them")
        print(f"  {name}: the rows recorded in {RESULTS.name} are not comparable ({why}): "
              "run it once without --lakecast-only and --set", flush=True)
        return []
    dates = ", ".join(sorted({d for _, d in recorded}))
    print(f"  {name}, as recorded in {RESULTS.name} (measured {dates}; the ratio below uses their MASE, "
          "rounded to 3 decimals):")
    rows = [r for r, _ in recorded]
    print_table(rows)
    return rows


def result_lines(rows: list[Row], recorded: dict[str, list[Row]] | None = None) -> list[str]:
    """The RESULT lines; the statistical methods from `recorded` (a dataset's recorded rows) where
    this run did not fit them (`--lakecast-only`); no MASE ratio unless all three are there."""
    out = []
    for name in dict.fromkeys(r.dataset for r in rows):
        mine = {r.method: r for r in rows if r.dataset == name}
        stat = {m: r.mase for m, r in mine.items() if m in STATISTICAL} or {
            r.method: r.mase for r in (recorded or {}).get(name, []) if r.method in STATISTICAL}
        if len(stat) == len(STATISTICAL):  # the best of all three, never of some
            out.append(f"RESULT accuracy_{name}_mase_vs_best_stat={mine['lakecast'].mase / min(stat.values()):.3f}")
        out.append(f"RESULT accuracy_{name}_coverage={mine['lakecast'].coverage:.3f}")
    return out


def run_compare(names: list[str], max_series: int | None, short: float, base: dict[str, str],
                candidate: dict[str, str], origins: range, keep: Path | None) -> int:
    """`--compare`: lakecast as given and with `candidate` on top, at each of `origins` (horizons
    before the last), pair by pair; statsforecast is not run (the pairs compare lakecast with itself).
    A set that cannot run at an origin is reported and left out, with its earlier origins."""
    pairs: list[compare.Pair] = []
    failed: list[str] = []
    with tempfile.TemporaryDirectory(prefix="lakecast-compare-") as tmp:
        root = keep or Path(tmp)
        for name in names:
            for k in origins:
                work, only = root / name / f"earlier{k}", ("SeasonalNaive",)  # [0]: lakecast's row
                try:  # the candidate first: a setting it cannot take fails before a baseline is spent
                    cand = bench_dataset(SETS[name], work / "candidate", max_series, short,
                                         {**base, **candidate}, k, only)[0]
                    base_row = bench_dataset(SETS[name], work / "base", max_series, short, base, k, only)[0]
                except (lakecast.LakecastFailed, NoHoldout) as e:  # a short set may not reach an earlier origin
                    failed.append(f"{name} ({compare.origin_label(k)})")
                    print(f"\n{name}, {compare.origin_label(k)}: {e}\n(its earlier origins are skipped too)\n",
                          flush=True)
                    break
                pairs.append(compare.Pair(name, k, base_row, cand))
                print(compare.table(pairs[-1:]).splitlines()[-1], flush=True)
    print(f"\ncandidate: {' '.join(f'{k}={v}' for k, v in candidate.items())}"
          + (f" (both sides: {' '.join(f'{k}={v}' for k, v in base.items())})" if base else ""))
    if failed:
        print(f"lakecast failed on {', '.join(failed)} (the errors are above; those pairs are left out)")
    if not pairs:
        return 1
    print(compare.table(pairs))
    try:
        summary = compare.summarise(pairs)
    except ValueError as e:
        print(f"\n{e}")
        return 1
    if summary.pairs < len(pairs):
        print(f"\n{len(pairs) - summary.pairs} pair(s) left out of the summary: a MASE or pinball loss of 0 or NaN")
    print("\n" + "\n".join(compare.result_lines(summary)))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m bench.accuracy_bench", description=__doc__.splitlines()[0])
    ap.add_argument("--datasets", default=",".join(SETS), help=f"comma-separated, of {', '.join(SETS)}")
    ap.add_argument("--max-series", type=int, default=None, help="a random subset of N series (quick run)")
    ap.add_argument("--keep", type=Path, default=None, help="work in DIR and keep it (homes, logs)")
    ap.add_argument("--short", type=float, default=0.0,
                    help="cut this share of series to 1-3 horizons of history (young series); not recorded")
    ap.add_argument("--set", dest="sets", action="append", default=[], metavar="KEY=VALUE",
                    help="a lakecast setting for every command of every dataset (repeatable); not recorded")
    ap.add_argument("--earlier", type=int, default=0, metavar="K",
                    help="hold out the horizon that ends K horizons before the data's last step (another "
                    "origin); not recorded")
    ap.add_argument("--lakecast-only", action="store_true",
                    help="skip statsforecast's Auto* methods; compare with the rows RESULTS.md holds for the "
                    "same split; not recorded")
    ap.add_argument("--compare", dest="compare", action="append", default=[], metavar="KEY=VALUE",
                    help="a candidate setting (repeatable): lakecast with and without it at each origin, "
                    "compared pair by pair; not recorded")
    ap.add_argument("--origins", type=int, default=1, metavar="N",
                    help="with --compare: N origins a horizon apart, from the one --earlier K picks (the "
                    "holdout by default) back")
    a = ap.parse_args(argv)
    bad = [x for x in a.sets + a.compare if "=" not in x or not x.split("=", 1)[0]]
    if bad:
        ap.error(f"--set and --compare take KEY=VALUE (e.g. model.statistical_blend_power=2), got {', '.join(bad)}")
    if a.origins < 1 or (a.origins > 1 and not a.compare):
        ap.error(f"--origins N takes N >= 1, with --compare (got {a.origins})")
    if a.earlier < 0:
        ap.error(f"--earlier K takes K >= 0 horizons before the data's last step (got {a.earlier})")
    extra = dict(x.split("=", 1) for x in a.sets)
    names = [n.strip() for n in a.datasets.split(",") if n.strip()]
    unknown = [n for n in names if n not in SETS]
    if unknown:
        ap.error(f"unknown dataset(s) {', '.join(unknown)}; choose from {', '.join(SETS)}")
    if a.compare:
        try:  # a key or value lakecast would refuse, before any dataset is exported
            load_config(None, [*a.sets, *a.compare], env={})
        except ConfigError as e:
            ap.error(f"--set / --compare: {e}")
        return run_compare(names, a.max_series, a.short, extra, dict(x.split("=", 1) for x in a.compare),
                           range(a.earlier, a.earlier + a.origins), a.keep)
    rows: list[Row] = []
    failed: list[str] = []  # each one's error is printed when it happens
    methods = ("SeasonalNaive",) if a.lakecast_only else METHODS
    # the recorded split is the default one: only then are the recorded statistical figures comparable
    same_split = a.max_series is None and not a.short and not a.earlier
    recorded = {n: recorded_rows(RESULTS, n) for n in names} if a.lakecast_only and same_split else {}
    compared: dict[str, list[Row]] = {}  # the recorded rows each --lakecast-only dataset is compared with
    with tempfile.TemporaryDirectory(prefix="lakecast-accuracy-") as tmp:
        root = a.keep or Path(tmp)
        for name in names:
            try:
                mine = bench_dataset(SETS[name], root / name, a.max_series, a.short, extra, a.earlier, methods)
            except (lakecast.LakecastFailed, NoHoldout) as e:  # one set lakecast cannot run must not cost the rest
                failed.append(name)
                print(f"\n{name}: {e}\n", flush=True)
                continue
            rows += mine
            print_table(mine)
            if a.lakecast_only:
                compared[name] = compare_recorded(name, mine[0].data, recorded.get(name, []), same_split)
            elif same_split and not extra:  # after each dataset: keep what it finished
                update_results(RESULTS, mine, result_lines(mine), datetime.now(UTC).strftime("%Y-%m-%d"))
                print(f"updated {RESULTS}", flush=True)
    print_table(rows)
    print("\n" + "\n".join(result_lines(rows, compared)))
    if failed:
        print(f"\nlakecast failed on {', '.join(failed)} (the errors are above; nothing recorded for them)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
