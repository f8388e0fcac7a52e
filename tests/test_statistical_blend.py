"""Statistical forecasts of each window and their blend with the network (numpy/torch, no Spark).

The vectorised Theta forecast is checked against a plain one-window-at-a-time reference
written from the textbook steps; the blend's weights against data built so that the right
weight is known; the Predictor applies blend and calibration in that order and keeps both
through save/load; models saved before the blend load as trained.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from models.arrays import WindowArrays
from models.lakecast_forecaster.blend import (
    MIN_WINDOWS_PER_STEP,
    StatisticalBlend,
    _inverse_shares,
    fit_blend,
    local_member_shares,
    local_member_split,
)
from models.lakecast_forecaster.calibration import IntervalCalibration
from models.lakecast_forecaster.lstm import LSTMSpec, build_model
from models.lakecast_forecaster.padding import leading_padding
from models.lakecast_forecaster.predictor import (
    META_FILE,
    ModelLoadError,
    ModelMeta,
    Predictor,
    load_predictor,
    save_predictor,
)
from models.lakecast_forecaster.statistical import (
    AIRLINE_GRID,
    ALPHAS,
    DAMPED_ALPHAS,
    DAMPED_PHIS,
    DAMPED_TREND_SHARES,
    HW_ALPHAS,
    HW_PARAMETER_PENALTY,
    HW_SEASON_SHARES,
    HW_TRENDS,
    MEMBERS,
    MULTIPLICATIVE_MEMBERS,
    RECENT_MEMBERS,
    airline_forecast,
    damped_forecast,
    holt_winters_forecast,
    member_forecasts,
    naive_forecast,
    seasonal_drift_forecast,
    seasonal_naive_forecast,
    theta_forecast,
)
from models.statistical_blend import fit

torch.set_num_threads(1)
ADDITIVE = tuple(m for m in MEMBERS if m not in MULTIPLICATIVE_MEMBERS)
SPEC = LSTMSpec(n_features=2, lookback=24, horizon=6, hidden_size=4, num_layers=1)
META = ModelMeta(lookback=24, n_features=2, feature_names=("value", "missing"), horizon=6,
                 quantiles=(0.1, 0.5, 0.9), freq="MS", network=SPEC)


def reference_profile(x: list[float], m: int) -> list[float]:
    """One window, loops only: the additive seasonal indices of a classical decomposition (by
    phase from the window's end), or zeros where the window shows no season."""
    n = len(x)
    profile = [0.0] * max(m, 1)
    if m > 1 and n >= 2 * m:
        mean = sum(x) / n
        c = [v - mean for v in x]
        r = [sum(c[t] * c[t - k] for t in range(k, n)) / sum(v * v for v in c) for k in range(1, m + 1)]
        half = m // 2
        sums, counts, detrended = [0.0] * m, [0] * m, []
        for t in range(half, n - half):
            if m % 2 == 0:
                ma = (0.5 * x[t - half] + sum(x[t - half + 1:t + half]) + 0.5 * x[t + half]) / m
            else:
                ma = sum(x[t - half:t + half + 1]) / m
            sums[(t - n) % m] += x[t] - ma
            counts[(t - n) % m] += 1
            detrended.append(x[t] - ma)
        seasonal = abs(r[m - 1]) > 1.645 * math.sqrt((1 + 2 * sum(v * v for v in r[:m - 1])) / n)
        pairs = len(detrended) - m
        if pairs >= 4:  # or the detrended values follow those a season earlier (Pearson r, same test)
            a, b = detrended[m:], detrended[:-m]
            ma_, mb = sum(a) / pairs, sum(b) / pairs
            cov = sum((u - ma_) * (v - mb) for u, v in zip(a, b, strict=True))
            var = math.sqrt(sum((u - ma_) ** 2 for u in a) * sum((v - mb) ** 2 for v in b))
            seasonal = seasonal or (var > 1e-12 and cov / var > 1.645 / math.sqrt(pairs))
        if seasonal:
            idx = [s / k for s, k in zip(sums, counts, strict=True)]
            profile = [v - sum(idx) / m for v in idx]
    return profile


def reference_theta(x: list[float], m: int, h: int) -> list[float]:
    """One window, loops only: classical additive decomposition (if seasonal), SES, half the slope."""
    n = len(x)
    profile = reference_profile(x, m)
    w = len(profile)
    adj = [x[t] - profile[(t - n) % w] for t in range(n)]
    best = (math.inf, 0.0, 0.0)
    for a in ALPHAS:
        level, sse = adj[0], 0.0
        for t in range(1, n):
            sse += (adj[t] - level) ** 2
            level += a * (adj[t] - level)
        if sse < best[0] - 1e-12:
            best = (sse, level, float(a))
    _, level, a = best
    tbar = (n - 1) / 2
    slope = sum((t - tbar) * adj[t] for t in range(n)) / sum((t - tbar) ** 2 for t in range(n))
    return [level + slope / 2 * ((k - 1) + 1 / a - (1 - a) ** n / a) + profile[(k - 1) % w] for k in range(1, h + 1)]


def seasonal_windows(n: int, length: int, m: int, seed: int, noise: float = 0.3) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    amp, slope = rng.uniform(0.5, 2, (n, 1)), rng.normal(0, 0.05, (n, 1))
    season = amp * np.sin(2 * np.pi * (t + rng.integers(0, m, (n, 1))) / m)
    return season + slope * t + rng.normal(0, noise, (n, length))


@pytest.mark.parametrize(("m", "length"), [(12, 36), (4, 16), (7, 30), (24, 20), (1, 10), (96, 200)])
def test_theta_equals_the_one_window_reference(m: int, length: int) -> None:
    """Seasonal (even and odd seasons; 96 takes the FFT path), too short for the season, and
    non-seasonal windows."""
    x = seasonal_windows(40, length, max(m, 2), seed=m, noise=0.4)
    x[:5] = np.random.default_rng(0).normal(size=(5, length))  # no season: the test keeps it flat
    got = theta_forecast(x, m, 9)
    want = np.array([reference_theta(list(row), m, 9) for row in x])
    np.testing.assert_allclose(got, want, rtol=0, atol=2e-5)  # the SES loop runs in float32


def test_theta_continues_a_season_and_a_trend() -> None:
    """A clean seasonal series with a trend: Theta's forecast is close; a level forecast is not."""
    t = np.arange(48 + 12)
    y = np.sin(2 * np.pi * t / 12)[None, :] * 2 + 0.05 * t[None, :]
    f = theta_forecast(y[:, :48], 12, 12)
    err, flat = np.abs(f - y[:, 48:]).mean(), np.abs(y[:, 47:48] - y[:, 48:]).mean()
    assert err < 0.2 and err < flat / 5  # the season is right; Theta's drift is half the slope


def test_theta_finds_the_season_of_a_short_trending_window() -> None:
    """Three years of a growing monthly series with a season (AirPassengers' 1957-1959 shape):
    the lag-12 autocorrelation is swamped by the trend, the detrended values are not; white noise
    around a trend is rarely called seasonal (the 90 % test's false positives, at most ~10 %)."""
    t = np.arange(36)
    shape = np.array([-3, -6, 3, 0, 1, 10, 18, 18, 6, -6, -15, -7], dtype=float)
    rng = np.random.default_rng(5)
    x = 300 + 6 * t + 4 * shape[t % 12] + rng.normal(0, 4, (200, 36))
    future = 300 + 6 * np.arange(36, 54) + 4 * shape[np.arange(36, 54) % 12]
    got = theta_forecast(x, 12, 18)
    flat = theta_forecast(x, 1, 18)  # what Theta forecast when it missed the season
    assert np.abs(got - future).mean() < 0.5 * np.abs(flat - future).mean()
    # the season's peak and trough land in the right months
    assert (got[:, 6] - got[:, 10] > 80).mean() > 0.95
    noise = 300 + 6 * t + rng.normal(0, 20, (400, 36))
    seasonal = np.abs(theta_forecast(noise, 12, 12) - theta_forecast(noise, 1, 12)).max(axis=1) > 1e-9
    assert seasonal.mean() < 0.2


def test_seasonal_naive_repeats_the_last_season() -> None:
    x = np.arange(20.0)[None, :].repeat(2, axis=0)
    np.testing.assert_array_equal(seasonal_naive_forecast(x, 4, 6)[0], [16, 17, 18, 19, 16, 17])
    np.testing.assert_array_equal(seasonal_naive_forecast(x, 24, 3)[0], [19, 19, 19])  # window < season: naive


def test_seasonal_drift_carries_the_growth_forward() -> None:
    """A season on a straight line is forecast exactly (Theta, with half the slope, is not); a
    window shorter than two seasons drifts by its average step; a lone value stays put."""
    t = np.arange(36 + 18)
    y = (np.sin(2 * np.pi * t / 12) * 3 + 0.4 * t + 10.0)[None, :]
    np.testing.assert_allclose(seasonal_drift_forecast(y[:, :36], 12, 18), y[:, 36:], atol=1e-9)
    assert np.abs(theta_forecast(y[:, :36], 12, 18) - y[:, 36:]).max() > 1.0
    x = np.array([[1.0, 2.0, 4.0, 7.0]])  # 6 over 3 steps: 2 a step, from the last value
    np.testing.assert_array_equal(seasonal_drift_forecast(x, 12, 3)[0], [9.0, 11.0, 13.0])
    np.testing.assert_array_equal(seasonal_drift_forecast(np.array([[5.0]]), 12, 2)[0], [5.0, 5.0])
    z = np.array([[0.0, 10.0, 1.0, 11.0, 2.0, 12.0]])  # season 2, 1 per season: 3, 13, 4, 14
    np.testing.assert_array_equal(seasonal_drift_forecast(z, 2, 4)[0], [3.0, 13.0, 4.0, 14.0])


def reference_airline(x: list[float], m: int, h: int) -> list[float]:
    """One window, loops only: ARIMA(0,1,1)(0,1,1)_m by conditional sum of squares over the grid
    (ARIMA(0,1,1) below two seasons and three steps), then both differences carried forward."""
    n = len(x)
    if n < 3:
        return [x[-1]] * h
    seasonal = m >= 2 and n >= 2 * m + 3
    d = m + 1 if seasonal else 1
    w = [x[t] - x[t - 1] - (x[t - m] - x[t - m - 1] if seasonal else 0.0) for t in range(d, n)]
    def past(e: list[float], k: int) -> float:  # the shock k steps before the next one; 0 before the start
        return e[len(e) - k] if len(e) - k >= 0 else 0.0

    best = (math.inf, 0.0, 0.0, [0.0])
    for a in AIRLINE_GRID:
        for s in (AIRLINE_GRID if seasonal else [0.0]):
            e: list[float] = []
            for v in w:
                e.append(v - a * past(e, 1) - (s * past(e, m) + a * s * past(e, m + 1) if seasonal else 0.0))
            sse = sum(float(np.float32(v)) ** 2 for v in e)
            if sse < best[0] - 1e-9:
                best = (sse, float(a), float(s), e)
    _, a, s, e = best
    y, shocks = list(x), list(e)
    for _ in range(h):
        ahead = a * past(shocks, 1) + (s * past(shocks, m) + a * s * past(shocks, m + 1) if seasonal else 0.0)
        y.append(y[-1] + (y[-m] - y[-m - 1] if seasonal else 0.0) + ahead)
        shocks.append(0.0)   # future shocks are zero
    return y[n:]


@pytest.mark.parametrize(("m", "length"), [(12, 72), (4, 40), (12, 26), (52, 52), (1, 12), (24, 168)])
def test_airline_equals_the_one_window_reference(m: int, length: int) -> None:
    """Seasonal windows (monthly, quarterly, hourly), one too short for two seasons and three steps
    (ARIMA(0,1,1)), weekly with a one-year window, yearly: the vectorised member is the loop."""
    x = seasonal_windows(6, length, max(m, 2), seed=m + length) + np.linspace(0, 3, length)
    got = airline_forecast(x, m, 13)
    for row, f in zip(x, got, strict=True):
        np.testing.assert_allclose(f, reference_airline([float(v) for v in row], m, 13), rtol=1e-6, atol=1e-6)


def test_airline_carries_trend_and_season_forward() -> None:
    """A window that is exactly trend plus a fixed season has no shocks after both differences:
    the forecast continues both exactly. A random walk (season 1: ARIMA(0,1,1), exponential
    smoothing without drift) is forecast flat, at a level inside the window's range."""
    t = np.arange(60)
    x = (0.5 * t + np.tile([3.0, -1.0, 0.0, 2.0, -4.0, 0.0], 10))[None, :]
    future = np.arange(60, 72)
    want = 0.5 * future + np.tile([3.0, -1.0, 0.0, 2.0, -4.0, 0.0], 2)
    np.testing.assert_allclose(airline_forecast(x, 6, 12)[0], want, atol=1e-9)
    walk = np.random.default_rng(5).normal(0, 1, (4, 30)).cumsum(axis=1)
    f = airline_forecast(walk, 1, 5)
    assert np.all(np.ptp(f, axis=1) < 1e-9)                           # no drift: one level ahead
    assert np.all((f[:, 0] >= walk.min(axis=1)) & (f[:, 0] <= walk.max(axis=1)))


def reference_damped(x: list[float], m: int, h: int) -> list[float]:
    """One window, loops only: Theta's seasonal adjustment, then damped Holt for every (alpha,
    beta = share·alpha, phi) of the grid from level x0 and the first season's mean growth; the fit
    with the least one-step squared error forecasts l + (phi + ... + phi^k)·b plus the season."""
    n = len(x)
    if n < 3:
        return [x[-1]] * h
    profile = reference_profile(x, m)
    w = len(profile)
    adj = [x[t] - profile[(t - n) % w] for t in range(n)]
    k = min(n - 1, max(1, m))
    best = (math.inf, 0.0, 0.0, 0.0)
    for a in DAMPED_ALPHAS:
        for share in DAMPED_TREND_SHARES:
            for phi in DAMPED_PHIS:
                a32, b32, p32 = (float(np.float32(v)) for v in (a, a * share, phi))
                level, trend, sse = adj[0], (adj[k] - adj[0]) / k, 0.0
                for t in range(1, n):
                    f = level + p32 * trend
                    e = adj[t] - f
                    sse += e * e
                    level, trend = f + a32 * e, p32 * trend + b32 * e
                if sse < best[0] - 1e-9:
                    best = (sse, level, trend, p32)
    _, level, trend, phi = best
    return [level + sum(phi ** j for j in range(1, i + 1)) * trend + profile[(i - 1) % w] for i in range(1, h + 1)]


@pytest.mark.parametrize(("m", "length"), [(12, 72), (4, 40), (12, 20), (52, 52), (1, 12), (7, 56), (4, 3)])
def test_damped_equals_the_one_window_reference(m: int, length: int) -> None:
    """Monthly, quarterly, a monthly window too short for its season, weekly with a one-year window,
    yearly, daily and a three-step window: the vectorised member is the loop."""
    x = seasonal_windows(6, length, max(m, 2), seed=m + length) + np.linspace(0, 3, length)
    got = damped_forecast(x, m, 13)
    for row, f in zip(x, got, strict=True):
        np.testing.assert_allclose(f, reference_damped([float(v) for v in row], m, 13), rtol=1e-5, atol=1e-5)


def test_damped_follows_a_trend_and_flattens_it() -> None:
    """On a growing seasonal series the member keeps growing, but each season by phi^season times
    the season before (phi from the grid, below 1), so the growth falls below the straight line's;
    the season comes back on top (a season apart, it cancels). A constant window stays constant."""
    t = np.arange(48)
    x = (0.3 * t + np.tile([2.0, -1.0, 0.5, -1.5], 12) + np.random.default_rng(3).normal(0, 0.05, 48))[None, :]
    f = damped_forecast(x, 4, 16)[0]
    growth = f[4:] - f[:-4]                      # season over season: b·phi^h·(phi + ... + phi^4)
    ratio = growth[1:] / growth[:-1]
    assert np.all(growth > 0) and np.allclose(ratio, ratio[0], rtol=1e-6)
    assert min(abs(ratio[0] - p) for p in DAMPED_PHIS) < 1e-5 and ratio[0] < 1.0
    assert growth[-1] < 4 * 0.3 and growth[0] > 0.5 * 4 * 0.3   # below the line's 1.2 a season, yet growing
    np.testing.assert_allclose(damped_forecast(np.full((2, 10), 4.0), 1, 3), 4.0)


def reference_holt_winters(x: list[float], m: int, h: int) -> list[float]:
    """One window, loops only: the season from the classical profile (none where the window shows none or is
    shorter than two seasons), level and trend from the first two seasons less it, then additive Holt-Winters
    with a damped trend for every (alpha, gamma, beta, phi) of the grid; the fit with the least
    ``n·log(SSE/n) + 2·(weights above zero)`` (Akaike's criterion, a trend counting its weight and its
    damping) forecasts ``l + (phi + ... + phi^k)·b`` plus the season as it stands at the end."""
    n = len(x)
    if n < 3:
        return [x[-1]] * h
    w = m if m > 1 and n >= 2 * m else 1
    profile = reference_profile(x, m) if w > 1 else [0.0]
    seasonal = any(v != 0.0 for v in profile)
    s0 = [profile[(t - n) % w] for t in range(w)]
    adj = [x[t] - s0[t % w] for t in range(2 * w)]
    first = sum(adj[:w]) / w
    slope = (sum(adj[w:]) / w - first) / w
    start = first - slope * (w + 1) / 2
    best: tuple[float, float, float, float, list[float]] = (math.inf, 0.0, 0.0, 0.0, [])
    for a in HW_ALPHAS:
        for g in HW_SEASON_SHARES:
            for share, phi in HW_TRENDS:
                a32, g32, b32, p32 = (float(np.float32(v)) for v in (a, g * (1 - a), share * a, phi))
                level, trend, season, sse = start, slope if b32 > 0 else 0.0, list(s0), 0.0
                for t in range(n):
                    trend = p32 * trend
                    e = x[t] - (level + trend + season[t % w])
                    sse += e * e
                    level += trend + a32 * e
                    trend += b32 * e
                    season[t % w] += (g32 if seasonal else 0.0) * e
                weights = 1 + (g32 > 0) + 2 * (b32 > 0)
                criterion = n * math.log(max(sse, 1e-12) / n) + HW_PARAMETER_PENALTY * weights
                if criterion < best[0] - 1e-9:
                    best = (criterion, level, trend, p32, season)
    _, level, trend, phi, season = best
    return [level + sum(phi ** j for j in range(1, i + 1)) * trend + season[(n + i - 1) % w] for i in range(1, h + 1)]


@pytest.mark.parametrize(("m", "length"), [(12, 72), (4, 40), (12, 20), (1, 12), (7, 56), (4, 3), (12, 77),
                                           (7, 59), (12, 60)])
def test_holt_winters_equals_the_one_window_reference(m: int, length: int) -> None:
    """Monthly, quarterly, a monthly window too short for its season, yearly, daily, a three-step window,
    windows that are not whole seasons (the season's phase counts from the window's end) and random walks
    of five years with no season to find: the vectorised member is the loop, additive on windows without
    an offset, on the logs of the original values where the offset makes them all positive."""
    x = seasonal_windows(6, length, max(m, 2), seed=m + length) + np.linspace(0, 3, length)
    if length == 60:
        x = np.cumsum(np.random.default_rng(8).normal(0, 1, (6, length)), axis=1)
    got = holt_winters_forecast(x, m, 13)
    for row, f in zip(x, got, strict=True):
        np.testing.assert_allclose(f, reference_holt_winters([float(v) for v in row], m, 13), rtol=1e-4, atol=1e-4)
    c = 10.0 - x.min(axis=1)                    # every original value (x + c) positive: the multiplicative form
    c[0] = -x[0].max()                          # the first window's original values are negative: additive
    got = holt_winters_forecast(x, m, 13, offset=c)
    np.testing.assert_allclose(got[0], reference_holt_winters([float(v) for v in x[0]], m, 13), rtol=1e-4, atol=1e-4)
    for row, off, f in zip(x[1:], c[1:], got[1:], strict=True):
        logs = [math.log(float(v) + off) for v in row]
        want = np.clip(reference_holt_winters(logs, m, 13), 2 * min(logs) - max(logs), 2 * max(logs) - min(logs))
        np.testing.assert_allclose(f, np.exp(want) - off, rtol=1e-4, atol=1e-4)


def test_holt_winters_follows_a_season_that_changes() -> None:
    """A season whose swing has doubled over the window: Theta puts back the window's average season,
    Holt-Winters the season as it stands at the end (its weight gamma lets it move), so it forecasts the next
    two seasons closer. A season proportional to a growing level is forecast on the logs, where the
    offset makes the original values positive: closer than the additive form. A constant stays constant."""
    rng = np.random.default_rng(5)
    t = np.arange(72)
    pattern = np.tile([2.0, -1.0, 0.5, -1.5, 1.0, -1.0], 14)
    grow = (1 + t / 72)[None, :] * pattern[None, :72] + rng.normal(0, 0.05, (1, 72))
    ahead = (1 + np.arange(72, 84) / 72) * pattern[72:84]
    hw, theta = holt_winters_forecast(grow, 6, 12)[0], theta_forecast(grow, 6, 12)[0]
    assert np.abs(hw - ahead).mean() < 0.6 * np.abs(theta - ahead).mean()
    level = 10 * 1.02 ** np.arange(84)
    y = level * (1 + 0.3 * pattern) * np.exp(rng.normal(0, 0.01, 84))
    mult = holt_winters_forecast(y[None, :72], 6, 12, offset=np.zeros(1))[0]
    add = holt_winters_forecast(y[None, :72], 6, 12)[0]
    assert np.abs(mult - y[72:]).mean() < 0.03 * y[72:].mean() < np.abs(add - y[72:]).mean()
    np.testing.assert_allclose(holt_winters_forecast(np.full((2, 30), 4.0), 6, 5), 4.0, atol=1e-5)
    np.testing.assert_allclose(holt_winters_forecast(np.full((2, 30), 4.0), 6, 5, offset=np.ones(2)), 4.0,
                               atol=1e-9)


def test_holt_winters_on_logs_keeps_its_precision_and_its_bounds() -> None:
    """A series whose spread is tiny beside its level (offset 10^5: its logs vary in the sixth digit) is
    forecast on its logs as precisely as the same series with a small offset, where the forecast in scaled
    units must be the same but for the season's growth with the level (here none to speak of). A ramp
    (a launch: flat at 1, then four times more each month for six months) is not carried into explosive
    growth on the logs over two years (the damped trend on logs alone reaches 6·10^7): the forecast stops at
    the window's range of logs beyond its largest (4096 · 4096)."""
    x = seasonal_windows(4, 72, 12, seed=2) + np.linspace(0, 3, 72)
    small = holt_winters_forecast(x, 12, 12, offset=np.full(4, 1e3))
    large = holt_winters_forecast(x, 12, 12, offset=np.full(4, 1e5))
    additive = holt_winters_forecast(x, 12, 12)
    assert np.abs(large - additive).max() < 0.01 and np.abs(small - additive).max() < 0.05
    ramp = np.concatenate([np.ones(30), 4.0 ** np.arange(1, 7)])[None, :]
    f = holt_winters_forecast(ramp, 12, 24, offset=np.zeros(1))[0]
    assert np.all(np.isfinite(f)) and f.max() == pytest.approx(4096.0 ** 2, rel=1e-9) and f[0] > 4096


def _inverse_mse(y: np.ndarray, forecasts: list[np.ndarray], axis: int | None, power: float = 1.0) -> np.ndarray:
    inv = np.stack([1.0 / ((y - f) ** 2).sum(axis=axis) ** power for f in forecasts])
    return inv / inv.sum(axis=0)


@pytest.mark.parametrize("power", [1.0, 2.0])
def test_blend_shares_are_the_inverse_squared_errors(power: float) -> None:
    """Per step with enough windows, pooled below: share_k = mse_k^-p / sum_j mse_j^-p."""
    n, h = MIN_WINDOWS_PER_STEP + 50, 4
    x = seasonal_windows(n, 24, 12, seed=1)
    members = member_forecasts(x, 12, h)
    rng = np.random.default_rng(2)
    y = members["theta"] + rng.normal(0, 1, (n, h))
    net = y + rng.normal(0, 1, (n, h)) * np.array([0.25, 1.0, 2.0, 8.0])  # worse with each step
    pred = np.stack((net - 1, net, net + 1), axis=-1).astype(np.float32)
    names = ADDITIVE  # without offsets the multiplicative members are these again
    result = fit_blend(pred, x, y, 12, members=names, power=power)
    assert result.blend.power == power
    want = _inverse_mse(y, [pred[..., 1], *(members[k] for k in names)], axis=0, power=power)
    got = np.array([result.blend.network, *(result.blend.members[k] for k in names)])
    np.testing.assert_allclose(got, want, rtol=1e-9)
    np.testing.assert_allclose(got.sum(axis=0), 1.0)
    assert result.blend.network[0] > 0.8 and result.blend.network[3] < 0.05
    assert result.mae["blend"] < min(result.mae[k] for k in ("network", *names))
    few = fit_blend(pred[:40], x[:40], y[:40], 12, members=("theta",), power=power)  # below the minimum: pooled
    want = _inverse_mse(y[:40], [pred[:40, :, 1], members["theta"][:40]], axis=None, power=power)
    assert few.blend.network == (pytest.approx(want[0], rel=1e-9),) * h and set(few.blend.members) == {"theta"}
    # Theta made the actuals: it takes everything
    exact = fit_blend(pred, x, members["theta"], 12, members=ADDITIVE, power=power)
    assert exact.blend.network == (0.0,) * h and exact.blend.members["theta"] == (1.0,) * h and exact.blend.active


def test_a_higher_power_leans_on_the_best_member_and_never_overflows() -> None:
    """The shares move monotonically toward the member with the smallest error as the power grows,
    and errors whose powers under- or overflow a float still give finite shares."""
    sse = np.array([[1.0, 1e-200], [2.0, 3e-200], [4.0, 1e-199]])
    shares = [_inverse_shares(sse, p) for p in (1.0, 2.0, 4.0, 8.0)]
    for got in shares:
        assert np.isfinite(got).all()
        np.testing.assert_allclose(got.sum(axis=0), 1.0)
    best = [float(got[0, 0]) for got in shares]
    assert best == sorted(best) and best[0] == pytest.approx(4 / 7) and best[-1] > 0.99
    np.testing.assert_allclose(shares[1][:, 1], np.array([1.0, 1 / 9, 1 / 100]) / (1 + 1 / 9 + 1 / 100))


def test_blend_ignores_missing_actuals_and_keeps_the_band_ordered() -> None:
    n, h = 300, 3
    x = seasonal_windows(n, 24, 12, seed=3)
    rng = np.random.default_rng(4)
    mid = rng.normal(0, 1, (n, h))
    pred = np.stack((mid - rng.uniform(0, 1, (n, h)), mid, mid + rng.uniform(0, 1, (n, h))), -1).astype(np.float32)
    y = theta_forecast(x, 12, h) + rng.normal(0, 0.1, (n, h))
    y[::3, 1] = np.nan
    result = fit_blend(pred, x, y, 12, members=ADDITIVE)
    assert max(result.blend.network) <= 0.05  # the network is noise here; Theta made the actuals
    out = result.blend.apply(pred.copy(), x)
    assert np.all(out[..., 0] <= out[..., 1]) and np.all(out[..., 1] <= out[..., 2])
    np.testing.assert_allclose(out[..., 2] - out[..., 1], pred[..., 2] - pred[..., 1], atol=1e-5)
    with pytest.raises(ValueError, match="no validation window has an actual"):
        fit_blend(pred, x, np.full((n, h), np.nan), 12)


def blend_of(network: tuple[float, ...], theta: tuple[float, ...]) -> StatisticalBlend:
    rest = tuple(1 - a - b for a, b in zip(network, theta, strict=True))
    return StatisticalBlend(12, network, {"theta": theta, "seasonal_naive": rest})


def test_bad_blend_is_refused() -> None:
    with pytest.raises(ValueError, match="add up to 1 at every step"):
        StatisticalBlend(12, (0.5, 0.5), {"theta": (0.6, 0.5)})
    with pytest.raises(ValueError, match="members of"):
        StatisticalBlend(12, (0.5,), {"arima": (0.5,)})
    with pytest.raises(ModelLoadError, match="statistical blend has 2 steps but the model's horizon is 6"):
        replace(META, blend=blend_of((1.0, 1.0), (0.0, 0.0)))


def test_predictor_blends_then_calibrates_and_keeps_both_through_save(tmp_path: Path) -> None:
    module = build_model(SPEC, 1).eval()
    blend = blend_of((1.0, 0.8, 0.6, 0.4, 0.2, 0.0), (0.0, 0.1, 0.2, 0.3, 0.4, 1.0))
    cal = IntervalCalibration(low=(2.0,) * 6, high=(0.5,) * 6, floor=(1e-3,) * 6)
    X = np.zeros((64, 24, 2), dtype=np.float32)
    X[:, :, 0] = seasonal_windows(64, 24, 12, seed=5)
    raw = Predictor(module, META).predict(X)
    theta, snaive = theta_forecast(X[:, :, 0], 12, 6), seasonal_naive_forecast(X[:, :, 0], 12, 6)
    mid = np.array(blend.network) * raw[..., 1] + np.array(blend.members["theta"]) * theta \
        + np.array(blend.members["seasonal_naive"]) * snaive
    want = cal.apply((raw + (mid - raw[..., 1])[..., None]).astype(np.float32))
    meta = replace(META, blend=blend, calibration=cal)
    got = Predictor(module, meta).predict(X)
    np.testing.assert_allclose(got, want, atol=1e-5)
    np.testing.assert_allclose(got[:, -1, 1], theta[:, -1], atol=1e-5)  # Theta's share 1: Theta's median
    np.testing.assert_allclose(got[:, 0, 1], raw[:, 0, 1], atol=1e-6)   # the network's share 1: its own
    path = save_predictor(module, meta, tmp_path / "blended")
    loaded = load_predictor(path)
    assert loaded.meta == meta
    np.testing.assert_array_equal(loaded.predict(X), got)
    # format 2 with a blend (an older lakecast refuses it rather than drop the blend); 1 without
    assert json.loads((path / META_FILE).read_text())["format_version"] == 2
    plain = save_predictor(module, META, tmp_path / "plain")
    assert json.loads((plain / META_FILE).read_text())["format_version"] == 1


def test_models_saved_before_the_blend_load_as_trained(tmp_path: Path) -> None:
    module = build_model(SPEC, 2).eval()
    path = save_predictor(module, META, tmp_path / "old")
    d = json.loads((path / META_FILE).read_text())
    del d["blend"]  # a meta.json written before the blend existed
    (path / META_FILE).write_text(json.dumps(d))
    loaded = load_predictor(path)
    assert loaded.meta.blend is None
    X = np.random.default_rng(8).standard_normal((16, 24, 2)).astype(np.float32)
    np.testing.assert_array_equal(loaded.predict(X), Predictor(module, META).predict(X))


def test_fit_uses_the_network_alone_and_stores_the_shares() -> None:
    """`models.statistical_blend.fit` on validation windows Theta predicts well: the shares move to it."""
    module = build_model(SPEC, 3).eval()
    n = 300
    X = np.zeros((n, 24, 2), dtype=np.float32)
    X[:, :, 0] = seasonal_windows(n, 24, 12, seed=6, noise=0.05)
    y = theta_forecast(X[:, :, 0], 12, 6).astype(np.float32) + np.float32(0.01)
    stale = replace(META, blend=blend_of((0.0,) * 6, (0.0,) * 6))  # fit ignores any blend already there
    meta, report = fit(module, stale, WindowArrays(X, y, np.zeros(n), np.ones(n)), season=12,
                       skip=MULTIPLICATIVE_MEMBERS)  # here they would be Theta and the damped trend again
    assert meta.blend is not None and max(meta.blend.network) <= 0.1 and min(meta.blend.members["theta"]) >= 0.8
    assert report.fit.mae["blend"] <= report.fit.mae["network"] and report.fit.n_windows == n
    network_alone = Predictor(module, META).predict(X)[..., 1]  # the stale blend played no part
    assert report.fit.mae["network"] == pytest.approx(float(np.abs(y - network_alone).mean()), rel=1e-6)
    assert report.params()["blend.season"] == "12" and set(report.metrics()) == {
        "val_mae_network", "val_mae_theta", "val_mae_seasonal_naive", "val_mae_seasonal_drift", "val_mae_airline",
        "val_mae_damped", "val_mae_naive", "val_mae_blend"}
    _, hourly = fit(module, stale, WindowArrays(X, y, np.zeros(n), np.ones(n)), season=12,
                    skip=("damped", *MULTIPLICATIVE_MEMBERS))
    assert "damped" not in hourly.fit.blend.members and "val_mae_damped" not in hourly.metrics()
    with pytest.raises(ValueError, match=r"unknown statistical members to skip: \['holt'\]"):
        fit(module, stale, WindowArrays(X, y, np.zeros(n), np.ones(n)), season=12, skip=("holt",))


def test_members_of_a_padded_window_read_only_its_data() -> None:
    # a short series' window: its first steps are padding (missing, scaled value 0); the members
    # forecast from the data after them, exactly as if the window were that long
    x = seasonal_windows(3, 36, 12, seed=3)
    X = np.stack([x, np.zeros_like(x)], axis=2).astype(np.float32)
    X[1, :12], X[2, :20] = (0.0, 1.0), (0.0, 1.0)
    pad = leading_padding(X)
    assert pad.tolist() == [0, 12, 20]
    got = member_forecasts(X[:, :, 0], 12, 6, pad=pad)
    for i, p in enumerate(pad):
        for name, f in member_forecasts(X[i:i + 1, p:, 0], 12, 6).items():
            np.testing.assert_allclose(got[name][i], f[0], rtol=1e-6)
    # 16 steps of data: Theta without a season (needs two), seasonal naive repeats the last season
    np.testing.assert_allclose(got["seasonal_naive"][2], X[2, 24:30, 0], rtol=1e-6)
    assert not np.allclose(got["theta"][2], member_forecasts(X[2:3, :, 0], 12, 6)["theta"][0])


def test_training_windows_decide_how_the_members_split_the_rest() -> None:
    """`history`: the network keeps its validation share; the members split the rest by their
    squared errors on validation and history windows together."""
    n, h = 60, 3  # few validation windows: pooled over the steps
    x = seasonal_windows(n, 24, 12, seed=11)
    members = member_forecasts(x, 12, h)
    rng = np.random.default_rng(12)
    y = 0.5 * (members["theta"] + members["seasonal_naive"]) + rng.normal(0, 0.3, (n, h))
    pred = np.stack((y - 2, y + rng.normal(0, 1, (n, h)), y + 2), axis=-1).astype(np.float32)
    alone = fit_blend(pred, x, y, 12, members=ADDITIVE)
    xh = seasonal_windows(500, 24, 12, seed=13)
    snaive_h = member_forecasts(xh, 12, h)
    yh = snaive_h["seasonal_naive"] + rng.normal(0, 0.05, (500, h))  # the training years: seasonal naive rules
    both = fit_blend(pred, x, y, 12, members=ADDITIVE, history=(xh, yh, None, None))
    assert both.blend.network == alone.blend.network  # the network's share is still validation's alone
    rest = 1.0 - np.array(alone.blend.network)
    # 560 windows with an actual at every step: a split per step
    sse = np.array([((y - members[k]) ** 2).sum(axis=0) + ((yh - snaive_h[k]) ** 2).sum(axis=0)
                    for k in ADDITIVE])
    split = (1.0 / sse) / (1.0 / sse).sum(axis=0)
    for k, share in zip(ADDITIVE, split, strict=True):
        np.testing.assert_allclose(both.blend.members[k], rest * share, rtol=1e-6)
    assert both.blend.members["seasonal_naive"][0] > 2 * both.blend.members["theta"][0]
    assert abs(alone.blend.members["seasonal_naive"][0] - alone.blend.members["theta"][0]) < 0.5 * rest[0]


def reference_local_shares(x: list[float], m: int, h: int, members: tuple[str, ...],
                           power: float = 1.0, recent: int = 0) -> list[float] | None:
    """One window, loops only: each member refitted without the window's last `back` steps and
    scored on them from three origins; no refit shorter than the whole window's members need
    (two seasons and three steps where it has them and the airline model is a member, else two
    seasons, else one, else 3 steps); shares by inverse mean squared error to the `power`."""
    n = len(x)
    floor = 2 * m if m > 1 and n >= 2 * m else max(m, 3) if m > 1 and n >= m else 3
    if m > 1 and "airline" in members and n >= 2 * m + 3:
        floor = 2 * m + 3
    if n - floor < 1:
        return None
    back = max(1, min(h, n - floor) // 2)
    errs, done = [0.0] * len(members), 0
    for o in range(3):
        end = n - o * max(1, back // 2)
        if end - back < floor:
            break
        for k, name in enumerate(members):
            fit_on = x[:end - back]
            if name.endswith("_recent"):  # the member itself, refitted on the refit's last `recent` steps
                fit_on, name = fit_on[-recent:], name.removesuffix("_recent")
            f = member_forecasts(np.array([fit_on]), m, back, (name,))[name][0]
            errs[k] += sum((x[end - back + j] - f[j]) ** 2 for j in range(back)) / back
        done += 1
    inv = [1.0 / (e / done) ** power for e in errs]
    return [v / sum(inv) for v in inv]


def test_a_series_flat_at_zero_forecasts_zero_whatever_the_fitted_split() -> None:
    """A series that moved for years and has stayed at zero since: seasonal naive backtests it
    exactly (the recent forms' refits still reach back to before the zeros), so it takes the
    members' whole share there, however the fitted split leans on seasonal drift, which reads back to
    when the series moved; a series still moving keeps the mix."""
    length, m, h, recent = 60, 12, 6, 24
    t = np.arange(length)
    moving = 5.0 + 0.2 * t + np.sin(2 * np.pi * t / m)
    dead = np.where(t < length - recent, moving, 0.0)
    x = np.stack([dead, moving + np.random.default_rng(4).normal(0, 0.1, length)])
    fitted = {"seasonal_drift": (0.8,) * h, "theta_recent": (0.1,) * h, "seasonal_naive": (0.1,) * h}
    blend = StatisticalBlend(season=m, network=(0.0,) * h, members=fitted, local=0.75, recent=recent)
    own, exact = local_member_split(x, m, h, tuple(blend.members), recent=recent)
    assert exact.tolist() == [1, 0]                    # members that backtest the window exactly
    assert own[0].tolist() == [0.0, 0.0, 1.0]        # the exact member alone
    q = np.ones((2, h, 3))
    q[..., 0], q[..., 2] = 0.5, 1.5
    out = blend.apply(q.copy(), x)
    np.testing.assert_allclose(out[0, :, 1], 0.0, atol=1e-12)    # no trend from the years it moved
    np.testing.assert_allclose(out[0, :, 2] - out[0, :, 1], 0.5)  # the band moves with the median
    # seasonal drift over the whole window forecasts the dead series below zero: the fitted split would
    drift = member_forecasts(x[:1], m, h, ("seasonal_drift",))["seasonal_drift"][0]
    assert np.all(drift < -1.0)
    # the moving series mixes the fitted split with its own (no member is exact there)
    mixed = blend.apply(q.copy(), x)[1, :, 1]
    f = member_forecasts(x[1:], m, h, tuple(blend.members), recent=recent)
    split = np.array([0.8, 0.1, 0.1])[:, None] * 0.25 + 0.75 * own[1][:, None]
    np.testing.assert_allclose(mixed, sum(split[k] * f[n][0] for k, n in enumerate(blend.members)), rtol=1e-9)


def test_a_window_every_member_backtests_exactly_gives_the_network_no_share() -> None:
    """A series at zero over the whole window: every member forecasts zero and backtests exactly,
    so the network's median (here 0.3, as a network's near-zero output is) takes no share and the
    forecast is exactly zero; a window only some members backtest exactly keeps the network's share."""
    length, m, h, recent = 60, 12, 6, 24
    t = np.arange(length)
    flat = np.zeros(length)
    dead = np.where(t < length - recent, 5.0 + np.sin(2 * np.pi * t / m), 0.0)
    x = np.stack([flat, dead])
    fitted = {"seasonal_drift": (0.3,) * h, "theta_recent": (0.1,) * h, "seasonal_naive": (0.1,) * h}
    blend = StatisticalBlend(season=m, network=(0.5,) * h, members=fitted, local=0.75, recent=recent)
    _, exact = local_member_split(x, m, h, tuple(blend.members), recent=recent)
    assert exact.tolist() == [3, 1]
    q = np.zeros((2, h, 3))
    q[..., 1] = 0.3
    q[..., 2] = 0.8
    out = blend.apply(q.copy(), x)
    np.testing.assert_array_equal(out[0, :, 1], 0.0)
    np.testing.assert_allclose(out[0, :, 2], 0.5)                   # the band keeps its width above the median
    np.testing.assert_allclose(out[1, :, 1], 0.5 * 0.3)             # the network's half, seasonal naive's zero


def test_local_split_follows_each_windows_own_backtest() -> None:
    """With a local share, each window splits the members' part by its own in-window backtests:
    a steadily growing seasonal series leans on seasonal drift, a stable one on seasonal naive and
    Theta, where the fitted split is one for all; the network's share and the band's width do not move."""
    n, length, m, h = 40, 36, 12, 6
    t = np.arange(length)
    season = np.sin(2 * np.pi * t / m)
    rng = np.random.default_rng(21)
    x = np.empty((n, length))
    x[:20] = season + 0.08 * t + rng.normal(0, 0.02, (20, length))   # growing: drift carries it on
    x[20:] = season + rng.normal(0, 0.02, (20, length))              # stable: the last season repeats
    names = ("theta", "seasonal_naive", "seasonal_drift")
    want = [reference_local_shares(list(row), m, h, names) for row in x]
    got = local_member_shares(x, m, h, names)
    np.testing.assert_allclose(got, np.array(want), rtol=1e-6)
    drift, naive = names.index("seasonal_drift"), names.index("seasonal_naive")
    assert np.all(got[:20, drift] > 0.5) and np.all(got[:20, naive] < 0.2)
    # stable: seasonal naive ahead of drift, and Theta (which finds the season) ahead of both
    assert np.median(got[20:, naive] - got[20:, drift]) > 0.05 and np.median(got[20:, drift]) < 0.3

    network = (0.4,) * h
    fitted = StatisticalBlend(m, network, {"theta": (0.2,) * h, "seasonal_naive": (0.2,) * h,
                                           "seasonal_drift": (0.2,) * h})
    local = replace(fitted, local=1.0)
    half = replace(fitted, local=0.5)
    mid = rng.normal(0, 1, (n, h))
    pred = np.stack((mid - 1, mid, mid + 2), axis=-1).astype(np.float32)
    members = member_forecasts(x, m, h)
    want_mid = 0.4 * mid + sum(0.6 * got[:, i, None] * members[name] for i, name in enumerate(names))
    out = local.apply(pred.copy(), x)
    np.testing.assert_allclose(out[..., 1], want_mid, atol=1e-5)
    np.testing.assert_allclose(out[..., 2] - out[..., 1], 2.0, atol=1e-5)   # the band moves with the median
    plain = fitted.apply(pred.copy(), x)[..., 1]
    np.testing.assert_allclose(half.apply(pred.copy(), x)[..., 1], 0.5 * (plain + out[..., 1]), atol=1e-5)
    # on the growing windows the local split forecasts the continued growth better than the fitted one
    future = np.sin(2 * np.pi * np.arange(length, length + h) / m) + 0.08 * np.arange(length, length + h)
    assert np.abs(out[:20, :, 1] - 0.4 * mid[:20] - 0.6 * future).mean() < \
        np.abs(plain[:20] - 0.4 * mid[:20] - 0.6 * future).mean()


def test_local_split_of_short_windows_and_old_models(tmp_path: Path) -> None:
    """Backtests never refit a member on fewer steps than the whole window's member needs: a
    padded monthly window of 26 steps still backtests seasonal drift with its season (and finds
    it), one of exactly one season (weekly data, lookback 52) and one of 3 steps keep the fitted
    split; a blend written before the local split loads with none, one with it is format 3."""
    t = np.arange(36)
    x = np.sin(2 * np.pi * t / 12) + 0.1 * t + np.random.default_rng(27).normal(0, 0.05, (3, 36))
    X = np.stack([x, np.zeros_like(x)], axis=2).astype(np.float32)
    X[1, :10], X[2, :33] = (0.0, 1.0), (0.0, 1.0)
    pad = leading_padding(X)
    assert pad.tolist() == [0, 10, 33]
    got = local_member_shares(X[:, :, 0], 12, 6, ADDITIVE, pad)
    want = reference_local_shares([float(v) for v in X[1, 10:, 0]], 12, 6, ADDITIVE)
    assert want is not None
    np.testing.assert_allclose(got[1], want, rtol=1e-5)
    assert got[1].argmax() == ADDITIVE.index("seasonal_drift") and got[1].max() > 0.9   # 26 steps: refits of 25 and 24
    assert np.isnan(got[2]).all() and np.isfinite(got[:2]).all()
    weekly = seasonal_windows(5, 52, 52, seed=24)
    assert np.isnan(local_member_shares(weekly, 52, 13, ADDITIVE)).all()
    blend = StatisticalBlend(12, (0.5,) * 6, {"theta": (0.3,) * 6, "seasonal_naive": (0.1,) * 6,
                                              "seasonal_drift": (0.1,) * 6}, local=1.0)
    pred = np.zeros((3, 6, 3), dtype=np.float32)
    out = blend.apply(pred.copy(), X[:, :, 0], pad)
    fitted = replace(blend, local=0.0).apply(pred.copy(), X[:, :, 0], pad)
    np.testing.assert_allclose(out[2], fitted[2], atol=1e-6)   # nothing to backtest: the fitted split
    assert not np.allclose(out[0], fitted[0])
    with pytest.raises(ValueError, match="local share must lie in"):
        replace(blend, local=1.5)
    module = build_model(SPEC, 4).eval()
    path = save_predictor(module, replace(META, blend=blend), tmp_path / "local")
    d = json.loads((path / META_FILE).read_text())
    assert d["format_version"] == 3 and load_predictor(path).meta.blend == blend
    del d["blend"]["local"]
    d["format_version"] = 2  # written before the local split: the fitted split alone
    (path / META_FILE).write_text(json.dumps(d))
    assert load_predictor(path).meta.blend == replace(blend, local=0.0)
    # a local share that cannot act (the network takes everything, or one member) stays format 2
    for idle in (replace(blend_of((1.0,) * 6, (0.0,) * 6), local=0.75),
                 StatisticalBlend(12, (0.5,) * 6, {"theta": (0.5,) * 6}, local=0.75)):
        assert not idle.splits_locally
        saved = save_predictor(module, replace(META, blend=idle), tmp_path / f"idle{len(idle.members)}")
        assert json.loads((saved / META_FILE).read_text())["format_version"] == 2


def test_local_split_power_is_kept_and_only_a_new_format_reads_it(tmp_path: Path) -> None:
    """With a power, each window's own split is by its backtest errors to that power (the best
    member gains); scoring applies the stored power; a model with a power other than 1 is written
    as format 4, which older lakecast refuses, and one saved before the power loads with 1."""
    t = np.arange(36)
    rng = np.random.default_rng(31)
    x = np.sin(2 * np.pi * t / 12) + 0.05 * t + rng.normal(0, 0.1, (8, 36))
    three = ("theta", "seasonal_naive", "seasonal_drift")
    one, two = local_member_shares(x, 12, 6, three), local_member_shares(x, 12, 6, three, power=2.0)
    for row, got in zip(x, two, strict=True):
        want = reference_local_shares([float(v) for v in row], 12, 6, three, power=2.0)
        np.testing.assert_allclose(got, np.array(want), rtol=1e-6)
    best = one.argmax(axis=1)
    assert np.all(two[np.arange(8), best] > one[np.arange(8), best])
    blend = StatisticalBlend(12, (0.4,) * 6, {"theta": (0.2,) * 6, "seasonal_naive": (0.2,) * 6,
                                              "seasonal_drift": (0.2,) * 6}, local=1.0, power=2.0)
    mid = rng.normal(0, 1, (8, 6))
    pred = np.stack((mid - 1, mid, mid + 1), axis=-1).astype(np.float32)
    members = member_forecasts(x, 12, 6)
    want_mid = 0.4 * mid + sum(0.6 * two[:, i, None] * members[k] for i, k in enumerate(three))
    np.testing.assert_allclose(blend.apply(pred.copy(), x)[..., 1], want_mid, atol=1e-5)
    with pytest.raises(ValueError, match="power must be a positive number"):
        replace(blend, power=0.0)
    module = build_model(SPEC, 4).eval()
    path = save_predictor(module, replace(META, blend=blend), tmp_path / "power")
    d = json.loads((path / META_FILE).read_text())
    assert d["format_version"] == 4 and d["blend"]["power"] == 2.0 and load_predictor(path).meta.blend == blend
    plain = save_predictor(module, replace(META, blend=replace(blend, power=1.0)), tmp_path / "plain")
    assert json.loads((plain / META_FILE).read_text())["format_version"] == 3   # readable by older lakecast
    del d["blend"]["power"]
    d["format_version"] = 3
    (path / META_FILE).write_text(json.dumps(d))
    assert load_predictor(path).meta.blend == replace(blend, power=1.0)
    d["format_version"] = 13
    (path / META_FILE).write_text(json.dumps(d))
    with pytest.raises(ModelLoadError,
                       match=r"format_version 13 is not supported.*reads 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12"):
        load_predictor(path)


def test_the_airline_member_is_backtested_in_its_seasonal_form_and_saved_as_format_5(tmp_path: Path) -> None:
    """A window of 28 monthly steps forecasts with the seasonal airline model (two seasons and
    three steps): its backtests refit on no fewer than 27, so they score that model too, not
    ARIMA(0,1,1). A blend with the airline member is written as format 5 and loads back as saved."""
    x = seasonal_windows(6, 28, 12, seed=44) + np.linspace(0, 2, 28)
    got = local_member_shares(x, 12, 6, ADDITIVE)
    for row, shares in zip(x, got, strict=True):
        np.testing.assert_allclose(shares, reference_local_shares([float(v) for v in row], 12, 6, ADDITIVE),
                                   rtol=1e-6)
    three = ("theta", "seasonal_naive", "seasonal_drift")   # without it, refits of 24 steps are kept
    assert not np.allclose(got[:, :3] / got[:, :3].sum(axis=1, keepdims=True), local_member_shares(x, 12, 6, three))
    blend = StatisticalBlend(12, (0.4,) * 6, {"theta": (0.3,) * 6, "airline": (0.3,) * 6}, local=0.75, power=2.0)
    module = build_model(SPEC, 4).eval()
    path = save_predictor(module, replace(META, blend=blend), tmp_path / "airline")
    assert json.loads((path / META_FILE).read_text())["format_version"] == 5
    assert load_predictor(path).meta.blend == blend


def test_a_floor_is_saved_as_format_6_and_loads_back(tmp_path: Path) -> None:
    """A model with a floor is refused by format-5 readers, which would score without it; one
    without keeps the oldest format that reads it."""
    module = build_model(SPEC, 4).eval()
    floored = save_predictor(module, replace(META, floor=0.0), tmp_path / "floored")
    assert json.loads((floored / META_FILE).read_text())["format_version"] == 6
    assert load_predictor(floored).meta.floor == 0.0
    plain = save_predictor(module, META, tmp_path / "plain")
    assert json.loads((plain / META_FILE).read_text())["format_version"] == 1
    assert load_predictor(plain).meta.floor is None
    blend = StatisticalBlend(12, (0.4,) * 6, {"theta": (0.3,) * 6, "airline": (0.3,) * 6}, local=0.75, power=2.0)
    both = save_predictor(module, replace(META, blend=blend, floor=0.0), tmp_path / "both")
    assert json.loads((both / META_FILE).read_text())["format_version"] == 6
    with pytest.raises(ModelLoadError, match="forecast floor is nan"):
        replace(META, floor=float("nan"))


def test_the_damped_member_is_saved_as_format_7_and_scored_as_saved(tmp_path: Path) -> None:
    """A blend with the damped-trend member is refused by format-6 readers, which do not know it;
    it loads back as saved (with or without a floor) and scores the same windows the same."""
    module = build_model(SPEC, 4).eval()
    blend = StatisticalBlend(12, (0.4,) * 6, {"theta": (0.3,) * 6, "damped": (0.3,) * 6}, local=0.75, power=2.0)
    for name, floor in (("damped", None), ("damped_floored", 0.0)):
        meta = replace(META, blend=blend, floor=floor)
        path = save_predictor(module, meta, tmp_path / name)
        assert json.loads((path / META_FILE).read_text())["format_version"] == 7
        loaded = load_predictor(path)
        assert loaded.meta.blend == blend and loaded.meta.floor == floor
        X = np.zeros((5, 24, 2), dtype=np.float32)
        X[:, :, 0] = seasonal_windows(5, 24, 12, seed=9) + np.linspace(0, 2, 24)
        np.testing.assert_array_equal(loaded.predict(X), Predictor(module, meta).predict(X))
    airline = replace(blend, members={"theta": (0.3,) * 6, "airline": (0.3,) * 6})
    without = save_predictor(module, replace(META, blend=airline), tmp_path / "airline")
    assert json.loads((without / META_FILE).read_text())["format_version"] == 5   # the oldest that reads it


def test_the_holt_winters_member_is_saved_as_format_12_and_scored_as_saved(tmp_path: Path) -> None:
    """A blend with Holt-Winters (or its recent form) is refused by format-11 readers, which do not know it;
    it loads back as saved and scores the same windows the same, the offset carried to its logs."""
    module = build_model(SPEC, 4).eval()
    blend = StatisticalBlend(12, (0.4,) * 6, {"theta": (0.3,) * 6, "holt_winters": (0.3,) * 6}, local=0.75,
                             power=2.0)
    assert blend.needs_offset
    for name, b in (("hw", blend), ("hw_recent", replace(blend, members={"theta": (0.3,) * 6,
                                                                         "holt_winters_recent": (0.3,) * 6},
                                                         recent=12))):
        meta = replace(META, blend=b)
        path = save_predictor(module, meta, tmp_path / name)
        assert json.loads((path / META_FILE).read_text())["format_version"] == 12
        loaded = load_predictor(path)
        assert loaded.meta.blend == b
        X = np.zeros((5, 24, 2), dtype=np.float32)
        X[:, :, 0] = seasonal_windows(5, 24, 12, seed=9) + np.linspace(0, 2, 24)
        offset = np.full(5, 4.0)
        want = Predictor(module, meta).predict(X, offset=offset)
        np.testing.assert_array_equal(loaded.predict(X, offset=offset), want)
    # with naive as well (format 11's member), still 12: format 11 readers know naive, not Holt-Winters
    both = replace(blend, members={"naive": (0.3,) * 6, "holt_winters": (0.3,) * 6})
    path = save_predictor(module, replace(META, blend=both), tmp_path / "both")
    assert json.loads((path / META_FILE).read_text())["format_version"] == 12


def test_naive_repeats_the_last_value_of_each_windows_data() -> None:
    x = np.array([[1.0, 4.0, 2.0, 7.0], [0.0, 0.0, 3.0, -1.0]])
    np.testing.assert_array_equal(naive_forecast(x, 7, 3), [[7.0] * 3, [-1.0] * 3])
    # a padded window: still its last value, and the naive member has no form that reads further back
    f = member_forecasts(x, 7, 2, ("naive",), pad=np.array([2, 0]))
    np.testing.assert_array_equal(f["naive"], [[7.0, 7.0], [-1.0, -1.0]])
    assert "naive_recent" not in RECENT_MEMBERS


def test_on_random_walks_the_naive_member_takes_the_members_share() -> None:
    """Prices and the like are random walks: the best forecast is the last value, which seasonal
    naive (yesterday's noise again) and the airline model's daily differences miss. Fitted on
    validation windows of hourly random walks, the naive member takes most of the members' share,
    and the blend forecasts them better than the same blend without it."""
    n, length, h, m = MIN_WINDOWS_PER_STEP + 100, 96, 24, 24
    rng = np.random.default_rng(21)
    walks = np.cumsum(rng.normal(0, 1, (n, length + h)), axis=1)
    x, y = walks[:, :length], walks[:, length:]
    net = x[:, -1:] + rng.normal(0, 2.0, (n, h))                         # a network that is no better
    pred = np.stack((net - 2, net, net + 2), axis=-1).astype(np.float32)
    others = ("theta", "seasonal_naive", "seasonal_drift", "airline")
    with_naive, without = (fit_blend(pred, x, y, m, members=names)
                           for names in ((*others, "naive"), others))
    shares = {k: sum(v) for k, v in with_naive.blend.members.items()}
    assert max(shares, key=lambda k: shares[k]) == "naive"
    assert shares["naive"] > shares["seasonal_naive"] * 1.5
    assert with_naive.mae["naive"] < min(with_naive.mae[k] for k in others)
    assert with_naive.mae["blend"] < without.mae["blend"]


def test_the_naive_member_is_saved_as_format_11(tmp_path: Path) -> None:
    """A blend with the naive member is refused by format-10 readers, which do not know it; it loads
    back as saved and scores as saved."""
    module = build_model(SPEC, 4).eval()
    blend = StatisticalBlend(24, (0.4,) * 6, {"theta": (0.3,) * 6, "naive": (0.3,) * 6})
    meta = replace(META, blend=blend, freq="h")
    path = save_predictor(module, meta, tmp_path / "naive")
    assert json.loads((path / META_FILE).read_text())["format_version"] == 11
    loaded = load_predictor(path)
    assert loaded.meta.blend == blend
    X = np.zeros((5, 24, 2), dtype=np.float32)
    X[:, :, 0] = np.cumsum(np.random.default_rng(4).normal(0, 1, (5, 24)), axis=1)
    np.testing.assert_array_equal(loaded.predict(X), Predictor(module, meta).predict(X))
    without = save_predictor(module, replace(meta, blend=replace(blend, members={"theta": (0.6,) * 6})),
                             tmp_path / "theta")
    assert json.loads((without / META_FILE).read_text())["format_version"] == 2   # the oldest that reads it
    # with every other feature a format marks, still 11: format 10 readers know none of naive
    everything = replace(blend, members={"theta": (0.2,) * 6, "damped": (0.1,) * 6, "naive": (0.3,) * 6},
                         local=0.75, power=2.0)
    both = save_predictor(module, replace(meta, blend=everything, floor=0.0), tmp_path / "everything")
    assert json.loads((both / META_FILE).read_text())["format_version"] == 11


def test_fit_blend_with_a_local_share_reports_what_scoring_does() -> None:
    """The blend fitted with a local share carries it, and its validation MAE is that of the
    blend scoring applies (the local split included), not of the fitted split."""
    n, h = 120, 6
    x = seasonal_windows(n, 36, 12, seed=25)
    rng = np.random.default_rng(26)
    y = member_forecasts(x, 12, h)["seasonal_drift"] + rng.normal(0, 0.3, (n, h))
    pred = np.stack((y - 1, y + rng.normal(0, 1, (n, h)), y + 1), axis=-1).astype(np.float32)
    plain, local = fit_blend(pred, x, y, 12), fit_blend(pred, x, y, 12, local=0.75)
    assert local.blend == replace(plain.blend, local=0.75)
    want = np.abs(y - local.blend.apply(pred.astype(np.float64), x)[..., 1]).mean()
    assert local.mae["blend"] == pytest.approx(float(want), rel=1e-9)
    assert local.mae["blend"] != pytest.approx(plain.mae["blend"], rel=1e-6)


def test_a_context_is_read_by_the_members_alone_and_saved_as_format_9(tmp_path: Path) -> None:
    """Windows longer than the network's lookback (`model.statistical_lookback`): the network reads
    their last `lookback` steps, as a model of that lookback would; the members and their own
    split read the whole window. Saved as format 9 (older readers would feed the network the whole
    window), loaded back as saved; a model whose network reads more than its windows is refused."""
    module = build_model(SPEC, 5).eval()
    blend = StatisticalBlend(12, (0.4,) * 6, {"theta": (0.3,) * 6, "seasonal_drift": (0.3,) * 6}, local=0.75)
    wide = replace(META, lookback=60, blend=blend)
    X = np.zeros((7, 60, 2), dtype=np.float32)
    X[:, :, 0] = seasonal_windows(7, 60, 12, seed=11) + np.linspace(0, 3, 60)
    X[:3, :20, 1], X[:3, :20, 0] = 1.0, 0.0                       # three short series: 20 steps of padding
    got = Predictor(module, wide).predict(X)
    network = Predictor(module, replace(META, blend=None)).predict(X[:, -24:])  # a 24-step model, same weights
    want = blend.apply(network.copy(), X[:, :, 0], leading_padding(X))
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    # the members saw more than the network's 24 steps: on the last 24 alone they forecast otherwise
    short = blend.apply(network.copy(), X[:, -24:, 0], leading_padding(X[:, -24:]))
    assert not np.allclose(got, short, atol=1e-3)
    path = save_predictor(module, wide, tmp_path / "wide")
    assert json.loads((path / META_FILE).read_text())["format_version"] == 9
    loaded = load_predictor(path)
    assert (loaded.meta.lookback, loaded.meta.network.lookback) == (60, 24)
    np.testing.assert_array_equal(loaded.predict(X), got)
    with pytest.raises(ModelLoadError, match="network reads 24 steps of windows of 12"):
        replace(META, lookback=12)
    # scoring's configuration must give both the network's lookback and the members' windows
    wide.check_windows(lookback=24, context=36, feature_names=("value", "missing"), horizon=6, freq="MS")
    from models.lakecast_forecaster.errors import ModelMismatchError
    with pytest.raises(ModelMismatchError,
                       match=r"statistical lookback 60 \(configured model\.statistical_lookback=24\)"):
        wide.check_windows(lookback=24, feature_names=("value", "missing"), horizon=6, freq="MS")


def test_recent_members_read_the_last_steps_and_each_window_chooses(tmp_path: Path) -> None:
    """`RECENT_MEMBERS` (yearly and monthly models, `model.statistical_blend_recent`) forecast as their base
    member on each window's last `recent` steps (of its data, where it is padded), and are
    backtested as they forecast: a series that changed course leans on them, a steady trend does
    not need to. A blend with them is saved as format 10 and scored as saved."""
    n, length, h, recent = 24, 12, 6, 6
    rng = np.random.default_rng(5)
    t = np.arange(length, dtype=float)
    x = np.empty((n, length))
    x[:12] = 0.5 * t + rng.normal(0, 0.05, (12, length))                                   # steady growth
    x[12:] = np.where(t < 3, 0.8 * t, 2.4 - 0.8 * (t - 3)) + rng.normal(0, 0.05, (12, length))  # turned down
    pad = np.zeros(n, dtype=int)
    pad[:3] = 8                                                             # four steps of data: less than recent
    f = member_forecasts(x, 1, h, ("theta", "theta_recent", "damped_recent"), pad, recent=recent)
    np.testing.assert_allclose(f["theta_recent"][3:], theta_forecast(x[3:, -recent:], 1, h))
    np.testing.assert_allclose(f["damped_recent"][3:], damped_forecast(x[3:, -recent:], 1, h))
    np.testing.assert_allclose(f["theta_recent"][:3], f["theta"][:3])      # the whole of a short series' data
    assert "seasonal_naive_recent" not in RECENT_MEMBERS                     # the last value: no window to choose

    names = ("theta", "seasonal_drift", "theta_recent", "seasonal_drift_recent")
    got = local_member_shares(x, 1, h, names, recent=recent)
    want = [reference_local_shares(list(row), 1, h, names, recent=recent) for row in x]
    np.testing.assert_allclose(got, np.array(want), rtol=1e-6)
    recent_share = got[:, 2:].sum(axis=1)
    assert np.all(recent_share[12:] > 0.6)                                   # the new course backtests better

    blend = StatisticalBlend(1, (0.2,) * h, {k: (0.2,) * h for k in names}, local=0.75, recent=recent)
    mid = rng.normal(0, 1, (n, h))
    pred = np.stack((mid - 1, mid, mid + 1), axis=-1).astype(np.float32)
    whole = StatisticalBlend(1, (0.2,) * h, {"theta": (0.4,) * h, "seasonal_drift": (0.4,) * h}, local=0.75)
    future = 2.4 - 0.8 * (np.arange(length, length + h) - 3)
    err = np.abs(blend.apply(pred.copy(), x)[12:, :, 1] - 0.2 * mid[12:] - 0.8 * future).mean()
    assert err < np.abs(whole.apply(pred.copy(), x)[12:, :, 1] - 0.2 * mid[12:] - 0.8 * future).mean()
    assert StatisticalBlend.from_dict(blend.to_dict()) == blend
    with pytest.raises(ValueError, match="reads `recent` steps"):
        replace(blend, recent=0)
    with pytest.raises(ValueError, match="reads `recent` steps"):
        replace(whole, recent=6)

    module = build_model(SPEC, 3).eval()
    meta = replace(META, lookback=30, freq="YS", blend=blend)                # recent forms on the last 6 of 30
    X = np.zeros((n, 30, 2), dtype=np.float32)
    X[:, :, 0] = np.concatenate([x[:, :1] - 0.5 * np.arange(18, 0, -1), x], axis=1)   # 30 steps of data
    X[:3, :18, 1], X[:3, :18, 0] = 1.0, 0.0                                  # three young series, padded
    path = save_predictor(module, meta, tmp_path / "recent")
    assert json.loads((path / META_FILE).read_text())["format_version"] == 10
    loaded = load_predictor(path)
    assert loaded.meta.blend == blend
    got = loaded.predict(X)
    np.testing.assert_array_equal(got, Predictor(module, meta).predict(X))
    # the recent forms read what they were saved to read: with them on the whole window it differs
    assert not np.allclose(got, Predictor(module, replace(meta, blend=replace(blend, recent=30))).predict(X),
                           atol=1e-3)


def test_fit_adds_recent_members_only_where_windows_reach_past_the_network() -> None:
    """`statistical_blend.fit(recent=N)`: the trend members again on each window's last N steps,
    where the windows are wider than that; on windows no wider there is nothing to choose."""
    rng = np.random.default_rng(3)
    module = build_model(SPEC, 1).eval()
    spec = LSTMSpec(n_features=2, lookback=24, horizon=6, hidden_size=4, num_layers=1)
    for width, recent, expect in ((36, 24, True), (24, 24, False), (36, 30, True), (36, 36, False), (36, 0, False)):
        X = np.zeros((60, width, 2), dtype=np.float32)
        X[:, :, 0] = rng.normal(0, 1, (60, width)).cumsum(axis=1) / 4
        y = rng.normal(0, 1, (60, 6)).astype(np.float32)
        meta = replace(META, lookback=width, freq="YS", network=spec)
        fitted, report = fit(module, meta, WindowArrays(X, y, np.zeros(60), np.ones(60)), season=1, local=0.75,
                             recent=recent, skip=MULTIPLICATIVE_MEMBERS)
        assert fitted.blend is not None
        has = set(RECENT_MEMBERS) & set(fitted.blend.members)
        assert bool(has) is expect and fitted.blend.recent == (recent if expect else 0)
        if expect:
            assert has == {"theta_recent", "seasonal_drift_recent", "airline_recent", "damped_recent"}
            assert report.params()["blend.recent"] == str(recent)
    with pytest.raises(ValueError, match="recent"):
        fit(module, meta, WindowArrays(X, y, np.zeros(60), np.ones(60)), season=1, recent=-1)
