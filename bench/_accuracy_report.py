"""The "Accuracy against statistical methods" section of bench/RESULTS.md, written by the benchmark.

A run replaces the table rows and RESULT lines of the datasets it ran and keeps the others,
so `--datasets pedestrian` does not erase the monthly results.
"""

from __future__ import annotations

import re
import sys
from dataclasses import dataclass
from pathlib import Path

TITLE = "## Accuracy against statistical methods"
HEADER = ("| dataset | data | method | MASE | sMAPE % | scaled pinball | p10–p90 coverage | wall s | measured "
          "| note |\n|---|---|---|---:|---:|---:|---:|---:|---|---|")
PREAMBLE = """\
`python -m bench.accuracy_bench [--datasets aus_retail,tourism] [--max-series N]` (part of
`make bench`, which installs the benchmark-only extra `statsforecast`). For each dataset of
`lakecast datasets list`, the last h steps of every series are held out (h: yearly 6, monthly 18
and quarterly 8 as in M4, hourly 48 as in M4, half-hourly 48 = one day); series that do not reach
the dataset's last step are left out (4 of aus_retail's 152, 16 of global_gdp's 256). lakecast runs through its own
commands in a fresh `LAKECAST_HOME` (ingest, train, predict `--as-of` the holdout origin; the
forecasts read back with `lakecast sql --format csv`), given only `data.freq` and
`windows.horizon` (every step-counted setting is `auto`, as for a new user); its
wall time is the three commands, JVM start-ups included. statsforecast's AutoETS, AutoARIMA,
AutoTheta and SeasonalNaive (season length from `conf/freq.py`, `n_jobs` = cores) are fitted
on the same training parts, each timed on its own, with 80 % intervals as p10/p90; AutoARIMA
searches approximately where R's `auto.arima` does by default (series over 150 steps or a
season over 12: aus_retail and the sub-daily sets), as the exact search took over 5 CPU-seconds
per monthly series here.
lakecast sees all history; for the sub-daily sets statsforecast sees the last 8 weeks
(pedestrian) or 4 weeks (vic_elec), since seasonal AutoARIMA on years of hourly data takes hours
(statsforecast's AutoETS has no seasonal model beyond a season of 24, so on vic_elec it is non-seasonal).
A series too short for a method (AutoETS refuses a few points) gets statsforecast's naive
fallback (`fallback_model=Naive()`).

Metrics, averaged over series with equal weight (`bench/_accuracy_metrics.py`): MASE (scale:
the in-sample seasonal naive MAE of each series' training part), sMAPE (M4's, in percent),
scaled pinball (mean pinball loss over p10/p50/p90 divided by the same scale), and p10–p90
coverage (share of held-out points inside; 0.80 is calibrated). A series lakecast skips (fewer
steps than `windows.min_history`, or stale) gets the seasonal naive forecast; the note says how many.
`mase_vs_best_stat` is lakecast's MASE over the best of AutoETS, AutoARIMA and AutoTheta
(below 1.0: lakecast wins). Figures from the shared 2-core development machine.
"""


@dataclass(frozen=True)
class Row:
    dataset: str
    data: str
    method: str
    mase: float
    smape: float
    pinball: float
    coverage: float
    seconds: float
    note: str = ""

    def markdown(self, measured: str) -> str:
        name = f"**{self.method}**" if self.method == "lakecast" else self.method
        return (f"| {self.dataset} | {self.data} | {name} | {self.mase:.3f} | {self.smape:.2f} | "
                f"{self.pinball:.3f} | {self.coverage:.3f} | {self.seconds:.1f} | {measured} | {self.note} |")


def _section(text: str) -> tuple[int, int]:
    """Start and end offsets of the section in RESULTS.md (end of file when it is last)."""
    start = text.find(TITLE)
    if start < 0:
        return len(text), len(text)
    nxt = re.search(r"^## ", text[start + len(TITLE):], flags=re.M)
    return start, start + len(TITLE) + nxt.start() if nxt else len(text)


def recorded_rows(path: Path, dataset: str) -> list[tuple[Row, str]]:
    """The rows a full run recorded for `dataset` in the section, each with the date it was measured:
    what `--lakecast-only` compares a new lakecast run against (statsforecast's figures depend only
    on the split, which a full run and a plain `--lakecast-only` run share)."""
    text = path.read_text() if path.exists() else ""
    start, end = _section(text)
    out = []
    for ln in text[start:end].splitlines():
        cells = [c.strip() for c in ln.split("|")[1:-1]]
        if not cells or cells[0] != dataset:
            continue
        try:
            if len(cells) != 10:
                raise ValueError(f"{len(cells)} cells, not 10")
            mase, smape, pinball, coverage, seconds = (float(c) for c in cells[3:8])
        except ValueError as e:  # left out, and said: the comparison then lacks that method
            print(f"warning: {path.name}: a row of {dataset} left out ({e}): {ln[:100]}", file=sys.stderr)
            continue
        out.append((Row(cells[0], cells[1], cells[2].strip("*"), mase, smape, pinball, coverage, seconds,
                        note=cells[9]), cells[8]))
    return out


def update_results(path: Path, rows: list[Row], results: list[str], measured: str) -> None:
    text = path.read_text()
    start, end = _section(text)
    old = text[start:end]
    ran = {r.dataset for r in rows}
    kept_rows = [ln for ln in old.splitlines()
                 if ln.startswith("| ") and not ln.startswith(("| dataset", "|---"))
                 and ln.split("|")[1].strip() not in ran]
    kept_results = [ln for ln in old.splitlines() if ln.startswith("RESULT ")
                    and not any(ln.startswith(f"RESULT accuracy_{d}_") for d in ran)]
    table = kept_rows + [r.markdown(measured) for r in rows]
    body = (f"{TITLE}\n\n{PREAMBLE}\n{HEADER}\n" + "\n".join(table) + "\n\n```\n"
            + "\n".join(kept_results + results) + "\n```\n")
    sep = "" if start == 0 or text[:start].endswith("\n\n") else "\n" if text[:start].endswith("\n") else "\n\n"
    rest = text[end:]
    path.write_text(text[:start] + sep + body + ("\n" + rest if rest else ""))
