"""Distributed batch scoring: inference windows -> quantile forecasts in original units.

The UDF is thin. It receives a loader factory (a picklable zero-argument callable that
returns a `models.lakecast_forecaster.predictor.Predictor`) and never learns how models are stored; each Python
worker calls the loader once per pinned model version and keeps the predictor for every
later batch and task (`_worker_predict`). Batches arrive as Arrow record batches
(`mapInArrow`): the `inputs` list column is one flat float32 buffer, reshaped into the model
input without a copy and without per-row Python. Forecasts leave as long Arrow batches,
one row per (window, horizon step). Unusable windows pass through as one row carrying
their `skip_reason`, so one pass over the windows yields both forecasts and skip counts.
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conf import LakecastConfig
from conf.errors import LakecastError
from conf.freq import parse_freq

log = logging.getLogger(__name__)

SCORED_SCHEMA = (
    "series_id STRING, forecast_origin TIMESTAMP, target_ts TIMESTAMP, horizon_step INT, "
    "p10 DOUBLE, p50 DOUBLE, p90 DOUBLE, skip_reason STRING"
)
WINDOW_COLUMNS = ("series_id", "forecast_origin", "inputs", "scale_loc", "scale_scale", "skip_reason")
NON_FINITE = "non_finite_forecast"
_TS = pa.timestamp("us", tz="UTC")
_ARROW_SCHEMA = pa.schema([
    ("series_id", pa.string()), ("forecast_origin", _TS), ("target_ts", _TS), ("horizon_step", pa.int32()),
    ("p10", pa.float64()), ("p50", pa.float64()), ("p90", pa.float64()), ("skip_reason", pa.string()),
])

Loader = Callable[[], Any]  # () -> models.lakecast_forecaster.predictor.Predictor


class ScoringError(LakecastError):
    """Windows cannot be scored with this model; the message names the series or column."""


@dataclass(frozen=True)
class ScoringPlan:
    """Everything a worker needs, fixed on the driver before any work.

    `model_key` names the pinned model version (e.g. `lakecast_lstm/3`): the worker cache
    is keyed by it, so a worker never mixes versions.
    """

    model_key: str
    lookback: int
    n_features: int
    horizon: int
    freq: str
    precision: str = "fp32"
    batch_size: int = 512
    # Fused path: windows gathered per model call, so each output Arrow batch holds about
    # `scoring.arrow_batch_rows` forecast rows (windows x horizon).
    gather_windows: int = 512
    torch_threads: int = 1


@dataclass(frozen=True)
class Lineage:
    """Where a run's forecasts come from; written on every forecast row."""

    model_name: str
    model_version: str
    model_run_id: str | None
    source_version: int
    job_run_id: str
    scored_at: datetime


def check_model_matches(meta: Any, cfg: LakecastConfig, feature_names: Sequence[str]) -> None:
    """Refuse a model whose expected windows differ from the configured ones (before any work).

    `meta` is a `models.lakecast_forecaster.predictor.ModelMeta`; raises its ModelMismatchError naming each
    difference (lookback, features, horizon, frequency).
    """
    meta.check_windows(lookback=cfg.windows.lookback, feature_names=feature_names,
                       horizon=cfg.windows.horizon, freq=cfg.data.freq)


def plan_for(meta: Any, cfg: LakecastConfig, *, model_key: str, precision: str) -> ScoringPlan:
    """The scoring plan for a checked model (`meta`) under this configuration."""
    return ScoringPlan(model_key=model_key, lookback=meta.lookback, n_features=meta.n_features,
                       horizon=meta.horizon, freq=meta.freq, precision=precision,
                       batch_size=cfg.scoring.batch_size_for(precision),
                       gather_windows=max(1, cfg.scoring.arrow_batch_rows // meta.horizon),
                       torch_threads=cfg.scoring.torch_threads)


# --- pure numpy/Arrow: one batch of windows -> one batch of forecasts ---------------------


def target_times(origin_us: np.ndarray, horizon: int, freq: str) -> np.ndarray:
    """Target times (N, horizon) in epoch microseconds for origins (N,) on the `freq` grid.

    Fixed frequencies add whole steps; MS/QS add calendar months (Jan 31 -> Feb, not +30 days).
    """
    f = parse_freq(freq)
    steps = np.arange(1, horizon + 1, dtype=np.int64)
    if not f.is_calendar:
        step_us = int(f.step.total_seconds() * 1_000_000)
        return origin_us[:, None] + steps[None, :] * step_us
    origin = origin_us.astype("datetime64[us]")
    month = origin.astype("datetime64[M]")
    within = origin - month.astype("datetime64[us]")          # time since the month started
    targets = (month[:, None] + steps[None, :] * f.months).astype("datetime64[us]") + within[:, None]
    return targets.astype(np.int64)


def _skip_rows(batch: pa.RecordBatch, reasons: pa.Array) -> pa.RecordBatch:
    n = len(batch)
    nul_ts, nul_f = pa.nulls(n, _TS), pa.nulls(n, pa.float64())
    return pa.RecordBatch.from_arrays(
        [batch.column("series_id").cast(pa.string()), batch.column("forecast_origin").cast(_TS), nul_ts,
         pa.nulls(n, pa.int32()), nul_f, nul_f, nul_f, reasons.cast(pa.string())],
        schema=_ARROW_SCHEMA)


def _window_matrix(batch: pa.RecordBatch, plan: ScoringPlan) -> np.ndarray:
    """The `inputs` column as X (N, lookback, features) float32: a view of Arrow's buffer."""
    col = batch.column("inputs")
    width = plan.lookback * plan.n_features
    offsets = col.offsets.to_numpy()
    bad = np.flatnonzero(np.diff(offsets) != width)
    if col.null_count or len(bad):
        i = int(bad[0]) if len(bad) else int(np.flatnonzero(col.is_null().to_numpy(zero_copy_only=False))[0])
        sid = batch.column("series_id")[i].as_py()
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


def forecast_batch(batch: pa.RecordBatch, predict: Callable[[np.ndarray], np.ndarray],
                   plan: ScoringPlan) -> Iterator[pa.RecordBatch]:
    """Score the usable windows of one batch; pass unusable ones through with their reason.

    Forecasts are unscaled (original = scaled * scale_scale + scale_loc) and, as a last
    guard for the table's CHECK, the three quantiles are put in order per row.
    """
    skip = batch.column("skip_reason")
    if skip.null_count < len(batch):
        usable = skip.is_null()
        yield _skip_rows(batch.filter(pc.invert(usable)), skip.filter(pc.invert(usable)))
        batch = batch.filter(usable)
    n, h = len(batch), plan.horizon
    if n == 0:
        return
    X = _window_matrix(batch, plan)
    q = predict(X)                                                     # (n, h, 3) scaled
    if q.shape != (n, h, 3):
        raise ScoringError(f"model {plan.model_key} returned shape {q.shape}, expected {(n, h, 3)}")
    loc = batch.column("scale_loc").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    scale = batch.column("scale_scale").to_numpy(zero_copy_only=False).astype(np.float64, copy=False)
    out = q.astype(np.float64) * scale[:, None, None] + loc[:, None, None]
    out.sort(axis=-1)
    finite = np.isfinite(out).all(axis=(1, 2))
    if not finite.all():
        bad = pa.array(~finite)
        yield _skip_rows(batch.filter(bad), pa.array([NON_FINITE] * int((~finite).sum()), pa.string()))
        batch, out = batch.filter(pa.array(finite)), out[finite]
        n = len(batch)
    origin = batch.column("forecast_origin").cast(_TS).cast(pa.int64()).to_numpy(zero_copy_only=False)
    rows = np.repeat(np.arange(n, dtype=np.int64), h)
    flat = out.reshape(n * h, 3)
    yield pa.RecordBatch.from_arrays(
        [
            batch.column("series_id").cast(pa.string()).take(pa.array(rows)),
            pa.array(np.repeat(origin, h)).cast(_TS),
            pa.array(target_times(origin, h, plan.freq).reshape(-1)).cast(_TS),
            pa.array(np.tile(np.arange(1, h + 1, dtype=np.int32), n)),
            pa.array(flat[:, 0]), pa.array(flat[:, 1]), pa.array(flat[:, 2]),
            pa.nulls(n * h, pa.string()),
        ],
        schema=_ARROW_SCHEMA,
    )


# --- on the workers ----------------------------------------------------------------------

_WORKER_CACHE: dict[tuple[str, str, int], Callable[[np.ndarray], np.ndarray]] = {}


def _worker_predict(plan: ScoringPlan, loader: Loader) -> Callable[[np.ndarray], np.ndarray]:
    """This worker's predict function for the plan's model version: loaded once, then reused."""
    key = (plan.model_key, plan.precision, plan.batch_size)
    fn = _WORKER_CACHE.get(key)
    if fn is None:
        import warnings

        import torch

        from models.precision import predict_fn

        torch.set_num_threads(plan.torch_threads)  # workers x threads <= cores: no oversubscription
        # Arrow buffers are read-only; the model only reads its input.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        predictor = loader()
        m = predictor.meta
        if (m.lookback, m.n_features, m.horizon) != (plan.lookback, plan.n_features, plan.horizon):
            raise ScoringError(f"the loader for {plan.model_key} returned a model for lookback {m.lookback}, "
                               f"{m.n_features} features, horizon {m.horizon}; the plan says {plan}")
        fn = predict_fn(predictor, plan.precision, plan.batch_size)
        _WORKER_CACHE.clear()  # one pinned version per run: drop the previous run's model
        _WORKER_CACHE[key] = fn
    return fn


def _score_partition(batches: Iterator[pa.RecordBatch], plan: ScoringPlan,
                     loader: Loader) -> Iterator[pa.RecordBatch]:
    predict: Callable[[np.ndarray], np.ndarray] | None = None
    for batch in batches:
        if predict is None:
            predict = _worker_predict(plan, loader)
        yield from forecast_batch(batch, predict, plan)


# --- fused: observations -> windows -> forecasts in one Python stage ------------------------


def series_runs(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(series_id, ts_us, values) per series from batches sorted by series_id.

    A series may span batches (its rows are joined when the next id appears); values are
    float64 with NaN for NULL.
    """
    pending_id: str | None = None
    ts_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    for batch in batches:
        n = len(batch)
        if n == 0:
            continue
        sid = batch.column("series_id")
        ts = batch.column("ts").cast(_TS).cast(pa.int64()).to_numpy(zero_copy_only=False)
        values = batch.column("value").cast(pa.float64()).to_numpy(zero_copy_only=False)
        change = pc.not_equal(sid.slice(1), sid.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        cuts = [0, *(np.flatnonzero(change) + 1).tolist(), n]
        for start, end in itertools.pairwise(cuts):
            run_id = sid[start].as_py()
            if ts_parts and run_id != pending_id:
                assert pending_id is not None
                yield pending_id, np.concatenate(ts_parts), np.concatenate(val_parts)
                ts_parts, val_parts = [], []
            pending_id = run_id
            ts_parts.append(ts[start:end])
            val_parts.append(values[start:end])
    if ts_parts:
        assert pending_id is not None
        yield pending_id, np.concatenate(ts_parts), np.concatenate(val_parts)


class _WindowBuffer:
    """Inference windows of many series, collected until there are enough for a model batch."""

    def __init__(self) -> None:
        self.sids: list[str] = []
        self.origin: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []
        self.loc: list[np.ndarray] = []
        self.scale: list[np.ndarray] = []
        self.reason: list[str | None] = []

    def add(self, sid: str, rows: Any) -> None:
        """`rows`: what `pipelines.windows.numpy_kernel.series_windows` returns for one series."""
        self.sids += [sid] * len(rows.reason)
        self.origin += rows.origin
        self.inputs += rows.inputs
        self.loc += rows.loc
        self.scale += rows.scale
        self.reason += rows.reason

    def __len__(self) -> int:
        return len(self.sids)

    def batch(self) -> pa.RecordBatch:
        """The buffered windows in the windows contract's columns (usable inputs as one flat buffer)."""
        usable = np.array([r is None for r in self.reason], dtype=bool)
        origin = np.concatenate(self.origin)
        inputs = np.concatenate(self.inputs)
        width = inputs.shape[1]
        offsets = np.zeros(len(usable) + 1, dtype=np.int32)
        np.cumsum(np.where(usable, width, 0), out=offsets[1:])
        flat = np.ascontiguousarray(inputs[usable], dtype=np.float32).reshape(-1)
        return pa.RecordBatch.from_arrays([
            pa.array(self.sids, pa.string()),
            pa.array(origin, _TS, mask=origin == np.iinfo(np.int64).min),
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32()), mask=pa.array(~usable)),
            pa.array(np.concatenate(self.loc), pa.float64()),
            pa.array(np.concatenate(self.scale), pa.float64()),
            pa.array(self.reason, pa.string()),
        ], names=list(WINDOW_COLUMNS))


def _score_observations_partition(batches: Iterator[pa.RecordBatch], plan: ScoringPlan, loader: Loader,
                                  spec: Any, as_of_us: int) -> Iterator[pa.RecordBatch]:
    from pipelines.windows.numpy_kernel import series_windows

    predict: Callable[[np.ndarray], np.ndarray] | None = None
    buf = _WindowBuffer()
    for sid, ts, values in series_runs(batches):
        buf.add(sid, series_windows(spec, ts, values, "inference", as_of_us))
        if len(buf) >= plan.gather_windows:
            predict = predict or _worker_predict(plan, loader)
            yield from forecast_batch(buf.batch(), predict, plan)
            buf = _WindowBuffer()
    if len(buf):
        yield from forecast_batch(buf.batch(), predict or _worker_predict(plan, loader), plan)


# --- Spark -------------------------------------------------------------------------------


def score_windows(windows: Any, plan: ScoringPlan, loader: Loader) -> Any:
    """Inference windows -> scored rows (SCORED_SCHEMA): forecasts, plus one row per skipped window.

    Forecast rows have `skip_reason` NULL; a skipped window appears once with its reason and
    NULL forecasts (`forecast_rows` / `skip_counts` split them).
    """
    missing = [c for c in WINDOW_COLUMNS if c not in windows.columns]
    if missing:
        raise ScoringError(f"windows lack column(s) {', '.join(missing)}; have {', '.join(windows.columns)}")
    return windows.select(*WINDOW_COLUMNS).mapInArrow(
        partial(_score_partition, plan=plan, loader=loader), SCORED_SCHEMA)


def score_observations(obs: Any, cfg: LakecastConfig, as_of: datetime, plan: ScoringPlan,
                       loader: Loader) -> Any:
    """Observations -> scored rows (SCORED_SCHEMA) in ONE Python stage: windows are cut in the UDF.

    The same rows as `score_windows(inference_windows(obs, cfg, as_of), ...)` (the window code
    is `pipelines.windows.numpy_kernel.series_windows` either way), but the windows never cross into
    the JVM and back: each crossing costs more CPU per window than the model itself (see
    bench/RESULTS.md). Observations are shuffled by series and sorted by time; a worker
    gathers windows for about `scoring.arrow_batch_rows` forecast rows before each model call
    (which runs them in batches of `scoring.batch_size`).
    """
    from pyspark.sql import functions as F

    from pipelines.windows.build import WindowSpec
    from pipelines.windows.grid import to_utc_micros

    d = cfg.data
    missing = [c for c in (d.series_col, d.time_col, d.value_col) if c not in obs.columns]
    if missing:
        raise ScoringError(f"cannot score: column(s) {', '.join(missing)} not found in the observations "
                           f"(columns: {', '.join(obs.columns)}); check data.series_col/time_col/value_col")
    rows = obs.select(F.col(d.series_col).cast("string").alias("series_id"),
                      F.col(d.time_col).cast("timestamp").alias("ts"),
                      F.col(d.value_col).cast("double").alias("value"))
    fn = partial(_score_observations_partition, plan=plan, loader=loader, spec=WindowSpec.from_config(cfg),
                 as_of_us=to_utc_micros(as_of))
    return (rows.repartition("series_id").sortWithinPartitions("series_id", "ts")
            .mapInArrow(fn, SCORED_SCHEMA))


def forecast_rows(scored: Any, lineage: Lineage) -> Any:
    """The forecast rows of `score_windows` with lineage, in the `forecasts` table's column order."""
    from pyspark.sql import functions as F

    return scored.filter(F.col("skip_reason").isNull()).select(
        "series_id", "forecast_origin", "target_ts", "horizon_step", "p10", "p50", "p90",
        F.lit(lineage.model_name).alias("model_name"),
        F.lit(lineage.model_version).alias("model_version"),
        F.lit(lineage.model_run_id).cast("string").alias("model_run_id"),
        F.lit(lineage.source_version).cast("bigint").alias("source_version"),
        F.lit(lineage.job_run_id).alias("job_run_id"),
        F.lit(lineage.scored_at).cast("timestamp").alias("scored_at"),
    )


def scored_counts(scored: Any) -> dict[str, int]:
    """Rows by outcome in one pass: `forecast_rows`, and windows skipped per reason."""
    counts = {r["skip_reason"]: int(r["count"]) for r in scored.groupBy("skip_reason").count().collect()}
    out = {"forecast_rows": counts.pop(None, 0)}
    out.update({f"skipped_{k}": v for k, v in sorted(counts.items())})
    return out
