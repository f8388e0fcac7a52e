"""Reduced-precision scoring: hardware detection, the accuracy guard, the decision, the record."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conf import LakecastConfig
from models.lakecast_forecaster.predictor import Predictor
from models.precision import (
    BF16,
    FP32,
    available_precisions,
    calibrate,
    choose_precision,
    cpu_flags,
    guard_allows,
    precision_check,
    predict_fn,
)
from pipelines.flows import predict
from pipelines.tables.ensure import ensure_tables
from tests.conftest import make_config
from tests.model_data import SEASON, seasonal_windows
from tests.scoring_helpers import own_forecasts, register_model, series_rows, tiny_model, write_observations

TOL = 0.005
HAS_BF16 = BF16 in available_precisions("cpu")
# network-only models: no members' context (model.statistical_lookback below the lookback)
SMALL = ("windows.lookback=48", "windows.horizon=12", "windows.calendar_features=false", "model.statistical_lookback=1")


@pytest.fixture(scope="module")
def small_cfg(lakecast_home: Path) -> LakecastConfig:
    """Windows of tests.model_data (lookback 48, horizon 12, value + missing features)."""
    return make_config(lakecast_home, *SMALL)


@pytest.fixture(scope="module")
def backtest_windows() -> Any:
    return seasonal_windows(n_series=4, length=24 * 10)[0]


def _choose(requested: str, *, available: tuple[str, ...] = (BF16,), tags: dict[str, str] | None = None,
            speedup: float = 2.0, calls: list[str] | None = None) -> Any:
    def fake_calibration(precision: str) -> float:  # stands in for timing: the decision is under test
        (calls if calls is not None else []).append(precision)
        return speedup

    ok = {"lakecast.precision.bf16.ok": "true", "lakecast.precision.bf16.mase_rel_diff": "0.001",
          "lakecast.precision.bf16.pinball_rel_diff": "0.002"}
    return choose_precision(requested, device="cpu", available=available, tags=ok if tags is None else tags,
                            tolerance=TOL, calibrate_fn=fake_calibration, min_speedup=1.1)


# --- hardware ---------------------------------------------------------------------------


def test_cpu_bf16_needs_the_instructions(tmp_path: Path) -> None:
    info = tmp_path / "cpuinfo"
    info.write_text("processor : 0\nflags\t\t: fpu sse avx2 avx512f avx512_bf16\n")
    assert "avx512_bf16" in cpu_flags(info)
    assert available_precisions("cpu", cpu_flags(info)) == (BF16,)
    assert available_precisions("cpu", frozenset({"avx2", "avx512f"})) == ()
    assert available_precisions("cpu", frozenset({"amx_bf16"})) == (BF16,)
    assert cpu_flags(tmp_path / "missing") == frozenset()


# --- the decision ----------------------------------------------------------------------


def test_auto_falls_back_to_fp32_without_reduced_precision_hardware() -> None:
    choice = _choose("auto", available=())
    assert choice.precision == FP32
    assert "no reduced precision runs natively on cpu" in choice.reason


def test_fp32_forced_off_never_calibrates() -> None:
    calls: list[str] = []
    choice = _choose("fp32", calls=calls)
    assert (choice.precision, choice.reason, calls) == (FP32, "scoring.precision is fp32", [])


def test_auto_takes_bf16_only_when_calibration_shows_it_faster() -> None:
    calls: list[str] = []
    assert _choose("auto", speedup=2.1, calls=calls).precision == BF16 and calls == [BF16]
    slow = _choose("auto", speedup=1.02)
    assert slow.precision == FP32 and "only 1.02x fp32 in calibration" in slow.reason


def test_reduced_precision_without_a_guard_tag_is_scored_fp32() -> None:
    for requested in ("auto", "bf16"):
        choice = _choose(requested, tags={})
        assert choice.precision == FP32
        assert "has no bf16 accuracy check" in choice.reason


def test_explicit_fp16_on_cpu_is_refused_with_reason() -> None:
    choice = _choose("fp16")
    assert choice.precision == FP32 and choice.reason == "fp16 does not run natively on cpu"


def test_guard_uses_stored_differences_with_the_current_tolerance() -> None:
    tags = {"lakecast.precision.bf16.ok": "true", "lakecast.precision.bf16.mase_rel_diff": "0.003",
            "lakecast.precision.bf16.pinball_rel_diff": "0.001"}
    assert guard_allows(tags, BF16, 0.005)[0]
    ok, why = guard_allows(tags, BF16, 0.002)
    assert not ok and "drift past scoring.precision_tolerance=0.002" in why


# --- the accuracy check on a version's backtest windows ---------------------------------


def test_check_passes_a_normal_model_and_refuses_a_drifting_one(small_cfg: LakecastConfig,
                                                                 backtest_windows: Any) -> None:
    w = backtest_windows
    good = Predictor(*tiny_model(small_cfg, seed=3))
    tags = precision_check(good, w.X, w.y, w.loc, w.scale, SEASON, TOL, precisions=[BF16])
    assert tags["lakecast.precision.bf16.ok"] == "true"
    assert float(tags["lakecast.precision.bf16.mase_rel_diff"]) < TOL
    assert guard_allows(tags, BF16, TOL)[0]

    drifting = Predictor(*tiny_model(small_cfg, seed=3, drift=True))
    tags = precision_check(drifting, w.X, w.y, w.loc, w.scale, SEASON, TOL, precisions=[BF16])
    assert tags["lakecast.precision.bf16.ok"] == "false"
    assert float(tags["lakecast.precision.bf16.mase_rel_diff"]) > 10 * TOL
    assert not guard_allows(tags, BF16, TOL)[0]


def test_bf16_outputs_agree_with_fp32_within_tolerance(small_cfg: LakecastConfig,
                                                       backtest_windows: Any) -> None:
    p = Predictor(*tiny_model(small_cfg, seed=4))
    X = backtest_windows.X
    full, half = predict_fn(p, FP32, 64)(X), predict_fn(p, BF16, 64)(X)
    assert not np.array_equal(full, half)                     # it really ran in another precision
    assert np.abs(half - full).mean() / np.abs(full).mean() < 10 * TOL


def test_calibration_times_both_precisions_and_drives_the_auto_decision(
        small_cfg: LakecastConfig, caplog: pytest.LogCaptureFixture) -> None:
    import logging

    import torch

    threads_before = torch.get_num_threads()
    with caplog.at_level(logging.INFO, logger="models.precision"):
        speedup = calibrate(Predictor(*tiny_model(small_cfg)), BF16, n_windows=32, batch_size=32, threads=1,
                            repeats=1)
    (record,) = [r for r in caplog.records if r.getMessage().startswith("calibration on")]
    n_windows, threads, fp32_rate, precision, reduced_rate, _ = record.args  # type: ignore[misc]
    assert (n_windows, threads, precision) == (32, 1, BF16)
    assert fp32_rate > 0 and reduced_rate > 0
    # the result is the ratio of the two rates it timed (same division: only float noise allowed)
    assert speedup == pytest.approx(reduced_rate / fp32_rate, rel=1e-12, abs=0)
    assert torch.get_num_threads() == threads_before  # the scoring threads setting is put back

    # the measured speedup decides `auto` against scoring.calibration_min_speedup, both ways
    ok = {"lakecast.precision.bf16.ok": "true", "lakecast.precision.bf16.mase_rel_diff": "0.001",
          "lakecast.precision.bf16.pinball_rel_diff": "0.002"}

    def decide(min_speedup: float) -> Any:
        return choose_precision("auto", device="cpu", available=(BF16,), tags=ok, tolerance=TOL,
                                calibrate_fn=lambda _: speedup, min_speedup=min_speedup)

    slow = decide(min_speedup=speedup * 2)          # needs twice what was measured: fp32
    assert (slow.precision, slow.speedup) == (FP32, None)
    assert f"bf16 was only {speedup:.2f}x fp32 in calibration" in slow.reason
    fast = decide(min_speedup=speedup / 2)          # needs half of it: the reduced precision
    assert (fast.precision, fast.speedup) == (BF16, speedup)
    assert fast.reason.endswith(f"; {speedup:.2f}x fp32 in calibration")


# --- lakecast predict records the precision it used ---------------------------------------


@pytest.fixture(scope="module")
def db(spark: Any, lakecast_home: Path, backtest_windows: Any) -> LakecastConfig:
    cfg = make_config(lakecast_home, f"catalog.database=t_{uuid.uuid4().hex[:10]}", *SMALL,
                      "scoring.precision=bf16")
    ensure_tables(spark, cfg)
    write_observations(spark, cfg, series_rows(3, 60))
    return cfg


def _score_with_checked_model(spark: Any, db: LakecastConfig, backtest_windows: Any, *, drift: bool,
                              ) -> tuple[LakecastConfig, Any, dict[str, Any], Predictor]:
    cfg = make_config(db.home, f"catalog.database={db.catalog.database}", *SMALL, "scoring.precision=bf16",
                      f"model.name=m_{uuid.uuid4().hex[:8]}")
    module, meta = tiny_model(cfg, seed=5, drift=drift)
    w = backtest_windows
    tags = precision_check(Predictor(module, meta), w.X, w.y, w.loc, w.scale, SEASON, TOL, precisions=[BF16])
    register_model(cfg, module, meta, tags=tags)
    result = predict.run(spark, cfg)
    runs = cfg.table("job_runs")
    (run,) = spark.sql(f"SELECT details FROM {runs} WHERE run_id = '{result.run_id}'").collect()
    return cfg, result, json.loads(run.details), Predictor(module, meta)


def _values(spark: Any, cfg: LakecastConfig) -> list[Any]:
    return (spark.table(cfg.table("forecasts")).where(f"model_name = '{cfg.model.name}'")
            .orderBy("series_id", "target_ts").collect())


@pytest.mark.skipif(not HAS_BF16, reason="without native bf16 the run is fp32 before the guard is asked "
                    "(covered by the choose_precision tests)")
def test_drifting_version_is_scored_in_fp32_with_the_reason(spark: Any, db: LakecastConfig,
                                                             backtest_windows: Any) -> None:
    cfg, result, details, fp32 = _score_with_checked_model(spark, db, backtest_windows, drift=True)
    assert details["precision"] == "fp32" and details["precision_requested"] == "bf16"
    assert "outputs drift past scoring.precision_tolerance=0.005" in details["precision_reason"]
    assert result.summary()["precision"].startswith("fp32 (bf16 outputs drift past")
    expected = own_forecasts(spark, cfg, fp32, result.as_of, result.source_version)
    rows = _values(spark, cfg)
    assert len(rows) == 3 * 12
    for r in rows:
        np.testing.assert_allclose([r.p10, r.p50, r.p90], expected[(r.series_id, r.horizon_step)], rtol=1e-6)


@pytest.mark.skipif(not HAS_BF16, reason="this CPU has no native bf16 (avx512_bf16/amx_bf16)")
def test_checked_version_is_scored_in_bf16_close_to_fp32(spark: Any, db: LakecastConfig,
                                                        backtest_windows: Any) -> None:
    cfg, result, details, fp32 = _score_with_checked_model(spark, db, backtest_windows, drift=False)
    assert details["precision"] == "bf16" and "within tolerance 0.005" in details["precision_reason"]
    expected = own_forecasts(spark, cfg, fp32, result.as_of, result.source_version)
    got = np.array([[r.p10, r.p50, r.p90] for r in _values(spark, cfg)])
    want = np.array([expected[(r.series_id, r.horizon_step)] for r in _values(spark, cfg)])
    assert got.shape == (36, 3) and not np.array_equal(got, want)
    assert np.abs(got - want).mean() / np.abs(want).mean() < TOL


def test_version_check_uses_configured_tolerance_and_needs_targets(small_cfg: LakecastConfig,
                                                                     backtest_windows: Any) -> None:
    from models.precision import check_version

    p = Predictor(*tiny_model(small_cfg, seed=3))
    tags = check_version(small_cfg, p, backtest_windows)  # what train/promote store on the version
    assert tags["lakecast.precision.tolerance"] == "0.005" and "lakecast.precision.bf16.ok" in tags
    assert check_version(small_cfg, p, backtest_windows.take(np.arange(0))) == {}
