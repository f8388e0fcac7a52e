"""The windows contract: the columns every window producer writes and every consumer reads.

One row per window:

| column | Arrow type | meaning |
|---|---|---|
| series_id | string | the series |
| forecast_origin | timestamp[us, UTC] | the last input step; targets start one grid step later |
| inputs | list<float32> | lookback x features, row-major by time step; feature 0 = scaled value |
| targets | list<float32> | horizon scaled values (training); NULL for inference windows |
| scale_loc, scale_scale | float64 | original = scaled * scale_scale + scale_loc |
| skip_reason | string | NULL = usable; else one of SKIP_REASONS (inputs/targets/scales NULL) |

Producers: `pipelines.windows` (both strategies, and the fused scoring path); consumers:
`pipelines.windows.transfer`, `pipelines.scoring`, `models.arrays`. No imports beyond the
standard library at module level (pyarrow only when a schema is asked for, numpy for the
padding helpers).

The producers read the `observations` table by its fixed columns (OBSERVATION_COLUMNS, also
`pipelines.tables.specs.OBSERVATIONS`). `data.series_col/time_col/value_col` name the raw
files' columns: only `lakecast ingest` reads them, and writes `series_id`, `ts`, `value`.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np
    import pyarrow as pa

SERIES, ORIGIN = "series_id", "forecast_origin"
INPUTS, TARGETS = "inputs", "targets"
LOC, SCALE = "scale_loc", "scale_scale"
SKIP = "skip_reason"

# The observations table's series, time and value columns: what every reader downstream of
# ingest (windows, predict, evaluate, backfill) selects, whatever the raw files called them.
OBS_SERIES, OBS_TIME, OBS_VALUE = "series_id", "ts", "value"
OBSERVATION_COLUMNS = (OBS_SERIES, OBS_TIME, OBS_VALUE)

# Every column, in this order (training windows; what the window builders return).
WINDOW_COLUMNS = (SERIES, ORIGIN, INPUTS, TARGETS, LOC, SCALE, SKIP)
# What scoring reads: inference windows have no targets.
INFERENCE_COLUMNS = (SERIES, ORIGIN, INPUTS, LOC, SCALE, SKIP)

# Why a row is unusable. too_short: fewer than windows.min_history steps of history (such a
# series keeps one row; a longer one short of a full window is padded on the left); stale:
# last observation more than scoring.max_staleness steps before as_of; too_many_missing: more
# than windows.max_missing_frac of the inputs missing after fill (or all of them);
# missing_target: a target step still missing after fill.
TOO_SHORT, STALE, TOO_MANY_MISSING, MISSING_TARGET = "too_short", "stale", "too_many_missing", "missing_target"
SKIP_REASONS = (TOO_SHORT, STALE, TOO_MANY_MISSING, MISSING_TARGET)


@cache
def arrow_schema(columns: tuple[str, ...] = WINDOW_COLUMNS) -> pa.Schema:
    """The Arrow schema of `columns` (default: all of them, in contract order)."""
    import pyarrow as pa

    floats = pa.list_(pa.float32())
    types = {SERIES: pa.string(), ORIGIN: pa.timestamp("us", tz="UTC"), INPUTS: floats, TARGETS: floats,
             LOC: pa.float64(), SCALE: pa.float64(), SKIP: pa.string()}
    return pa.schema([(c, types[c]) for c in columns])


# A series shorter than the lookback (but with `windows.min_history` steps) gets windows whose
# first steps lie before its first observation: missing (feature 1 = 1) with scaled value 0.
def padded_steps(X: np.ndarray) -> np.ndarray:
    """(N,) leading steps of each window X (N, lookback, features) that hold no data: missing with
    a zero scaled value (the padding of a short series, or an unfilled gap at the window's start).
    At most lookback - 1: a window's last step is its origin."""
    import numpy as np

    if X.shape[2] < 2:  # value only, no missing mask (a bare array): nothing is known to be padding
        return np.zeros(len(X), dtype=np.int64)
    empty = (X[:, :, 1] == 1.0) & (X[:, :, 0] == 0.0)
    return np.minimum(np.logical_and.accumulate(empty, axis=1).sum(axis=1), X.shape[1] - 1)


def in_sample_mae(history: np.ndarray, season: int, pad: np.ndarray | None = None) -> np.ndarray:
    """(N,) mean absolute seasonal-naive error inside each window's history (N, lookback) after
    its `pad` leading steps (MASE's denominator): lag `season` where more than a season remains,
    else lag 1; NaN where fewer than two steps remain."""
    import numpy as np

    x = np.array(history, dtype=np.float64)
    n, length = x.shape
    pad = np.zeros(n, dtype=np.int64) if pad is None else np.asarray(pad)
    x[np.arange(length)[None, :] < pad[:, None]] = np.nan
    real = length - pad
    out = np.full(n, np.nan)
    for lag, rows in ((season, real > season), (1, real <= season)):
        if lag >= length or not rows.any():
            continue
        d = np.abs(x[rows, lag:] - x[rows, :-lag])
        count = np.isfinite(d).sum(axis=1)
        out[rows] = np.where(count > 0, np.nansum(d, axis=1) / np.maximum(count, 1), np.nan)
    return out
