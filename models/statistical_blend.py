"""Fit the statistical blend of a trained model on its validation windows (at training time).

The blend itself (`lakecast_forecaster.blend`) travels inside the model and is applied by
`Predictor.predict` before the interval calibration; this module predicts the validation
windows once with the network alone, fits the per-step shares and reports the validation
error of the network, of each statistical member and of the blend, so MLflow shows what the
blend bought.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

from models.intervals import MAX_WINDOWS, Sample, sample_windows
from models.lakecast_forecaster.blend import BlendFit, fit_blend
from models.lakecast_forecaster.lstm import LSTMForecaster
from models.lakecast_forecaster.padding import leading_padding
from models.lakecast_forecaster.predictor import ModelMeta, Predictor
from models.lakecast_forecaster.statistical import MEMBERS, RECENT_MEMBERS, RECENT_SUFFIX
from models.train import WindowSource

log = logging.getLogger(__name__)

def _fmt(ws: tuple[float, ...]) -> str:
    return ",".join(f"{w:.3f}" for w in ws)


@dataclass(frozen=True)
class BlendReport:
    """What `fit` found, as MLflow params and metrics."""

    fit: BlendFit

    def params(self) -> dict[str, str]:
        b = self.fit.blend
        return {"blend.network_weights": _fmt(b.network),
                **{f"blend.{name}_weights": _fmt(ws) for name, ws in b.members.items()},
                "blend.season": str(b.season), "blend.n_val_windows": str(self.fit.n_windows),
                "blend.local": str(b.local), "blend.power": str(b.power), "blend.recent": str(b.recent)}

    def metrics(self) -> dict[str, float]:
        return {f"val_mae_{name}": v for name, v in self.fit.mae.items()}


def fit(module: LSTMForecaster, meta: ModelMeta, val: WindowSource, *, season: int, device: str = "cpu",
        max_windows: int = MAX_WINDOWS, seed: int = 0,
        history: Sample | None = None, local: float = 0.0,
        power: float = 1.0, skip: tuple[str, ...] = (), recent: int = 0) -> tuple[ModelMeta, BlendReport]:
    """`meta` with the statistical blend fitted on (a sample of) `val`, and the validation errors;
    `history` (training windows, `intervals.sample_history`) also informs how the members split their share;
    `local` is how much of that split each window takes from its own backtest; `power` the exponent
    on inverse squared error of every share; `skip`: members left out of this model's blend; `recent`:
    the last steps of each window from which the members whose forecast depends on how far back they
    read also forecast (`statistical.RECENT_MEMBERS`; `conf.auto_steps.recent_steps`), where the
    windows are wider than that (0: none)."""
    unknown = set(skip) - set(MEMBERS)
    if unknown:
        raise ValueError(f"unknown statistical members to skip: {sorted(unknown)} (members: {list(MEMBERS)})")
    members = tuple(m for m in MEMBERS if m not in skip)
    if recent < 0:
        raise ValueError(f"recent: steps the recent forms read must be 0 or more, got {recent}")
    steps = recent if recent < meta.lookback else 0
    if steps:
        members += tuple(m + RECENT_SUFFIX for m in members if m + RECENT_SUFFIX in RECENT_MEMBERS)
    X, y, offset = sample_windows(val, max_windows, seed)
    raw = Predictor(module, replace(meta, blend=None, calibration=None), device=device).predict(X)
    hist = None if history is None else (history[0][:, :, 0], history[1], leading_padding(history[0]), history[2])
    result = fit_blend(raw, X[:, :, 0], y, season, members=members, pad=leading_padding(X), history=hist,
                       local=local, power=power, offset=offset, recent=steps)
    b = result.blend
    log.info("statistical blend (power %g, local %g%s) on %d validation windows: shares network %s, %s; "
             "validation MAE (scaled) %s", b.power, b.local,
             f", recent members on the last {b.recent} steps" if b.recent else "", result.n_windows,
             _fmt(b.network[:1]) + ("" if len(set(b.network)) == 1 else " (step 1)"),
             ", ".join(f"{k} {_fmt(v[:1])}" for k, v in b.members.items()),
             ", ".join(f"{k} {v:.4f}" for k, v in result.mae.items()))
    return replace(meta, blend=b), BlendReport(result)
