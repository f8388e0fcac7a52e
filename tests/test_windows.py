"""Sequence windows: both strategies against a plain reference, leakage, as-of, splits, counts.

The reference below is written independently of `pipelines/` (loops over datetimes, no
vectorisation) from the rules in the docstrings of pipelines/grid.py, features.py and
windows.py. Hypothesis draws random series with gaps, duplicate and NULL rows, and several
frequencies, and both Spark strategies must reproduce the reference exactly (to float32).
"""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from conf import LakecastConfig
from conf.auto_steps import steps
from conf.window_contract import WINDOW_COLUMNS
from pipelines.windows.build import (
    SplitCutoffs,
    count_skipped_series,
    count_skips,
    feature_names,
    inference_windows,
    log_window_counts,
    split_cutoffs,
    split_windows,
    training_windows,
    window_counts,
)
from pipelines.windows.grid_spark import ObservationsError, to_grid
from pipelines.windows.recent import recent_observations
from tests.conftest import make_config

SCHEMA = "series_id string, ts timestamp, value double"
T0 = datetime(2024, 1, 1)
Row = tuple[str, datetime, float | None]

# ---------------------------------------------------------------------------------------------
# The reference: one series at a time, plain Python
# ---------------------------------------------------------------------------------------------

FIXED = {"15min": timedelta(minutes=15), "h": timedelta(hours=1), "2h": timedelta(hours=2),
         "D": timedelta(days=1), "W": timedelta(weeks=1)}
MONTHS = {"MS": 1, "QS": 3, "YS": 12, "ME": 1, "QE": 3}
PERIOD_END = {"ME", "QE"}  # stamped at midnight on the period's last day


def month_stamp(freq: str, m: int) -> datetime:
    """The timestamp of the period starting at month index `m` (months since year 0)."""
    if freq not in PERIOD_END:
        return datetime(m // 12, m % 12 + 1, 1)
    last = m + MONTHS[freq] - 1
    y, mo = divmod(last + 1, 12)
    return datetime(y, mo + 1, 1) - timedelta(days=1)


def ref_calendar(freq: str, ts: datetime) -> list[float]:
    def pair(phase: float) -> list[float]:
        return [math.sin(2 * math.pi * phase), math.cos(2 * math.pi * phase)]

    if freq in ("15min", "h", "2h"):
        day = (ts.hour * 3600 + ts.minute * 60 + ts.second) / 86400
        return pair(day) + pair(ts.weekday() / 7)
    if freq == "D":
        return pair(ts.weekday() / 7)
    first_month = ts.month - (MONTHS[freq] - 1 if freq in PERIOD_END else 0)  # the period's first month
    return pair((first_month - 1) / 12)


class RefGrid:
    """A series' grid: anchor, step <-> time."""

    def __init__(self, freq: str, all_ts: list[datetime]) -> None:
        self.freq = freq
        first = min(all_ts)
        if freq in MONTHS:
            m = first.year * 12 + first.month - 1
            self.anchor_m = m - m % MONTHS[freq]
        else:
            self.anchor = first

    def step_of(self, ts: datetime) -> int:
        if self.freq in MONTHS:
            return (ts.year * 12 + ts.month - 1 - self.anchor_m) // MONTHS[self.freq]
        return (ts - self.anchor) // FIXED[self.freq]

    def time_of(self, k: int) -> datetime:
        if self.freq in MONTHS:
            return month_stamp(self.freq, self.anchor_m + k * MONTHS[self.freq])
        return self.anchor + k * FIXED[self.freq]


def ref_observed(grid: RefGrid, rows: list[Row], end: datetime | None) -> dict[int, float]:
    """Valid rows up to `end`, one per step: latest ts, then larger value."""
    best: dict[int, tuple[datetime, float]] = {}
    for _, ts, v in rows:
        if v is None or math.isnan(v) or (end is not None and ts > end):
            continue
        k = grid.step_of(ts)
        if k not in best or (ts, v) > best[k]:
            best[k] = (ts, v)
    return {k: tv[1] for k, tv in best.items()}


def ref_fill(obs: dict[int, float], first: int, last: int, fill: str, max_gap: int) -> list[float | None]:
    vals: list[float | None] = [obs.get(k) for k in range(first, last + 1)]
    ks = sorted(obs)
    for a, b in itertools.pairwise(ks):  # closed gaps
        g = b - a - 1
        if 0 < g <= max_gap:
            for j in range(1, g + 1):
                if fill == "ffill":
                    vals[a + j - first] = obs[a]
                elif fill == "linear":
                    vals[a + j - first] = obs[a] + (obs[b] - obs[a]) * j / (g + 1)
    g = last - ks[-1]  # open gap at the end
    if fill == "ffill" and 0 < g <= max_gap:
        for j in range(1, g + 1):
            vals[ks[-1] + j - first] = obs[ks[-1]]
    return vals


def ref_window(cfg: LakecastConfig, grid: RefGrid, vals: list[float | None], observed: set[int],
               first: int, start: int, with_targets: bool, pad: int = 0) -> dict[str, Any]:
    """The window whose inputs start `start` steps after `first`; the first `pad` steps of a
    short series' window lie before its first observation (missing, but not counted as such).
    A context (`model.statistical_lookback` above the lookback) is that many steps before the
    inputs, prepended as they are, scaled by the lookback's loc and scale; nothing else changes."""
    w, lb, hz, ctx = cfg.windows, steps(cfg).lookback, steps(cfg).horizon, steps(cfg).context
    x = vals[start:start + lb]
    origin = grid.time_of(first + start + lb - 1)
    real = lb - pad
    nmiss = sum(v is None for v in x) - pad
    reason = None
    if nmiss == real or nmiss > w.max_missing_frac * real:
        reason = "too_many_missing"
    elif with_targets and any(v is None for v in vals[start + lb:start + lb + hz]):
        reason = "missing_target"
    if reason:
        return {"origin": origin, "reason": reason}
    xs = [v for v in x if v is not None]
    loc = sum(xs) / len(xs)
    std = math.sqrt(sum((v - loc) ** 2 for v in xs) / len(xs))
    scale = std if std > 1e-6 * abs(loc) else (abs(loc) or 1.0)
    inputs: list[float] = []
    before: list[float | None] = [vals[start + t] if start + t >= 0 else None for t in range(-ctx, 0)]
    for t, v in enumerate(before + x, start=-ctx):
        k = first + start + t
        inputs += [0.0 if v is None else (v - loc) / scale, 0.0 if k in observed else 1.0]
        if w.calendar_features:
            inputs += ref_calendar(cfg.data.freq, grid.time_of(k))
    out = {"origin": origin, "reason": None, "inputs": inputs, "loc": loc, "scale": scale}
    if with_targets:
        out["targets"] = [(v - loc) / scale for v in vals[start + lb:start + lb + hz]]  # type: ignore[operator]
    return out


def ref_training(cfg: LakecastConfig, rows: list[Row], cutoff: datetime | None) -> list[dict[str, Any]]:
    grid = RefGrid(cfg.data.freq, [r[1] for r in rows])
    obs = ref_observed(grid, rows, cutoff)
    if not obs:
        return [{"origin": None, "reason": "too_short"}]
    first, last = min(obs), max(obs)
    lb, hz = steps(cfg).lookback, steps(cfg).horizon
    if last - first + 1 - hz < ref_min_history(cfg):
        return [{"origin": grid.time_of(last), "reason": "too_short"}]
    vals = ref_fill(obs, first, last, cfg.windows.fill, cfg.windows.max_gap)
    if len(vals) < lb + hz:  # one window, its inputs starting before the first observation
        pad = lb + hz - len(vals)
        return [ref_window(cfg, grid, [None] * pad + vals, set(obs), first - pad, 0, True, pad)]
    return [ref_window(cfg, grid, vals, set(obs), first, s, True)
            for s in range(0, len(vals) - lb - hz + 1, steps(cfg).stride)]


def ref_min_history(cfg: LakecastConfig) -> int:
    given = cfg.windows.min_history
    return min(steps(cfg).lookback, steps(cfg).horizon if given == "auto" else int(given))


def ref_inference(cfg: LakecastConfig, rows: list[Row], as_of: datetime) -> dict[str, Any]:
    grid = RefGrid(cfg.data.freq, [r[1] for r in rows])
    obs = ref_observed(grid, rows, as_of)
    k_o = grid.step_of(as_of)
    if grid.time_of(k_o) > as_of:  # a period-end stamp still ahead of as-of: the step before
        k_o -= 1
    origin = grid.time_of(k_o)
    lb = steps(cfg).lookback
    if not obs:
        return {"origin": origin, "reason": "too_short"}
    if k_o - max(obs) > steps(cfg).max_staleness:
        return {"origin": origin, "reason": "stale"}
    if k_o - min(obs) + 1 < ref_min_history(cfg):
        return {"origin": origin, "reason": "too_short"}
    vals = ref_fill(obs, min(obs), k_o, cfg.windows.fill, cfg.windows.max_gap)
    pad = max(0, lb - len(vals))
    return ref_window(cfg, grid, [None] * pad + vals, set(obs), min(obs) - pad, 0 if pad else len(vals) - lb,
                      False, pad)


# ---------------------------------------------------------------------------------------------
# Helpers
# ---------------------------------------------------------------------------------------------


def utc(t: datetime) -> datetime:
    return t.replace(tzinfo=UTC)


def frame(spark: Any, rows: list[Row]) -> Any:
    return spark.createDataFrame([(s, utc(t), v) for s, t, v in rows], SCHEMA)


def collect(windows: Any) -> list[dict[str, Any]]:
    """Windows as dicts sorted by (series, origin), origins as naive UTC."""
    out = windows.toArrow().to_pylist()
    for r in out:
        if r["forecast_origin"] is not None:
            r["forecast_origin"] = r["forecast_origin"].astimezone(UTC).replace(tzinfo=None)
    return sorted(out, key=lambda r: (r["series_id"], r["forecast_origin"] or datetime.min))


def assert_matches(got: list[dict[str, Any]], want: list[tuple[str, dict[str, Any]]], nf: int,
                   with_targets: bool) -> None:
    want = sorted(want, key=lambda sw: (sw[0], sw[1]["origin"] or datetime.min))
    assert [(r["series_id"], r["forecast_origin"], r["skip_reason"]) for r in got] == [
        (s, w["origin"], w["reason"]) for s, w in want]
    for r, (_, w) in zip(got, want, strict=True):
        if w["reason"] is not None:
            assert r["inputs"] is None and r["targets"] is None and r["scale_loc"] is None
            continue
        assert len(r["inputs"]) == len(w["inputs"]) and len(r["inputs"]) % nf == 0
        np.testing.assert_allclose(r["inputs"], w["inputs"], rtol=1e-5, atol=1e-5)
        np.testing.assert_allclose([r["scale_loc"], r["scale_scale"]], [w["loc"], w["scale"]], rtol=1e-9)
        if with_targets:
            np.testing.assert_allclose(r["targets"], w["targets"], rtol=1e-5, atol=1e-5)
        else:
            assert r["targets"] is None


def by_series(rows: list[Row]) -> dict[str, list[Row]]:
    out: dict[str, list[Row]] = {}
    for r in rows:
        out.setdefault(r[0], []).append(r)
    return out


# ---------------------------------------------------------------------------------------------
# Property tests: both strategies equal the reference
# ---------------------------------------------------------------------------------------------

FREQS = ["15min", "h", "2h", "D", "W", "MS", "QS", "YS", "ME", "QE"]


@st.composite
def series_sets(draw: st.DrawFn) -> tuple[str, list[Row], int]:
    """(freq, rows, number of grid steps spanned): 1-3 series with gaps, duplicates, NULLs."""
    freq = draw(st.sampled_from(FREQS))
    rows: list[Row] = []
    span = 0
    for i in range(draw(st.integers(1, 3))):
        offset = draw(st.integers(0, 6))
        length = draw(st.integers(1, 24))
        unit = draw(st.sampled_from([1.0, 0.25, 1e-7]))  # flat windows of a level under 1 (the scale guard)
        span = max(span, offset + length)
        phase = timedelta(minutes=draw(st.sampled_from([0, 7, 30]))) if freq in FIXED else timedelta(0)
        for j in range(length):
            if draw(st.integers(0, 9)) < 2:  # a gap
                continue
            if freq in MONTHS:
                ts = month_stamp(freq, 2023 * 12 + (offset + j) * MONTHS[freq])
            else:
                ts = T0 + phase + (offset + j) * FIXED[freq]
            value: float | None = unit * draw(st.integers(-5, 5))
            kind = draw(st.integers(0, 19))
            if kind == 0:
                value = None
            elif kind == 1:
                value = math.nan
            elif kind == 2:  # a duplicate row of the same step
                rows.append((f"s{i}", ts, unit * draw(st.integers(-5, 5))))
            rows.append((f"s{i}", ts, value))
    return freq, rows, span


@st.composite
def window_configs(draw: st.DrawFn, freq: str) -> list[str]:
    return [
        f"data.freq={freq}",
        f"windows.lookback={draw(st.integers(1, 5))}",
        f"windows.horizon={draw(st.integers(1, 3))}",
        f"windows.stride={draw(st.integers(1, 3))}",
        f"windows.fill={draw(st.sampled_from(['ffill', 'linear', 'none']))}",
        f"windows.max_gap={draw(st.integers(0, 3))}",
        f"windows.max_missing_frac={draw(st.sampled_from([0.0, 0.25, 0.5, 1.0]))}",
        f"windows.min_history={draw(st.sampled_from(['auto', 1, 2, 5]))}",
        f"windows.calendar_features={draw(st.booleans())}",
        f"scoring.max_staleness={draw(st.integers(0, 3))}",
        f"model.statistical_lookback={draw(st.sampled_from(['auto', 1, 4, 7]))}",
    ]


def step_time(freq: str, k: int, minutes: int) -> datetime:
    if freq in MONTHS:
        return month_stamp(freq, 2023 * 12 + k * MONTHS[freq]) + timedelta(minutes=minutes)
    return T0 + k * FIXED[freq] + timedelta(minutes=minutes)


PROPERTY = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                           HealthCheck.function_scoped_fixture])


@PROPERTY
@given(data=st.data())
def test_training_windows_equal_reference(spark: Any, cfg: LakecastConfig, data: st.DataObject) -> None:
    freq, rows, span = data.draw(series_sets())
    overrides = data.draw(window_configs(freq))
    cut_k = data.draw(st.none() | st.integers(0, span + 1))
    cutoff = None if cut_k is None else step_time(freq, cut_k, data.draw(st.sampled_from([0, 20])))
    obs = frame(spark, rows)
    want = [(s, w) for s, rs in by_series(rows).items() for w in ref_training(
        make_config(cfg.home, *overrides), rs, cutoff)]
    for strategy in ("numpy", "sql"):
        c = make_config(cfg.home, *overrides, f"windows.strategy={strategy}")
        got = collect(training_windows(obs, c, cutoff=cutoff))
        assert_matches(got, want, len(feature_names(c)), with_targets=True)


@PROPERTY
@given(data=st.data())
def test_inference_windows_equal_reference(spark: Any, cfg: LakecastConfig, data: st.DataObject) -> None:
    freq, rows, span = data.draw(series_sets())
    overrides = data.draw(window_configs(freq))
    as_of = step_time(freq, data.draw(st.integers(-1, span + 3)), data.draw(st.sampled_from([0, 20])))
    if freq in PERIOD_END and data.draw(st.booleans()):  # mid-period: the stamp is still ahead
        as_of -= timedelta(days=10)
    obs = frame(spark, rows)
    want = [(s, ref_inference(make_config(cfg.home, *overrides), rs, as_of))
            for s, rs in by_series(rows).items()]
    for strategy, bounded in (("numpy", False), ("numpy", True), ("sql", True)):
        c = make_config(cfg.home, *overrides, f"windows.strategy={strategy}")
        # predict reads only the rows a window can reach (and each older series' first row): same windows
        source = recent_observations(obs, c, as_of) if bounded else obs
        got = collect(inference_windows(source, c, as_of=as_of))
        assert_matches(got, want, len(feature_names(c)), with_targets=False)


# ---------------------------------------------------------------------------------------------
# Fixed examples
# ---------------------------------------------------------------------------------------------


def hourly(sid: str, values: list[float | None], start: datetime = T0) -> list[Row]:
    return [(sid, start + timedelta(hours=i), v) for i, v in enumerate(values)]


STRATEGY = pytest.mark.parametrize("strategy", ["numpy", "sql"])


def small_cfg(cfg: LakecastConfig, *extra: str) -> LakecastConfig:
    """Hourly windows of 4 + 2 steps with no members' context (model.statistical_lookback below the
    lookback; `auto` would prepend four weeks: the property test and the monthly one here read a context)."""
    return make_config(cfg.home, "windows.lookback=4", "windows.horizon=2", "windows.stride=1",
                       "windows.max_gap=2", "windows.max_missing_frac=0.25", "windows.min_history=4",
                       "model.statistical_lookback=1", *extra)


def test_feature_names_by_frequency(cfg: LakecastConfig) -> None:
    def names(*extra: str) -> list[str]:
        return feature_names(make_config(cfg.home, *extra))

    sub_daily = ["value", "missing", "hour_of_day_sin", "hour_of_day_cos", "day_of_week_sin",
                 "day_of_week_cos"]
    assert names("data.freq=h") == sub_daily
    assert names("data.freq=15min") == sub_daily
    assert names("data.freq=D") == ["value", "missing", "day_of_week_sin", "day_of_week_cos"]
    for f in ("W", "MS", "QS"):
        assert names(f"data.freq={f}") == ["value", "missing", "month_of_year_sin", "month_of_year_cos"]
    assert names("data.freq=h", "windows.calendar_features=false") == ["value", "missing"]


@STRATEGY
def test_columns_and_types_follow_the_contract(spark: Any, cfg: LakecastConfig, strategy: str) -> None:
    c = small_cfg(cfg, f"windows.strategy={strategy}")
    w = training_windows(frame(spark, hourly("a", [float(i) for i in range(8)])), c)
    assert tuple(w.columns) == WINDOW_COLUMNS
    types = {f.name: f.dataType.simpleString() for f in w.schema.fields}
    assert types == {"series_id": "string", "forecast_origin": "timestamp", "inputs": "array<float>",
                     "targets": "array<float>", "scale_loc": "double", "scale_scale": "double",
                     "skip_reason": "string"}
    rows = collect(w)
    assert len(rows) == 3  # 8 steps, windows of 4 + 2, stride 1
    assert all(len(r["inputs"]) == 4 * len(feature_names(c)) and len(r["targets"]) == 2 for r in rows)


@pytest.mark.tz
@STRATEGY
def test_as_of_window_is_exactly_the_last_lookback_steps(spark: Any, cfg: LakecastConfig,
                                                         strategy: str) -> None:
    c = small_cfg(cfg, f"windows.strategy={strategy}", "windows.calendar_features=false")
    values = [float(v) for v in (3, 1, 4, 1, 5, 9, 2, 6, 5, 3)]
    obs = frame(spark, hourly("a", values))
    # as_of between steps 7 and 8: the origin is step 7, the inputs steps 4..7.
    [row] = collect(inference_windows(obs, c, as_of=T0 + timedelta(hours=7, minutes=59)))
    assert row["forecast_origin"] == T0 + timedelta(hours=7)
    scaled = np.array(row["inputs"]).reshape(4, 2)[:, 0]
    np.testing.assert_allclose(scaled * row["scale_scale"] + row["scale_loc"], values[4:8], rtol=1e-6)
    assert row["scale_loc"] == pytest.approx(np.mean(values[4:8]))
    assert row["targets"] is None and row["skip_reason"] is None


@pytest.mark.tz
@STRATEGY
def test_no_window_sees_data_after_the_cutoff(spark: Any, cfg: LakecastConfig, strategy: str) -> None:
    c = small_cfg(cfg, f"windows.strategy={strategy}", "windows.fill=linear")
    cutoff = T0 + timedelta(hours=9)
    # step 9 is missing: a linear fill across the cut-off would read step 10's value.
    before = [float(i) for i in range(9)] + [None]
    obs_a = frame(spark, hourly("a", [*before, 100.0, 200.0]))
    obs_b = frame(spark, hourly("a", [*before, -7.0, 3.0, 1e6]))
    a, b = collect(training_windows(obs_a, c, cutoff)), collect(training_windows(obs_b, c, cutoff))
    assert a == b and a
    last_target = max(r["forecast_origin"] + timedelta(hours=2) for r in a)
    assert last_target <= cutoff
    # the last full window ends at step 8 (the last observation before the cut-off)
    assert last_target == T0 + timedelta(hours=8)


@STRATEGY
def test_skips_are_counted_by_reason_never_dropped(spark: Any, cfg: LakecastConfig, strategy: str) -> None:
    c = small_cfg(cfg, f"windows.strategy={strategy}", "windows.fill=none", "scoring.max_staleness=2")
    rows = (
        hourly("ok", [float(i % 3) for i in range(12)])
        + hourly("short", [1.0, 2.0, 3.0], start=T0 + timedelta(hours=9))
        + hourly("stale", [1.0, 2.0, 3.0, 4.0, 5.0, 6.0])
        + hourly("holey", [1.0, None, None, 4.0, 5.0, 6.0, None, 8.0, 9.0, 10.0, 11.0, 12.0])
        + hourly("later", [1.0], start=T0 + timedelta(hours=30))
    )
    obs = frame(spark, rows)
    inf = inference_windows(obs, c, as_of=T0 + timedelta(hours=11))
    assert count_skips(inf) == {"stale": 1, "too_short": 2}
    assert window_counts(inf) == {"usable": 2, "stale": 1, "too_short": 2}
    assert count_skipped_series(inf) == {"stale": 1, "too_short": 2}
    got = {r["series_id"]: r["skip_reason"] for r in collect(inf)}
    assert got == {"ok": None, "short": "too_short", "stale": "stale", "holey": None, "later": "too_short"}

    tr = training_windows(obs, c)
    counts = count_skips(tr)
    # holey: 7 windows; inputs with 2 missing of 4 (> 0.25) or a missing target are skipped.
    holey = [r for r in collect(tr) if r["series_id"] == "holey"]
    reasons = [r["skip_reason"] for r in holey]
    assert reasons == ["too_many_missing", "too_many_missing", "missing_target", None, None, None, None]
    assert counts == {"missing_target": 1, "too_many_missing": 2, "too_short": 2}
    assert count_skipped_series(tr) == {"missing_target": 1, "too_many_missing": 1, "too_short": 2}


def test_log_window_counts_logs_one_line(spark: Any, cfg: LakecastConfig,
                                         caplog: pytest.LogCaptureFixture) -> None:
    c = small_cfg(cfg)
    obs = frame(spark, hourly("a", [float(i) for i in range(7)]) + hourly("b", [1.0]))
    with caplog.at_level("INFO", logger="pipelines.windows.build"):
        counts = log_window_counts(training_windows(obs, c), "train windows")
    assert counts == {"usable": 2, "too_short": 1}
    assert "train windows: 2 usable, 1 skipped {'too_short': 1}" in caplog.text


@STRATEGY
def test_constant_window_is_scaled_by_its_level(spark: Any, cfg: LakecastConfig, strategy: str) -> None:
    c = small_cfg(cfg, f"windows.strategy={strategy}")
    rows = collect(training_windows(frame(spark, hourly("a", [50.0] * 6) + hourly("z", [0.0] * 6)), c))
    assert [(r["scale_loc"], r["scale_scale"]) for r in rows] == [(50.0, 50.0), (0.0, 1.0)]
    for r in rows:
        assert np.isfinite(r["inputs"]).all() and np.isfinite(r["targets"]).all()


@STRATEGY
def test_a_series_of_tiny_values_is_scaled_by_its_own_spread(spark: Any, cfg: LakecastConfig, strategy: str) -> None:
    """Values about 1e-6 vary on their own scale: scaled by 1 they reached the network as zeros, and its noise
    in scaled units came back a thousand times the series (a flat window of them is scaled by its level)."""
    c = small_cfg(cfg, f"windows.strategy={strategy}")
    tiny = [1e-6 * (1.0 + 0.1 * (i % 3)) for i in range(6)]
    rows = collect(training_windows(frame(spark, hourly("a", tiny) + hourly("b", [0.5e-6] * 6)), c))
    (loc, scale), flat = [(r["scale_loc"], r["scale_scale"]) for r in rows]
    assert loc == pytest.approx(np.mean(tiny[:4]), rel=1e-9) and scale == pytest.approx(np.std(tiny[:4]), rel=1e-9)
    assert flat == (0.5e-6, 0.5e-6)
    assert np.abs(rows[0]["inputs"][::len(rows[0]["inputs"]) // 4]).max() > 0.5  # unit-sized, not ~1e-7


@pytest.mark.tz
def test_split_cutoffs_count_back_from_the_end(spark: Any, cfg: LakecastConfig) -> None:
    c = make_config(cfg.home, "train.val_periods=5", "train.test_periods=3")
    obs = frame(spark, hourly("a", [1.0] * 20))
    assert split_cutoffs(obs, c) == SplitCutoffs(T0 + timedelta(hours=11), T0 + timedelta(hours=16),
                                                 T0 + timedelta(hours=19))
    m = make_config(cfg.home, "data.freq=MS", "train.val_periods=2", "train.test_periods=1")
    monthly = frame(spark, [("a", datetime(2024, k, 1), 1.0) for k in range(1, 13)])
    assert split_cutoffs(monthly, m) == SplitCutoffs(datetime(2024, 9, 1), datetime(2024, 11, 1),
                                                     datetime(2024, 12, 1))


@STRATEGY
def test_split_parts_do_not_leak(spark: Any, cfg: LakecastConfig, strategy: str) -> None:
    c = small_cfg(cfg, f"windows.strategy={strategy}", "train.val_periods=6", "train.test_periods=4",
                  "windows.fill=linear")
    values: list[float | None] = [float(i % 5) for i in range(30)]
    values[19] = None  # a gap at the train/val boundary
    obs = frame(spark, hourly("a", values) + hourly("late", [1.0] * 5, start=T0 + timedelta(hours=25)))
    cut = split_cutoffs(obs, c)
    assert cut == SplitCutoffs(T0 + timedelta(hours=19), T0 + timedelta(hours=25), T0 + timedelta(hours=29))
    parts = split_windows(obs, c, cut)
    horizon = timedelta(hours=2)
    train, val, test = (collect(p) for p in parts)
    usable = [[r for r in p if r["skip_reason"] is None and r["series_id"] == "a"]
              for p in (train, val, test)]
    assert all(usable)
    assert all(r["forecast_origin"] + horizon <= cut.train_end for r in usable[0])
    assert all(cut.train_end < r["forecast_origin"] + timedelta(hours=1) and
               r["forecast_origin"] + horizon <= cut.val_end for r in usable[1])
    assert all(cut.val_end < r["forecast_origin"] + timedelta(hours=1) and
               r["forecast_origin"] + horizon <= cut.end for r in usable[2])
    # the train part equals windows built from data truncated at its cut-off
    truncated = frame(spark, [r for r in hourly("a", values) if r[1] <= cut.train_end])
    assert [r for r in train if r["series_id"] == "a"] == collect(training_windows(truncated, c))
    # the validation part = the windows up to its cut-off whose first target is after train_end
    full_val = collect(training_windows(obs, c, cut.val_end))
    assert val == [r for r in full_val if r["skip_reason"] == "too_short"
                   or r["forecast_origin"] > cut.train_end - timedelta(hours=1)]
    # a series too short for a part says so in that part
    assert [r["skip_reason"] for r in train if r["series_id"] == "late"] == ["too_short"]


def test_to_grid_marks_missing_steps_and_fills_short_gaps(spark: Any, cfg: LakecastConfig) -> None:
    c = make_config(cfg.home, "windows.fill=ffill", "windows.max_gap=1")
    rows = [("a", T0, 1.0), ("a", T0 + timedelta(hours=2, minutes=10), 3.0),
            ("a", T0 + timedelta(hours=2, minutes=5), 9.0), ("a", T0 + timedelta(hours=5), 5.0)]
    got = sorted((r["ts"], r["value"], r["observed"]) for r in to_grid(frame(spark, rows), c).collect())
    assert got == [
        (T0, 1.0, True),
        (T0 + timedelta(hours=1), 1.0, False),  # a gap of 1: filled
        (T0 + timedelta(hours=2), 3.0, True),  # two rows in step 2: the later one wins
        (T0 + timedelta(hours=3), None, False),  # a gap of 2 > max_gap: left missing
        (T0 + timedelta(hours=4), None, False),
        (T0 + timedelta(hours=5), 5.0, True),
    ]


def test_missing_column_is_named(spark: Any, cfg: LakecastConfig) -> None:
    obs = spark.createDataFrame([("a", utc(T0), 1.0)], "id string, ts timestamp, value double")
    with pytest.raises(ObservationsError, match=r"column\(s\) series_id not found .*columns: id, ts, value"):
        training_windows(obs, cfg)


def test_unknown_strategy_is_rejected(cfg: LakecastConfig) -> None:
    from conf import ConfigError

    with pytest.raises(ConfigError, match=r"windows\.strategy"):
        make_config(cfg.home, "windows.strategy=pandas")


@STRATEGY
def test_short_series_are_padded_down_to_min_history(spark: Any, cfg: LakecastConfig, strategy: str) -> None:
    c = small_cfg(cfg, f"windows.strategy={strategy}", "windows.min_history=2", "windows.calendar_features=false")
    rows = (hourly("short", [1.0, 2.0, 6.0], start=T0 + timedelta(hours=9))   # 3 of 4 input steps
            + hourly("one", [5.0], start=T0 + timedelta(hours=11))            # 1 step: below min_history
            + hourly("full", [float(i) for i in range(12)]))
    obs = frame(spark, rows)
    got = {r["series_id"]: r for r in collect(inference_windows(obs, c, as_of=T0 + timedelta(hours=11)))}
    assert {s: r["skip_reason"] for s, r in got.items()} == {"short": None, "one": "too_short", "full": None}
    short = np.array(got["short"]["inputs"]).reshape(4, 2)
    # the step before the first observation is padding: missing, value 0; the scale is the data's
    assert short[:, 1].tolist() == [1.0, 0.0, 0.0, 0.0] and short[0, 0] == 0.0
    assert got["short"]["scale_loc"] == pytest.approx(3.0)
    np.testing.assert_allclose(short[1:, 0] * got["short"]["scale_scale"] + 3.0, [1.0, 2.0, 6.0], rtol=1e-6)
    assert got["short"]["forecast_origin"] == T0 + timedelta(hours=11)

    # training: 5 steps < lookback 4 + horizon 2 gives one window, padded by 1, targets the last 2
    train = collect(training_windows(frame(spark, hourly("s", [1.0, 2.0, 3.0, 4.0, 5.0])), c))
    [w] = train
    assert w["skip_reason"] is None and w["forecast_origin"] == T0 + timedelta(hours=2)
    x = np.array(w["inputs"]).reshape(4, 2)
    assert x[:, 1].tolist() == [1.0, 0.0, 0.0, 0.0]
    np.testing.assert_allclose(np.array(w["targets"]) * w["scale_scale"] + w["scale_loc"], [4.0, 5.0], rtol=1e-6)
    # with min_history = lookback (the old rule) the same series is too short
    old = small_cfg(cfg, f"windows.strategy={strategy}")
    assert [r["skip_reason"] for r in collect(training_windows(frame(spark, hourly("s", [1.0] * 5)), old))] == [
        "too_short"]


@STRATEGY
def test_period_end_as_of_inside_a_period_takes_the_last_stamp_before_it(spark: Any, cfg: LakecastConfig,
                                                                         strategy: str) -> None:
    c = make_config(cfg.home, "data.freq=ME", "windows.lookback=3", "windows.horizon=1", "windows.max_gap=2",
                    "windows.calendar_features=false", f"windows.strategy={strategy}",
                    "model.statistical_lookback=3")
    ends = [datetime(2024, m + 1, 1) - timedelta(days=1) for m in range(1, 7)]  # Jan 31 ... Jun 30
    obs = frame(spark, [("a", t, float(i + 1)) for i, t in enumerate(ends)])
    [row] = collect(inference_windows(obs, c, as_of=datetime(2024, 6, 15)))
    # June's stamp (Jun 30) is still ahead: the origin is May 31, its inputs Mar..May (3, 4, 5)
    assert row["forecast_origin"] == datetime(2024, 5, 31) and row["skip_reason"] is None
    x = np.array(row["inputs"]).reshape(3, 2)
    np.testing.assert_allclose(x[:, 0] * row["scale_scale"] + row["scale_loc"], [3.0, 4.0, 5.0], rtol=1e-6)
    assert x[:, 1].tolist() == [0.0, 0.0, 0.0]  # all observed: nothing filled from a future stamp


def test_predict_reads_only_the_rows_a_window_can_reach(spark: Any, cfg: LakecastConfig) -> None:
    # lookback 4, max_gap 2, staleness 3: a window at hour 199 reaches back 4 + 3 + 3 steps, to hour 189
    c = small_cfg(cfg, "scoring.max_staleness=3", "windows.min_history=2", "windows.max_missing_frac=0.5",
                  "windows.calendar_features=false")
    as_of = T0 + timedelta(hours=199)
    rows = (hourly("long", [float(i % 5) + 0.5 * i for i in range(200)])
            + hourly("gap", [float(i % 7) for i in range(196)] + [None, None, 1.0, 2.0])  # filled from hour 195
            + hourly("stale", [1.0] * 20)                                      # last seen 180 hours ago
            + hourly("late_start", [None] * 197 + [3.0, 4.0, 5.0])             # NULLs before: a padded window
            + hourly("empty", [None] * 10)                                     # no value at all
            + [("first_nan", T0 + timedelta(hours=i), None if i == 0 else float(i)) for i in range(200)]
            # an older NULL row, a value long ago, one now: 3 of 4 steps missing, not a young series
            + [("revived", T0 + timedelta(hours=h), v) for h, v in ((0, None), (100, 7.0), (199, 1.0))])
    obs = frame(spark, rows)
    recent = recent_observations(obs, c, as_of)
    # the older rows are gone but one per series: at most hours 189..199 and one more row each
    assert recent.count() <= 7 * 12 < obs.count()
    want = collect(inference_windows(obs, c, as_of=as_of))
    got = collect(inference_windows(recent, c, as_of=as_of))
    assert [(r["series_id"], r["skip_reason"]) for r in got] == [
        ("empty", "too_short"), ("first_nan", None), ("gap", None), ("late_start", None), ("long", None),
        ("revived", "too_many_missing"), ("stale", "stale")]
    assert got == want
    gap = np.array(got[2]["inputs"]).reshape(4, 2)
    assert gap[:, 1].tolist() == [1.0, 1.0, 0.0, 0.0]  # the filled steps are marked missing in both reads
    late = np.array(got[3]["inputs"]).reshape(4, 2)
    assert late[0].tolist() == [0.0, 1.0]  # one step of padding: a young series
