"""Which leading steps of a window hold no data (a short series' padding).

lakecast pads the window of a series shorter than the lookback on the left (`windows.min_history`):
those steps are missing (feature 1 = 1) with a scaled value of 0. The network learns what that
means; the statistical members must not read the zeros as values, so they run on what follows.
The same rule is `conf.window_contract.padded_steps` in lakecast; the forecaster ships inside the
MLflow model and imports nothing of lakecast, hence its own copy.
"""

from __future__ import annotations

import numpy as np


def leading_padding(X: np.ndarray) -> np.ndarray:
    """(N,) leading steps of each window X (N, lookback, features) that are missing with value 0,
    at most lookback - 1."""
    if X.shape[2] < 2:  # value only, no missing mask: nothing is known to be padding
        return np.zeros(len(X), dtype=np.int64)
    empty = (X[:, :, 1] == 1.0) & (X[:, :, 0] == 0.0)
    return np.minimum(np.logical_and.accumulate(empty, axis=1).sum(axis=1), X.shape[1] - 1)
