"""Interval calibration: factors against known quantiles, ordering, and the model round trip (numpy/torch)."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from conf.auto_steps import calibrate_from
from models.arrays import WindowArrays
from models.intervals import calibrate, sample_windows
from models.lakecast_forecaster.calibration import (
    MIN_HISTORY_WINDOWS,
    IntervalCalibration,
    conformal_quantile,
    coverage,
    fit_calibration,
)
from models.lakecast_forecaster.lstm import LSTMSpec, build_model
from models.lakecast_forecaster.predictor import (
    META_FILE,
    ModelLoadError,
    ModelMeta,
    Predictor,
    load_predictor,
    save_predictor,
)
from tests.conftest import make_config

torch.set_num_threads(1)
Z90 = 1.2815516  # standard normal 0.9 quantile
Q = (0.1, 0.5, 0.9)
SPEC = LSTMSpec(n_features=2, lookback=8, horizon=3, hidden_size=4, num_layers=1)
META = ModelMeta(lookback=8, n_features=2, feature_names=("value", "missing"), horizon=3,
                 quantiles=Q, freq="h", network=SPEC)


def gaussian(n: int, horizon: int, seed: int, lo: float, hi: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Actuals y ~ N(mu, sigma) (sigma varying by window and step) and a band mu - lo·z·σ .. mu + hi·z·σ."""
    rng = np.random.default_rng(seed)
    mu = rng.normal(0, 3, (n, horizon))
    sigma = rng.uniform(0.2, 2.0, (n, horizon)) * (1 + np.arange(horizon) / horizon)
    y = rng.normal(mu, sigma)
    pred = np.stack((mu - lo * Z90 * sigma, mu, mu + hi * Z90 * sigma), axis=-1)
    return pred.astype(np.float32), y.astype(np.float32), sigma


@pytest.mark.parametrize(("lo", "hi"), [(0.5, 0.5), (3.0, 3.0), (0.5, 2.0)])
def test_calibration_recovers_the_true_quantiles(lo: float, hi: float) -> None:
    """Too narrow (factor 2), too wide (1/3) or lopsided bands become the N(mu, sigma) p10/p90."""
    pred, y, _ = gaussian(4000, 4, seed=1, lo=lo, hi=hi)
    cal = fit_calibration(pred, y, Q)
    np.testing.assert_allclose(cal.low, 1 / lo, rtol=0.08)
    np.testing.assert_allclose(cal.high, 1 / hi, rtol=0.08)
    fresh, y2, sigma = gaussian(100_000, 4, seed=2, lo=lo, hi=hi)
    before, after = coverage(fresh, y2), coverage(cal.apply(fresh), y2)
    assert abs(after[0] - 0.80) <= 0.02 and abs(after[1] - 0.10) <= 0.015 and abs(after[2] - 0.10) <= 0.015
    assert max(abs(before[1] - 0.10), abs(before[2] - 0.10)) > 0.05  # the test band really was off
    out = cal.apply(fresh)  # against the reference: the true quantiles mu ± z·sigma
    np.testing.assert_allclose((out[..., 1] - out[..., 0]) / (Z90 * sigma), 1.0, rtol=0.08)
    np.testing.assert_allclose((out[..., 2] - out[..., 1]) / (Z90 * sigma), 1.0, rtol=0.08)
    np.testing.assert_array_equal(out[..., 1], fresh[..., 1])


def test_conformal_quantile_is_the_finite_sample_rank() -> None:
    s = np.arange(1.0, 20.0)  # 19 scores: ceil(20 * 0.9) = 18th smallest
    assert conformal_quantile(s, 0.9) == 18.0
    assert conformal_quantile(np.arange(1.0, 6.0), 0.9) == 5.0  # too few: the largest
    assert conformal_quantile(np.array([np.nan, 2.0, np.inf]), 0.5) == 2.0
    assert conformal_quantile(np.array([np.nan]), 0.9) == 1.0  # nothing to learn: unchanged


def test_few_windows_pool_the_steps() -> None:
    pred, y, _ = gaussian(20, 5, seed=3, lo=0.5, hi=0.5)
    cal = fit_calibration(pred, y, Q)
    assert len(set(cal.low)) == 1 and len(set(cal.high)) == 1 and cal.horizon == 5


def test_training_history_caps_a_shifted_validation_of_few_windows() -> None:
    """One validation window per series (monthly, weekly data) with a level shift in a third of
    them: validation alone blows the high factor up; the training windows cap it at twice what
    they support. Where validation agrees with them, nothing changes."""
    pred, y, _ = gaussian(30, 4, seed=13, lo=0.5, hi=0.5)
    y[:10] += 20.0                                              # a third of the series shifted up
    hist_pred, hist_y, _ = gaussian(5000, 4, seed=14, lo=0.5, hi=0.5)
    alone = fit_calibration(pred, y, Q)
    capped = fit_calibration(pred, y, Q, history=(hist_pred, hist_y))
    from_history = fit_calibration(hist_pred, hist_y, Q)       # about 2.0: the band is half as wide as the truth
    assert max(alone.high) > 8.0
    assert max(capped.high) == pytest.approx(2.0 * from_history.high[0], rel=0.1) and max(capped.high) < 5.0
    assert capped.low == alone.low                              # the low side agreed with the history: unchanged
    fresh, y2, _ = gaussian(50_000, 4, seed=15, lo=0.5, hi=0.5)

    def pinball(q: np.ndarray) -> float:
        e = y2[..., None] - q
        return float(np.maximum(np.array(Q) * e, (np.array(Q) - 1.0) * e).mean())

    assert pinball(capped.apply(fresh)) < 0.7 * pinball(alone.apply(fresh))
    many_pred, many_y, _ = gaussian(4000, 4, seed=16, lo=0.5, hi=0.5)
    assert fit_calibration(many_pred, many_y, Q, history=(hist_pred, hist_y)) == fit_calibration(many_pred, many_y, Q)
    with pytest.raises(ValueError, match="calibration history needs"):
        fit_calibration(pred, y, Q, history=(hist_pred[:, :3], hist_y[:, :3]))


def test_training_history_keeps_a_one_sided_validation_from_closing_the_band() -> None:
    """One validation window (a single weekly series) whose 13 actuals all lie above the median:
    validation alone sets the low factor to 0, so p10 = p50 and the band covers nothing below.
    The training windows keep each factor at least half of what they support."""
    pred, y, _ = gaussian(1, 13, seed=21, lo=0.5, hi=0.5)
    y[:] = pred[..., 1] + 0.3                                   # every actual above the median
    hist_pred, hist_y, _ = gaussian(5000, 13, seed=22, lo=0.5, hi=0.5)
    alone = fit_calibration(pred, y, Q)
    bounded = fit_calibration(pred, y, Q, history=(hist_pred, hist_y))
    from_history = fit_calibration(hist_pred, hist_y, Q)
    assert max(alone.low) == 0.0
    # about half the training windows' factor (pooled over the steps there too: one window per step)
    assert min(bounded.low) == pytest.approx(float(np.mean(from_history.low)) / 2.0, rel=0.05)
    assert min(bounded.low) > 0.5
    fresh = gaussian(3, 13, seed=23, lo=0.5, hi=0.5)[0]
    out = bounded.apply(fresh.copy())
    assert (out[..., 0] < out[..., 1]).all() and (out[..., 1] <= out[..., 2]).all()


def test_training_windows_size_the_band_when_asked_and_validation_cannot_push_it_to_one_side() -> None:
    """`source="training"`: a validation period where every series was hit by the same shock (all
    actuals far above the median, as in a boom year of global GDP) sets neither side; the training
    windows' factors do, and a fresh period of the same kind as training gets the pinball loss of
    those factors, not the lopsided band that validation would have set."""
    pred, y, _ = gaussian(240, 6, seed=51, lo=0.5, hi=0.5)
    y += 3.0                                                     # one shock shared by all series
    hist_pred, hist_y, _ = gaussian(5000, 6, seed=52, lo=0.5, hi=0.5)
    validation = fit_calibration(pred, y, Q, history=(hist_pred, hist_y))
    training = fit_calibration(pred, y, Q, history=(hist_pred, hist_y), source="training")
    expected = fit_calibration(hist_pred, hist_y, Q)            # the history's own conformal factors
    np.testing.assert_allclose(training.low, expected.low, rtol=0.05)
    np.testing.assert_allclose(training.high, expected.high, rtol=0.05)
    assert min(validation.high) > 1.5 * max(validation.low)     # validation's band leans to one side
    fresh, y2, _ = gaussian(50_000, 6, seed=53, lo=0.5, hi=0.5)

    def pinball(q: np.ndarray) -> float:
        e = y2[..., None] - q
        return float(np.maximum(np.array(Q) * e, (np.array(Q) - 1.0) * e).mean())

    assert pinball(training.apply(fresh)) < 0.9 * pinball(validation.apply(fresh))
    assert 0.77 < coverage(training.apply(fresh), y2)[0] < 0.83
    # too few training windows to size anything: validation's own factors, as without a history
    few = (hist_pred[:MIN_HISTORY_WINDOWS - 1], hist_y[:MIN_HISTORY_WINDOWS - 1])
    assert fit_calibration(pred, y, Q, history=few, source="training") == fit_calibration(pred, y, Q)
    with pytest.raises(ValueError, match="calibration source"):
        fit_calibration(pred, y, Q, history=(hist_pred, hist_y), source="test")


@pytest.mark.parametrize(("freq", "expected"), [("MS", "training"), ("QS", "training"), ("YS", "training"),
                                                ("W-MON", "training"), ("D", "validation"), ("h", "validation")])
def test_calibrate_from_auto_uses_training_windows_for_weekly_and_longer_steps(tmp_path: Path, freq: str,
                                                                      expected: str) -> None:
    assert calibrate_from(make_config(tmp_path, f"data.freq={freq}")) == expected
    other = "validation" if expected == "training" else "training"
    assert calibrate_from(make_config(tmp_path, f"data.freq={freq}", f"model.calibrate_from={other}")) == other


def ordered(q: np.ndarray) -> bool:
    return bool(np.all(q[..., 0] <= q[..., 1]) and np.all(q[..., 1] <= q[..., 2]))


def test_quantiles_stay_ordered_for_any_input() -> None:
    rng = np.random.default_rng(4)
    n, h = 2000, 3
    mid = rng.normal(0, 5, (n, h))
    wild = np.stack((mid + rng.normal(0, 2, (n, h)), mid, mid + rng.normal(0, 2, (n, h))), -1)  # crossing
    wild[:500, :, 0] = wild[:500, :, 2] = wild[:500, :, 1]                                       # zero spread
    y = mid + rng.standard_t(1, (n, h))                                                           # heavy tails
    for pred, actual in ((wild, y), (wild, mid + 100.0), (wild, mid - 100.0), (wild, mid)):
        cal = fit_calibration(pred.astype(np.float32), actual.astype(np.float32), Q)
        assert all(math.isfinite(v) and v >= 0 for v in (*cal.low, *cal.high, *cal.floor))
        assert ordered(cal.apply(pred.astype(np.float32)))
        assert ordered(cal.apply(rng.normal(0, 1e3, (50, h, 3)).astype(np.float32)))
    everything_above = fit_calibration(wild.astype(np.float32), (mid + 100.0).astype(np.float32), Q)
    assert everything_above.low == (0.0,) * h  # p10 collapses onto p50, never above it


def test_zero_spread_model_still_gets_a_band() -> None:
    """A network that predicts no spread at all: the floor keeps the factors finite and the band right."""
    pred, y, _ = gaussian(4000, 2, seed=5, lo=0.0, hi=0.0)
    cal = fit_calibration(pred, y, Q)
    fresh, y2, _ = gaussian(50_000, 2, seed=6, lo=0.0, hi=0.0)
    assert abs(coverage(cal.apply(fresh), y2)[0] - 0.80) <= 0.03


def test_bad_calibration_is_refused() -> None:
    with pytest.raises(ValueError, match="one low, high and floor per horizon step"):
        IntervalCalibration(low=(1.0,), high=(1.0, 1.0), floor=(0.0,))
    with pytest.raises(ValueError, match="finite and >= 0"):
        IntervalCalibration(low=(-1.0,), high=(1.0,), floor=(0.0,))
    with pytest.raises(ModelLoadError, match="horizon is 3"):
        replace(META, calibration=IntervalCalibration.identity(2))


def test_predictor_round_trip_keeps_the_calibration(tmp_path: Path) -> None:
    module = build_model(SPEC, 1).eval()
    cal = IntervalCalibration(low=(2.0, 0.5, 1.5), high=(0.25, 3.0, 1.0), floor=(1e-3, 1e-3, 1e-3))
    meta = replace(META, calibration=cal)
    X = np.random.default_rng(7).standard_normal((64, 8, 2)).astype(np.float32)
    raw = Predictor(module, META).predict(X)
    in_process = Predictor(module, meta).predict(X)
    np.testing.assert_allclose(in_process, cal.apply(raw), rtol=0, atol=1e-6)
    assert not np.allclose(in_process, raw) and ordered(in_process)
    loaded = load_predictor(save_predictor(module, meta, tmp_path / "calibrated"))
    assert loaded.meta == meta
    np.testing.assert_array_equal(loaded.predict(X), in_process)


def test_models_saved_without_calibration_load_as_trained(tmp_path: Path) -> None:
    module = build_model(SPEC, 2).eval()
    path = save_predictor(module, META, tmp_path / "old")
    d = json.loads((path / META_FILE).read_text())
    del d["calibration"]  # a meta.json written before calibration existed
    (path / META_FILE).write_text(json.dumps(d))
    loaded = load_predictor(path)
    assert loaded.meta.calibration is None
    X = np.random.default_rng(8).standard_normal((16, 8, 2)).astype(np.float32)
    with torch.inference_mode():
        np.testing.assert_array_equal(loaded.predict(X), module(torch.from_numpy(X)).numpy())


def windows(n: int, seed: int) -> WindowArrays:
    rng = np.random.default_rng(seed)
    X = rng.standard_normal((n, 8, 2)).astype(np.float32)
    y = (X[:, -3:, 0] + rng.normal(0, 1.5, (n, 3))).astype(np.float32)  # wider than an untrained band
    return WindowArrays(X, y, np.zeros(n), np.ones(n))


def test_calibrate_fits_on_a_deterministic_sample_of_the_validation_windows() -> None:
    module = build_model(SPEC, 3).eval()
    val = windows(400, seed=9)
    meta, report = calibrate(module, META, val, max_windows=300, seed=5)
    again, _ = calibrate(module, META, val, max_windows=300, seed=5)
    assert report.n_windows == 300 and meta.calibration == again.calibration
    assert abs(report.after[0] - 0.80) <= 0.03 and abs(report.after[0] - 0.8) < abs(report.before[0] - 0.8)
    assert set(report.params()) >= {"calibration.low_factors", "calibration.high_factors"}
    streamed_X, _, _ = sample_windows(lambda: iter([val.take(np.arange(200)), val.take(np.arange(200, 400))]),
                                   250, seed=0)
    assert len(streamed_X) == 250


def test_a_history_of_few_training_windows_does_not_bound_the_factors() -> None:
    """Fewer training windows than MIN_HISTORY_WINDOWS (three per series of a short quarterly set,
    one of a single monthly series) are ones the network has memorised: their band looks right
    however narrow it is, so bounding validation by them would shut the band (aus_accommodation:
    validation coverage 0.95 -> 0.60, holdout 0.39). Validation alone sizes the band then."""
    pred, y, _ = gaussian(16, 8, seed=41, lo=0.5, hi=0.5)        # the band is half as wide as the truth
    hist_pred, hist_y, _ = gaussian(MIN_HISTORY_WINDOWS - 1, 8, seed=42, lo=4.0, hi=4.0)  # memorised: far too wide
    alone = fit_calibration(pred, y, Q)
    assert fit_calibration(pred, y, Q, history=(hist_pred, hist_y)) == alone
    assert min(alone.low) > 1.0 and min(alone.high) > 1.0        # validation widens the band
    more_pred, more_y, _ = gaussian(MIN_HISTORY_WINDOWS, 8, seed=42, lo=4.0, hi=4.0)
    bounded = fit_calibration(pred, y, Q, history=(more_pred, more_y))
    assert bounded != alone and max(bounded.high) < max(alone.high)  # enough windows: they bound it


def test_a_validation_period_unlike_training_is_warned_about(caplog: pytest.LogCaptureFixture) -> None:
    module = build_model(SPEC, 3).eval()
    X = windows(400, seed=10).X
    q = Predictor(module, META).predict(X)
    rng = np.random.default_rng(11)  # actuals spread as the network's own band says: factors near 1
    y = (q[..., 1] + (q[..., 2] - q[..., 1]) / 1.2816 * rng.standard_normal(q.shape[:2])).astype(np.float32)
    calm = WindowArrays(X, y, np.zeros(len(X)), np.ones(len(X)))
    calibrate(module, META, calm)
    assert "would widen the interval band" not in caplog.text
    shifted = WindowArrays(X, y + 50.0, calm.loc, calm.scale)  # a level shift after the inputs
    meta, _ = calibrate(module, META, shifted)
    assert meta.calibration is not None and max(meta.calibration.high) > 4.0
    assert "would widen the interval band up to" in caplog.text and "train.val_periods" in caplog.text
    few = WindowArrays(X[:40], np.concatenate((y[:10] + 50.0, y[10:40])), calm.loc[:40], calm.scale[:40])
    alone, _ = calibrate(module, META, few)   # a quarter of 40 windows shifted: validation alone says 'far wider'
    # the training history: the band is about right
    weighed, _ = calibrate(module, META, few, history=(X, y, np.zeros(len(X))))
    assert alone.calibration is not None and weighed.calibration is not None
    assert max(alone.calibration.high) > 4.0 and max(weighed.calibration.high) < 2.5
    # 6,000: a seeded subset of 5,000 is predicted
    many = (np.repeat(X, 15, axis=0), np.repeat(y, 15, axis=0), np.zeros(15 * len(X)))
    again, _ = calibrate(module, META, few, history=many)
    assert again.calibration is not None and max(again.calibration.high) < 2.5


def test_a_refitted_network_gets_its_band_sized_against_the_first_networks_medians() -> None:
    """`train.refit` ships a network that has seen validation: its band is sized by how far the
    actuals fell from the first network's (out-of-sample) medians, in units of its own half-widths."""
    first, shipped = build_model(SPEC, 3).eval(), build_model(SPEC, 4).eval()
    val = windows(400, seed=12)
    assert val.y is not None
    meta, report = calibrate(first, META, val, shipped=shipped)
    a, b = Predictor(first, META).predict(val.X), Predictor(shipped, META).predict(val.X)
    assert not np.allclose(b[..., 2] - b[..., 0], a[..., 2] - a[..., 0], rtol=0.05)  # the bands really differ
    hybrid = np.stack((a[..., 1] - (b[..., 1] - b[..., 0]), a[..., 1], a[..., 1] + (b[..., 2] - b[..., 1])), axis=-1)
    assert meta.calibration is not None and meta.calibration == fit_calibration(hybrid, val.y, Q)
    assert abs(report.after[0] - 0.80) <= 0.03
    assert abs(coverage(meta.calibration.apply(hybrid), val.y)[0] - 0.80) <= 0.03
    alone, _ = calibrate(first, META, val)  # the first network's own band: other factors
    assert alone.calibration is not None and alone.calibration != meta.calibration
