"""A setting against the defaults at several holdout origins, both measured in one run (`--compare`).

One origin per set cannot choose a blend rule on short series: on the six one-series monthly sets
the local split's share at 0 was 4.2 % better at the holdout and 6.6 % worse one horizon earlier
(bench/RESULTS.md, "The local split and the number of series"). So a candidate setting is run beside
the baseline at each origin, and what decides is the geometric mean of the per-pair ratios over all
set-and-origin pairs, with how many pairs got better and the worst one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from bench._accuracy_report import Row


@dataclass(frozen=True)
class Pair:
    """One dataset at one origin (`earlier` horizons before the holdout's end), baseline and candidate."""

    dataset: str
    earlier: int
    base: Row
    cand: Row

    @property
    def mase_ratio(self) -> float:
        return self.cand.mase / self.base.mase

    @property
    def pinball_ratio(self) -> float:
        return self.cand.pinball / self.base.pinball


@dataclass(frozen=True)
class Summary:
    """The candidate over the baseline across pairs: geometric means of the ratios minus 1."""

    pairs: int
    mase_change: float
    pinball_change: float
    better: int  # pairs whose MASE fell
    worse: int   # pairs whose MASE rose
    worst: Pair


def _gmean_change(ratios: list[float]) -> float:
    return math.exp(sum(math.log(r) for r in ratios) / len(ratios)) - 1.0


def summarise(pairs: list[Pair]) -> Summary:
    """What decides: the geometric mean change of MASE and of the scaled pinball loss over `pairs`
    (each pair counts once, whatever its size or scale), the pairs better and worse, the worst."""
    usable = [p for p in pairs if p.base.mase > 0 and p.cand.mase > 0 and p.base.pinball > 0 and p.cand.pinball > 0]
    if not usable:
        raise ValueError("no set-and-origin pair with a positive MASE and pinball loss on both sides to compare")
    return Summary(pairs=len(usable), mase_change=_gmean_change([p.mase_ratio for p in usable]),
                   pinball_change=_gmean_change([p.pinball_ratio for p in usable]),
                   better=sum(p.mase_ratio < 1.0 for p in usable), worse=sum(p.mase_ratio > 1.0 for p in usable),
                   worst=max(usable, key=lambda p: p.mase_ratio))


def origin_label(earlier: int) -> str:
    return "holdout" if earlier == 0 else f"-{earlier} h"


def table(pairs: list[Pair]) -> str:
    """The pairs as a markdown table (for bench/RESULTS.md and the console)."""
    lines = ["| set | origin | MASE, baseline → candidate | scaled pinball | coverage |", "|---|---|---|---|---|"]
    for p in pairs:
        lines.append(f"| {p.dataset} | {origin_label(p.earlier)} | {p.base.mase:.3f} → {p.cand.mase:.3f} "
                     f"({100 * (p.mase_ratio - 1):+.1f} %) | {p.base.pinball:.3f} → {p.cand.pinball:.3f} | "
                     f"{p.base.coverage:.3f} → {p.cand.coverage:.3f} |")
    return "\n".join(lines)


def result_lines(s: Summary) -> list[str]:
    return [f"RESULT compare_pairs={s.pairs}",
            f"RESULT compare_mase_gmean_change={s.mase_change:+.4f}",
            f"RESULT compare_pinball_gmean_change={s.pinball_change:+.4f}",
            f"RESULT compare_better={s.better}",
            f"RESULT compare_worse={s.worse}",
            f"RESULT compare_worst={s.worst.dataset}@{origin_label(s.worst.earlier).replace(' ', '')}:"
            f"{s.worst.mase_ratio - 1:+.4f}"]
