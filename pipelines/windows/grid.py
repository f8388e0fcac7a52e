"""Put each series on its regular `data.freq` grid, mark missing steps, fill short gaps (numpy).

The grid of a series starts at its anchor: its first timestamp for fixed frequencies
(min, h, D, W and multiples), the start of the month/quarter/year of its first timestamp for
calendar frequencies (MS, QS, YS, and the period-end ME, QE, YE). Step k of a series is
`anchor + k * step` (calendar: k * months), stamped at the period's start (MS, QS, YS) or at
midnight on its last day (ME, QE, YE).
Off-grid timestamps are floored onto their step; when several rows share a step, the latest
timestamp wins (ties: the larger value). Rows with a NULL or NaN value count as missing.

Fill (`windows.fill`, bridging gaps of at most `windows.max_gap` missing steps):
- `ffill`: a gap takes the value before it; an open gap at the end (as-of grids) too;
- `linear`: a gap is interpolated between the values around it; open gaps stay missing;
- `none`: nothing is filled.
Longer gaps stay missing entirely: inventing the first steps of a real outage helps nobody.

Two implementations share these rules: numpy here (`dense_grid`, one series at a time, used
by the `numpy` window strategy and the fused scoring path) and Spark SQL in
`pipelines.windows.grid_spark` (`grid_arrays`, used by the `sql` strategy and by `to_grid`).
The tests hold both to one reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import cache

import numpy as np

from conf import LakecastConfig
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
        """Calendar anchors are floored to a multiple of this (3: quarters, 12: years)."""
        return _calendar(self.freq)[0]

    @property
    def period_end(self) -> bool:
        """Steps are stamped at midnight on their period's last day (ME, QE, YE)."""
        return self.is_calendar and _calendar(self.freq)[1]


@cache
def _calendar(alias: str) -> tuple[int, bool]:
    f = parse_freq(alias)
    return (f.period_months, f.period_end) if f.is_calendar else (1, False)


# ---------------------------------------------------------------------------------------------
# Grid steps <-> timestamps (epoch microseconds)
# ---------------------------------------------------------------------------------------------


def month_number(us: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each timestamp (int64)."""
    return us.astype("datetime64[us]").astype("datetime64[M]").astype(np.int64)


def months_to_micros(m: np.ndarray) -> np.ndarray:
    """Timestamp (us) of the start of each month number."""
    return np.asarray(m, dtype=np.int64).astype("datetime64[M]").astype("datetime64[us]").astype(np.int64)


def anchor_of(spec: GridSpec, ts_us: np.ndarray) -> int:
    """The grid anchor of a series: first timestamp, or the month number of its period's start."""
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


DAY_US = 86_400_000_000


def step_micros(spec: GridSpec, anchor: int, k: np.ndarray) -> np.ndarray:
    """Timestamp (us) of grid steps `k`: the start of the step's first month, or for period-end
    frequencies midnight on the last day of its first period (Jan 31 for ME, Mar 31 for QE)."""
    k = np.asarray(k, dtype=np.int64)
    if spec.is_calendar:
        first = anchor + k * spec.months
        if spec.period_end:
            return months_to_micros(first + spec.anchor_months) - DAY_US
        return months_to_micros(first)
    return anchor + k * spec.step_us


def step_at_or_before(spec: GridSpec, anchor: int, t_us: int) -> int:
    """The last grid step stamped at or before `t_us` (an as-of): the step containing it, or for
    period-end frequencies the one before when its stamp (the period's last day) is still ahead."""
    k = int(step_index(spec, anchor, np.array([t_us]))[0])
    return k - 1 if int(step_micros(spec, anchor, np.array([k]))[0]) > t_us else k


def _last_day(year: int, month: int) -> int:
    first_next = datetime(year + month // 12, month % 12 + 1, 1)
    return (first_next - timedelta(days=1)).day


def shift(spec: GridSpec, t: datetime, steps: int) -> datetime:
    """`t` moved by `steps` grid steps (calendar: months, day clamped to the month's end; with a
    period-end frequency a month's last day stays the last day: Feb 29 - 1 ME = Jan 31)."""
    if not spec.is_calendar:
        return t + timedelta(microseconds=spec.step_us * steps)
    m = t.year * 12 + t.month - 1 + steps * spec.months
    y, mo = divmod(m, 12)
    last_day = _last_day(y, mo + 1)
    at_end = spec.period_end and t.day == _last_day(t.year, t.month)
    return t.replace(year=y, month=mo + 1, day=last_day if at_end else min(t.day, last_day))


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
