"""One batch of inference windows -> one batch of forecasts: pure Arrow -> numpy -> Arrow.

No Spark, no model: `forecast_batch` takes a ready `predict(X) -> quantiles` function.
The `inputs` list column is one flat float32 buffer, reshaped into the model input without
a copy and without per-row Python. Forecasts leave as long Arrow batches, one row per
(window, horizon step). Unusable windows pass through as one row carrying their
`skip_reason`, so one pass over the windows yields both forecasts and skip counts.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conf.freq import parse_freq
from conf.window_contract import INPUTS, LOC, ORIGIN, SCALE, SERIES, SKIP, in_sample_mae, padded_steps
from pipelines.scoring.plan import ScoringError, ScoringPlan

# (X (N, lookback, features) float32 scaled, offset (N,) = scale_loc / scale_scale) -> (N, horizon, 3)
# quantiles p10/p50/p90, scaled. The offset is what a blend with a multiplicative season needs.
PredictFn = Callable[[np.ndarray, np.ndarray], np.ndarray]

SCORED_SCHEMA = (
    "series_id STRING, forecast_origin TIMESTAMP, target_ts TIMESTAMP, horizon_step INT, "
    "p10 DOUBLE, p50 DOUBLE, p90 DOUBLE, mase_scale DOUBLE, skip_reason STRING"
)
NON_FINITE = "non_finite_forecast"  # a scored row's own skip reason (after the windows' ones)
_TS = pa.timestamp("us", tz="UTC")
_ARROW_SCHEMA = pa.schema([
    ("series_id", pa.string()), ("forecast_origin", _TS), ("target_ts", _TS), ("horizon_step", pa.int32()),
    ("p10", pa.float64()), ("p50", pa.float64()), ("p90", pa.float64()), ("mase_scale", pa.float64()),
    ("skip_reason", pa.string()),
])


def target_times(origin_us: np.ndarray, horizon: int, freq: str) -> np.ndarray:
    """Target times (N, horizon) in epoch microseconds for origins (N,) on the `freq` grid.

    Fixed frequencies add whole steps; MS/QS/YS add calendar months (Jan 31 -> Feb, not +30 days);
    ME/QE/YE land on the last day of the target month (Jan 31 -> Feb 29 -> Mar 31).
    """
    f = parse_freq(freq)
    steps = np.arange(1, horizon + 1, dtype=np.int64)
    if not f.is_calendar:
        step_us = int(f.step.total_seconds() * 1_000_000)
        return origin_us[:, None] + steps[None, :] * step_us
    origin = origin_us.astype("datetime64[us]")
    month = origin.astype("datetime64[M]")
    if f.period_end:  # the last day of the target month, at the origin's time of day
        within = origin - origin.astype("datetime64[D]").astype("datetime64[us]")
        next_month = (month[:, None] + steps[None, :] * f.months + 1).astype("datetime64[D]")
        return ((next_month - np.timedelta64(1, "D")).astype("datetime64[us]") + within[:, None]).astype(np.int64)
    within = origin - month.astype("datetime64[us]")          # time since the month started
    targets = (month[:, None] + steps[None, :] * f.months).astype("datetime64[us]") + within[:, None]
    return targets.astype(np.int64)


def _skip_rows(batch: pa.RecordBatch, reasons: pa.Array) -> pa.RecordBatch:
    n = len(batch)
    nul_ts, nul_f = pa.nulls(n, _TS), pa.nulls(n, pa.float64())
    return pa.RecordBatch.from_arrays(
        [batch.column(SERIES).cast(pa.string()), batch.column(ORIGIN).cast(_TS), nul_ts,
         pa.nulls(n, pa.int32()), nul_f, nul_f, nul_f, nul_f, reasons.cast(pa.string())],
        schema=_ARROW_SCHEMA)


def seasonal_mae(X: np.ndarray, scale: np.ndarray, freq: str) -> np.ndarray:
    """MASE's denominator per window (N,), in original units: the in-sample seasonal-naive MAE over
    the lookback (feature 0, the scaled value; the caller passes the network's lookback of a window
    with a context), as the backtest computes it (models.evaluate);
    lag 1 when the lookback is not longer than a season, NaN for a constant window. A short
    series' padding (the window's steps before its first observation) is left out.

    Stored with each forecast at scoring time, so `lakecast evaluate` never recomputes it from
    a history that may have changed since.
    """
    d = in_sample_mae(X[:, :, 0], parse_freq(freq).season_length(), padded_steps(X)) * scale
    return np.where(np.isfinite(d) & (d > 0), d, np.nan)


def window_matrix(batch: pa.RecordBatch, plan: ScoringPlan) -> np.ndarray:
    """The `inputs` column as X (N, lookback, features) float32: a view of Arrow's buffer."""
    col = batch.column(INPUTS)
    width = plan.lookback * plan.n_features
    offsets = col.offsets.to_numpy()
    bad = np.flatnonzero(np.diff(offsets) != width)
    if col.null_count or len(bad):
        i = int(bad[0]) if len(bad) else int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        sid = batch.column(SERIES)[i].as_py()
        raise ScoringError(
            f"window of series {sid!r} has {'NULL' if not col[i].is_valid else len(col[i])} input values, "
            f"the model {plan.model_key} expects lookback {plan.lookback} x {plan.n_features} features = "
            f"{width}; rebuild the windows with the model's configuration")
    flat = col.flatten()
    if flat.null_count:
        raise ScoringError("inputs hold NULL values inside windows marked usable; windows must be filled "
                           "before scoring (see windows.fill)")
    values = flat.to_numpy(zero_copy_only=False)
    if values.dtype != np.float32:
        values = values.astype(np.float32)
    return values.reshape(len(batch), plan.lookback, plan.n_features)


def forecast_batch(batch: pa.RecordBatch, predict: PredictFn, plan: ScoringPlan) -> Iterator[pa.RecordBatch]:
    """Score the usable windows of one batch; pass unusable ones through with their reason.

    Forecasts are unscaled (original = scaled * scale_scale + scale_loc), raised to the model's
    floor where it has one, and, as a last guard for the table's CHECK, the three quantiles are
    put in order per row.
    """
    skip = batch.column(SKIP)
    if skip.null_count < len(batch):
        usable = skip.is_null()
        yield _skip_rows(batch.filter(pc.invert(usable)), skip.filter(pc.invert(usable)))
        batch = batch.filter(usable)
    n, h = len(batch), plan.horizon
    if n == 0:
        return
    X = window_matrix(batch, plan)
    loc = batch.column(LOC).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    scale = batch.column(SCALE).to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    q = predict(X, loc / scale)                                        # (n, h, 3) scaled
    if q.shape != (n, h, 3):
        raise ScoringError(f"model {plan.model_key} returned shape {q.shape}, expected {(n, h, 3)}")
    out = q.astype(np.float64) * scale[:, None, None] + loc[:, None, None]
    if plan.floor is not None:  # NaN stays NaN: the non-finite check below still sees it
        np.maximum(out, plan.floor, out=out)
    out.sort(axis=-1)
    mase = seasonal_mae(X[:, -plan.network_lookback:] if plan.network_lookback else X, scale, plan.freq)
    finite = np.isfinite(out).all(axis=(1, 2))
    if not finite.all():
        bad = pa.array(~finite)
        yield _skip_rows(batch.filter(bad), pa.array([NON_FINITE] * int((~finite).sum()), pa.string()))
        batch, out, mase = batch.filter(pa.array(finite)), out[finite], mase[finite]
        n = len(batch)
    origin = batch.column(ORIGIN).cast(_TS).cast(pa.int64()).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(n, dtype=np.int64), h)
    flat = out.reshape(n * h, 3)
    yield pa.RecordBatch.from_arrays(
        [
            batch.column(SERIES).cast(pa.string()).take(pa.array(rows)),
            pa.array(np.repeat(origin, h)).cast(_TS),
            pa.array(target_times(origin, h, plan.freq).reshape(-1)).cast(_TS),
            pa.array(np.tile(np.arange(1, h + 1, dtype=np.int32), n)),
            pa.array(flat[:, 0]), pa.array(flat[:, 1]), pa.array(flat[:, 2]),
            pa.array(np.repeat(mase, h), from_pandas=True),  # NaN -> NULL: no scale for a flat window
            pa.nulls(n * h, pa.string()),
        ],
        schema=_ARROW_SCHEMA,
    )
