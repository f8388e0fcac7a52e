"""Put each series on its regular `data.freq` grid, mark missing steps, fill short gaps.

The grid of a series starts at its anchor: its first timestamp for fixed frequencies
(min, h, D, W and multiples), the start of the month/quarter of its first timestamp for
calendar frequencies (MS, QS). Step k of a series is `anchor + k * step` (calendar: k * months).
Off-grid timestamps are floored onto their step; when several rows share a step, the latest
timestamp wins (ties: the larger value). Rows with a NULL or NaN value count as missing.

Fill (`windows.fill`, bridging gaps of at most `windows.max_gap` missing steps):
- `ffill`: a gap takes the value before it; an open gap at the end (as-of grids) too;
- `linear`: a gap is interpolated between the values around it; open gaps stay missing;
- `none`: nothing is filled.
Longer gaps stay missing entirely: inventing the first steps of a real outage helps nobody.

Two implementations share these rules: numpy (`dense_grid`, one series at a time, used by
the `numpy` window strategy) and Spark SQL (`grid_arrays`, used by the `sql` strategy and by
`to_grid`). The tests hold both to one reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from conf import LakecastConfig
from conf.errors import LakecastError
from conf.freq import parse_freq


@dataclass(frozen=True)
class GridSpec:
    """The grid and fill rules of `cfg`, as plain numbers a Python worker can carry."""

    freq: str
    step_us: int  # fixed step in microseconds; 0 for calendar frequencies
    months: int  # months per step for calendar frequencies; 0 for fixed ones
    fill: str
    max_gap: int

    @classmethod
    def from_config(cls, cfg: LakecastConfig) -> GridSpec:
        f = parse_freq(cfg.data.freq)
        if f.is_calendar:
            return cls(f.alias, 0, f.months, cfg.windows.fill, cfg.windows.max_gap)
        return cls(f.alias, f.step // timedelta(microseconds=1), 0, cfg.windows.fill, cfg.windows.max_gap)

    @property
    def is_calendar(self) -> bool:
        return self.months > 0

    @property
    def anchor_months(self) -> int:
        """Calendar anchors are floored to a multiple of this (3: quarter starts)."""
        return 3 if self.freq.endswith("QS") else 1


# ---------------------------------------------------------------------------------------------
# Timestamps <-> numbers
# ---------------------------------------------------------------------------------------------


def to_utc_micros(t: datetime | str) -> int:
    """Microseconds since the epoch; naive datetimes and strings are read as UTC."""
    if isinstance(t, str):
        try:
            t = datetime.fromisoformat(t)
        except ValueError as e:
            raise ValueError(f"{t!r} is not an ISO timestamp (e.g. 2024-01-31T23:00:00)") from e
    if not isinstance(t, datetime):
        raise TypeError(f"expected a datetime or ISO string, got {type(t).__name__}")
    if t.tzinfo is None:
        t = t.replace(tzinfo=UTC)
    delta = t - datetime(1970, 1, 1, tzinfo=UTC)
    return delta // timedelta(microseconds=1)


def from_utc_micros(us: int) -> datetime:
    """A naive UTC datetime (what Spark returns for TIMESTAMP in a UTC session)."""
    return datetime(1970, 1, 1) + timedelta(microseconds=int(us))


def month_number(us: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each timestamp (int64)."""
    return us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)


def months_to_micros(m: np.ndarray) -> np.ndarray:
    """Timestamp (us) of the start of each month number."""
    return np.asarray(m, dtype=np.int64).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)


def anchor_of(spec: GridSpec, ts_us: np.ndarray) -> int:
    """The grid anchor of a series: first timestamp, or its month/quarter number."""
    first = int(ts_us.min())
    if not spec.is_calendar:
        return first
    m = int(month_number(np.array([first]))[0])
    return m - (m % spec.anchor_months)


def step_index(spec: GridSpec, anchor: int, ts_us: np.ndarray) -> np.ndarray:
    """Grid step of each timestamp (floored; negative before the anchor)."""
    if spec.is_calendar:
        return (month_number(ts_us) - anchor) // spec.months
    return (ts_us - anchor) // spec.step_us


def step_micros(spec: GridSpec, anchor: int, k: np.ndarray) -> np.ndarray:
    """Timestamp (us) of grid steps `k`."""
    k = np.asarray(k, dtype=np.int64)
    if spec.is_calendar:
        return months_to_micros(anchor + k * spec.months)
    return anchor + k * spec.step_us


def shift(spec: GridSpec, t: datetime, steps: int) -> datetime:
    """`t` moved by `steps` grid steps (calendar: months, day clamped to the month's end)."""
    if not spec.is_calendar:
        return t + timedelta(microseconds=spec.step_us * steps)
    m = t.year * 12 + t.month - 1 + steps * spec.months
    y, mo = divmod(m, 12)
    first_next = datetime(y + (mo + 1) // 12, (mo + 1) % 12 + 1, 1)
    last_day = (first_next - timedelta(days=1)).day
    return t.replace(year=y, month=mo + 1, day=min(t.day, last_day))


# ---------------------------------------------------------------------------------------------
# numpy: one series
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SeriesObs:
    """A series' valid observations on its grid: unique sorted steps and their values."""

    anchor: int
    steps: np.ndarray  # int64, sorted, unique
    values: np.ndarray  # float64, finite


def series_obs(spec: GridSpec, ts_us: np.ndarray, values: np.ndarray, end_us: int | None,
               anchor: int | None = None) -> SeriesObs:
    """Floor onto the grid, drop NULL/NaN and rows after `end_us`, keep one row per step."""
    anchor = anchor_of(spec, ts_us) if anchor is None else anchor
    keep = np.isfinite(values)
    if end_us is not None:
        keep &= ts_us <= end_us
    ts, v = ts_us[keep], values[keep]
    k = step_index(spec, anchor, ts)
    if not (ts[1:] > ts[:-1]).all():  # already in time order is the usual case: no sort
        order = np.lexsort((v, ts, k))  # last of each step: latest ts, then larger value
        k, v = k[order], v[order]
    last = np.ones(len(k), dtype=bool)
    last[:-1] = k[1:] != k[:-1]
    return SeriesObs(anchor, k[last], v[last])


def dense_grid(spec: GridSpec, obs: SeriesObs, last_step: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Values (NaN = still missing after fill) and observed flags on steps obs.steps[0]..last_step.

    `last_step` defaults to the last observed step; a later one adds an open gap at the end.
    """
    first = int(obs.steps[0])
    last = int(obs.steps[-1]) if last_step is None else last_step
    n = last - first + 1
    vals = np.full(n, np.nan)
    observed = np.zeros(n, dtype=bool)
    pos = obs.steps - first
    vals[pos] = obs.values
    observed[pos] = True
    if spec.fill == "none" or spec.max_gap == 0 or observed.all():
        return vals, observed
    idx = np.arange(n)
    prev = np.maximum.accumulate(np.where(observed, idx, -1))  # never -1: step 0 is observed
    nxt = np.minimum.accumulate(np.where(observed, idx, n)[::-1])[::-1]  # n: open gap at the end
    gap = nxt - prev - 1
    fill = ~observed & (gap <= spec.max_gap)
    if spec.fill == "ffill":
        vals[fill] = vals[prev[fill]]
    else:  # linear: closed gaps only
        fill &= nxt < n
        a, b = vals[prev[fill]], vals[nxt[fill]]
        vals[fill] = a + (b - a) * (idx[fill] - prev[fill]) / (nxt[fill] - prev[fill])
    return vals, observed


# ---------------------------------------------------------------------------------------------
# Spark SQL: all series at once
# ---------------------------------------------------------------------------------------------


def _anchor_col(spec: GridSpec, first_ts: Any) -> Any:
    from pyspark.sql import functions as F

    if not spec.is_calendar:
        return F.unix_micros(first_ts)
    m = (F.year(first_ts) - 1970) * 12 + F.month(first_ts) - 1
    return m - F.pmod(m, F.lit(spec.anchor_months))


def _floor_div(a: Any, c: int) -> Any:
    """Exact floor division of a long column by a positive constant (also below zero)."""
    from pyspark.sql import functions as F

    return ((a - F.pmod(a, F.lit(c))) / F.lit(c)).cast("long")


def _step_col(spec: GridSpec, anchor: Any, ts: Any) -> Any:
    """Grid step of a timestamp column (floored), as a SQL column."""
    from pyspark.sql import functions as F

    if spec.is_calendar:
        m = (F.year(ts) - 1970) * 12 + F.month(ts) - 1
        return _floor_div(m - anchor, spec.months)
    return _floor_div(F.unix_micros(ts) - anchor, spec.step_us)


def step_ts_col(spec: GridSpec, anchor: Any, k: Any) -> Any:
    """Timestamp of grid step `k` (SQL columns), e.g. a window's forecast origin."""
    from pyspark.sql import functions as F

    if spec.is_calendar:
        m = anchor + k * spec.months
        year = (_floor_div(m, 12) + 1970).cast("int")
        month = (F.pmod(m, F.lit(12)) + 1).cast("int")
        return F.make_timestamp(year, month, F.lit(1), F.lit(0), F.lit(0), F.lit(0))
    return F.timestamp_micros(anchor + k * F.lit(spec.step_us))


def step_of_col(spec: GridSpec, anchor: Any, t_us: int) -> Any:
    """Grid step (SQL column, per series anchor) of a fixed time, e.g. a cut-off or as-of."""
    from pyspark.sql import functions as F

    if spec.is_calendar:
        m = int(month_number(np.array([t_us]))[0])
        return _floor_div(F.lit(m) - anchor, spec.months)
    return _floor_div(F.lit(t_us) - anchor, spec.step_us)


class ObservationsError(LakecastError):
    """The observations cannot be put on a grid; the message names the column at fault."""


def select_observations(obs: Any, cfg: LakecastConfig) -> Any:
    """(series_id, ts, value) from the configured columns; fail naming what is missing."""
    from pyspark.sql import functions as F

    wanted = (cfg.data.series_col, cfg.data.time_col, cfg.data.value_col)
    missing = [c for c in wanted if c not in obs.columns]
    if missing:
        raise ObservationsError(
            f"column(s) {', '.join(missing)} not found in the observations "
            f"(columns: {', '.join(obs.columns)}); check data.series_col/time_col/value_col"
        )
    return obs.select(F.col(wanted[0]).cast("string").alias("series_id"),
                      F.col(wanted[1]).cast("timestamp").alias("ts"),
                      F.col(wanted[2]).cast("double").alias("value"))


def grid_arrays(obs: Any, cfg: LakecastConfig, end: datetime | str | None = None,
                to_end: bool = False) -> Any:
    """One row per series: its grid as arrays, gaps filled (Spark SQL, no Python workers).

    Columns: series_id, anchor (long: first timestamp in us, or month number for MS/QS),
    first_step (long: step of the first valid observation, NULL if none), last_obs_step (long),
    last_step (long: last grid step), values array<double> (NULL = still missing after fill),
    observed array<boolean>. Rows after `end` are ignored; with `to_end` the grid runs to the
    last step at or before `end` (an open gap at the end), else to the last observation.
    """
    end_us = None if end is None else to_utc_micros(end)
    if to_end and end_us is None:
        raise ValueError("grid_arrays(to_end=True) needs an `end` time")
    return series_grid_arrays(select_observations(obs, cfg), GridSpec.from_config(cfg), end_us, to_end)


def series_grid_arrays(df: Any, spec: GridSpec, end_us: int | None, to_end: bool) -> Any:
    """`grid_arrays` on (series_id, ts, value) columns and a plain spec."""
    from pyspark.sql import functions as F

    valid = F.col("value").isNotNull() & ~F.isnan("value")
    if end_us is not None:
        valid = valid & (F.unix_micros("ts") <= F.lit(end_us))
    g = df.groupBy("series_id").agg(
        F.min("ts").alias("first_ts"),
        F.collect_list(F.when(valid, F.struct("ts", "value"))).alias("rows"),
    )
    g = g.withColumn("anchor", _anchor_col(spec, F.col("first_ts")))
    # (step, ts, value) sorted; keep the last row of each step (latest ts, then larger value).
    rows = F.transform("rows", lambda r: F.struct(_step_col(spec, F.col("anchor"), r["ts"]).alias("k"),
                                                 r["ts"].alias("ts"), r["value"].alias("v")))
    g = g.withColumn("rows", F.array_sort(rows))
    n = F.size("rows")
    keep = F.filter(F.sequence(F.lit(0), n - 1),
                    lambda i: (i == n - 1) | (F.col("rows")[i]["k"] != F.get("rows", i + 1)["k"]))
    g = g.withColumn("rows", F.when(n > 0, F.transform(keep, lambda i: F.col("rows")[i])).otherwise(
        F.col("rows")))
    g = g.withColumn("ks", F.col("rows.k")).withColumn("vs", F.col("rows.v"))
    n = F.size("ks")
    last_obs = F.element_at("ks", -1)
    last_step = step_of_col(spec, F.col("anchor"), end_us) if to_end and end_us is not None else last_obs
    g = g.withColumn("first_step", F.when(n > 0, F.col("ks")[0])).withColumn(
        "last_obs_step", F.when(n > 0, last_obs)).withColumn("last_step", F.when(n > 0, last_step))
    g = g.withColumn("values", _dense_values(spec, n)).withColumn("observed", _dense_observed(n))
    return g.select("series_id", "anchor", "first_step", "last_obs_step", "last_step", "values", "observed")


def _gap_fill(spec: GridSpec, a: Any, b: Any, g: Any, open_end: bool) -> Any:
    """SQL array of the `g` filled (or NULL) values of a gap between values a and b."""
    from pyspark.sql import functions as F

    nulls = F.array_repeat(F.lit(None).cast("double"), g.cast("int"))
    if spec.fill == "none" or spec.max_gap == 0:
        return nulls
    if spec.fill == "ffill":
        filled = F.array_repeat(a, g.cast("int"))
    elif open_end:
        return nulls
    else:
        filled = F.transform(F.sequence(F.lit(1), F.greatest(g, F.lit(1)).cast("int")),
                             lambda j: a + (b - a) * j / (g + 1))
    return F.when(g <= spec.max_gap, filled).otherwise(nulls)


def _dense_values(spec: GridSpec, n: Any) -> Any:
    """Each observation followed by its (filled) gap; then the open gap up to last_step."""
    from pyspark.sql import functions as F

    ks, vs = F.col("ks"), F.col("vs")

    def piece(i: Any) -> Any:
        g = F.when(i < n - 1, F.get(ks, i + 1) - ks[i] - 1).otherwise(F.lit(0))
        gap = F.when(g > 0, _gap_fill(spec, vs[i], F.get(vs, i + 1), g, open_end=False)).otherwise(
            F.array().cast("array<double>"))
        return F.concat(F.array(vs[i]), gap)

    body = F.flatten(F.transform(F.sequence(F.lit(0), n - 1), piece))
    tail_gap = F.col("last_step") - F.col("last_obs_step")
    tail = F.when(tail_gap > 0, _gap_fill(spec, F.element_at(vs, -1), F.lit(None), tail_gap, open_end=True)
                  ).otherwise(F.array().cast("array<double>"))
    return F.when(n > 0, F.concat(body, tail))


def _dense_observed(n: Any) -> Any:
    from pyspark.sql import functions as F

    ks = F.col("ks")

    def piece(i: Any) -> Any:
        g = F.when(i < n - 1, F.get(ks, i + 1) - ks[i] - 1).otherwise(F.lit(0))
        return F.concat(F.array(F.lit(True)), F.array_repeat(F.lit(False), g.cast("int")))

    body = F.flatten(F.transform(F.sequence(F.lit(0), n - 1), piece))
    tail = F.array_repeat(F.lit(False), (F.col("last_step") - F.col("last_obs_step")).cast("int"))
    return F.when(n > 0, F.concat(body, tail))


def to_grid(obs: Any, cfg: LakecastConfig, end: datetime | str | None = None, to_end: bool = False) -> Any:
    """Long format of `grid_arrays`: one row per (series_id, grid step) from the first valid
    observation, with `ts`, `value` (filled; NULL = still missing) and `observed`."""
    from pyspark.sql import functions as F

    spec = GridSpec.from_config(cfg)
    g = grid_arrays(obs, cfg, end, to_end).where(F.col("first_step").isNotNull())
    z = g.select("series_id", "anchor", "first_step",
                 F.posexplode(F.arrays_zip(F.col("values").alias("value"),
                                           F.col("observed").alias("observed"))).alias("pos", "z"))
    k = F.col("first_step") + F.col("pos")
    return z.select("series_id", step_ts_col(spec, F.col("anchor"), k).alias("ts"),
                    F.col("z.value").alias("value"), F.col("z.observed").alias("observed"))
