"""Interval calibration: rescale the network's p10/p90 distances so the band covers what it says.

Pinball loss fits the quantiles on the training windows; on new data the band is often too
narrow or too wide. At training time `fit_calibration` looks at the validation windows (split
conformal, per horizon step h): with the half-widths `w_lo = max(p50 - p10, floor)` and
`w_hi = max(p90 - p50, floor)`, the scores `(p50 - y) / w_lo` and `(y - p50) / w_hi` are
ranked and the finite-sample conformal quantile at `1 - q_low` (resp. `q_high`) becomes the
scale factor: `p10' = p50 - a_lo[h] * w_lo`, `p90' = p50 + a_hi[h] * w_hi`. Multiplying the
network's own widths keeps its per-window shape (wide where it is unsure); the floor (a tenth
of the step's median width) keeps near-zero widths from blowing the factors up. Factors are
clipped at 0, so p10' <= p50 <= p90' always. Validation is one period; a factor is kept between
1/`MAX_WIDENING` and `MAX_WIDENING` times what earlier (training) windows support, where there are
enough of them, so one unusual period cannot set the band alone (`fit_calibration`). Numpy only:
this ships inside the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

MIN_WINDOWS_PER_STEP = 50   # fewer validation windows per step: one factor pooled over all steps
FLOOR_FRACTION = 0.1        # width floor: this fraction of the step's median validation width
MIN_FLOOR = 1e-6            # ... and never below this (scaled units)
MAX_WIDENING = 2.0          # validation's factor: at most this times the training windows', at least 1/this
MIN_HISTORY_WINDOWS = 50    # fewer training windows (memorised by the network) bound nothing


@dataclass(frozen=True)
class IntervalCalibration:
    """Per horizon step: scale factors of the low/high distances and the width floor."""

    low: tuple[float, ...]
    high: tuple[float, ...]
    floor: tuple[float, ...]

    def __post_init__(self) -> None:
        if not (len(self.low) == len(self.high) == len(self.floor)):
            raise ValueError(f"interval calibration needs one low, high and floor per horizon step, got "
                             f"{len(self.low)}, {len(self.high)}, {len(self.floor)}")
        values = (*self.low, *self.high, *self.floor)
        if not all(math.isfinite(v) and v >= 0 for v in values):
            raise ValueError(f"interval calibration factors and floors must be finite and >= 0: {values}")

    @property
    def horizon(self) -> int:
        return len(self.low)

    def to_dict(self) -> dict[str, list[float]]:
        return {"low": list(self.low), "high": list(self.high), "floor": list(self.floor)}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> IntervalCalibration:
        return cls(low=tuple(float(v) for v in d["low"]), high=tuple(float(v) for v in d["high"]),
                   floor=tuple(float(v) for v in d["floor"]))

    @classmethod
    def identity(cls, horizon: int) -> IntervalCalibration:
        return cls(low=(1.0,) * horizon, high=(1.0,) * horizon, floor=(0.0,) * horizon)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(low, high, floor) as float32 (horizon,) arrays, ready for `apply`."""
        return tuple(np.asarray(v, dtype=np.float32) for v in (self.low, self.high, self.floor))  # type: ignore[return-value]

    def apply(self, q: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Calibrated quantiles for `q` (N, horizon, 3) (low, median, high); `out=q` works in place."""
        return apply_calibration(q, *self.arrays(), out=out)


def apply_calibration(q: np.ndarray, low: np.ndarray, high: np.ndarray, floor: np.ndarray,
                      out: np.ndarray | None = None) -> np.ndarray:
    """p50 ∓ factor × max(distance, floor), per horizon step; the median is unchanged."""
    if out is None:
        out = np.array(q, copy=True)
    mid = q[..., 1]
    w_lo = np.maximum(mid - q[..., 0], floor)        # (N, horizon); NaN-safe: max(NaN, f) is NaN
    w_hi = np.maximum(q[..., 2] - mid, floor)
    out[..., 0] = mid - low * w_lo
    out[..., 2] = mid + high * w_hi
    if out is not q:
        out[..., 1] = mid
    return out


def conformal_quantile(scores: np.ndarray, level: float) -> float:
    """The finite-sample split-conformal quantile: the ceil((n+1)·level)-th smallest score."""
    s = np.sort(scores[np.isfinite(scores)])
    n = len(s)
    if n == 0:
        return 1.0
    k = min(math.ceil((n + 1) * level), n)          # beyond n: the largest score (no better bound)
    return float(s[max(k, 1) - 1])


def _scores(p: np.ndarray, yy: np.ndarray, floor: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(low, high) conformity scores: how many (floored) half-widths the actual lies below/above p50."""
    mid = p[..., 1]
    ok = np.isfinite(p).all(axis=-1) & np.isfinite(yy)
    s_lo = np.where(ok, (mid - yy) / np.maximum(mid - p[..., 0], floor), np.nan)   # > factor: below the new p10
    s_hi = np.where(ok, (yy - mid) / np.maximum(p[..., 2] - mid, floor), np.nan)   # > factor: above the new p90
    return s_lo, s_hi


def _factors(s_lo: np.ndarray, s_hi: np.ndarray, levels: tuple[float, float], per_step: bool,
             ) -> tuple[list[float], list[float]]:
    """Conformal factors (low, high) per step, or one pooled over all steps."""
    horizon = s_lo.shape[1]
    if per_step:
        return ([conformal_quantile(s_lo[:, h], levels[0]) for h in range(horizon)],
                [conformal_quantile(s_hi[:, h], levels[1]) for h in range(horizon)])
    pooled = conformal_quantile(s_lo.ravel(), levels[0]), conformal_quantile(s_hi.ravel(), levels[1])
    return [pooled[0]] * horizon, [pooled[1]] * horizon


def _bounded(factor: float, earlier: float, ratio: float) -> float:
    """`factor` kept within [earlier / ratio, earlier * ratio] (`earlier` clipped at 0 first)."""
    if not ratio >= 1.0:
        raise ValueError(f"the calibration bounds need max_widening >= 1, got {ratio}")
    earlier = max(earlier, 0.0)
    return min(max(factor, earlier / ratio), earlier * ratio)


SOURCES = ("validation", "training")  # which windows' factors size the band (`fit_calibration`'s `source`)


def fit_calibration(pred: np.ndarray, y: np.ndarray, quantiles: tuple[float, float, float],
                    history: tuple[np.ndarray, np.ndarray] | None = None,
                    max_widening: float = MAX_WIDENING, source: str = "validation") -> IntervalCalibration:
    """Factors for `pred` (N, horizon, 3) against actuals `y` (N, horizon), in the same units.

    `history`: the same model's (predictions, actuals) on earlier windows (a sample of the
    training windows). A factor may then be at most `max_widening` times the one those windows
    support, and at least that one divided by `max_widening`: validation is one period, and where
    it holds few windows (one per series on monthly or weekly data) a level shift in some series
    would otherwise set the band alone. Upwards: on the weekly ansett set a 1992 trial of other
    seat classes made the high factor 16 and the holdout pinball loss 6x the statistical methods'.
    Downwards: one weekly series (us_gasoline) has one validation window, all 13 actuals above
    the median, so the low factor was 0 and p10 = p50 (holdout coverage 0.31). The training
    windows are in sample for the network, so their factors err narrow and half of them is a
    mild floor. Where validation agrees with the history nothing changes. Fewer history windows
    with an actual than `MIN_HISTORY_WINDOWS` bound nothing: so few (three per series of a short
    quarterly set, one of a single series) are memorised, and their band looks right however
    narrow it is (on aus_accommodation, 48 of them shut the band to 0.39 holdout coverage).

    `source="training"`: the history's factors themselves, where it has enough windows (validation's
    otherwise; the width floor is validation's either way). Validation is one period that all series
    share: on weekly to yearly data a common shock there (a crisis year) decides which side of the
    band widens, while the training windows span the whole history (`conf.auto_steps.calibrate_from`).
    """
    if source not in SOURCES:
        raise ValueError(f"calibration source must be one of {SOURCES}, got {source!r}")
    if pred.ndim != 3 or pred.shape[2] != 3 or y.shape != pred.shape[:2]:
        raise ValueError(f"calibration needs predictions (N, horizon, 3) and actuals (N, horizon), "
                         f"got {pred.shape} and {y.shape}")
    p = pred.astype(np.float64)
    yy = y.astype(np.float64)
    mid = p[..., 1]
    d_lo, d_hi = mid - p[..., 0], p[..., 2] - mid
    ok = np.isfinite(p).all(axis=-1) & np.isfinite(yy)
    horizon = pred.shape[1]
    floor = np.empty(horizon)
    for h in range(horizon):
        widths = np.concatenate((d_lo[ok[:, h], h], d_hi[ok[:, h], h]))
        floor[h] = max(MIN_FLOOR, FLOOR_FRACTION * float(np.median(widths))) if len(widths) else MIN_FLOOR
    levels = (1.0 - quantiles[0], quantiles[2])
    per_step = bool(horizon) and int(ok.sum(axis=0).min()) >= MIN_WINDOWS_PER_STEP  # else one for all steps
    low, high = _factors(*_scores(p, yy, floor), levels, per_step)
    if history is not None and (history[0].shape[1:] != pred.shape[1:] or history[1].shape != history[0].shape[:2]):
        raise ValueError(f"calibration history needs predictions (M, {horizon}, 3) and actuals (M, {horizon}), "
                         f"got {history[0].shape} and {history[1].shape}")
    if history is not None and enough_history(history[1]):
        h_low, h_high = _factors(*_scores(history[0].astype(np.float64), history[1].astype(np.float64), floor),
                                 levels, per_step)
        if source == "training":
            low, high = h_low, h_high
        else:
            low = [_bounded(v, h, max_widening) for v, h in zip(low, h_low, strict=True)]
            high = [_bounded(v, h, max_widening) for v, h in zip(high, h_high, strict=True)]
    return IntervalCalibration(low=tuple(max(v, 0.0) for v in low), high=tuple(max(v, 0.0) for v in high),
                               floor=tuple(float(f) for f in floor))


def enough_history(y: np.ndarray) -> bool:
    """Whether earlier windows with actuals `y` (M, horizon) are enough to bound or size the band."""
    return int(np.isfinite(y).any(axis=1).sum()) >= MIN_HISTORY_WINDOWS


def coverage(pred: np.ndarray, y: np.ndarray) -> tuple[float, float, float]:
    """(fraction inside [low, high], fraction below low, fraction above high) over finite entries."""
    ok = np.isfinite(pred).all(axis=-1) & np.isfinite(y)
    n = max(int(ok.sum()), 1)
    below = float(((y < pred[..., 0]) & ok).sum()) / n
    above = float(((y > pred[..., 2]) & ok).sum()) / n
    return 1.0 - below - above, below, above
