"""The `numpy` window strategy: one Arrow table per series into a Python worker, numpy inside.

`groupBy(series_id).applyInArrow` hands each series to `series_windows`, which builds its
grid, fills gaps, cuts windows with fancy indexing (no per-window Python loop) and returns
an Arrow table whose list columns are built from flat buffers (no per-row objects).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from conf.window_contract import MISSING_TARGET, STALE, TOO_MANY_MISSING, TOO_SHORT, arrow_schema
from pipelines.windows.features import calendar_features, guard_scale
from pipelines.windows.grid import (
    anchor_of,
    dense_grid,
    month_number,
    series_obs,
    step_at_or_before,
    step_micros,
)
from pipelines.windows.spec import WindowSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


class SeriesRows:
    """Output rows of one series, collected as arrays."""

    def __init__(self) -> None:
        self.origin: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []  # (rows, lookback * features), NaN rows = NULL
        self.targets: list[np.ndarray] = []
        self.loc: list[np.ndarray] = []
        self.scale: list[np.ndarray] = []
        self.reason: list[str | None] = []

    def skipped(self, origin_us: int | None, reason: str, spec: WindowSpec, targets: bool) -> None:
        self.add(np.array([origin_us if origin_us is not None else np.iinfo(np.int64).min]),
                 np.full((1, spec.width * spec.n_features), np.nan, dtype=np.float32),
                 np.full((1, spec.horizon), np.nan, dtype=np.float32) if targets else None,
                 np.array([np.nan]), np.array([np.nan]), [reason])

    def add(self, origin: np.ndarray, inputs: np.ndarray, targets: np.ndarray | None,
            loc: np.ndarray, scale: np.ndarray, reason: list[str | None]) -> None:
        self.origin.append(origin)
        self.inputs.append(inputs)
        if targets is not None:
            self.targets.append(targets)
        self.loc.append(loc)
        self.scale.append(scale)
        self.reason += reason

    def table(self, series_id: str, with_targets: bool) -> pa.Table:
        n = len(self.reason)
        if n == 0:
            return arrow_schema().empty_table()
        usable = np.array([r is None for r in self.reason], dtype=bool)
        origin = np.concatenate(self.origin)
        loc, scale = np.concatenate(self.loc), np.concatenate(self.scale)
        targets = (_list_array(np.concatenate(self.targets), usable) if with_targets
                   else pa.nulls(n, pa.list_(pa.float32())))
        return pa.Table.from_arrays([
            pa.array([series_id] * n, pa.string()),
            pa.array(origin, pa.timestamp("us", tz="UTC"), mask=origin == np.iinfo(np.int64).min),
            _list_array(np.concatenate(self.inputs), usable),
            targets,
            pa.array(loc, pa.float64(), mask=~usable),
            pa.array(scale, pa.float64(), mask=~usable),
            pa.array(self.reason, pa.string()),
        ], schema=arrow_schema())


def _list_array(rows: np.ndarray, usable: np.ndarray) -> pa.Array:
    """list<float> column from a (rows, width) matrix: usable rows as lists, others NULL."""
    width = rows.shape[1]
    lengths = np.where(usable, width, 0)
    offsets = np.zeros(len(rows) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    flat = np.ascontiguousarray(rows[usable], dtype=np.float32).reshape(-1)
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32()),
                                    mask=pa.array(~usable))


def _pad(vals: np.ndarray, observed: np.ndarray, first: int, n: int,
         ) -> tuple[np.ndarray, np.ndarray, int]:
    """`n` missing, unobserved steps before the grid (a short series' window starts before its
    first observation); the first step moves back with them."""
    if n <= 0:
        return vals, observed, first
    return (np.concatenate((np.full(n, np.nan), vals)), np.concatenate((np.zeros(n, dtype=bool), observed)),
            first - n)


def _assemble(spec: WindowSpec, anchor: int, first: int, vals: np.ndarray, observed: np.ndarray,
              starts: np.ndarray, with_targets: bool, out: SeriesRows, padded: int = 0) -> None:
    """Cut windows whose inputs start at grid positions `starts`; scale and add features.

    The first `padded` grid positions are padding (before the series' first observation): they
    are missing in the window but do not count against `max_missing_frac`, which applies to the
    steps from the first observation on. A window is `spec.width` steps: the context (for the
    statistical members alone), then the lookback, which alone decides the scale and whether the
    window has too many missing steps, so the network reads what it would without a context."""
    lb, hz, ctx = spec.lookback, spec.horizon, spec.context
    width = ctx + lb
    idx = starts[:, None] + np.arange(width)  # (windows, width)
    x = vals[idx]
    xl = x[:, ctx:]  # the lookback
    pad = np.maximum(0, padded - starts - ctx)
    real = lb - pad
    nmiss = np.isnan(xl).sum(axis=1) - pad
    reason: list[str | None] = [None] * len(starts)
    bad = (nmiss == real) | (nmiss > spec.max_missing_frac * real)
    y = vals[starts[:, None] + width + np.arange(hz)] if with_targets else None
    bad_y = np.isnan(y).any(axis=1) & ~bad if y is not None else np.zeros(len(starts), dtype=bool)
    for i in np.flatnonzero(bad):
        reason[i] = TOO_MANY_MISSING
    for i in np.flatnonzero(bad_y):
        reason[i] = MISSING_TARGET
    ok = ~(bad | bad_y)
    nf = spec.n_features
    inputs = np.full((len(starts), width * nf), np.nan, dtype=np.float32)
    targets = np.full((len(starts), hz), np.nan, dtype=np.float32) if with_targets else None
    loc = np.full(len(starts), np.nan)
    scale = np.full(len(starts), np.nan)
    if ok.any():
        xo, io = x[ok], idx[ok]
        loc_o = np.nanmean(xl[ok], axis=1)
        scale_o = guard_scale(loc_o, np.nanstd(xl[ok], axis=1))
        scaled = (xo - loc_o[:, None]) / scale_o[:, None]
        scaled[np.isnan(scaled)] = 0.0
        feats = np.empty((len(xo), width, nf), dtype=np.float32)  # (windows, width, features)
        feats[:, :, 0] = scaled
        feats[:, :, 1] = ~observed[io]
        if spec.calendar:
            steps = first + np.arange(len(vals))
            ts = step_micros(spec.grid, anchor, steps)
            months = anchor + steps * spec.grid.months if spec.grid.is_calendar else month_number(ts)
            feats[:, :, 2:] = calendar_features(spec.calendar, ts, np.mod(months, 12))[io]
        inputs[ok] = feats.reshape(len(xo), width * nf)
        if targets is not None and y is not None:
            targets[ok] = (y[ok] - loc_o[:, None]) / scale_o[:, None]
        loc[ok], scale[ok] = loc_o, scale_o
    origin = step_micros(spec.grid, anchor, first + starts + width - 1)
    out.add(origin, inputs, targets, loc, scale, reason)


def series_windows(spec: WindowSpec, ts_us: np.ndarray, values: np.ndarray, mode: str,
                   t_us: int | None, after_us: int | None = None) -> SeriesRows:
    """Windows of one series: `training` up to cut-off `t_us` (only those whose origin is
    after `after_us`, if given), or `inference` as of `t_us`."""
    out = SeriesRows()
    grid = spec.grid
    anchor = anchor_of(grid, ts_us)
    obs = series_obs(grid, ts_us, values, t_us, anchor)
    width, hz = spec.width, spec.horizon
    if mode == "training":
        if len(obs.steps) == 0:
            out.skipped(None, TOO_SHORT, spec, True)
            return out
        first, last = int(obs.steps[0]), int(obs.steps[-1])
        if last - first + 1 - hz < spec.min_history:
            out.skipped(int(step_micros(grid, anchor, np.array([last]))[0]), TOO_SHORT, spec, True)
            return out
        vals, observed = dense_grid(grid, obs)
        # the context before the first lookback is padding; shorter than one window: one window, padded
        padded = max(spec.context, width + hz - len(vals))
        vals, observed, first = _pad(vals, observed, first, padded)
        starts = np.arange(0, len(vals) - width - hz + 1, spec.stride)
        if after_us is not None:
            starts = starts[step_micros(grid, anchor, first + starts + width - 1) > after_us]
        if len(starts):
            _assemble(spec, anchor, first, vals, observed, starts, True, out, padded)
        return out
    assert t_us is not None
    k_o = step_at_or_before(grid, anchor, t_us)
    origin_us = int(step_micros(grid, anchor, np.array([k_o]))[0])
    if len(obs.steps) == 0:
        out.skipped(origin_us, TOO_SHORT, spec, False)
    elif k_o - int(obs.steps[-1]) > spec.max_staleness:
        out.skipped(origin_us, STALE, spec, False)
    elif k_o - int(obs.steps[0]) + 1 < spec.min_history:
        out.skipped(origin_us, TOO_SHORT, spec, False)
    else:
        vals, observed = dense_grid(grid, obs, last_step=k_o)
        padded = max(0, width - len(vals))
        vals, observed, first = _pad(vals, observed, int(obs.steps[0]), padded)
        _assemble(spec, anchor, first, vals, observed, np.array([len(vals) - width]), False, out, padded)
    return out


def arrow_windows(spec: WindowSpec, mode: str, t_us: int | None, table: pa.Table,
                  after_us: int | None = None) -> pa.Table:
    """applyInArrow body: one series' (series_id, ts, value) table to its windows."""
    ts = table.column("ts").cast(pa.timestamp("us", tz="UTC")).cast(pa.int64()).to_numpy()
    values = table.column("value").cast(pa.float64()).to_numpy(zero_copy_only=False)
    sid = table.column("series_id")[0].as_py()
    return series_windows(spec, ts, values, mode, t_us, after_us).table(sid, mode == "training")


def numpy_windows(obs: DataFrame, spec: WindowSpec, mode: str, t_us: int | None,
                  after_us: int | None = None) -> DataFrame:
    """All series' windows with `groupBy(series_id).applyInArrow` (the `numpy` strategy)."""
    from pyspark.sql.pandas.types import from_arrow_schema

    def fn(table: pa.Table) -> pa.Table:
        return arrow_windows(spec, mode, t_us, table, after_us)

    return obs.groupBy("series_id").applyInArrow(fn, from_arrow_schema(arrow_schema()))
