"""`auto` step settings: resolved per frequency and history, and a monthly set trained end to end.

The resolver is pure (conf/auto_steps.py) and tested without Spark; one in-process test ingests
six generated monthly series and trains and predicts with only data.freq and windows.horizon set.
"""

from __future__ import annotations

import json
import re
import uuid
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conf import ConfigError, load_config
from conf.auto_steps import (
    KEYS,
    History,
    Steps,
    apply_steps,
    auto_keys,
    blend_local,
    blend_power,
    blend_recent,
    blend_skips,
    check_fits,
    forecast_floor,
    given_steps,
    recent_steps,
    refit_wanted,
    resolve_steps,
    steps,
)
from conf.errors import HistoryTooShortError, SourceError
from conf.freq import parse_freq
from models.lakecast_forecaster.predictor import load_predictor
from models.lakecast_forecaster.statistical import RECENT_MEMBERS
from tests.conftest import collect_utc, make_config

HOURLY_DEFAULTS = Steps(lookback=168, horizon=24, stride=24, val_periods=168, test_periods=168,
                        backtest_periods=168, max_staleness=48, min_history=24, statistical_lookback=672)
AMPLE = History(typical=5000, longest=5000, series=10)


@pytest.mark.parametrize("history", [None, AMPLE, History(typical=672, longest=700, series=3)])
def test_hourly_auto_is_todays_defaults(history: History | None) -> None:
    """`make demo` and every hourly run keep lookback 168, horizon 24, ... with four weeks to a year held;
    the statistical members read four weeks (672) whatever the history."""
    assert resolve_steps(parse_freq("h"), {}, history) == HOURLY_DEFAULTS
    cfg = load_config(env={})
    assert set(auto_keys(cfg)) == set(KEYS.values())  # the packaged defaults are all auto
    assert steps(cfg) == HOURLY_DEFAULTS


@pytest.mark.parametrize(("freq", "expected"), [
    #        lookback horizon stride val test backtest staleness
    ("15min", (672, 96, 96, 672, 672, 672, 192)),
    ("2h", (336, 12, 12, 84, 84, 84, 24)),  # 5000 steps of 2h are over a year: four weeks back
    ("D", (56, 14, 1, 14, 14, 14, 7)),
    ("W", (52, 13, 1, 13, 13, 13, 4)),
    ("MS", (72, 12, 1, 12, 12, 12, 3)),
    ("QS", (80, 8, 1, 8, 8, 8, 2)),
    ("2QS", (40, 4, 1, 4, 4, 4, 1)),
])
def test_auto_per_frequency_with_ample_history(freq: str, expected: tuple[int, ...]) -> None:
    s = resolve_steps(parse_freq(freq), {}, AMPLE)
    assert (s.lookback, s.horizon, s.stride, s.val_periods, s.test_periods, s.backtest_periods,
            s.max_staleness) == expected
    assert s.val_periods >= s.horizon and s.lookback >= 2 * s.horizon


@pytest.mark.parametrize(("freq", "typical", "lookback"), [
    ("h", 365 * 24, 672),        # a year of hourly data: four weeks back
    ("h", 365 * 24 - 1, 168),    # a step short of a year: one week
    ("2h", 365 * 12, 336),       # four weeks of 2-hour steps
    ("30min", 365 * 48, 336),    # finer than hourly: four weeks would be 1344 steps; the week stays
    ("15min", 365 * 96, 672),
])
def test_hourly_lookback_is_four_weeks_with_a_year_of_history(freq: str, typical: int, lookback: int) -> None:
    s = resolve_steps(parse_freq(freq), {}, History(typical, typical, 4))
    assert s.lookback == lookback
    base = resolve_steps(parse_freq(freq), {}, AMPLE)
    assert (s.horizon, s.stride, s.val_periods, s.test_periods) == (base.horizon, base.stride, base.val_periods,
                                                                   base.test_periods)
    # a given lookback stays whatever the history
    assert resolve_steps(parse_freq(freq), {"windows.lookback": 100}, History(typical, typical, 4)).lookback == 100


def test_given_values_stay_and_monthly_evaluation_is_one_horizon() -> None:
    ms = parse_freq("MS")
    s = resolve_steps(ms, {"windows.horizon": 24}, History(441, 441, 30))
    assert (s.horizon, s.val_periods, s.test_periods, s.backtest_periods, s.lookback) == (24, 24, 24, 24, 72)
    # explicit values are never changed, even when they do not fit
    fixed = {"windows.lookback": 100, "train.val_periods": 50, "windows.stride": 3}
    s = resolve_steps(ms, fixed, History(60, 60, 1))
    assert (s.lookback, s.val_periods, s.stride) == (100, 50, 3)


@pytest.mark.parametrize(("freq", "typical", "expected"), [
    # monthly, 5 years: the lookback shrinks from 72 so lookback + horizon + val + test = 60
    ("MS", 60, (24, 12, 12, 12)),
    # hourly, 12.5 days: validation and test shrink to a quarter of the history, then the lookback
    ("h", 300, (126, 24, 75, 75)),
    # quarterly, 9 years: 40 + 8 + 8 + 8 > 36, the lookback gives way (evaluation stays one horizon)
    ("QS", 36, (12, 8, 8, 8)),
])
def test_short_history_shrinks_lookback_and_evaluation(freq: str, typical: int,
                                                        expected: tuple[int, int, int, int]) -> None:
    s = resolve_steps(parse_freq(freq), {}, History(typical, typical, 4))
    assert (s.lookback, s.horizon, s.val_periods, s.test_periods) == expected
    assert s.training_need <= typical
    check_fits(parse_freq(freq), s, History(typical, typical, 4))  # fits: no error


@pytest.mark.parametrize(("freq", "typical", "lookback", "statistical"), [
    ("QS", 36, 12, 80),    # the network's lookback shrinks to 12 quarters; the members keep 20 years
    ("MS", 60, 24, 120),   # and ten years of months
    ("MS", 441, 72, 120),  # nothing shrank: monthly members still read ten years
    ("2MS", 441, 36, 60),  # ten years of two-month steps
    ("YS", 16, 6, 12),     # twelve years (their recent forms read the network's six)
    ("YS", 40, 12, 12),    # nothing shrank
    ("W-MON", 300, 52, 104),  # weekly: two years, the two seasons a seasonal Theta needs
    ("2W", 300, 26, 52),   # two years of fortnights
    ("D", 400, 56, 112),   # daily: sixteen weeks, twice the frequency's eight
    ("D", 80, 38, 112),    # the network's lookback shrinks to fit; the members keep sixteen weeks
    ("W-MON", 80, 41, 104),
    ("2D", 400, 28, 56),   # sixteen weeks of two-day steps
    ("12h", 2000, 56, 56),  # a year: the network reads the four weeks of half-days too, no context
    ("12h", 500, 14, 56),   # less: the network a week, the members four
    ("h", 300, 126, 672),  # hourly: four weeks, however far the network's lookback shrinks
    ("h", 9000, 672, 672),  # a year: the network reads the same four weeks
    ("30min", 9000, 336, 336),  # finer than hourly: the network's week, no context
    ("5min", 9000, 2016, 2016),
    ("2h", 3000, 84, 336),  # four weeks of two-hour steps
])
def test_the_statistical_members_keep_the_frequencys_lookback(freq: str, typical: int, lookback: int,
                                                              statistical: int) -> None:
    s = resolve_steps(parse_freq(freq), {}, History(typical, typical, 4))
    assert (s.lookback, s.statistical_lookback, s.context, s.width) == (
        lookback, statistical, statistical - lookback, statistical)
    # without a statistical blend nothing reads a context; a given value is kept, never below the lookback
    assert resolve_steps(parse_freq(freq), {}, History(typical, typical, 4), blend=False).context == 0
    given = resolve_steps(parse_freq(freq), {"model.statistical_lookback": lookback + 3}, History(typical, typical, 4))
    assert (given.statistical_lookback, given.context) == (lookback + 3, 3)
    assert resolve_steps(parse_freq(freq), {"model.statistical_lookback": 1}, History(typical, typical, 4)).context == 0


def test_a_given_lookback_keeps_the_members_window_unless_it_is_given_too() -> None:
    """The members' window does not follow a given windows.lookback (it is the frequency's); a
    user drops the context by giving model.statistical_lookback the lookback itself."""
    daily, weekly = parse_freq("D"), parse_freq("W-MON")
    given = resolve_steps(daily, {"windows.lookback": 7}, History(400, 400, 4))
    assert (given.lookback, given.statistical_lookback, given.context) == (7, 112, 105)
    assert resolve_steps(weekly, {"windows.lookback": 13}, History(300, 300, 4)).width == 104
    hourly = resolve_steps(parse_freq("h"), {"windows.lookback": 48}, History(2000, 2000, 4))
    assert (hourly.lookback, hourly.statistical_lookback, hourly.context) == (48, 672, 624)
    none = resolve_steps(daily, {"windows.lookback": 7, "model.statistical_lookback": 7}, History(400, 400, 4))
    assert (none.width, none.context) == (7, 0)


@pytest.mark.parametrize(("freq", "h", "typical", "longest", "expected"), [
    #                                     lookback val test min_history
    # seven years of months, 18 ahead: 66 < 18 + 18 + 18 + 18, so no test split; the lookback is what is left
    ("MS", 18, 66, 66, (30, 18, 0, 18)),
    # 16 years, 6 ahead (hh_budget): no test split, and min_history gives way: 4 + 6 + 6 = 16
    ("YS", 6, 16, 16, (6, 6, 0, 4)),
    # most series 17 years, one of 66 (us_gas_total): no test split; the longest holds one horizon
    ("YS", 6, 17, 66, (6, 6, 0, 6)),
    # 30 months, a year ahead: 6 + 12 + 12 = 30
    ("MS", 12, 30, 30, (12, 12, 0, 6)),
    # four horizons exactly: the test split stays
    ("MS", 12, 48, 48, (12, 12, 12, 12)),
])
def test_short_history_drops_the_test_split_then_min_history(
        freq: str, h: int, typical: int, longest: int, expected: tuple[int, int, int, int]) -> None:
    hist = History(typical, longest, 4)
    s = resolve_steps(parse_freq(freq), {"windows.horizon": h}, hist)
    assert (s.lookback, s.val_periods, s.test_periods, s.min_history) == expected
    assert s.training_need <= longest
    check_fits(parse_freq(freq), s, hist)  # fits: no error
    # a test split asked for stays; min_history gives way further, or the history is too short
    if s.test_periods == 0:
        kept = resolve_steps(parse_freq(freq), {"windows.horizon": h, "train.test_periods": h}, hist)
        assert kept.test_periods == h and kept.min_history == max(1, min(s.min_history, longest - 3 * h))
        if longest - 3 * h < 1:
            with pytest.raises(HistoryTooShortError):
                check_fits(parse_freq(freq), kept, hist)


def test_too_short_history_names_keys_and_workable_values() -> None:
    ms = parse_freq("MS")
    hist = History(typical=20, longest=20, series=3)
    s = resolve_steps(ms, {}, hist)  # even a 1-step min_history: 1 + 12 + 12 > 20
    assert (s.test_periods, s.min_history) == (0, 1)
    with pytest.raises(HistoryTooShortError) as err:
        check_fits(ms, s, hist)
    msg = str(err.value)
    assert "observations hold 20 steps per series at freq MS" in msg
    assert ("windows.min_history + windows.horizon + train.val_periods + train.test_periods <= 20, "
            "here 1 + 12 + 12 + 0 = 25") in msg
    suggested = dict(re.findall(r"--set ([a-z_.]+)=(\d+)", msg))
    assert suggested == {"windows.lookback": "8", "windows.horizon": "6", "train.val_periods": "6",
                         "train.test_periods": "0", "windows.min_history": "6"}
    # the suggestion works: resolved with it, training fits this history
    fixed = resolve_steps(ms, {k: int(v) for k, v in suggested.items()}, hist)
    assert fixed.training_need <= 20
    check_fits(ms, fixed, hist)
    with pytest.raises(HistoryTooShortError, match=r"ingest more history: training needs at least 3 steps"):
        check_fits(ms, s, History(2, 2, 1))


def test_config_accepts_auto_or_steps_and_apply_gives_ints() -> None:
    cfg = load_config(None, ["data.freq=MS", "windows.horizon=6", "scoring.max_staleness=0"], env={})
    assert cfg.windows.lookback == "auto" and cfg.windows.horizon == 6 and cfg.scoring.max_staleness == 0
    resolved = apply_steps(cfg, resolve_steps(parse_freq("MS"), given_steps(cfg), AMPLE))
    assert auto_keys(resolved) == ()
    assert all(isinstance(v, int) for v in given_steps(resolved).values())
    assert (resolved.windows.lookback, resolved.windows.horizon, resolved.scoring.max_staleness) == (72, 6, 0)
    for bad, pattern in (("windows.stride=0", r"windows\.stride: .*greater than or equal to 1"),
                         ("train.val_periods=soon", r"train\.val_periods: .*valid integer .* or 'auto'"),
                         ("scoring.max_staleness=-1", r"scoring\.max_staleness: .*greater than or equal to 0")):
        with pytest.raises(ConfigError, match=pattern):
            load_config(None, [bad], env={})


@pytest.mark.parametrize(("freq", "refit", "expected"), [
    ("h", "auto", False), ("30min", "auto", False), ("D", "auto", False), ("W-MON", "auto", True),
    ("MS", "auto", True), ("QS", "auto", True), ("YS", "auto", True), ("ME", "auto", True),
    ("h", "true", True), ("MS", "false", False)])
def test_refit_auto_is_on_for_weekly_and_longer_steps(freq: str, refit: str, expected: bool) -> None:
    assert refit_wanted(load_config(None, [f"data.freq={freq}", f"train.refit={refit}"], env={})) is expected


@pytest.mark.parametrize(("freq", "local", "expected"), [
    ("h", "auto", 0.0), ("30min", "auto", 0.0), ("D", "auto", 0.0), ("W-MON", "auto", 0.75),
    ("MS", "auto", 0.75), ("QS", "auto", 0.75), ("YS", "auto", 0.75), ("h", "0.5", 0.5), ("MS", "0", 0.0)])
def test_blend_local_auto_splits_per_series_for_weekly_and_longer_steps(freq: str, local: str,
                                                                        expected: float) -> None:
    cfg = load_config(None, [f"data.freq={freq}", f"model.statistical_blend_local={local}"], env={})
    assert blend_local(cfg) == expected
    with pytest.raises(ConfigError, match=r"model\.statistical_blend_local: .*between 0 and 1"):
        load_config(None, ["model.statistical_blend_local=1.5"], env={})


@pytest.mark.parametrize(("freq", "recent", "expected"), [
    ("YS", "auto", True), ("YE", "auto", True), ("QS", "auto", False), ("MS", "auto", True), ("ME", "auto", True),
    ("W-MON", "auto", False), ("h", "auto", False), ("QS", "true", True), ("YS", "false", False),
    ("MS", "false", False)])
def test_recent_members_auto_for_yearly_and_monthly_steps(freq: str, recent: str, expected: bool) -> None:
    cfg = load_config(None, [f"data.freq={freq}", f"model.statistical_blend_recent={recent}"], env={})
    assert blend_recent(cfg) is expected


@pytest.mark.parametrize(("freq", "typical", "given", "expected"), [
    ("MS", 441, {}, 72),      # the members read ten years; the recent forms the frequency's six
    ("MS", 60, {}, 72),       # the network's lookback shrank to 24: still six years, not its 24
    ("MS", 441, {"windows.lookback": 96}, 96),   # a longer network lookback: the recent forms read it
    ("MS", 441, {"model.statistical_lookback": 72}, 0),  # members on six years: no wider window to choose from
    ("YS", 16, {}, 6),        # yearly: the network's six of the members' twelve
    ("YS", 40, {}, 0),        # nothing shrank: the window is the network's
    ("YS", 16, {"model.statistical_lookback": 20}, 6),   # a wider given window: still the network's six
    ("YS", 24, {"windows.horizon": 7}, 10),   # a given horizon: the network's ten of the members' fourteen
    ("2MS", 441, {}, 36),     # six years of two-month steps
    ("QS", 36, {}, 0),        # auto off for quarterly steps
    ("W-MON", 300, {}, 0),
])
def test_recent_forms_read_the_frequencys_lookback_or_the_networks(freq: str, typical: int,
                                                                   given: dict[str, int], expected: int) -> None:
    cfg = load_config(None, [f"data.freq={freq}"], env={})
    s = resolve_steps(parse_freq(freq), given, History(typical, typical, 4))
    assert recent_steps(cfg, s) == expected
    assert 0 <= recent_steps(cfg, s) < s.width


SUB_MONTHLY_SKIPS = ("damped", "damped_multiplicative", "holt_winters", "theta_multiplicative")
DAILY_AND_WEEKLY_SKIPS = ("damped", "damped_multiplicative", "naive", "holt_winters", "theta_multiplicative")


@pytest.mark.parametrize(("freq", "skips"), [("h", SUB_MONTHLY_SKIPS), ("30min", SUB_MONTHLY_SKIPS),
                                             ("18h", DAILY_AND_WEEKLY_SKIPS),
                                             ("12h", SUB_MONTHLY_SKIPS), ("D", DAILY_AND_WEEKLY_SKIPS),
                                             ("W-MON", DAILY_AND_WEEKLY_SKIPS),
                                             ("MS", ("naive",)), ("ME", ("naive",)), ("QS", ("naive", "holt_winters")),
                                             ("2MS", ("naive", "holt_winters")),
                                             ("YS", ("naive", "holt_winters", "theta_multiplicative",
                                                     "damped_multiplicative"))])
def test_which_members_each_frequency_blends(freq: str, skips: tuple[str, ...]) -> None:
    """The damped trend (both forms) and the multiplicative Theta only where steps are months or longer;
    yearly steps have no season for the multiplicative forms to take out. The naive member only where
    steps are shorter than a day and a season has two steps or more (else it is seasonal naive again:
    18-hour steps have a season of one). Holt-Winters only where steps are single months (on quarters it
    was measured and left out, on two-month steps not measured)."""
    assert blend_skips(load_config(None, [f"data.freq={freq}"], env={})) == skips


@pytest.mark.parametrize(("freq", "power", "expected"), [
    ("h", "auto", 1.0), ("D", "auto", 1.0), ("W-MON", "auto", 1.0), ("MS", "auto", 2.0), ("ME", "auto", 2.0),
    ("QS", "auto", 2.0), ("YS", "auto", 1.0), ("MS", "1", 1.0), ("h", "3", 3.0)])
def test_blend_power_auto_sharpens_monthly_and_quarterly_shares(freq: str, power: str, expected: float) -> None:
    cfg = load_config(None, [f"data.freq={freq}", f"model.statistical_blend_power={power}"], env={})
    assert blend_power(cfg) == expected
    for bad in ("0", "-1", "9"):
        with pytest.raises(ConfigError, match=r"model\.statistical_blend_power: .*above 0 and at most 8"):
            load_config(None, [f"model.statistical_blend_power={bad}"], env={})


@pytest.mark.parametrize(("setting", "lowest", "expected"), [
    ("auto", 0.0, 0.0), ("auto", 12.5, 0.0), ("auto", -0.01, None), ("auto", None, None),
    ("true", -3.0, 0.0), ("false", 0.0, None)])
def test_forecasts_are_floored_at_zero_where_no_value_was_negative(setting: str, lowest: float | None,
                                                                   expected: float | None) -> None:
    cfg = load_config(None, [f"model.nonnegative={setting}"], env={})
    assert forecast_floor(cfg, History(100, 100, 3, lowest=lowest)) == expected
    assert forecast_floor(cfg, None) == (0.0 if setting == "true" else None)
    with pytest.raises(ConfigError, match=r"model\.nonnegative"):
        load_config(None, ["model.nonnegative=sometimes"], env={})


def test_history_measures_the_smallest_valid_value(spark: Any) -> None:
    """A negative value anywhere in the history: no floor under `auto`; NaN and NULL are not values."""
    from datetime import UTC

    from pipelines.windows.history import measure_history

    cfg = load_config(None, ["data.freq=h"], env={})
    t0 = datetime(2024, 1, 1, tzinfo=UTC)
    rows = [("a", t0 + timedelta(hours=i), v) for i, v in enumerate([3.0, -2.5, float("nan"), 4.0])]
    rows += [("b", t0 + timedelta(hours=i), v) for i, v in enumerate([None, 7.0, 8.0])]
    df = spark.createDataFrame(rows, "series_id string, ts timestamp, value double")
    got = measure_history(df, cfg)
    assert (got.series, got.lowest) == (2, -2.5) and forecast_floor(cfg, got) is None
    assert measure_history(df.where("value >= 0"), cfg).lowest == 3.0


def _monthly_csv(path: Path, series: int = 6, months: int = 120, month_end: bool = False,
                 young: int = 0) -> Path:
    """`series` monthly series over `months` months from 2010-01 with yearly seasonality, stamped
    at month starts (or ends); `young` more series hold only the last 12 months."""
    rng = np.random.default_rng(3)
    lines = ["series_id,ts,value"]
    for s in range(series + young):
        level = 100.0 * (s + 1)
        for m in range(months - 12 if s >= series else 0, months):
            v = level * (1 + 0.3 * np.sin(2 * np.pi * m / 12 + s) + 0.002 * m) + rng.normal(0, 2.0)
            day = (date(2010 + (m + 1) // 12, (m + 1) % 12 + 1, 1) - timedelta(days=1)).day if month_end else 1
            lines.append(f"{'y' if s >= series else 'm'}{s},{2010 + m // 12}-{m % 12 + 1:02d}-{day:02d}T00:00:00Z,"
                         f"{v:.3f}")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_monthly_trains_and_predicts_with_only_freq_and_horizon(spark: Any, lakecast_home: Path,
                                                                tmp_path: Path) -> None:
    """Month-end dates under pandas' `M` (stored as ME): on the grid at ingest, auto settings from
    the history, forecasts stamped at month ends; two series of 12 months (less than the lookback
    of 72) are trained on and forecast from padded windows."""
    from models import registry
    from pipelines.flows import ingest, predict, train
    from pipelines.tables.ensure import ensure_tables

    tag = uuid.uuid4().hex[:8]
    cfg = make_config(lakecast_home, f"catalog.database=t_{tag}", f"model.name=m_{tag}",
                      f"mlflow.experiment=e_{tag}", "data.freq=M", "windows.horizon=6",
                      "model.hidden_size=8", "model.num_layers=1", "train.max_epochs=2", "train.batch_size=64",
                      "train.device=cpu", "train.plot_series=0", "scoring.precision=fp32",
                      "train.max_windows_per_epoch=100")
    assert cfg.data.freq == "ME"
    ensure_tables(spark, cfg)
    ing = ingest.run(spark, cfg, str(_monthly_csv(tmp_path / "monthly.csv", month_end=True, young=2)),
                     now=datetime(2024, 1, 1))
    assert (ing.counts.inserted, ing.counts.quarantined) == (6 * 120 + 2 * 12, 0)

    out = train.run(spark, cfg)
    assert out.auto is not None and replace(out.auto.history, lowest=None) == History(120, 120, 8)
    # the smallest value ingested (no series went below zero): the model floors its forecasts at 0
    values = [float(ln.split(",")[2]) for ln in (tmp_path / "monthly.csv").read_text().splitlines()[1:]]
    assert out.auto.history.lowest == pytest.approx(min(values), abs=1e-9) and min(values) > 0
    want = {"windows.lookback": 72, "windows.stride": 1, "train.val_periods": 6, "train.test_periods": 6,
            "promote.backtest_periods": 6, "scoring.max_staleness": 3, "windows.min_history": 6,
            "model.statistical_lookback": 120}
    assert out.auto.values == want  # windows.horizon was given, so it is not listed
    assert out.auto.line.startswith("auto settings (freq ME, 120 steps of history): windows.lookback=72 ")
    assert out.cutoffs.end == datetime(2019, 12, 31) and out.cutoffs.val_end == datetime(2019, 6, 30)
    assert out.backtest.n_windows == 8  # one test window of 6 months per series, the young ones padded
    details = json.loads(spark.table(cfg.table("job_runs")).where(f"run_id = '{out.job_run_id}'").head().details)
    assert details["auto_settings"] == {**want, "history_steps_median": 120, "history_steps_longest": 120}
    params = registry.client(cfg).get_run(out.mlflow_run_id).data.params
    assert (params["windows.lookback"], params["windows.horizon"], params["train.val_periods"]) == ("72", "6", "6")
    assert params["scoring.max_staleness"] == "3" and params["auto_settings"] == out.auto.line
    # train.torch_threads: auto is recorded as the threads it resolved to
    from models.train import training_threads
    assert details["torch_threads"] == training_threads("auto") and params["train.torch_threads"] == str(
        training_threads("auto"))

    # monthly: the shipped network is refitted on the training and validation periods, for the
    # epochs early stopping chose, and it is the one registered
    assert out.refit is not None and out.refit.epochs == out.result.best_epoch
    assert out.refit.n_train == out.result.n_train + 6 * 6  # each long series: six more windows in validation
    assert (params["refit"], params["refit_epochs"], params["n_refit_windows"]) == (
        "True", str(out.result.best_epoch), str(out.refit.n_train))
    assert (details["refit_epochs"], details["refit_windows"]) == (out.result.best_epoch, out.refit.n_train)
    # every epoch, the first network's and the refit's, trains on 100 windows drawn from all of them
    assert details["train_windows"] == out.result.n_train > 100
    assert details["windows_per_epoch"] == out.result.windows_per_epoch == out.refit.windows_per_epoch == 100
    assert (params["train.max_windows_per_epoch"], params["n_windows_per_epoch"]) == ("100", "100")
    shipped_predictor = load_predictor(registry.download_version(cfg, out.model, tmp_path / "shipped")
                                       / "artifacts" / "predictor")
    shipped = shipped_predictor.module.state_dict()
    # the blend travels with its resolved power and local split (auto: 2 and 0.75 for monthly data)
    blend = shipped_predictor.meta.blend
    assert blend is not None and (blend.power, blend.local) == (2.0, 0.75)
    # the members read ten years, their trend members also the last six (format 10), and Holt-Winters is
    # one of them for monthly steps (format 12)
    assert (shipped_predictor.meta.lookback, shipped_predictor.meta.network.lookback, blend.recent) == (120, 72, 72)
    assert {"theta_recent", "damped_multiplicative_recent", "holt_winters", "holt_winters_recent"} <= set(blend.members)
    assert shipped_predictor.meta.to_dict()["format_version"] == 12 and params["blend.recent"] == "72"
    metrics = registry.client(cfg).get_run(out.mlflow_run_id).data.metrics
    assert "damped" in blend.members and "val_mae_damped" in metrics   # monthly steps blend the damped trend too
    # and Theta and the damped trend with a multiplicative season, which needs the windows' offsets
    assert {"theta_multiplicative", "damped_multiplicative"} <= set(blend.members) and shipped_predictor.needs_offset
    assert "val_mae_theta_multiplicative" in metrics
    assert shipped_predictor.meta.floor == out.floor == 0.0 and details["forecast_floor"] == 0.0
    # monthly validation is one period all series share: the training windows size the band
    assert details["calibrate_from"] == params["calibration.source"] == "training"
    assert params["forecast_floor"] == "0.0"
    assert (params["blend.power"], params["blend.local"]) == ("2.0", "0.75")
    refitted, first = out.refit.model.state_dict(), out.result.model.state_dict()
    assert all(torch.equal(shipped[k], refitted[k]) for k in refitted)
    assert not all(torch.equal(refitted[k], first[k]) for k in first)

    pr = predict.run(spark, cfg)  # auto lookback: the model's own 72
    assert (pr.counts["scored_series"], pr.counts["forecast_rows"]) == (8, 8 * 6)
    # predict reports the settings scoring reads, not the training split's
    pr_details = json.loads(spark.table(cfg.table("job_runs")).where(f"run_id = '{pr.run_id}'").head().details)
    assert pr_details["auto_settings"] == {"windows.lookback": 72, "windows.stride": 1, "windows.min_history": 6,
                                           "scoring.max_staleness": 3, "model.statistical_lookback": 120}
    assert pr.as_of == datetime(2019, 12, 31)
    rows = collect_utc(spark.table(cfg.table("forecasts")).select("series_id", "target_ts", "p50"))
    assert {r.target_ts for r in rows} == {datetime(2020, 1, 31), datetime(2020, 2, 29), datetime(2020, 3, 31),
                                           datetime(2020, 4, 30), datetime(2020, 5, 31), datetime(2020, 6, 30)}
    assert min(r.p50 for r in rows) >= 0.0
    young = [r.p50 for r in rows if r.series_id.startswith("y")]
    assert len(young) == 12 and all(np.isfinite(young))

    # a month-start date is off this grid: a file of nothing else is refused, naming the grid
    bad = tmp_path / "bad.csv"
    bad.write_text("series_id,ts,value\nm0,2020-01-01T00:00:00Z,1.0\n")
    with pytest.raises(SourceError, match=r"all 1 rows fail with off_grid 'ME'.*period starts: MS, QS, YS"):
        ingest.run(spark, cfg, str(bad), now=datetime(2024, 1, 1))

    # 20 months cannot hold 6 + 6 + 6 + 6 (inputs, a training target, validation, test): no test
    # split, the version is registered without test metrics, the refit trains through the last month
    short = train.run(spark, cfg, as_of="2011-08-31")
    assert short.auto is not None and short.auto.values["train.test_periods"] == 0
    assert (short.auto.values["windows.lookback"], short.auto.values["windows.min_history"]) == (8, 6)
    # the network's lookback shrank to 8; the statistical members still read ten years (padded here),
    # their trend members also the frequency's six, not the network's eight; Holt-Winters among them (format 12)
    assert short.auto.values["model.statistical_lookback"] == 120
    meta = load_predictor(registry.download_version(cfg, short.model, tmp_path / "short")
                          / "artifacts" / "predictor").meta
    assert (meta.lookback, meta.network.lookback) == (120, 8) and meta.to_dict()["format_version"] == 12
    assert meta.blend is not None and meta.blend.recent == 72
    assert short.cutoffs.val_end == short.cutoffs.end == datetime(2011, 8, 31)
    assert short.backtest.n_windows == 0 and (short.result.n_train, short.result.n_val) == (6, 6)
    assert short.refit is not None and short.refit.n_train == 6 * 7
    tags = registry.client(cfg).get_model_version(short.model.name, short.model.version).tags
    assert tags["lakecast.test_windows"] == "0" and "lakecast.test_mase" not in tags
    short_details = json.loads(spark.table(cfg.table("job_runs")).where(
        f"run_id = '{short.job_run_id}'").head().details)
    assert short_details["test_mase"] is None and short_details["auto_settings"]["train.test_periods"] == 0
    # that version scores from windows of 120 months, the network reading the last 8 of them
    spr = predict.run(spark, cfg, as_of="2011-08-31", version=short.model.version)
    assert (spr.counts["scored_series"], spr.counts["forecast_rows"]) == (6, 6 * 6)
    spr_details = json.loads(spark.table(cfg.table("job_runs")).where(f"run_id = '{spr.run_id}'").head().details)
    assert (spr_details["auto_settings"]["windows.lookback"],
            spr_details["auto_settings"]["model.statistical_lookback"]) == (8, 120)
    # without the trend members' recent forms (model.statistical_blend_recent=false): none of them in the
    # blend (still format 12, for Holt-Winters), and predict scores with it
    plain_cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"statistical_blend_recent": False})})
    plain = train.run(spark, plain_cfg, as_of="2011-08-31")
    pmeta = load_predictor(registry.download_version(cfg, plain.model, tmp_path / "plain")
                           / "artifacts" / "predictor").meta
    assert pmeta.to_dict()["format_version"] == 12 and pmeta.blend is not None and pmeta.blend.recent == 0
    assert not set(RECENT_MEMBERS) & set(pmeta.blend.members) and "theta_multiplicative" in pmeta.blend.members
    rpr = predict.run(spark, cfg, as_of="2011-08-31", version=plain.model.version)
    assert (rpr.counts["scored_series"], rpr.counts["forecast_rows"]) == (6, 6 * 6)

    # 12 months cannot hold even 1 + 6 + 6: the error names keys and values that fit
    with pytest.raises(HistoryTooShortError, match=r"observations hold 12 steps per series at freq ME .*"
                       r"try --set windows\.lookback=4 --set windows\.horizon=4 --set train\.val_periods=4 "
                       r"--set train\.test_periods=0 --set windows\.min_history=4"):
        train.run(spark, cfg, as_of="2010-12-31")


def test_frequency_aliases() -> None:
    from conf.freq import canonical

    assert [canonical(a) for a in ("M", "ME", "Q", "QE-DEC", "A", "Y", "YE", "AS", "YS", "H", "2H", "T",
                                   "15T", "W-SUN", "QS-JAN", "W-MON", "2W-FRI", "QS-OCT", "QS-APR", "QE-SEP",
                                   "Q-MAR")] == [
        "ME", "ME", "QE", "QE", "YE", "YE", "YE", "YS", "YS", "h", "2h", "min", "15min", "W", "QS", "W-MON",
        "2W-FRI", "QS", "QS", "QE", "QE"]
    # what pandas infers for calendar quarters is accepted as it is
    import pandas as pd
    assert canonical(pd.infer_freq(pd.date_range("2000-01-01", periods=8, freq="QS"))) == "QS"
    for other_grid in ("QS-FEB", "2QS-APR"):  # February, May ... quarters; April and October half-years
        with pytest.raises(ValueError, match=f"'{other_grid}' is not a supported frequency"):
            parse_freq(other_grid)
    assert parse_freq("W-MON").step == parse_freq("W").step
    yearly = resolve_steps(parse_freq("YS"), {})
    assert (yearly.horizon, yearly.lookback, parse_freq("YE").season_length()) == (6, 12, 1)
    with pytest.raises(ConfigError, match="'B' is not a supported pandas offset alias; use one of 15min, h"):
        load_config(overrides=["data.freq=B"])
