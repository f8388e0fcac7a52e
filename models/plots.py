"""The figure people look at in MLflow: forecasts vs actuals for a few series, original units."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from conf.window_contract import padded_steps
from models.arrays import WindowArrays


def pick_windows(windows: WindowArrays, n_series: int) -> np.ndarray:
    """Indices of the latest window of up to `n_series` series (first series in sorted order)."""
    if windows.series_id is None or windows.forecast_origin is None:
        return np.arange(min(n_series, len(windows)))
    order = np.lexsort((windows.forecast_origin, windows.series_id))
    sids = windows.series_id[order]
    last = np.r_[sids[1:] != sids[:-1], True]            # last (latest) row of each series
    return order[last][:n_series]


def forecast_figure(windows: WindowArrays, q_pred_scaled: np.ndarray, n_series: int,
                    history_steps: int | None = None, floor: float | None = None) -> Figure:
    """One panel per series: recent history, actual targets, median and the low..high band.

    Uses the object API (no pyplot), so no GUI backend or global state is involved.
    """
    idx = pick_windows(windows, n_series)
    n = max(len(idx), 1)
    fig = Figure(figsize=(10, 2.6 * n), constrained_layout=True)
    axes = fig.subplots(n, 1, squeeze=False)[:, 0]
    lookback = windows.X.shape[1]
    keep = min(history_steps or lookback, lookback)
    for ax, i in zip(axes, idx, strict=False):
        sub = windows.take(np.array([i]))
        hist = sub.unscale(sub.X[..., 0].astype(np.float64))[0]
        hist[:int(padded_steps(sub.X)[0])] = np.nan  # a young series' padding is no history
        hist = hist[-keep:]
        pred = sub.unscale(q_pred_scaled[i:i + 1].astype(np.float64))[0]       # (horizon, 3)
        if floor is not None:  # as scored
            pred = np.maximum(pred, floor)
        h = pred.shape[0]
        t_hist, t_fut = np.arange(-keep + 1, 1), np.arange(1, h + 1)
        ax.plot(t_hist, hist, color="0.35", lw=1, label="history")
        if sub.y is not None:
            ax.plot(t_fut, sub.unscale(sub.y.astype(np.float64))[0], color="black", lw=1.4, label="actual")
        ax.fill_between(t_fut, pred[:, 0], pred[:, 2], color="tab:blue", alpha=0.25, label="p10-p90")
        ax.plot(t_fut, pred[:, 1], color="tab:blue", lw=1.4, label="p50")
        ax.axvline(0.5, color="0.6", ls=":", lw=1)
        title = str(windows.series_id[i]) if windows.series_id is not None else f"window {i}"
        if windows.forecast_origin is not None:
            title += f" - origin {np.datetime_as_string(windows.forecast_origin[i], unit='m')}"
        ax.set_title(title, fontsize=9)
        ax.set_xlabel("steps from forecast origin", fontsize=8)
        ax.legend(fontsize=7, loc="upper left", ncols=4)
    if not len(idx):
        axes[0].text(0.5, 0.5, "no test windows to plot", ha="center", va="center")
    return fig
