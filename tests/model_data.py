"""Small generated windows for the model tests: strongly seasonal series, scaled per window.

Built in numpy the way the windows contract says (feature 0 = scaled value, feature 1 = a
missing mask, here all zero), so model tests need no Spark.
"""

from __future__ import annotations

import numpy as np

from models.arrays import WindowArrays

LOOKBACK, HORIZON, SEASON = 48, 12, 24


def seasonal_series(n_series: int = 6, length: int = 24 * 30, *, noise: float = 0.1,
                    seed: int = 0) -> list[np.ndarray]:
    """Sine-like daily series at different levels (the values `seasonal_windows` cuts)."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    out = []
    for _ in range(n_series):
        level, amp = rng.uniform(5, 50), rng.uniform(0.2, 0.5)
        phase = rng.uniform(0, 2 * np.pi)
        out.append(level * (1 + amp * np.sin(2 * np.pi * t / SEASON + phase)
                            + 0.5 * amp * np.sin(4 * np.pi * t / SEASON) + noise * amp * rng.standard_normal(length)))
    return out


def seasonal_windows(n_series: int = 6, length: int = 24 * 30, *, stride: int = 6, noise: float = 0.1,
                     seed: int = 0) -> tuple[WindowArrays, np.ndarray]:
    """Windows of `seasonal_series`; also each window's end step."""
    xs, ys, locs, scales, ends, sids = [], [], [], [], [], []
    for s, y in enumerate(seasonal_series(n_series, length, noise=noise, seed=seed)):
        for start in range(0, length - LOOKBACK - HORIZON + 1, stride):
            x = y[start:start + LOOKBACK]
            loc, sc = x.mean(), x.std()
            xs.append((x - loc) / sc)
            ys.append((y[start + LOOKBACK:start + LOOKBACK + HORIZON] - loc) / sc)
            locs.append(loc)
            scales.append(sc)
            ends.append(start + LOOKBACK + HORIZON)
            sids.append(f"s{s}")
    X = np.stack(xs).astype(np.float32)[..., None]
    X = np.concatenate([X, np.zeros_like(X)], axis=-1)           # value, missing mask
    origins = np.array(ends, dtype="datetime64[h]").astype("datetime64[us]")
    w = WindowArrays(X, np.stack(ys).astype(np.float32), np.array(locs), np.array(scales),
                     np.array(sids, dtype=object), origins)
    return w, np.array(ends)


def time_split(w: WindowArrays, ends: np.ndarray, train_end: int, val_end: int,
               ) -> tuple[WindowArrays, WindowArrays, WindowArrays]:
    """Train targets end by `train_end`, validation by `val_end`, test after (no overlap of targets)."""
    first_target = ends - HORIZON
    return (w.take(np.where(ends <= train_end)[0]),
            w.take(np.where((first_target >= train_end) & (ends <= val_end))[0]),
            w.take(np.where(first_target >= val_end)[0]))
