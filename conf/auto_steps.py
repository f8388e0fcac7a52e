"""`auto` for the settings counted in steps: values that fit `data.freq` and the history held.

Pure: the pipelines measure the history (grid steps per series in `observations`) and pass it
in; the flows then run on a config whose step settings are all ints (`apply_steps`). Hourly
data with four weeks of history or more resolves to lookback 168, horizon 24, stride 24,
validation, test and backtest 168 and max_staleness 48; with a year or more, lookback 672.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING

from conf.errors import HistoryTooShortError
from conf.freq import Freq, parse_freq

if TYPE_CHECKING:
    from conf.schema import LakecastConfig

AUTO = "auto"
# Public key of each `Steps` field.
KEYS = {"lookback": "windows.lookback", "horizon": "windows.horizon", "stride": "windows.stride",
        "val_periods": "train.val_periods", "test_periods": "train.test_periods",
        "backtest_periods": "promote.backtest_periods", "max_staleness": "scoring.max_staleness",
        "min_history": "windows.min_history", "statistical_lookback": "model.statistical_lookback"}
TRAINING_KEYS = ("min_history", "horizon", "val_periods", "test_periods")


@dataclass(frozen=True)
class Steps:
    """Every step-counted setting as a concrete number of grid steps."""

    lookback: int
    horizon: int
    stride: int
    val_periods: int
    test_periods: int
    backtest_periods: int
    max_staleness: int
    min_history: int  # steps a (left-padded) window needs; at most the lookback
    # steps of a window the statistical members read; 0 (the default of a bare Steps): the lookback
    statistical_lookback: int = 0

    @property
    def context(self) -> int:
        """Steps before the network's lookback that a window carries for the statistical members."""
        return max(0, self.statistical_lookback - self.lookback)

    @property
    def width(self) -> int:
        """Steps per window: the context, then the network's lookback."""
        return self.lookback + self.context

    def by_key(self) -> dict[str, int]:
        return {KEYS[k]: v for k, v in asdict(self).items()}

    @property
    def training_need(self) -> int:
        """Steps a series needs for one (left-padded) training window before validation and test."""
        return self.min_history + self.horizon + self.val_periods + self.test_periods


@dataclass(frozen=True)
class History:
    """What the history holds: grid steps per series, first to last observation (`typical` is the
    median series), and the smallest value (`model.nonnegative: auto` reads it)."""

    typical: int
    longest: int
    series: int
    lowest: float | None = None  # the smallest valid value (None: not measured)


@dataclass(frozen=True)
class _Base:
    """What `auto` gives with ample history, in steps of the frequency."""

    horizon: int
    lookback: int
    eval_min: int  # validation / test / backtest: at least this, and at least one horizon
    stride: int
    max_staleness: int
    long_lookback: int = 0   # hourly and coarser: the lookback once the typical series holds `long_from` steps
    long_from: int = 0
    members: int = 0         # calendar and hourly steps: what the statistical members read (0: the lookback)


# Hourly (and coarser sub-daily) data with a year of history looks back four weeks instead of one:
# on the real hourly sets a four-week window cut MASE by 17-30 %; on the half-hourly set two weeks
# (672 steps) cost 33-44 % at two origins, so finer steps keep the week (bench/RESULTS.md, "Four
# weeks back for hourly data"). A year leaves every series hundreds of training windows that long.
LONG_SUBDAILY_DAYS = 28
LONG_SUBDAILY_MAX_STEPS = 672       # four weeks of hours: finer steps do not take the longer window
LONG_SUBDAILY_FROM_DAYS = 365
# Their statistical members read the four weeks whatever the history: members alone at 21 daily
# origins of each hourly set, four weeks against one, 2.9-5.8 % better on all three; unlike the
# network's window it costs the LSTM nothing. Finer steps keep the week here too: on the
# half-hourly set two weeks gained 1.2 % alone and cost 5 % end to end (bench/RESULTS.md, "Five
# sets added after every rule was chosen, and four weeks for hourly members").
# Monthly statistical members read ten years, their trend members also the usual six
# (`recent_steps`). Members alone on the benchmark's eleven monthly sets at three holdout origins:
# 0.3 % better on the multi-series sets (13 of 21 better, worst +1.6 %), 2.3 % over all 33 (the
# single series up to 18 %); ten years without the six beside were no better (bench/RESULTS.md,
# "Ten years for monthly members").
MONTHLY_MEMBERS_MONTHS = 120


def base_steps(freq: Freq) -> _Base:
    """Per frequency class: sub-daily a day ahead from a week back (hourly: 24 from 168),
    daily two weeks from eight, weekly a quarter from a year, monthly a year from six,
    quarterly two years from twenty, yearly six from twelve (hourly and coarser sub-daily steps with a
    year of history: four weeks back, see `resolve_steps`); multiples (2h, 2MS) count the same time
    in fewer steps. Period-end frequencies (ME, QE, YE) resolve as their starts. Monthly and
    quarterly data look back six and twenty years because the statistical members fit on the window
    alone and need the years (bench/RESULTS.md, "A longer monthly lookback" and "Three sets added
    after the rules were chosen, and twenty years back for quarterly data"). Their statistical
    members read further back on monthly data: ten years (`MONTHLY_MEMBERS_MONTHS`)."""
    if freq.is_calendar and freq.months >= 12:  # yearly: six years ahead (as M4) from twelve
        div, table = freq.months / 12, (6, 12, 1, 1)
    elif freq.is_calendar:
        div = float(freq.months) if freq.months < 3 else freq.months / 3
        table = (12, 72, 1, 3) if freq.months < 3 else (8, 80, 1, 2)
    elif freq.step < timedelta(days=1):
        day = max(1, int(timedelta(days=1) / freq.step))
        fits = LONG_SUBDAILY_DAYS * day <= LONG_SUBDAILY_MAX_STEPS
        return _Base(horizon=day, lookback=7 * day, eval_min=7 * day, stride=day, max_staleness=2 * day,
                     long_lookback=LONG_SUBDAILY_DAYS * day if fits else 0,
                     long_from=LONG_SUBDAILY_FROM_DAYS * day if fits else 0,
                     members=LONG_SUBDAILY_DAYS * day if fits else 0)
    elif freq.step < timedelta(weeks=1):
        div, table = freq.step / timedelta(days=1), (14, 56, 7, 7)
    else:
        div, table = freq.step / timedelta(weeks=1), (13, 52, 1, 4)
    h, lb, ev, stale = (max(1, math.ceil(v / div - 1e-9)) for v in table)
    members = 0
    if freq.is_calendar and freq.months < 3:
        members = max(1, math.ceil(MONTHLY_MEMBERS_MONTHS / div - 1e-9))
    return _Base(horizon=h, lookback=lb, eval_min=ev, stride=1, max_staleness=stale, members=members)


def resolve_steps(freq: Freq, given: Mapping[str, int | str], history: History | None = None,
                  blend: bool = True) -> Steps:
    """Concrete steps: `given` (public key -> int or 'auto'; missing keys are auto) with each
    auto one resolved for `freq` and, when known, the `history`.

    A given horizon stays; validation, test and backtest take the frequency's minimum (a week
    for sub-daily and daily data) but at least one horizon, and at most a quarter of the typical
    history; the lookback (at least two horizons) shrinks, not below one horizon, until
    lookback + horizon + validation + test fit the typical series. The statistical members read at
    least the lookback; for monthly, quarterly and yearly steps, the frequency's lookback before it
    shrank (at least two horizons; ten years for monthly ones), for weekly ones two seasons (two
    years), for daily ones twice the frequency's lookback (sixteen weeks), for hourly and coarser
    sub-daily ones four weeks (hourly: 672; finer steps the lookback), unless there is no statistical
    `blend` to read it.

    Short histories (`short_history_test`, `short_history_min`): where the typical series cannot
    hold a horizon of inputs, a training target, validation and test, the test split goes (0);
    where not even the longest holds min_history (one horizon) + horizon + validation + test,
    min_history shrinks to what it leaves.
    """
    b = base_steps(freq)

    def pick(name: str, auto: int) -> int:
        v = given.get(KEYS[name], AUTO)
        return auto if v == AUTO else int(v)

    h = pick("horizon", b.horizon)
    ev = max(b.eval_min, h)
    if history is not None:
        ev = max(h, min(ev, history.typical // 4))
    val, test, bt = pick("val_periods", ev), pick("test_periods", ev), pick("backtest_periods", ev)
    if history is not None and given.get(KEYS["test_periods"], AUTO) == AUTO:
        test = short_history_test(h, val, test, history)
    lb = max(b.lookback, 2 * h)
    if history is not None and b.long_from and history.typical >= b.long_from:
        lb = max(b.long_lookback, 2 * h)
    if history is not None:
        lb = max(min(h, lb), min(lb, history.typical - h - val - test))
    lookback = pick("lookback", lb)
    # The members fit each window alone: monthly to yearly ones keep the years the network's
    # lookback gives up to fit short series (bench/RESULTS.md, "The members' own lookback"; monthly
    # ones ten years; yearly and monthly ones with a recent form beside, `recent_steps`); weekly ones
    # read two years, the least a seasonal Theta or seasonal drift needs, and daily ones sixteen
    # weeks, twice the frequency's eight, and hourly (and coarser sub-daily) ones four weeks
    # (bench/RESULTS.md, "Two years for weekly members", "Sixteen weeks for daily members" and "Five
    # sets added after every rule was chosen, and four weeks for hourly members").
    # None of these follows a given windows.lookback; a given statistical_lookback does.
    members_auto = lookback
    if blend and freq.is_calendar:
        members_auto = max(b.members or b.lookback, 2 * h)
    elif blend and freq.step >= timedelta(weeks=1):
        members_auto = max(lookback, 2 * freq.season_length())
    elif blend and freq.step >= timedelta(days=1):
        members_auto = max(lookback, 2 * b.lookback)
    elif blend:
        members_auto = max(lookback, b.members)
    statistical = max(lookback, pick("statistical_lookback", members_auto))
    given_min = given.get(KEYS["min_history"], AUTO)
    if given_min == AUTO:
        mh = min(lookback, h)
        if history is not None:
            mh = short_history_min(mh, h + val + test, history)
    else:
        mh = min(lookback, int(given_min))
    return Steps(lookback=lookback, horizon=h, stride=pick("stride", b.stride), val_periods=val,
                 test_periods=test, backtest_periods=bt, max_staleness=pick("max_staleness", b.max_staleness),
                 min_history=mh, statistical_lookback=statistical)


def short_history_test(h: int, val: int, test: int, history: History) -> int:
    """`train.test_periods` when auto: 0 where the typical series cannot hold a horizon of inputs,
    a training target, validation and a test split (fewer than four horizons at one horizon each).

    A test split there would leave most series without a training window; the network needs the
    data more than the run needs test metrics (the backtest is then empty, and `lakecast promote`
    still compares versions on `promote.backtest_periods`). 66 months forecast 18 ahead (souvenirs'
    seven years less the 18 held out: 66 < 72), or 16 years of yearly data 6 ahead (16 < 24),
    otherwise do not train their typical series."""
    return 0 if history.typical < 2 * h + val + test else test


def short_history_min(mh: int, after: int, history: History) -> int:
    """`windows.min_history` when auto: one horizon, or less where not even the longest series
    holds min_history + `after` (horizon + validation + test) steps: what it leaves, at least one
    step, so each series of that length still gives one left-padded training window."""
    if history.longest >= mh + after:
        return mh
    return max(1, min(mh, history.longest - after))


def workable(steps: Steps, n: int) -> dict[str, int] | None:
    """Training settings that fit a series of `n` steps, close to `steps` (None below 3 steps).

    The horizon shrinks to at most a third of the history, validation to one horizon, the test
    split to none, the lookback to what is left (at most its current value) and min_history to at
    most one horizon."""
    if n < 3:
        return None
    h = max(1, min(steps.horizon, n // 3))
    lb = max(1, min(steps.lookback, n - 2 * h))
    return {KEYS["lookback"]: lb, KEYS["horizon"]: h, KEYS["val_periods"]: h, KEYS["test_periods"]: 0,
            KEYS["min_history"]: min(lb, h)}


def check_fits(freq: Freq, steps: Steps, history: History) -> None:
    """Raise HistoryTooShortError when not even the longest series holds one training window."""
    if steps.training_need <= history.longest:
        return
    terms = " + ".join(f"{KEYS[k]}" for k in TRAINING_KEYS)
    values = " + ".join(str(getattr(steps, k)) for k in TRAINING_KEYS)
    fit = workable(steps, history.typical)
    fix = ("ingest more history: training needs at least 3 steps per series" if fit is None
           else "try " + " ".join(f"--set {k}={v}" for k, v in fit.items()) + " (or ingest more history)")
    raise HistoryTooShortError(
        f"observations hold {history.typical} steps per series at freq {freq.alias} (median of "
        f"{history.series} series; longest {history.longest}); training needs {terms} <= "
        f"{history.longest}, here {values} = {steps.training_need}: {fix}")


def given_steps(cfg: LakecastConfig) -> dict[str, int | str]:
    """The configured value (int or 'auto') of every step-counted key."""
    sections = {"windows": cfg.windows, "train": cfg.train, "promote": cfg.promote, "scoring": cfg.scoring,
                "model": cfg.model}
    out: dict[str, int | str] = {}
    for key in KEYS.values():
        section, field = key.split(".")
        out[key] = getattr(sections[section], field)
    return out


def auto_keys(cfg: LakecastConfig) -> tuple[str, ...]:
    return tuple(k for k, v in given_steps(cfg).items() if v == AUTO)


def steps(cfg: LakecastConfig) -> Steps:
    """The step settings as ints; any still `auto` is resolved for the frequency alone (ample
    history). Flows resolve against the measured history first, so this only reads ints there."""
    return resolve_steps(parse_freq(cfg.data.freq), given_steps(cfg), blend=cfg.model.statistical_blend)


def refit_wanted(cfg: LakecastConfig) -> bool:
    """`train.refit`, with `auto` on for steps of a week or longer: validation there is one
    horizon of the most recent data (18 months on monthly data), which the first network never
    trains on; at daily and finer steps it is a week of a long history."""
    if cfg.train.refit != AUTO:
        return bool(cfg.train.refit)
    return _weekly_or_longer(cfg)


def _weekly_or_longer(cfg: LakecastConfig) -> bool:
    """Whether `data.freq` steps a week or longer: where validation is one horizon per series."""
    freq = parse_freq(cfg.data.freq)
    return freq.is_calendar or freq.step >= timedelta(weeks=1)


# The local split's share where `model.statistical_blend_local` is auto and steps are a week or longer.
LOCAL_SPLIT_SHARE = 0.75


def blend_local(cfg: LakecastConfig) -> float:
    """`model.statistical_blend_local`, with `auto` 0.75 for steps of a week or longer and 0 for
    daily and finer. On the accuracy benchmark the local split cut monthly MASE by up to 19 %
    (series of different kinds, one validation window each), but cost both sub-daily sets about
    3 %: there validation holds a week of origins per series, so the fitted split is well
    estimated, and a backtest of a day or two is noise beside it."""
    v = cfg.model.statistical_blend_local
    if v != AUTO:
        return float(v)
    return LOCAL_SPLIT_SHARE if _weekly_or_longer(cfg) else 0.0


# The blend's power where `model.statistical_blend_power` is auto and steps are months or quarters.
SHARP_POWER = 2.0


def blend_power(cfg: LakecastConfig) -> float:
    """`model.statistical_blend_power`, with `auto` 2 for monthly and quarterly steps and 1 (Bates &
    Granger's inverse MSE) otherwise. On the accuracy benchmark the power 2 lowered MASE on five of
    the seven monthly and quarterly sets (us_employment 4.8 %, air_passengers 7.5 %; prison the
    same, aus_retail 0.5 % worse) and raised it on the yearly, weekly and daily sets (global_gdp
    7.6 %, ansett 1.3 %, pedestrian_daily 0.5 %); see bench/RESULTS.md, "Sharper blend shares"."""
    v = cfg.model.statistical_blend_power
    if v != AUTO:
        return float(v)
    freq = parse_freq(cfg.data.freq)
    return SHARP_POWER if freq.is_calendar and freq.months < 12 else 1.0


# Statistical members a model blends only where steps are calendar months, quarters or years (`blend_skips`).
CALENDAR_ONLY_MEMBERS = ("damped", "damped_multiplicative")
# Statistical members a model blends only where steps are shorter than a day and a season has two or more steps.
SUBDAILY_MEMBERS = ("naive",)
# Statistical members a model blends only where steps are calendar months (`blend_skips`).
MONTHLY_MEMBERS = ("holt_winters",)
# The members that take a multiplicative season out (`models.lakecast_forecaster.statistical`); conf
# imports nothing of models, so the names are repeated here (a test checks they agree).
MULTIPLICATIVE_MEMBERS = ("theta_multiplicative", "damped_multiplicative", "holt_winters")


def blend_skips(cfg: LakecastConfig) -> tuple[str, ...]:
    """The statistical members left out of a new model's blend: the damped trend unless `data.freq`
    steps by months, quarters or years. On the accuracy benchmark at two holdout origins it lowered
    or kept MASE on the monthly to yearly sets (mean -0.5 %, up to -5 %) and raised it on the weekly
    and daily ones (mean +2 %, up to +6 %; bench/RESULTS.md, "A damped-trend member"); below a day it
    was not measured, and on four weeks of hours it would cost about 84 µs a window at every
    prediction, half of what the network itself costs in bf16. The multiplicative forms of Theta and
    the damped trend unless `blend_multiplicative` (and the damped one wherever the damped trend goes),
    and always where a step has no season (yearly data): there they would be the additive forms again,
    each doubling its form's share of the blend. Naive (the last value) only where steps are shorter than
    a day and a season has two steps or more (else it is seasonal naive again): on electricity_prices
    it lowered MASE by 9 and 15 % at two origins; on the two daily sets it was 2-3 % better at the
    holdout and 4 and 11 % worse one horizon earlier, on the weekly ones one better and one worse, and
    the monthly to yearly models were tuned without it (bench/RESULTS.md, "A naive member for steps
    shorter than a day"). Holt-Winters (a season that moves) only where steps are single months: members
    alone at three holdout origins it cut the blend's MASE on the monthly sets by 0.6 % and raised it on
    the quarterly ones by 0.2 % (bench/RESULTS.md, "A Holt-Winters member")."""
    freq = parse_freq(cfg.data.freq)
    skips: tuple[str, ...] = () if freq.is_calendar else CALENDAR_ONLY_MEMBERS
    if freq.is_calendar or freq.step >= timedelta(days=1) or freq.season_length() < 2:
        skips += SUBDAILY_MEMBERS
    if not (freq.is_calendar and freq.months == 1):
        skips += MONTHLY_MEMBERS
    multiplicative = blend_multiplicative(cfg) and freq.season_length() >= 2
    return tuple(dict.fromkeys(skips + (() if multiplicative else MULTIPLICATIVE_MEMBERS)))


def blend_multiplicative(cfg: LakecastConfig) -> bool:
    """`model.statistical_season_multiplicative`: whether a new model's blend also has Theta and the
    damped trend with a multiplicative season (`statistical.MULTIPLICATIVE_MEMBERS`), with `auto`
    true where `data.freq` steps by calendar months or quarters (a season of at least two steps; yearly
    data has none, and `blend_skips` leaves them out there whatever this says). Alone on the lookback windows
    of the benchmark's monthly and quarterly sets at three holdout origins, the multiplicative season
    cut Theta's MASE by 7 % (geometric mean, 25 of 39 better) and the damped trend's by 5 %, yet was
    up to 26 % worse on some; as members beside the additive forms, a members-only blend split by each
    window's backtests was 3.2 % better than without them (31 of 39 better, worst +9 %), and 0.7 %
    better than with the multiplicative forms in their place. On weekly and daily sets it changed
    little (bench/RESULTS.md, "A multiplicative season")."""
    v = cfg.model.statistical_season_multiplicative
    if v != AUTO:
        return bool(v)
    freq = parse_freq(cfg.data.freq)
    return freq.is_calendar and freq.season_length() >= 2


def blend_recent(cfg: LakecastConfig) -> bool:
    """`model.statistical_blend_recent`: whether a new model's trend members also forecast from a
    shorter window (`recent_steps`, `statistical.RECENT_MEMBERS`) beside their fit on the whole
    window, each window's backtests choosing; `auto` true for yearly and monthly steps. Members
    alone, on the benchmark's five yearly sets at three holdout origins, a twelve-year window for
    them was 0.3 % better than the shrunk lookback (geometric mean; 7 of 15 better, us_gas_total
    14 % worse at the holdout), both forms 0.9 % better (10 of 15, worst +4 %). On the eleven
    monthly sets, ten years with six beside were 0.3 % better than six years alone on the
    multi-series sets, ten years alone no better; six years of months or twenty of quarters with the
    network's lookback beside were 0.3 % worse over those sets together (bench/RESULTS.md, "Yearly
    data: the trend members on both windows" and "Ten years for monthly members")."""
    v = cfg.model.statistical_blend_recent
    if v != AUTO:
        return bool(v)
    freq = parse_freq(cfg.data.freq)
    return freq.is_calendar and (freq.months >= 12 or freq.months < 3)


def recent_steps(cfg: LakecastConfig, s: Steps) -> int:
    """Steps the recent forms of the trend members read, the last of each window's (0: none, where
    `blend_recent` is off or the window is no wider): where the frequency's members read further
    than its lookback (monthly: ten years against six; hourly, where `blend_recent` is set: four
    weeks against one), the larger of that lookback and the network's; elsewhere the network's
    lookback (yearly: its six or seven of the members' twelve years). A series no longer than them
    gets the same forecast from both forms."""
    if not blend_recent(cfg):
        return 0
    b = base_steps(parse_freq(cfg.data.freq))
    recent = max(s.lookback, b.lookback) if b.members else s.lookback
    return recent if recent < s.width else 0


def calibrate_from(cfg: LakecastConfig) -> str:
    """`model.calibrate_from`, with `auto` "training" where `data.freq` steps a week or longer and
    "validation" at daily and finer steps. Validation there is one period of a horizon that all
    series share, one window each: a common shock in it (the 2008 crisis in global GDP, a level
    shift in house sales) sets which side of the band widens, and the next period's shock is another.
    The training windows span every year of the history. On the thirteen weekly to yearly sets of the
    accuracy benchmark with enough training windows (bench/RESULTS.md, "Which windows size the band"),
    sizing the band from them lowered the holdout's scaled pinball loss on eleven (7.8 % on average;
    global_gdp 19 %, hsales 24 %, ansett 21 %, us_gasoline 13 %) and raised it on two (aus_production
    1.9 %, aus_retail 1.1 %); the medians do not change. Daily and finer steps were not measured; their
    validation holds a week or more of origins per series."""
    v = cfg.model.calibrate_from
    if v != AUTO:
        return str(v)
    return "training" if _weekly_or_longer(cfg) else "validation"


def forecast_floor(cfg: LakecastConfig, history: History | None) -> float | None:
    """`model.nonnegative` as the model's floor: 0.0 or None (no floor). `auto` floors at zero
    when the history measured has no negative value: counts, sales and demand cannot go below it,
    and a forecast that does is wrong by that much (lower quantiles of falling or intermittent
    series, trends extrapolated past zero)."""
    v = cfg.model.nonnegative
    if v == AUTO:
        return 0.0 if history is not None and history.lowest is not None and history.lowest >= 0 else None
    return 0.0 if v else None


def apply_steps(cfg: LakecastConfig, s: Steps) -> LakecastConfig:
    """`cfg` with every step-counted setting set to its concrete value."""
    return cfg.model_copy(update={
        "windows": cfg.windows.model_copy(update={"lookback": s.lookback, "horizon": s.horizon,
                                                  "stride": s.stride, "min_history": s.min_history}),
        "train": cfg.train.model_copy(update={"val_periods": s.val_periods, "test_periods": s.test_periods}),
        "promote": cfg.promote.model_copy(update={"backtest_periods": s.backtest_periods}),
        "scoring": cfg.scoring.model_copy(update={"max_staleness": s.max_staleness}),
        "model": cfg.model.model_copy(update={"statistical_lookback": s.statistical_lookback}),
    })


def describe(freq: Freq, s: Steps, keys: tuple[str, ...], history: History | None, source: str = "") -> str:
    """One line: the resolved value of each key that was auto."""
    held = f"{history.typical} steps of history" if history is not None else source or "history not measured"
    values = s.by_key()
    return f"auto settings (freq {freq.alias}, {held}): " + " ".join(f"{k}={values[k]}" for k in keys)
