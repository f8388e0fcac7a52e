"""Statistical forecasts of each window alone, vectorised over windows (numpy only).

A global LSTM trained on few windows per series (monthly and quarterly data give one
validation window per series) misses what a per-series statistical model gets for free: each
series' own level, trend and season. The Theta method (Assimakopoulos & Nikolopoulos 2000, in
the SES-with-drift form of Hyndman & Billah 2003) is the statistical standard that is both
strong and cheap enough to run on every window at scoring time:

1. Seasonal adjustment, where the window holds two seasons and either its autocorrelation at
   the season lag passes the usual 90 % test or, once the moving average has taken the trend
   out, its values correlate with those a season earlier (the same test; a short trending window
   hides its season from the first): classical additive decomposition (centred moving average;
   the mean detrended value per season phase, centred on zero), or, for the multiplicative form
   below, the mean ratio to the moving average per phase (mean 1).
2. Simple exponential smoothing of the adjusted values, its smoothing weight chosen per window
   from a fixed grid by the in-sample one-step squared error.
3. Half the slope of the least-squares line as drift:
   ``f(h) = level + b/2 · ((h - 1) + 1/α - (1 - α)^n / α)``, then the season added back.

Seasonal naive (the window's last season repeated) and seasonal naive with drift (the same,
plus the growth per season over the window's whole seasons, carried forward) are the others:
on long trending monthly series (US employment by industry) the growth carried forward is what
ARIMA's differencing gets and Theta's half slope damps. The fourth is Box & Jenkins' airline
model, ARIMA(0,1,1)(0,1,1) at the season (ARIMA(0,1,1) where the window holds fewer than two
seasons and a few steps): both differences, then the two moving-average weights chosen per window
from a grid by the conditional sum of squares; it is what AutoARIMA picks on many seasonal
monthly series. On the benchmark's sets it cut a members-only blend's error by up to 16 %; end to
end the gain was smaller and mixed, largest where lakecast was furthest behind (bench/RESULTS.md,
"Four weeks back for hourly data, the airline model as a fourth member, ..."). The fifth is the
damped trend (Holt's linear trend with a damped slope, Gardner & McKenzie 1985) on the window
Theta adjusts, blended only where steps are months, quarters or years (`conf.auto_steps.blend_skips`).
The sixth, blended only where steps are shorter than a day, is naive: the window's last value, the
random walk that AutoARIMA settles on for prices and other series whose season a step back only
repeats noise (bench/RESULTS.md, "A naive member for steps shorter than a day"). The seventh,
blended only where steps are months, is Holt-Winters with a damped trend (`holt_winters_forecast`): the
others take one season out of the whole window and put it back unchanged, where its season weight lets
the season move, as AutoETS's winning forms on short monthly series do; it works on the logs of a
positive window (a multiplicative season and trend) and so is one of the `MULTIPLICATIVE_MEMBERS`.

Theta and the damped trend also come in a multiplicative form
(`MULTIPLICATIVE_MEMBERS`) whose season is taken out by ratios where the window's original values
are all positive (additive elsewhere), as statsforecast's Theta decomposes by default. A season
that grows with the level (sales, travel) is otherwise put back at the window's average amplitude,
too small at the end of a growing window; scaling the window by its mean and spread cannot make it
additive, since it moves every value by the same amount. The offset (scale_loc / scale_scale) is
what scaling took away: the original values over the spread are ``x + offset``. Both forms, not
the multiplicative one alone: which fits differs by series and origin, and each window's backtests
(`blend.local_member_shares`) choose between them (bench/RESULTS.md, "A multiplicative season").
Yearly and monthly models also have the recent forms (`RECENT_MEMBERS`): the members whose forecast
depends on how far back they read, again on the window's last steps only (yearly: the network's
lookback of the twelve years; monthly: six of the ten years; `conf.auto_steps.recent_steps`)
(bench/RESULTS.md, "Yearly data: the trend members on both windows", "Ten years for monthly members").
`Predictor` blends
them with the network's median (see `blend.py`); nothing here is fitted across windows, so a
window's forecast depends on that window only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ALPHAS = np.linspace(0.05, 1.0, 16)  # the SES smoothing weights tried on every window
SEASONALITY_Z = 1.645                # the 90 % one-sided test on the season-lag autocorrelation
MIN_SEASON_PAIRS = 4                 # detrended (value, value a season earlier) pairs the second test needs
FFT_FROM_LAG = 64                    # longer seasons: autocorrelations by FFT (N·L·log L, not N·L·m)
FFT_CHUNK_CELLS = 1 << 22            # padded values per FFT call (about 64 MB of spectrum)
AIRLINE_GRID = np.linspace(-0.95, 0.45, 8)  # the airline model's moving-average weights tried (each of two)
RECURSION_CHUNK_CELLS = 1 << 18      # (window, parameter) cells per pass of the airline, damped, Holt-Winters loops
# The damped-trend member's grid (6 x 4 x 4 = 96 fits per window): level weight, trend weight as a
# share of it (beta* = beta / alpha, so the trend never reacts faster than the level), damping.
DAMPED_ALPHAS = (0.05, 0.15, 0.3, 0.5, 0.7, 0.9)
DAMPED_TREND_SHARES = (0.0, 0.02, 0.08, 0.2)
DAMPED_PHIS = (0.8, 0.9, 0.95, 0.98)
# The Holt-Winters member's grid (6 x 4 x 4 = 96 fits per window): level weight, season weight as a share
# of what the level leaves (gamma = share * (1 - alpha), the usual bound), and the trend as (trend weight
# as a share of the level's, damping): the first is no trend. Fits are chosen by Akaike's criterion, each
# weight above zero counted as a parameter (`HW_PARAMETER_PENALTY` each; a trend counts two, its weight and
# its damping): by the squared error alone a short window picks a trend that its noise suggests (US
# accidental deaths: MASE 0.73 against 0.56).
HW_ALPHAS = (0.05, 0.15, 0.3, 0.5, 0.7, 0.9)
HW_SEASON_SHARES = (0.0, 0.05, 0.15, 0.3)
HW_TRENDS = ((0.0, 1.0), (0.02, 0.98), (0.08, 0.9), (0.08, 0.98))
HW_PARAMETER_PENALTY = 2.0
# Steps a window needs for each member's seasonal form, as (seasons, extra steps); shorter windows get
# the member's non-seasonal form. The per-window backtests (`blend.local_member_shares`) refit no
# shorter than this, so they score the form that forecasts.
_SEASONAL_NEEDS = {"theta": (2, 0), "seasonal_naive": (1, 0), "seasonal_drift": (2, 0), "airline": (2, 3),
                   "damped": (2, 0), "theta_multiplicative": (2, 0), "damped_multiplicative": (2, 0),
                   "naive": (0, 0), "holt_winters": (2, 0)}


def seasonal_steps(member: str, season: int) -> int:
    """Steps a window needs for `member` to forecast in its seasonal form (0: no season to have)."""
    seasons, extra = _SEASONAL_NEEDS[base_member(member)]
    return seasons * season + extra if season >= 2 else 0


def _seasonal_profile(x: np.ndarray, season: int) -> np.ndarray:
    """(N, season) additive seasonal indices, by phase relative to the window's end; 0 where the
    window is shorter than two seasons or shows no significant seasonality."""
    n, length = x.shape
    if season <= 1 or length < seasonal_steps("theta", season):
        return np.zeros((n, 1))
    # centred moving average (2×m for an even season) from cumulative sums
    csum = np.concatenate((np.zeros((n, 1)), np.cumsum(x, axis=1)), axis=1)
    ma = (csum[:, season:] - csum[:, :-season]) / season          # ma[:, j] averages x[j .. j+m-1]
    trend = 0.5 * (ma[:, :-1] + ma[:, 1:]) if season % 2 == 0 else ma
    start = season // 2
    detrended = x[:, start:start + trend.shape[1]] - trend
    phase = (np.arange(start, start + trend.shape[1]) - length) % season
    # mean detrended value per phase: one bincount over (window, phase) cells, O(N·L) at any season
    cells = (np.arange(n)[:, None] * season + phase[None, :]).ravel()
    sums = np.bincount(cells, weights=detrended.ravel(), minlength=n * season).reshape(n, season)
    profile = sums / np.bincount(phase, minlength=season)
    profile -= profile.mean(axis=1, keepdims=True)
    acf = _autocorrelations(x - x.mean(axis=1, keepdims=True), season)
    limit = SEASONALITY_Z * np.sqrt((1.0 + 2.0 * (acf[:, :-1] ** 2).sum(axis=1)) / length)
    seasonal = (np.abs(acf[:, -1]) > limit) | _repeats_after_detrending(detrended, season)
    return np.where(seasonal[:, None], profile, 0.0)


def _multiplicative_profile(u: np.ndarray, season: int) -> np.ndarray:
    """(N, season) multiplicative seasonal indices of positive windows `u` by phase relative to the
    window's end (mean 1): the ratio of each value to the centred moving average, averaged per phase."""
    n, length = u.shape
    csum = np.concatenate((np.zeros((n, 1)), np.cumsum(u, axis=1)), axis=1)
    ma = (csum[:, season:] - csum[:, :-season]) / season
    trend = 0.5 * (ma[:, :-1] + ma[:, 1:]) if season % 2 == 0 else ma
    start = season // 2
    ratio = u[:, start:start + trend.shape[1]] / trend
    phase = (np.arange(start, start + trend.shape[1]) - length) % season
    cells = (np.arange(n)[:, None] * season + phase[None, :]).ravel()
    sums = np.bincount(cells, weights=ratio.ravel(), minlength=n * season).reshape(n, season)
    profile = sums / np.bincount(phase, minlength=season)
    return profile / profile.mean(axis=1, keepdims=True)


def _repeats_after_detrending(detrended: np.ndarray, season: int) -> np.ndarray:
    """Per window: whether the detrended values correlate with themselves a season earlier,
    by the same one-sided 90 % test (r > z / sqrt(pairs)).

    The autocorrelation test alone misses the season of a short trending window: on three years
    of a growing monthly series the trend makes every lag look alike (AirPassengers' last 36
    months: lag-12 autocorrelation 0.53 against a limit of 0.54), so Theta went without a season.
    After the moving average has taken the trend out, the season shows (r = 0.95 there)."""
    pairs = detrended.shape[1] - season
    if pairs < MIN_SEASON_PAIRS:
        return np.zeros(len(detrended), dtype=bool)
    a, b = detrended[:, season:], detrended[:, :-season]
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt(np.einsum("nt,nt->n", a, a) * np.einsum("nt,nt->n", b, b))
    r = np.divide(np.einsum("nt,nt->n", a, b), norm, out=np.zeros(len(a)), where=norm > 1e-12)
    return r > SEASONALITY_Z / np.sqrt(pairs)


def _autocorrelations(centred: np.ndarray, max_lag: int) -> np.ndarray:
    """(N, max_lag) autocorrelations at lags 1..max_lag: direct products for short seasons,
    one zero-padded FFT per window for long ones (minute data: a season of 1440 over 10080 steps)."""
    length = centred.shape[1]
    energy = np.maximum(np.einsum("nt,nt->n", centred, centred), 1e-12)[:, None]
    if max_lag <= FFT_FROM_LAG:
        return np.stack([np.einsum("nt,nt->n", centred[:, lag:], centred[:, :-lag])
                         for lag in range(1, max_lag + 1)], axis=1) / energy
    size = 1 << (2 * length - 1).bit_length()
    out = np.empty((len(centred), max_lag))
    step = max(1, FFT_CHUNK_CELLS // size)  # windows per FFT: bounded memory at any lookback
    for a in range(0, len(centred), step):
        spec = np.fft.rfft(centred[a:a + step], n=size, axis=1)
        out[a:a + step] = np.fft.irfft(spec.real ** 2 + spec.imag ** 2, n=size, axis=1)[:, 1:max_lag + 1]
    return out / energy


def _ses(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Final level and chosen smoothing weight per window (SES, level started at the first value)."""
    n, length = x.shape
    x = x.astype(np.float32)  # scaled values: float32 is ample and halves the memory traffic
    alphas = ALPHAS.astype(np.float32)
    level = np.repeat(x[:, :1], len(alphas), axis=1)
    sse = np.zeros_like(level)
    err = np.empty_like(level)
    for t in range(1, length):  # in place: four passes over (N, len(ALPHAS)) per step
        np.subtract(x[:, t:t + 1], level, out=err)
        sse += err * err
        err *= alphas
        level += err
    best = sse.argmin(axis=1)
    rows = np.arange(n)
    return level[rows, best].astype(np.float64), ALPHAS[best]


@dataclass(frozen=True)
class _Season:
    """A window's season as Theta and the damped trend take it out and put it back: additive indices
    (0 where none), and for the windows with a multiplicative season, their indices (1 elsewhere)
    and `offset` (the window's original values over its scale are ``x + offset``)."""

    additive: np.ndarray        # (N, season or 1)
    factors: np.ndarray         # (N, season or 1)
    offset: np.ndarray          # (N,) 0 where the season is additive

    def ahead(self, forecast: np.ndarray) -> np.ndarray:
        """`forecast` (N, horizon) of the adjusted window with the season put back."""
        h = np.arange(forecast.shape[1])
        c = self.offset[:, None]
        return ((forecast + c) * self.factors[:, h % self.factors.shape[1]] - c
                + self.additive[:, h % self.additive.shape[1]])


def _positive_rows(x: np.ndarray, offset: np.ndarray | None) -> np.ndarray:
    """(N,) the windows whose season may be multiplicative: an `offset` is known and every original
    value is positive (``x + offset > 0``)."""
    if offset is None:
        return np.zeros(len(x), dtype=bool)
    c = np.asarray(offset, dtype=np.float64)
    return np.isfinite(c) & ((x + c[:, None]) > 0).all(axis=1)


def _deseasonalised(x: np.ndarray, season: int, offset: np.ndarray | None = None) -> tuple[np.ndarray, _Season]:
    """(adjusted windows, season): the windows less their season, as Theta and the damped trend both
    fit them; `_Season.ahead` puts it back on a forecast. Where the window shows a season
    (`_seasonal_profile`), its `offset` is given and its original values are all positive, the
    season is multiplicative (classical decomposition by ratios to the moving average, as
    statsforecast's Theta does by default): a season that grows with the level, as sales and
    travel do, is not cut to its average amplitude and put back at the window's mean size."""
    profile = _seasonal_profile(x, season)
    length = x.shape[1]
    n = len(x)
    mult = _positive_rows(x, offset) & (np.abs(profile).sum(axis=1) > 0)
    if not mult.any():
        season_ = _Season(profile, np.ones((n, 1)), np.zeros(n))
        return x - profile[:, (np.arange(length) - length) % profile.shape[1]], season_
    assert offset is not None
    c = np.where(mult, np.asarray(offset, dtype=np.float64), 0.0)
    factors = np.ones((n, season))
    factors[mult] = _multiplicative_profile(x[mult] + c[mult, None], season)
    additive = np.where(mult[:, None], 0.0, profile)
    phase = (np.arange(length) - length) % season
    adjusted = (x + c[:, None]) / factors[:, phase] - c[:, None] - additive[:, phase]
    return adjusted, _Season(additive, factors, c)


def theta_forecast(values: np.ndarray, season: int, horizon: int, offset: np.ndarray | None = None) -> np.ndarray:
    """Theta point forecasts (N, horizon) of windows `values` (N, lookback), in their units
    (`offset`: see `_deseasonalised`)."""
    x = np.asarray(values, dtype=np.float64)
    length = x.shape[1]
    if length < 2:
        return naive_forecast(x, season, horizon)
    adjusted, seasonal = _deseasonalised(x, season, offset)
    level, alpha = _ses(adjusted)
    t = np.arange(length) - (length - 1) / 2.0
    slope = (adjusted @ t) / float(t @ t)
    h = np.arange(1, horizon + 1)[None, :]
    a = alpha[:, None]
    drift = 0.5 * slope[:, None] * ((h - 1) + 1.0 / a - (1.0 - a) ** length / a)
    return seasonal.ahead(level[:, None] + drift)


def seasonal_naive_forecast(values: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """The last season of each window repeated (the last value when the window is shorter)."""
    x = np.asarray(values, dtype=np.float64)
    length = x.shape[1]
    m = season if season >= 1 and seasonal_steps("seasonal_naive", season) <= length else 1
    return x[:, length - m + np.arange(horizon) % m]


def naive_forecast(values: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """Each window's last value repeated (the random walk, M-competitions' Naive1): what AutoARIMA picks on
    prices and other series without a season or trend, where the season's step back (seasonal naive)
    repeats yesterday's noise."""
    x = np.asarray(values, dtype=np.float64)
    return np.repeat(x[:, -1:], horizon, axis=1)


def seasonal_drift_forecast(values: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """Seasonal naive plus drift: the last season repeated, each repeat raised by one season's
    growth, measured from the value k steps back to the last (k the window's whole seasons); a
    window shorter than two seasons drifts step by step (a random walk with drift)."""
    x = np.asarray(values, dtype=np.float64)
    length = x.shape[1]
    m = season if season >= 2 and seasonal_steps("seasonal_drift", season) <= length else 1
    if length < 2:
        return naive_forecast(x, season, horizon)
    k = (length - 1) // m * m
    growth = (x[:, -1] - x[:, -1 - k]) / (k // m)            # per season (per step where m = 1)
    repeats = np.arange(horizon) // m + 1                     # which repeat of the season step h is in
    return x[:, length - m + np.arange(horizon) % m] + growth[:, None] * repeats[None, :]


def airline_forecast(values: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """The airline model (ARIMA(0,1,1)(0,1,1) at `season`) per window, (N, horizon).

    ``w_t = (1 - B)(1 - B^m) x_t = e_t + a e_{t-1} + s e_{t-m} + a s e_{t-m-1}``: the shocks are
    recovered forwards from zero (conditional sum of squares) for every (a, s) of `AIRLINE_GRID`
    at once, the pair with the least squared shocks wins, and the forecast carries both differences
    forward with the known shocks (future ones are zero). A window shorter than two seasons and
    three steps gets ARIMA(0,1,1) (one difference, one weight: exponential smoothing without
    drift). Only the last m + 2 shocks are kept, so memory is (windows, pairs, m + 2)."""
    x = np.asarray(values, dtype=np.float64)
    n, length = x.shape
    if length < 3:
        return naive_forecast(x, season, horizon)
    m = season if season >= 2 and length >= seasonal_steps("airline", season) else 0
    if m:
        w = x[:, m + 1:] - x[:, m:-1] - x[:, 1:length - m] + x[:, :length - m - 1]
        ma, sma = (g.ravel() for g in np.meshgrid(AIRLINE_GRID, AIRLINE_GRID, indexing="ij"))
    else:
        w = np.diff(x, axis=1)
        ma, sma = AIRLINE_GRID, np.zeros_like(AIRLINE_GRID)
    steps, pairs, ring = w.shape[1], len(ma), m + 2
    a, s, both = (v.astype(np.float32)[None, :] for v in (ma, sma, ma * sma))
    out = np.empty((n, horizon))
    chunk = max(1, RECURSION_CHUNK_CELLS // pairs)
    for lo in range(0, n, chunk):
        wc = np.ascontiguousarray(w[lo:lo + chunk].T, dtype=np.float32)   # (steps, windows)
        k = wc.shape[1]
        e = np.zeros((ring, k, pairs), dtype=np.float32)                   # shock t at e[t % ring]
        sse = np.zeros((k, pairs), dtype=np.float32)
        tmp = np.empty((k, pairs), dtype=np.float32)
        for t in range(steps):
            v = e[t % ring]
            if t >= 1:
                np.multiply(a, e[(t - 1) % ring], out=v)
            else:
                v.fill(0.0)
            np.subtract(wc[t][:, None], v, out=v)
            if m and t >= m:
                np.multiply(s, e[(t - m) % ring], out=tmp)
                v -= tmp
                if t >= m + 1:
                    np.multiply(both, e[(t - m - 1) % ring], out=tmp)
                    v -= tmp
            np.multiply(v, v, out=tmp)
            sse += tmp
        best = sse.argmin(axis=1)
        ab, sb = ma[best], sma[best]
        known = min(steps, ring)
        # the winning pair's last `known` shocks, oldest first, then zeros for the future ones
        shocks = np.zeros((k, known + horizon))
        for j in range(known):
            shocks[:, j] = e[(steps - known + j) % ring][np.arange(k), best]
        y = np.concatenate([x[lo:lo + chunk], np.zeros((k, horizon))], axis=1)
        for h in range(horizon):
            i, now = length + h, known + h   # shocks[:, now + j]: the shock j steps from step i
            if m:
                y[:, i] = (y[:, i - 1] + y[:, i - m] - y[:, i - m - 1] + ab * _past(shocks, now, 1)
                           + sb * _past(shocks, now, m) + ab * sb * _past(shocks, now, m + 1))
            else:
                y[:, i] = y[:, i - 1] + ab * _past(shocks, now, 1)
        out[lo:lo + chunk] = y[:, length:]
    return out


def _damped_grid() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(alpha, beta, phi) of every fit the damped member tries, as float32 rows (1, fits)."""
    a, share, phi = (g.ravel() for g in np.meshgrid(DAMPED_ALPHAS, DAMPED_TREND_SHARES, DAMPED_PHIS, indexing="ij"))
    return (a.astype(np.float32)[None, :], (a * share).astype(np.float32)[None, :],
            phi.astype(np.float32)[None, :])


def damped_forecast(values: np.ndarray, season: int, horizon: int, offset: np.ndarray | None = None) -> np.ndarray:
    """Holt's linear trend, damped (Gardner & McKenzie 1985), on the seasonally adjusted window, (N, horizon).

    The window is adjusted as Theta adjusts it (`_deseasonalised`: none where it shows no season);
    level ``l`` and trend ``b`` start at the first value and the mean growth over the first season
    (first step where the season is 1), then ``f = l + phi·b``, ``l = f + alpha·e``,
    ``b = phi·b + beta·e`` for every (alpha, beta, phi) of the grid at once; the fit with the least
    one-step squared error forecasts ``l + (phi + ... + phi^h)·b`` plus the season. The damped trend
    is the M-competitions' most consistent single method: it follows a trend for a while, as Theta's
    drift and seasonal drift do not, and flattens it, as they do not either. On the accuracy
    benchmark's monthly to yearly sets, at two holdout origins, it lowered lakecast's MASE by 0.5 %
    on average (up to 5 %), most where lakecast trailed the statistical methods; on weekly and daily
    sets it raised it, so those do not blend it (bench/RESULTS.md, "A damped-trend member")."""
    x = np.asarray(values, dtype=np.float64)
    n, length = x.shape
    if length < 3:
        return naive_forecast(x, season, horizon)
    adjusted64, seasonal = _deseasonalised(x, season, offset)
    adjusted = adjusted64.astype(np.float32)
    alpha, beta, phi = _damped_grid()
    fits = alpha.shape[1]
    k = min(length - 1, max(1, season))
    level_out, trend_out, phi_out = np.empty(n), np.empty(n), np.empty(n)
    chunk = max(1, RECURSION_CHUNK_CELLS // fits)
    for lo in range(0, n, chunk):
        xc = np.ascontiguousarray(adjusted[lo:lo + chunk].T)                  # (steps, windows)
        rows = xc.shape[1]
        level = np.repeat(xc[0][:, None], fits, axis=1)
        trend = np.repeat(((xc[k] - xc[0]) / k)[:, None], fits, axis=1)
        sse = np.zeros_like(level)
        err, tmp = np.empty_like(level), np.empty_like(level)
        for t in range(1, length):  # in place: the (windows, fits) arrays stay in cache
            np.multiply(phi, trend, out=trend)        # phi·b
            level += trend                            # the one-step forecast f
            np.subtract(xc[t][:, None], level, out=err)
            np.multiply(err, err, out=tmp)
            sse += tmp
            np.multiply(alpha, err, out=tmp)
            level += tmp
            np.multiply(beta, err, out=tmp)
            trend += tmp
        best = sse.argmin(axis=1)
        r = np.arange(rows)
        level_out[lo:lo + rows] = level[r, best]
        trend_out[lo:lo + rows] = trend[r, best]
        phi_out[lo:lo + rows] = phi[0, best]
    damp = np.cumsum(phi_out[:, None] ** np.arange(1, horizon + 1)[None, :], axis=1)
    return seasonal.ahead(level_out[:, None] + damp * trend_out[:, None])


def _holt_winters_grid() -> tuple[np.ndarray, ...]:
    """(alpha, gamma, beta, phi, parameters) of every fit the Holt-Winters member tries, rows (1, fits)."""
    rows = [(a, g * (1.0 - a), share * a, phi) for a in HW_ALPHAS for g in HW_SEASON_SHARES
            for share, phi in HW_TRENDS]
    alpha, gamma, beta, phi = (np.array(c, dtype=np.float32)[None, :] for c in zip(*rows, strict=True))
    parameters = 1.0 + (gamma > 0) + 2.0 * (beta > 0)
    return alpha, gamma, beta, phi, parameters


def _holt_winters_additive(x: np.ndarray, season: int, horizon: int) -> np.ndarray:
    """Additive Holt-Winters (ETS(A,Ad,A) on a grid) of windows `x` (N, length), (N, horizon).

    The season starts from the window's classical profile (`_seasonal_profile`: none where the window shows
    no season, and then it stays none), the level and trend from the first two seasons less it; then per
    step ``f = l + phi·b + s``, ``l += phi·b + alpha·e``, ``b = phi·b + beta·e``, ``s += gamma·e`` for
    every fit of the grid at once, the season kept as a ring of its last `season` values."""
    n, length = x.shape
    profile = _seasonal_profile(x, season)
    m = profile.shape[1]
    seasonal = np.abs(profile).sum(axis=1) > 0
    s0 = profile[:, (np.arange(m) - length) % m]                      # the season of steps 0 .. m-1
    adjusted = x[:, :2 * m] - np.tile(s0, 2)     # a profile of m > 1 steps needs two seasons; length >= 3
    first = adjusted[:, :m].mean(axis=1)
    slope = (adjusted[:, m:].mean(axis=1) - first) / m
    start = first - slope * (m + 1) / 2.0                             # the level a step before the window
    alpha, gamma, beta, phi, parameters = _holt_winters_grid()
    fits = alpha.shape[1]
    out = np.empty((n, horizon))
    chunk = max(1, RECURSION_CHUNK_CELLS // (fits * m))
    ahead = (length + np.arange(horizon)) % m
    damp = np.cumsum(phi[0].astype(np.float64)[:, None] ** np.arange(1, horizon + 1)[None, :], axis=1)
    for lo in range(0, n, chunk):
        xc = np.ascontiguousarray(x[lo:lo + chunk].T, dtype=np.float32)   # (steps, windows)
        rows = xc.shape[1]
        g = np.where(seasonal[lo:lo + chunk, None], gamma, np.float32(0.0))
        level = np.repeat(start[lo:lo + chunk, None], fits, axis=1).astype(np.float32)
        trend = np.where(beta > 0, slope[lo:lo + chunk, None], 0.0).astype(np.float32)
        ring = np.repeat(s0[lo:lo + chunk].T[:, :, None], fits, axis=2).astype(np.float32)  # (m, windows, fits)
        sse = np.zeros((rows, fits), dtype=np.float32)
        err, tmp = np.empty_like(sse), np.empty_like(sse)
        for t in range(length):
            s = ring[t % m]
            np.multiply(phi, trend, out=trend)
            level += trend
            np.subtract(xc[t][:, None], level, out=err)
            err -= s
            np.multiply(err, err, out=tmp)
            sse += tmp
            np.multiply(alpha, err, out=tmp)
            level += tmp
            np.multiply(beta, err, out=tmp)
            trend += tmp
            np.multiply(g, err, out=tmp)
            s += tmp
        criterion = length * np.log(np.maximum(sse, 1e-12) / length) + HW_PARAMETER_PENALTY * parameters
        best = criterion.argmin(axis=1)
        r = np.arange(rows)
        season_ahead = ring[:, r, best].T[:, ahead]                          # (windows, horizon)
        out[lo:lo + rows] = (level[r, best][:, None] + damp[best] * trend[r, best][:, None] + season_ahead)
    return out


def holt_winters_forecast(values: np.ndarray, season: int, horizon: int,
                          offset: np.ndarray | None = None) -> np.ndarray:
    """Holt-Winters exponential smoothing with a damped trend per window, (N, horizon); on the logs of the
    original values where `offset` is given and they are all positive (`_positive_rows`): a season and
    trend that grow with the level, as ETS(M,Md,M) has them, and on the window itself elsewhere. On the
    logs a trend compounds, so the forecast is bounded to the window's own range of logs widened by that
    range on either side (at most its ratio of largest to smallest value again beyond either end): a
    ramp (a product launch) is not carried into explosive growth that nothing else in the blend would clip.
    The logs are centred and scaled per window before the float32 recursion: an offset of 10^5 (a series
    whose spread is tiny beside its level) leaves them varying in the sixth digit, below float32's.

    Unlike Theta and the damped trend, which take out one season fitted to the whole window and put it
    back unchanged, Holt-Winters lets the season move (its weight gamma): AutoETS's winning form on short
    monthly series (US accidental deaths: ETS(A,N,A), MASE 0.53, where lakecast reached 0.75). Members
    alone on the benchmark's thirteen monthly sets at three holdout origins, adding it cut the blend's
    MASE by 0.6 % (geometric mean; 30 of 38 set and origin pairs better, up to 4 % on a set, one pair 15 %
    worse; bench/RESULTS.md, "A Holt-Winters member")."""
    x = np.asarray(values, dtype=np.float64)
    if x.shape[1] < 3:
        return naive_forecast(x, season, horizon)
    positive = _positive_rows(x, offset)
    if not positive.any():
        return _holt_winters_additive(x, season, horizon)
    assert offset is not None
    out = np.empty((len(x), horizon))
    if not positive.all():
        out[~positive] = _holt_winters_additive(x[~positive], season, horizon)
    c = np.asarray(offset, dtype=np.float64)[positive, None]
    logs = np.log(x[positive] + c)
    centre = logs.mean(axis=1, keepdims=True)
    spread = np.maximum(logs.std(axis=1, keepdims=True), 1e-300)
    ahead = _holt_winters_additive((logs - centre) / spread, season, horizon) * spread + centre
    low, high = logs.min(axis=1, keepdims=True), logs.max(axis=1, keepdims=True)
    ahead = np.clip(ahead, 2 * low - high, 2 * high - low)
    out[positive] = np.exp(ahead) - c
    return out


def _past(shocks: np.ndarray, now: int, lag: int) -> np.ndarray | float:
    """The shock `lag` steps before column `now` (0 before the first one kept: the recursion's start)."""
    return shocks[:, now - lag] if now - lag >= 0 else 0.0


# the statistical forecasts a model may blend with its network
MEMBERS = ("theta", "seasonal_naive", "seasonal_drift", "airline", "damped", "theta_multiplicative",
           "damped_multiplicative", "naive", "holt_winters")
# Theta and the damped trend again, each window's season taken out by ratios where its original values are
# all positive (`_deseasonalised`), and Holt-Winters, on the logs of such windows; they need the windows'
# offsets, and without them are their additive forms.
MULTIPLICATIVE_MEMBERS = ("theta_multiplicative", "damped_multiplicative", "holt_winters")
# The members whose forecast depends on how far back they read, again on each window's last `recent`
# steps only (`conf.auto_steps.recent_steps`) beside their fit on the whole window: the whole window's years
# fit a trend better, unless the series has since changed course (`blend.local_member_shares` lets each
# window's backtests choose). Seasonal naive reads only the last season and naive the last value, so they have
# no such form.
RECENT_SUFFIX = "_recent"
RECENT_MEMBERS = tuple(m + RECENT_SUFFIX for m in MEMBERS if m not in ("seasonal_naive", "naive"))
KNOWN_MEMBERS = MEMBERS + RECENT_MEMBERS
_FORECASTERS: dict[str, Any] = {"theta": theta_forecast, "seasonal_naive": seasonal_naive_forecast,
                "seasonal_drift": seasonal_drift_forecast, "airline": airline_forecast,
                "damped": damped_forecast, "theta_multiplicative": theta_forecast,
                "damped_multiplicative": damped_forecast, "naive": naive_forecast,
                "holt_winters": holt_winters_forecast}


def base_member(name: str) -> str:
    """The member a `RECENT_MEMBERS` name refits on the recent steps (the name itself otherwise)."""
    return name.removesuffix(RECENT_SUFFIX) if name in RECENT_MEMBERS else name


def _forecast(name: str, values: np.ndarray, season: int, horizon: int, offset: np.ndarray | None,
              recent: int) -> np.ndarray:
    base = base_member(name)
    if base != name and 0 < recent < values.shape[1]:
        values = values[:, -recent:]
    if base in MULTIPLICATIVE_MEMBERS:
        return np.asarray(_FORECASTERS[base](values, season, horizon, offset))
    return np.asarray(_FORECASTERS[base](values, season, horizon))


def member_forecasts(values: np.ndarray, season: int, horizon: int, members: tuple[str, ...] = MEMBERS,
                     pad: np.ndarray | None = None, offset: np.ndarray | None = None,
                     recent: int = 0) -> dict[str, np.ndarray]:
    """Point forecasts (N, horizon) of `values` (N, lookback) by each named member; a window
    with `pad` leading steps of padding (a short series) is forecast from the steps after them.
    `offset` (N,): each window's ``scale_loc / scale_scale``, with which the `MULTIPLICATIVE_MEMBERS`
    take a multiplicative season out of positive series (`_deseasonalised`); None: additive only.
    `recent`: the steps the `RECENT_MEMBERS` read, the last of each window's (0, or at least what the
    window holds after its padding: the whole of it, as their base members)."""
    if pad is None or not np.any(pad):
        return {name: _forecast(name, values, season, horizon, offset, recent) for name in members}
    out = {name: np.empty((len(values), horizon)) for name in members}
    for p in np.unique(pad):  # windows of one length at a time: the members are vectorised per length
        rows = pad == p
        part = None if offset is None else np.asarray(offset)[rows]
        for name, f in member_forecasts(values[rows, int(p):], season, horizon, members, offset=part,
                                        recent=recent).items():
            out[name][rows] = f
    return out
