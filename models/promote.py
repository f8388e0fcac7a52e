"""The promotion rule for the `champion` alias, and its record on the model versions.

Rule: the challenger becomes champion only when, on the same most recent backtest windows,
its MASE beats the champion's by `promote.mase_margin` (relative: challenger <= champion ×
(1 - margin)) AND beats the seasonal naive forecast. Otherwise the champion stays. A pinned
version (`lakecast promote --version N`) skips the rule on purpose (rollback). `--by live` applies
the same rule to the live accuracy of both versions on the targets both were shadow-scored on. The alias is
only ever moved (one atomic update), never removed, so there is always a champion once a
version exists. No Spark here: the job hands in the windows as arrays.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from conf import LakecastConfig
from conf.errors import PromotionRefusedError
from models import registry
from models.arrays import WindowArrays
from models.evaluate import MODEL, SEASONAL_NAIVE, Backtest, backtest
from models.lakecast_forecaster.predictor import Predictor
from models.registry import CHAMPION, ModelRef

log = logging.getLogger(__name__)

PROMOTED, KEPT, PINNED, UNCHANGED, NO_CHAMPION = "promoted", "kept", "pinned", "unchanged", "no_champion"
TAG = "promotion"


@dataclass(frozen=True)
class Decision:
    """What promote did and why; `facts` are stored as `promotion.*` tags on the version."""

    outcome: str                 # promoted | kept | pinned | unchanged | no_champion
    champion: str                # the champion version after the decision
    previous_champion: str | None
    candidate: str               # the version that was considered (challenger or pinned)
    reason: str
    facts: dict[str, str] = field(default_factory=dict)

    @property
    def moved(self) -> bool:
        return self.champion != self.previous_champion


def rule(challenger_mase: float, champion_mase: float, seasonal_naive_mase: float, margin: float,
         ) -> tuple[bool, str]:
    """(promote?, why) for MASE values measured on the same windows."""
    if not math.isfinite(challenger_mase):
        return False, "challenger MASE is undefined on these windows"
    needed = champion_mase * (1.0 - margin) if math.isfinite(champion_mase) else math.inf
    beats_champion = challenger_mase <= needed
    beats_snaive = challenger_mase < seasonal_naive_mase
    ok_base = math.isfinite(champion_mase) and champion_mase > 0
    gain = 1.0 - challenger_mase / champion_mase if ok_base else math.nan
    vs_champ = (f"MASE {challenger_mase:.4f} vs champion {champion_mase:.4f} "
                f"({gain:+.1%} better, needs {margin:.1%})")
    vs_snaive = f"seasonal naive {seasonal_naive_mase:.4f}"
    if beats_champion and beats_snaive:
        return True, f"{vs_champ} and beats {vs_snaive}"
    if not beats_champion:
        return False, f"not enough better than the champion: {vs_champ}"
    return False, f"does not beat {vs_snaive} (challenger {challenger_mase:.4f})"


@dataclass(frozen=True)
class Comparison:
    """Both versions scored on the same windows."""

    challenger: Backtest
    champion: Backtest
    n_windows: int
    first_origin: str
    last_origin: str

    def rows(self, challenger: ModelRef, champion: ModelRef) -> tuple[list[str], list[list[str]]]:
        cols = ["model", "version", "MASE", "MAE", "RMSE", "sMAPE %", "pinball",
                f"{self.challenger.interval}% coverage"]

        def row(name: str, version: str, m: dict[str, float]) -> list[str]:
            vals = [m["mase"], m["mae"], m["rmse"], m["smape"], m["pinball"], m["coverage"]]
            return [name, version, *["-" if not np.isfinite(v) else f"{v:.4g}" for v in vals]]

        return cols, [
            row("challenger", challenger.version, self.challenger.overall[MODEL]),
            row("champion", champion.version, self.champion.overall[MODEL]),
            row("seasonal naive", "-", self.challenger.overall[SEASONAL_NAIVE]),
        ]


def compare(challenger: Predictor, champion: Predictor, windows: WindowArrays, *, season: int) -> Comparison:
    """Score both predictors (and the baselines) on exactly the same windows: each reads their last
    steps up to its own width (`windows` are as wide as the wider model's; the two share a network
    lookback, which alone scales a window, so each gets exactly the windows it was built for)."""
    if len(windows) == 0:
        raise registry.RegistryError("no usable backtest windows to compare the models on; "
                                     "check promote.backtest_periods against the data")
    quantiles = challenger.meta.quantiles
    offset = windows.offset

    def run(p: Predictor) -> Backtest:
        X = windows.X[:, -p.meta.lookback:]
        return backtest(windows, p.predict(X, offset=offset), season=season, quantiles=quantiles,
                        floor=p.meta.floor, lookback=p.meta.network_lookback)

    a, b = run(challenger), run(champion)
    origins = windows.forecast_origin
    first = np.datetime_as_string(origins.min(), unit="m") if origins is not None else "?"
    last = np.datetime_as_string(origins.max(), unit="m") if origins is not None else "?"
    return Comparison(a, b, len(windows), first, last)


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def decide(cfg: LakecastConfig, challenger: ModelRef, champion: ModelRef, cmp: Comparison) -> Decision:
    """Apply the rule to a comparison (no registry change yet)."""
    ch, cm = cmp.challenger.mase(MODEL), cmp.champion.mase(MODEL)
    sn = cmp.challenger.mase(SEASONAL_NAIVE)
    ok, why = rule(ch, cm, sn, cfg.promote.mase_margin)
    facts = {
        "challenger_mase": f"{ch:.6g}", "champion_mase": f"{cm:.6g}", "seasonal_naive_mase": f"{sn:.6g}",
        "margin": f"{cfg.promote.mase_margin:g}", "windows": str(cmp.n_windows),
        "window_origins": f"{cmp.first_origin}..{cmp.last_origin}",
    }
    return Decision(PROMOTED if ok else KEPT, challenger.version if ok else champion.version,
                    champion.version, challenger.version, why, facts)


def decide_live(cfg: LakecastConfig, challenger: ModelRef, champion: ModelRef, *, n: int, origins: int,
                challenger_mase: float, champion_mase: float, seasonal_naive_mase: float,
                first_origin: str, last_origin: str) -> Decision:
    """The same rule on live accuracy: MASE on the `n` targets both versions were shadow-scored
    and evaluated on. Refuses (PromotionRefusedError) below `promote.min_live_targets`."""
    need = cfg.promote.min_live_targets
    if n < need:
        raise PromotionRefusedError(
            f"promote --by live: challenger v{challenger.version} and champion v{champion.version} of "
            f"{challenger.name!r} share {n} evaluated target(s) in forecast_accuracy, fewer than "
            f"promote.min_live_targets={need}; score both with `lakecast predict --shadow` on more origins "
            f"and run `lakecast evaluate` as the actuals arrive, or promote on the backtest (`--by backtest`)")
    ok, why = rule(challenger_mase, champion_mase, seasonal_naive_mase, cfg.promote.mase_margin)
    facts = {
        "basis": "live", "challenger_mase": f"{challenger_mase:.6g}", "champion_mase": f"{champion_mase:.6g}",
        "seasonal_naive_mase": f"{seasonal_naive_mase:.6g}", "margin": f"{cfg.promote.mase_margin:g}",
        "live_targets": str(n), "live_origins": str(origins), "window_origins": f"{first_origin}..{last_origin}",
    }
    return Decision(PROMOTED if ok else KEPT, challenger.version if ok else champion.version,
                    champion.version, challenger.version, f"live on {n} shared targets: {why}", facts)


def apply(cfg: LakecastConfig, decision: Decision, *, job_run_id: str | None = None) -> None:
    """Move `champion` if the decision says so; store the decision as tags on the candidate.

    The previous champion also gets a `promotion.replaced_by` tag when it is replaced.
    """
    if decision.moved:
        registry.set_alias(cfg, CHAMPION, decision.champion)
    tags = {f"{TAG}.decision": decision.outcome, f"{TAG}.reason": decision.reason, f"{TAG}.at": _now(),
            f"{TAG}.champion_before": decision.previous_champion or "none",
            f"{TAG}.champion_after": decision.champion,
            **{f"{TAG}.{k}": v for k, v in decision.facts.items()}}
    if job_run_id:
        tags[f"{TAG}.job_run_id"] = job_run_id
    registry.tag_version(cfg, decision.candidate, tags)
    if decision.moved and decision.previous_champion:
        registry.tag_version(cfg, decision.previous_champion, {f"{TAG}.replaced_by": decision.champion,
                                                               f"{TAG}.replaced_at": tags[f"{TAG}.at"]})
    log.info("promotion: %s (champion v%s -> v%s): %s", decision.outcome, decision.previous_champion,
             decision.champion, decision.reason)


def pin(cfg: LakecastConfig, version: str | int) -> Decision:
    """Decision to make `version` champion on purpose (rollback); it must exist."""
    ref = registry.resolve(cfg, version=version)
    current = registry.aliases(cfg).get(CHAMPION)
    if current == ref.version:
        return Decision(UNCHANGED, ref.version, current, ref.version,
                        f"version {ref.version} is already champion")
    return Decision(PINNED, ref.version, current, ref.version,
                    f"pinned by hand (lakecast promote --version {ref.version})")


def without_comparison(cfg: LakecastConfig, challenger: ModelRef) -> Decision | None:
    """The cases that need no scoring: no champion at all, or challenger already champion."""
    current = registry.aliases(cfg).get(CHAMPION)
    if current is None:
        return Decision(NO_CHAMPION, challenger.version, None, challenger.version,
                        "there was no champion: the challenger becomes champion so scoring has a live model")
    if current == challenger.version:
        return Decision(UNCHANGED, current, current, challenger.version,
                        f"challenger v{current} is already the champion")
    return None
