"""Backtest metrics in original units, for the model and the naive baselines on the same windows.

MASE divides each window's absolute errors by the mean absolute seasonal-naive error inside
that window's own lookback (its in-sample scale), then averages over windows, so series of
different levels weigh alike. Windows whose lookback is constant (scale 0) have no MASE.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from conf.window_contract import in_sample_mae, padded_steps
from models.arrays import WindowArrays

log = logging.getLogger(__name__)

MODEL, NAIVE, SEASONAL_NAIVE = "lstm", "naive", "seasonal_naive"
METRICS = ("mae", "rmse", "smape", "mase", "pinball", "coverage")
LABELS = {"mae": "MAE", "rmse": "RMSE", "smape": "sMAPE %", "mase": "MASE", "pinball": "pinball",
          "coverage": "coverage"}


@dataclass(frozen=True)
class Backtest:
    """Metrics per forecaster, overall and per horizon step (index 0 = step 1)."""

    n_windows: int
    horizon: int
    season: int
    quantiles: tuple[float, float, float]
    overall: dict[str, dict[str, float]] = field(default_factory=dict)
    per_step: dict[str, dict[str, np.ndarray]] = field(default_factory=dict)
    n_mase_windows: int = 0

    @classmethod
    def empty(cls, horizon: int, season: int, quantiles: Sequence[float]) -> Backtest:
        """No windows (a run without a test split): every metric NaN, shown as '-' and not logged."""
        qs = tuple(float(q) for q in quantiles)
        nan = {m: float("nan") for m in METRICS}
        steps = {m: np.full(horizon, np.nan) for m in METRICS}
        return cls(n_windows=0, horizon=horizon, season=season, quantiles=qs,  # type: ignore[arg-type]
                   overall={f: dict(nan) for f in (MODEL, SEASONAL_NAIVE, NAIVE)},
                   per_step={f: dict(steps) for f in (MODEL, SEASONAL_NAIVE, NAIVE)})

    @property
    def interval(self) -> int:
        """Nominal coverage of the low..high interval in percent (80 for 0.1..0.9)."""
        return round((self.quantiles[2] - self.quantiles[0]) * 100)

    def mase(self, forecaster: str = MODEL) -> float:
        return self.overall[forecaster]["mase"]

    def flat_metrics(self, prefix: str = "test_") -> dict[str, float]:
        """`test_lstm_mase`, `test_seasonal_naive_mae`, ... for MLflow (NaN left out)."""
        return {f"{prefix}{f}_{m}": v for f, ms in self.overall.items() for m, v in ms.items()
                if np.isfinite(v)}

    def table(self) -> tuple[list[str], list[list[str]]]:
        """Overall metrics: one row per forecaster."""
        cols = ["forecaster", *[f"{self.interval}% coverage" if m == "coverage" else LABELS[m]
                                for m in METRICS]]
        rows = [[f, *[_fmt(ms[m]) for m in METRICS]] for f, ms in self.overall.items()]
        return cols, rows

    def step_table(self) -> tuple[list[str], list[list[str]]]:
        """Per horizon step: the model's MAE, MASE and coverage beside the baselines' MASE."""
        cols = ["step", f"{MODEL} MAE", f"{MODEL} MASE", f"{SEASONAL_NAIVE} MASE", f"{NAIVE} MASE",
                f"{MODEL} {self.interval}% cov"]
        ps = self.per_step
        rows = [[str(h + 1), _fmt(ps[MODEL]["mae"][h]), _fmt(ps[MODEL]["mase"][h]),
                 _fmt(ps[SEASONAL_NAIVE]["mase"][h]), _fmt(ps[NAIVE]["mase"][h]),
                 _fmt(ps[MODEL]["coverage"][h])] for h in range(self.horizon)]
        return cols, rows


def _fmt(v: float) -> str:
    if not np.isfinite(v):
        return "-"
    return f"{v:.4g}" if abs(v) < 1e4 else f"{v:.4e}"


def baselines(history: np.ndarray, horizon: int, season: int, pad: np.ndarray | None = None,
              ) -> tuple[np.ndarray, np.ndarray]:
    """Naive (last value) and seasonal naive (last season repeated) forecasts, (N, horizon) each.

    history: (N, lookback) in original units. With a lookback shorter than a season the
    seasonal naive falls back to naive (and says so); so does a short series' window whose
    data after its `pad` leading steps is shorter than a season.
    """
    lookback = history.shape[1]
    naive = np.repeat(history[:, -1:], horizon, axis=1)
    if lookback < season:
        log.warning("lookback %d is shorter than the season %d: seasonal naive = naive", lookback, season)
        return naive, naive.copy()
    idx = lookback - season + (np.arange(horizon) % season)        # (horizon,)
    snaive = history[:, idx]
    if pad is not None:
        snaive = np.where((lookback - np.asarray(pad) < season)[:, None], naive, snaive)
    return naive, snaive


def mase_scale(history: np.ndarray, season: int, pad: np.ndarray | None = None) -> np.ndarray:
    """Per-window in-sample seasonal-naive MAE (N,) over the steps after each window's `pad`;
    NaN where that is constant. Uses lag 1 when it is not longer than a season.
    """
    d = in_sample_mae(history, season, pad)
    return np.where(d > 0, d, np.nan)


def _pinball(y: np.ndarray, q_pred: np.ndarray, quantiles: Sequence[float]) -> np.ndarray:
    """Pinball loss per (window, step), averaged over the quantiles. y (N,H), q_pred (N,H,Q)."""
    qs = np.asarray(quantiles, dtype=np.float64)
    err = y[..., None] - q_pred
    return np.maximum(qs * err, (qs - 1) * err).mean(axis=-1)


def _smape(y: np.ndarray, f: np.ndarray) -> np.ndarray:
    denom = np.abs(y) + np.abs(f)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(denom > 0, 200.0 * np.abs(y - f) / denom, 0.0)


def _nanmean(a: np.ndarray, axis: int | None = None) -> np.ndarray | float:
    if np.isnan(a).all():
        return np.full(a.shape[1], np.nan) if axis == 0 else float("nan")
    with np.errstate(invalid="ignore"):
        return np.nanmean(a, axis=axis)


def score(y: np.ndarray, q_pred: np.ndarray, scale: np.ndarray, quantiles: Sequence[float],
          *, interval: bool = True) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """All metrics of one forecaster: (overall, per step). q_pred (N, H, 3): low, median, high.

    A point forecast is passed with the same values in all three quantile slots and
    `interval=False`: its pinball loss is that of a point, its coverage NaN.
    """
    med = q_pred[..., 1]
    err = y - med
    abs_err = np.abs(err)
    scaled = abs_err / scale[:, None]                   # NaN rows where the scale is undefined
    pin = _pinball(y, q_pred, quantiles)
    point = not interval
    inside = ((y >= q_pred[..., 0]) & (y <= q_pred[..., 2])).astype(np.float64)
    sm = _smape(y, med)
    per_step = {
        "mae": abs_err.mean(axis=0), "rmse": np.sqrt((err ** 2).mean(axis=0)), "smape": sm.mean(axis=0),
        "mase": np.asarray(_nanmean(scaled, axis=0)), "pinball": pin.mean(axis=0),
        "coverage": np.full(y.shape[1], np.nan) if point else inside.mean(axis=0),
    }
    overall = {
        "mae": float(abs_err.mean()), "rmse": float(np.sqrt((err ** 2).mean())), "smape": float(sm.mean()),
        "mase": float(_nanmean(scaled)), "pinball": float(pin.mean()),
        "coverage": float("nan") if point else float(inside.mean()),
    }
    return overall, per_step


def backtest(windows: WindowArrays, q_pred_scaled: np.ndarray, *, season: int,
             quantiles: Sequence[float] = (0.1, 0.5, 0.9), floor: float | None = None,
             lookback: int | None = None) -> Backtest:
    """Backtest the model's scaled quantile forecasts (N, H, 3) and both baselines on `windows`.

    Everything is unscaled to original units first (original = scaled * scale + loc); the
    forecasts are then raised to the model's `floor`, as scoring does. `lookback`: the windows'
    last steps the baselines and the MASE scale read (the network's, where windows carry a
    context for the statistical members), so MASE means what it meant before that context.
    """
    if windows.y is None:
        raise ValueError("backtest windows need targets")
    n, horizon = windows.y.shape
    if q_pred_scaled.shape != (n, horizon, 3):
        raise ValueError(f"forecasts have shape {q_pred_scaled.shape}, expected {(n, horizon, 3)}")
    X = windows.X if lookback is None else windows.X[:, -lookback:]
    history = windows.unscale(X[..., 0].astype(np.float64))                # (N, lookback)
    y = windows.unscale(windows.y.astype(np.float64))                      # (N, horizon)
    q_pred = windows.unscale(q_pred_scaled.astype(np.float64))             # (N, horizon, 3)
    if floor is not None:
        q_pred = np.maximum(q_pred, floor)
    pad = padded_steps(X)
    scale = mase_scale(history, season, pad)
    naive, snaive = baselines(history, horizon, season, pad)
    qs = tuple(float(q) for q in quantiles)
    result = Backtest(n_windows=n, horizon=horizon, season=season, quantiles=qs,  # type: ignore[arg-type]
                      n_mase_windows=int(np.isfinite(scale).sum()))
    result.overall[MODEL], result.per_step[MODEL] = score(y, q_pred, scale, qs)
    for name, point in ((SEASONAL_NAIVE, snaive), (NAIVE, naive)):
        pred = np.repeat(point[..., None], 3, axis=-1)
        result.overall[name], result.per_step[name] = score(y, pred, scale, qs, interval=False)
    log.info("backtest on %d windows (%d with a MASE scale): %s MASE %.3f, seasonal naive %.3f, naive %.3f",
             n, result.n_mase_windows, MODEL, result.overall[MODEL]["mase"],
             result.overall[SEASONAL_NAIVE]["mase"], result.overall[NAIVE]["mase"])
    return result
