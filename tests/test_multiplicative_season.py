"""A season that grows with the level: Theta and the damped trend as members that take it out by ratios.

Windows reach the members scaled by their own mean and spread, so the members see only the
scaled values; the window's offset (scale_loc / scale_scale) gives back the original values over
the spread, which is all a multiplicative decomposition needs. Checked against a one-window
reference in plain loops on the original values, for any scaling of the same window.
"""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from conf.auto_steps import MULTIPLICATIVE_MEMBERS as CONF_MULTIPLICATIVE
from conf.auto_steps import blend_multiplicative, blend_skips
from models.lakecast_forecaster.blend import StatisticalBlend, fit_blend
from models.lakecast_forecaster.lstm import LSTMSpec, build_model
from models.lakecast_forecaster.predictor import (
    META_FILE,
    ModelMeta,
    Predictor,
    load_predictor,
    save_predictor,
    window_offsets,
)
from models.lakecast_forecaster.statistical import (
    MEMBERS,
    MULTIPLICATIVE_MEMBERS,
    damped_forecast,
    member_forecasts,
    theta_forecast,
)
from tests.conftest import make_config
from tests.test_statistical_blend import reference_profile, reference_theta

torch.set_num_threads(1)
SPEC = LSTMSpec(n_features=2, lookback=36, horizon=6, hidden_size=4, num_layers=1)
META = ModelMeta(lookback=36, n_features=2, feature_names=("value", "missing"), horizon=6,
                 quantiles=(0.1, 0.5, 0.9), freq="MS", network=SPEC)


def growing_season(n: int, length: int, m: int, seed: int, noise: float = 0.02) -> np.ndarray:
    """(n, length) positive series: a level growing a few percent a season times seasonal factors
    (peak about twice the trough), with multiplicative noise: sales or air travel."""
    rng = np.random.default_rng(seed)
    t = np.arange(length)
    level = rng.uniform(50, 500, (n, 1)) * (1 + rng.uniform(0.005, 0.02, (n, 1))) ** t
    factors = 1 + rng.uniform(0.2, 0.5, (n, 1)) * np.sin(2 * np.pi * (t + rng.integers(0, m, (n, 1))) / m)
    return level * factors * np.exp(rng.normal(0, noise, (n, length)))


def scaled(v: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(x, loc, scale) as the windows carry them: each window less its mean, over its spread."""
    loc, scale = v.mean(axis=1), v.std(axis=1)
    return (v - loc[:, None]) / scale[:, None], loc, scale


def reference_multiplicative_theta(v: list[float], m: int, h: int) -> list[float]:
    """One window of original (positive) values, loops only: where the additive test finds a
    season, ratios to the centred moving average averaged per phase (mean 1), the window divided
    by them, Theta without a season on that, and the forecast multiplied back."""
    n = len(v)
    if not any(reference_profile(v, m)):
        return reference_theta(v, m, h)
    half = m // 2
    sums, counts = [0.0] * m, [0] * m
    for t in range(half, n - half):
        ma = ((0.5 * v[t - half] + sum(v[t - half + 1:t + half]) + 0.5 * v[t + half]) / m if m % 2 == 0
              else sum(v[t - half:t + half + 1]) / m)
        sums[(t - n) % m] += v[t] / ma
        counts[(t - n) % m] += 1
    idx = [s / k for s, k in zip(sums, counts, strict=True)]
    factors = [f / (sum(idx) / m) for f in idx]
    adjusted = [v[t] / factors[(t - n) % m] for t in range(n)]
    flat = reference_theta(adjusted, 1, h)
    return [flat[k] * factors[k % m] for k in range(h)]


@pytest.mark.parametrize(("m", "length"), [(12, 36), (12, 72), (4, 20), (7, 30)])
def test_multiplicative_theta_equals_the_one_window_reference(m: int, length: int) -> None:
    """Theta on scaled windows with their offsets, unscaled, is the reference on the original values."""
    v = growing_season(30, length, m, seed=m + length)
    x, loc, scale = scaled(v)
    got = theta_forecast(x, m, 9, window_offsets(loc, scale)) * scale[:, None] + loc[:, None]
    want = np.array([reference_multiplicative_theta(list(row), m, 9) for row in v])
    np.testing.assert_allclose(got, want, rtol=1e-4)  # the SES loop runs in float32
    additive = theta_forecast(x, m, 9) * scale[:, None] + loc[:, None]
    assert np.abs(got - additive).max() > 1e-3 * np.abs(want).max()  # the season did change


def test_the_forecast_does_not_depend_on_how_the_window_was_scaled() -> None:
    """Any (loc, scale) of the same original window gives the same forecast in original units,
    for both members that take the season out."""
    v = growing_season(20, 48, 12, seed=3)
    out = []
    scalings = ((v.mean(axis=1), v.std(axis=1)), (np.zeros(20), np.ones(20)), (v.min(axis=1) / 2, v.std(axis=1) * 3))
    for loc, scale in scalings:
        x = (v - loc[:, None]) / scale[:, None]
        c = window_offsets(loc, scale)
        out.append([f(x, 12, 6, c) * scale[:, None] + loc[:, None] for f in (theta_forecast, damped_forecast)])
    for other in out[1:]:
        for a, b in zip(out[0], other, strict=True):
            np.testing.assert_allclose(a, b, rtol=2e-4)


def test_a_season_that_grows_with_the_level_is_forecast_better() -> None:
    """The point of it: three years in, one and a half ahead, a growing multiplicative season is
    forecast with less error than an additive season leaves, which puts the season back at the
    window's average amplitude, too small where the level has grown (measured: Theta 0.80 of the
    additive error, the damped trend 0.40)."""
    v = growing_season(200, 36 + 18, 12, seed=5, noise=0.01)
    x, loc, scale = scaled(v[:, :36])
    actual = v[:, 36:]
    c = window_offsets(loc, scale)
    for f, most in ((theta_forecast, 0.85), (damped_forecast, 0.5)):
        mult = np.abs(f(x, 12, 18, c) * scale[:, None] + loc[:, None] - actual).mean()
        add = np.abs(f(x, 12, 18) * scale[:, None] + loc[:, None] - actual).mean()
        assert mult < most * add, (f.__name__, mult, add)


def test_windows_not_all_positive_or_without_a_season_keep_the_additive_season() -> None:
    v = growing_season(12, 36, 12, seed=7)
    v[:4, 10] = 0.0                                                  # a zero: no ratio to take
    v[4:8] = np.random.default_rng(8).uniform(10, 20, (4, 36))       # noise: no season to take out
    x, loc, scale = scaled(v)
    c = window_offsets(loc, scale)
    for f in (theta_forecast, damped_forecast):
        with_offset, without = f(x, 12, 6, c), f(x, 12, 6)
        np.testing.assert_array_equal(with_offset[:8], without[:8])
        assert np.abs(with_offset[8:] - without[8:]).max() > 1e-3
    nan = c.copy()
    nan[8:] = np.nan                                                 # an unknown offset: additive
    np.testing.assert_array_equal(theta_forecast(x, 12, 6, nan), theta_forecast(x, 12, 6))
    # padded windows (a young series) take their offsets along to the steps after the padding
    pad = np.array([0, 12] * 6)
    xp = x.copy()
    xp[1::2, :12] = 0.0
    got = member_forecasts(xp, 12, 6, ("theta_multiplicative",), pad, c)["theta_multiplicative"]
    np.testing.assert_array_equal(got[1::2], theta_forecast(x[1::2, 12:], 12, 6, c[1::2]))


def test_the_multiplicative_members_are_theta_and_the_damped_trend_by_ratios() -> None:
    """Given offsets, the additive members stay additive and the multiplicative ones take the season
    out by ratios; without offsets both forms are the same."""
    v = growing_season(10, 36, 12, seed=13)
    x, loc, scale = scaled(v)
    c = window_offsets(loc, scale)
    given, none = member_forecasts(x, 12, 6, MEMBERS, offset=c), member_forecasts(x, 12, 6, MEMBERS)
    for additive, f in (("theta", theta_forecast), ("damped", damped_forecast)):
        np.testing.assert_array_equal(given[additive], f(x, 12, 6))
        np.testing.assert_array_equal(given[f"{additive}_multiplicative"], f(x, 12, 6, c))
        np.testing.assert_array_equal(none[f"{additive}_multiplicative"], none[additive])
    assert CONF_MULTIPLICATIVE == MULTIPLICATIVE_MEMBERS   # conf repeats the names it cannot import


def test_a_multiplicative_blend_is_format_8_and_needs_the_offsets(tmp_path: Path,
                                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Saved as format 8 (older readers do not know the members), loaded back as saved; scored with
    the offsets it forecasts as fitted; without them it warns and its multiplicative members
    forecast as their additive forms."""
    v = growing_season(8, 36, 12, seed=9)
    x, loc, scale = scaled(v)
    X = np.zeros((8, 36, 2), dtype=np.float32)
    X[:, :, 0] = x
    c = window_offsets(loc, scale)
    module = build_model(SPEC, 4).eval()
    blend = StatisticalBlend(12, (0.2,) * 6, {"theta": (0.2,) * 6, "theta_multiplicative": (0.3,) * 6,
                                              "damped_multiplicative": (0.3,) * 6}, power=2.0)
    path = save_predictor(module, replace(META, blend=blend), tmp_path / "mult")
    d = json.loads((path / META_FILE).read_text())
    assert d["format_version"] == 8
    loaded = load_predictor(path)
    assert loaded.meta.blend == blend and loaded.needs_offset
    np.testing.assert_array_equal(loaded.predict(X, offset=c), Predictor(module, replace(META, blend=blend)).predict(
        X, offset=c))
    # the same shares on the additive forms (Theta's two summed): what it scores as without offsets
    additive = Predictor(module, replace(META, blend=replace(blend, members={"theta": (0.5,) * 6,
                                                                            "damped": (0.3,) * 6})))
    assert not additive.needs_offset
    assert json.loads((save_predictor(module, additive.meta, tmp_path / "add") / META_FILE).read_text())[
        "format_version"] == 7
    assert np.abs(loaded.predict(X, offset=c) - additive.predict(X)).max() > 1e-3
    with caplog.at_level(logging.WARNING):
        np.testing.assert_allclose(loaded.predict(X), additive.predict(X), rtol=0, atol=1e-5)
    assert "scale_loc / scale_scale" in caplog.text


def test_fit_blend_with_offsets_is_multiplicative_and_reports_what_scoring_does() -> None:
    v = growing_season(60, 36 + 6, 12, seed=11)
    x, loc, scale = scaled(v[:, :36])
    y = (v[:, 36:] - loc[:, None]) / scale[:, None]
    c = window_offsets(loc, scale)
    rng = np.random.default_rng(12)
    pred = np.stack((y - 1, y + rng.normal(0, 0.5, y.shape), y + 1), axis=-1).astype(np.float32)
    mult = fit_blend(pred, x, y, 12, offset=c)
    assert set(mult.blend.members) == set(MEMBERS) and mult.blend.needs_offset
    blended = mult.blend.apply(pred.astype(np.float64), x, None, c)[..., 1]
    assert mult.mae["blend"] == pytest.approx(np.abs(y - blended).mean())
    # on a growing season, the ratios fit validation better, and take more of the share
    assert mult.mae["theta_multiplicative"] < mult.mae["theta"]
    assert sum(mult.blend.members["theta_multiplicative"]) > sum(mult.blend.members["theta"])


@pytest.mark.parametrize(("freq", "auto"), [("MS", True), ("QS", True), ("W-MON", False), ("D", False),
                                            ("h", False)])
def test_the_multiplicative_season_is_on_for_calendar_steps(tmp_path: Path, freq: str, auto: bool) -> None:
    cfg = make_config(tmp_path, f"data.freq={freq}")
    assert blend_multiplicative(cfg) is auto
    assert (set(blend_skips(cfg)) & {"theta_multiplicative", "damped_multiplicative"} == set()) is auto
    assert ("holt_winters" in blend_skips(cfg)) is (freq != "MS")  # monthly steps only, on logs where it may
    other = make_config(tmp_path, f"data.freq={freq}", f"model.statistical_season_multiplicative={not auto}")
    assert blend_multiplicative(other) is (not auto)
    assert "theta_multiplicative" in blend_skips(other) if auto else "theta_multiplicative" not in blend_skips(other)
    # Holt-Winters goes with the setting (its form on logs is the one that matters where the data allow it)
    assert ("holt_winters" in blend_skips(other)) is (auto or freq != "MS")


@pytest.mark.parametrize("setting", ["auto", "true"])
def test_yearly_steps_have_no_season_to_multiply_so_no_second_theta_or_damped(tmp_path: Path, setting: str) -> None:
    # with a season of one step the multiplicative forms forecast exactly as the additive ones, and
    # as members they would double those forms' share of the blend
    cfg = make_config(tmp_path, "data.freq=YS", f"model.statistical_season_multiplicative={setting}")
    assert blend_multiplicative(cfg) is (setting == "true")
    assert set(MULTIPLICATIVE_MEMBERS) <= set(blend_skips(cfg))
    assert "damped" not in blend_skips(cfg)   # the damped trend itself stays for yearly steps
    x = np.cumsum(np.random.default_rng(3).uniform(0.5, 1.5, (6, 20)), axis=1)
    c = np.full(6, 4.0)
    f = member_forecasts(x, 1, 5, MEMBERS, offset=c)
    np.testing.assert_allclose(f["theta_multiplicative"], f["theta"])
    np.testing.assert_allclose(f["damped_multiplicative"], f["damped"])
