"""Forecast accuracy metrics of `bench.accuracy_bench`, pure numpy (no pandas, no Spark).

Every metric takes the held-out actuals `y` and forecasts as (series, horizon) arrays; NaN in
`y` marks a missing actual (a gap in the source data) and is left out. Each is computed per
series and then averaged over series with equal weight (the M4 convention), except coverage,
which is the share of all held-out points inside the interval.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

QUANTILES = (0.1, 0.5, 0.9)


def seasonal_naive_scale(train: Sequence[np.ndarray], season: int) -> np.ndarray:
    """Per series: the in-sample MAE of the seasonal naive forecast, mean |y_t - y_(t-m)|.

    Falls back to lag 1 for a series of at most one season; NaN where no difference exists
    or every difference is zero (such a series cannot be scaled and is left out of MASE).
    """
    out = np.full(len(train), np.nan)
    for i, x in enumerate(train):
        x = np.asarray(x, dtype=float)
        m = season if len(x) > season else 1
        d = np.abs(x[m:] - x[:-m])
        d = d[~np.isnan(d)]
        if d.size and d.mean() > 0:
            out[i] = d.mean()
    return out


def _per_series_mean(err: np.ndarray) -> np.ndarray:
    """Mean over the horizon of each series, ignoring NaN (NaN if a series has no actual)."""
    n = np.sum(~np.isnan(err), axis=1)
    return np.where(n > 0, np.nansum(err, axis=1) / np.maximum(n, 1), np.nan)


def mase(y: np.ndarray, p50: np.ndarray, scale: np.ndarray) -> float:
    """Mean over series of MAE(y, p50) / scale (series with a NaN scale are left out)."""
    per = _per_series_mean(np.abs(y - p50)) / scale
    return float(np.nanmean(per))


def smape(y: np.ndarray, p50: np.ndarray) -> float:
    """Mean over series of 200/h * sum |y - f| / (|y| + |f|), in percent; 0/0 counts as 0."""
    den = np.abs(y) + np.abs(p50)
    num = np.abs(y - p50)
    err = np.where(den > 0, num / np.where(den > 0, den, 1.0), 0.0) * 200.0
    err = np.where(np.isnan(y) | np.isnan(p50), np.nan, err)
    return float(np.nanmean(_per_series_mean(err)))


def pinball(y: np.ndarray, q: np.ndarray, level: float) -> np.ndarray:
    """Elementwise quantile (pinball) loss of forecast `q` for quantile `level`."""
    d = y - q
    return np.maximum(level * d, (level - 1.0) * d)


def scaled_pinball(y: np.ndarray, quantiles: Sequence[np.ndarray], scale: np.ndarray) -> float:
    """Mean over series of (mean pinball loss over p10, p50, p90 and the horizon) / scale.

    Scaled like MASE so that series of large values do not dominate; at p50 alone it is
    half the MASE numerator (pinball at 0.5 is |e| / 2).
    """
    losses = np.mean([pinball(y, q, lv) for q, lv in zip(quantiles, QUANTILES, strict=True)], axis=0)
    per = _per_series_mean(losses) / scale
    return float(np.nanmean(per))


def coverage(y: np.ndarray, p10: np.ndarray, p90: np.ndarray) -> float:
    """Share of held-out points with p10 <= y <= p90 (target 0.8 for a calibrated interval)."""
    ok = ~np.isnan(y)
    inside = (p10 <= y) & (y <= p90)
    return float(inside[ok].mean()) if ok.any() else float("nan")
