"""Covariates of each window step and per-window scaling.

Feature 0 is the scaled value, feature 1 the missing mask (1.0 where the step was not
observed, filled or not), then calendar features as sin/cos pairs chosen by frequency:

| frequency (step)              | calendar features                      |
|-------------------------------|----------------------------------------|
| sub-daily (15min, h, 2h ...)  | hour_of_day_sin/cos, day_of_week_sin/cos |
| daily (D, 2D ...)             | day_of_week_sin/cos                    |
| weekly and above (W, MS, QS)  | month_of_year_sin/cos                  |

Calendar features are taken in UTC (timestamps are stored in UTC). They can be switched
off with `windows.calendar_features: false`.

Each window is scaled by the mean and (population) standard deviation of the values in its
input part: no fitted global scaler to drift between training and serving. A (near) zero
standard deviation falls back to max(1, |mean|) so constant windows stay finite.
"""

from __future__ import annotations

import math
from datetime import timedelta
from typing import TYPE_CHECKING

import numpy as np

from conf import LakecastConfig
from conf.freq import Freq, parse_freq

if TYPE_CHECKING:
    from pyspark.sql import Column

US_PER_DAY = 86_400_000_000
# A standard deviation at or below this fraction of |mean| counts as zero variance. Relative to the
# mean alone (not to max(1, |mean|)): a series of values about 1e-6 varies on its own scale, and scaling
# it by 1 made the network's noise in scaled units a thousand times the series.
MIN_REL_STD = 1e-6
_TWO_PI = 2.0 * math.pi


def calendar_kinds(freq: Freq) -> tuple[str, ...]:
    """Which calendar cycles describe a step of this frequency."""
    if freq.is_calendar or freq.step >= timedelta(weeks=1):
        return ("month_of_year",)
    if freq.step < timedelta(days=1):
        return ("hour_of_day", "day_of_week")
    return ("day_of_week",)


def feature_names(cfg: LakecastConfig) -> list[str]:
    """Names of the per-step features, in the order they are interleaved in `inputs`."""
    names = ["value", "missing"]
    if cfg.windows.calendar_features:
        for kind in calendar_kinds(parse_freq(cfg.data.freq)):
            names += [f"{kind}_sin", f"{kind}_cos"]
    return names


def calendar_features(kinds: tuple[str, ...], ts_us: np.ndarray, month: np.ndarray) -> np.ndarray:
    """(n, 2 * len(kinds)) float64 sin/cos features of steps at `ts_us` (us) in `month` (0-11)."""
    cols: list[np.ndarray] = []
    for kind in kinds:
        if kind == "hour_of_day":
            phase = np.mod(ts_us, US_PER_DAY) / US_PER_DAY
        elif kind == "day_of_week":  # Monday = 0; 1970-01-01 was a Thursday
            phase = np.mod(np.floor_divide(ts_us, US_PER_DAY) + 3, 7) / 7.0
        else:
            phase = month / 12.0
        cols += [np.sin(_TWO_PI * phase), np.cos(_TWO_PI * phase)]
    return np.stack(cols, axis=1) if cols else np.zeros((len(ts_us), 0))


def calendar_feature_cols(kinds: tuple[str, ...], ts_us: Column, month: Column) -> list[Column]:
    """The same features as SQL columns of a step's timestamp (us) and month (0-11)."""
    from pyspark.sql import functions as F

    cols: list[Column] = []
    for kind in kinds:
        if kind == "hour_of_day":
            phase = F.pmod(ts_us, F.lit(US_PER_DAY)) / US_PER_DAY
        elif kind == "day_of_week":
            phase = F.pmod(F.floor(ts_us / US_PER_DAY) + 3, F.lit(7)) / 7.0
        else:
            phase = month / 12.0
        cols += [F.sin(phase * _TWO_PI), F.cos(phase * _TWO_PI)]
    return cols


def guard_scale(loc: np.ndarray, std: np.ndarray) -> np.ndarray:
    """The standard deviation, or |mean| (1 where the mean is 0) where it is (near) zero beside the mean."""
    size = np.abs(loc)
    return np.where(std > MIN_REL_STD * size, std, np.where(size > 0, size, 1.0))


def guard_scale_col(loc: Column, std: Column) -> Column:
    from pyspark.sql import functions as F

    size = F.abs(loc)
    return F.when(std > size * MIN_REL_STD, std).otherwise(F.when(size > 0, size).otherwise(F.lit(1.0)))
