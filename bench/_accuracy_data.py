"""The accuracy benchmark's datasets: horizons, the holdout split, and the (series, h) arrays.

Horizons are the forecasting competitions' (M4: yearly 6, monthly 18, quarterly 8, hourly 48); for
half-hourly data, one day (48). The last `h` grid steps of the dataset are held out; a series
that does not reach the dataset's last step (4 of aus_retail's 152) has no held-out period and
is left out of both sides; that last step is the latest one at least half the series reach.
Everything before the holdout origin is the training part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from conf.freq import parse_freq


@dataclass(frozen=True)
class BenchSet:
    name: str
    freq: str
    horizon: int
    stats_history: int | None = None  # last steps statsforecast sees; None: all

    @property
    def season(self) -> int:
        return parse_freq(self.freq).season_length()

    def settings(self) -> dict[str, str]:
        """All a user must give lakecast: the frequency and the horizon; every step-counted
        setting (lookback, stride, validation, test, backtest) is `auto`."""
        return {"data.freq": self.freq, "windows.horizon": str(self.horizon)}


SETS: dict[str, BenchSet] = {s.name: s for s in (
    BenchSet("aus_retail", "MS", 18),
    BenchSet("tourism", "QS", 8),
    BenchSet("global_gdp", "YS", 6),  # M4's yearly horizon; series of 2 to 58 years
    BenchSet("us_employment", "MS", 18),  # long monthly histories (up to 80 years)
    BenchSet("ansett", "W-MON", 13),  # M4's weekly horizon; zeros during the 1989 strike
    BenchSet("aus_livestock", "MS", 18),
    BenchSet("pbs", "MS", 18),  # many zeros; series of 5 to 17 years, some ending before the last month
    BenchSet("pedestrian_daily", "D", 14),  # M4's daily horizon; days with an outage are gaps
    BenchSet("air_passengers", "MS", 18),  # one series: the smallest training set
    BenchSet("prison", "QS", 8),  # 48 quarters per series
    BenchSet("aus_production", "QS", 8),  # 4 of 6 series reach 2010 (tobacco and bricks end earlier)
    BenchSet("aus_arrivals", "QS", 8),
    BenchSet("aus_accommodation", "QS", 8),  # takings and occupancy by state
    # Sub-daily: seasonal AutoARIMA/AutoETS on years of hourly data take hours; statsforecast
    # sees the last 8 weeks (hourly) / 4 weeks (half-hourly), lakecast all history.
    BenchSet("pedestrian", "h", 48, stats_history=8 * 7 * 24),
    BenchSet("vic_elec", "30min", 48, stats_history=4 * 7 * 48),
    BenchSet("electricity_prices", "h", 48, stats_history=8 * 7 * 24),
    BenchSet("us_gasoline", "W-MON", 13),  # one series; the season is 52 weeks, ISO years have 52 or 53
    # Added after the blend's rules were chosen: an out-of-sample check of them.
    BenchSet("canadian_gas", "MS", 18),
    BenchSet("hsales", "MS", 18),
    BenchSet("gafa_stock", "D", 14),  # trading days: weekends and holidays are gaps
    # Short histories: 16 to 17 training years (all but one series), 66 training months.
    BenchSet("us_gas_total", "YS", 6),
    BenchSet("hh_budget", "YS", 6),
    BenchSet("souvenirs", "MS", 18),
    # Added 2026-12-07 after every rule was chosen (a second out-of-sample check).
    BenchSet("us_accidental_deaths", "MS", 18),  # one series of 6 years: 54 months before the holdout
    BenchSet("a10", "MS", 18),  # one series; a trend and a season that grows with it
    BenchSet("us_change", "QS", 8),  # changes in percent: negative values, no season to speak of
    BenchSet("warsaw_air_quality", "D", 14),  # long gaps; no2, pm10 and pm25 reach the last step (29 May 2025)
    BenchSet("nord_pool_prices", "h", 48, stats_history=8 * 7 * 24),  # 70 days of hourly prices
    # The forecasting competitions, at their own horizons (the held-out steps are their test sets):
    # many short series, as published results of every standard method are measured on.
    BenchSet("m1_monthly", "MS", 18),
    BenchSet("m1_quarterly", "QS", 8),
    BenchSet("m1_yearly", "YS", 6),
    BenchSet("m3_monthly", "MS", 18),
    BenchSet("m3_quarterly", "QS", 8),
    BenchSet("m3_yearly", "YS", 6),
    BenchSet("tourism_monthly", "MS", 24),
    BenchSet("tourism_quarterly", "QS", 8),
)}


@dataclass
class Split:
    """One dataset cut at the holdout origin; `series` orders every array."""

    train: pd.DataFrame  # series_id, ts (UTC), value: what is ingested / fitted
    origin: pd.Timestamp  # the last training step (predict --as-of)
    series: list[str]
    actuals: np.ndarray  # (series, h), NaN where the source has no row
    history: list[np.ndarray]  # per series, the training values (for the MASE scale)
    short: np.ndarray  # per series, whether it was cut short (`split(short=...)`)


def _steps(freq: str, start: pd.Timestamp, n: int) -> pd.DatetimeIndex:
    return pd.date_range(start, periods=n + 1, freq=freq)[1:]


def split(path: Path, bs: BenchSet, max_series: int | None = None, seed: int = 0, short: float = 0.0,
          short_steps: tuple[int, int] = (0, 0), earlier: int = 0) -> Split:
    """Read an exported file and hold out the last `h` grid steps of the dataset.

    `short`: the share of series (drawn at random) cut to their last `short_steps` (lo, hi: drawn
    per series) training steps, as young series are in real data; `Split.short` marks them.
    `earlier`: first drop the dataset's last `earlier` horizons (another holdout origin)."""
    df = pd.read_csv(path, dtype={"series_id": str})
    df["ts"] = pd.to_datetime(df["ts"], utc=True)
    # The latest step at least half the series reach: one series that runs a year past the rest
    # (us_gas_total's national total) does not leave all the others without a holdout.
    ends = df.groupby("series_id")["ts"].max().sort_values(ascending=False)
    end = ends.iloc[(len(ends) - 1) // 2]
    if earlier > 0:
        end = pd.date_range(end=end, periods=earlier * bs.horizon + 1, freq=bs.freq)[0]
        df = df[df["ts"] <= end]
    keep = sorted(df.loc[df["ts"] == end, "series_id"].unique())
    if max_series is not None and max_series < len(keep):
        rng = np.random.default_rng(seed)
        keep = sorted(rng.choice(keep, size=max_series, replace=False).tolist())
    df = df[df["series_id"].isin(keep)]
    origin = pd.date_range(end=end, periods=bs.horizon + 1, freq=bs.freq)[0]
    train = df[df["ts"] <= origin].sort_values(["series_id", "ts"]).reset_index(drop=True)
    cut = np.zeros(len(keep), dtype=bool)
    if short > 0:
        rng = np.random.default_rng(seed + 1)
        cut = rng.random(len(keep)) < short
        lengths = dict(zip(keep, rng.integers(short_steps[0], short_steps[1] + 1, size=len(keep)), strict=True))
        first = {sid: origin - (lengths[sid] - 1) * pd.tseries.frequencies.to_offset(bs.freq)
                 for sid, c in zip(keep, cut, strict=True) if c}
        young = train["series_id"].map(first)
        train = train[young.isna() | (train["ts"] >= young)].reset_index(drop=True)
    test = df[df["ts"] > origin].set_index(["series_id", "ts"])["value"]
    targets = _steps(bs.freq, origin, bs.horizon)
    idx = pd.MultiIndex.from_product([keep, targets], names=["series_id", "ts"])
    actuals = test.reindex(idx).to_numpy(dtype=float).reshape(len(keep), bs.horizon)
    # per series of `keep`; one whose every row lies in the holdout has no history (no MASE scale)
    grids = {sid: _on_grid(g, bs.freq).to_numpy() for sid, g in train.groupby("series_id", sort=True)}
    history = [grids.get(sid, np.array([])) for sid in keep]
    return Split(train, origin, keep, actuals, history, cut)


def _on_grid(g: pd.DataFrame, freq: str) -> pd.Series:
    """One series' values on its full grid from first to last row, NaN at gaps."""
    s = g.set_index("ts")["value"].astype(float)
    return s.reindex(pd.date_range(s.index.min(), s.index.max(), freq=freq))


def regular(train: pd.DataFrame, freq: str, last: int | None) -> pd.DataFrame:
    """statsforecast's input (unique_id, ds, y): each series on its full grid, gaps linearly
    interpolated (it assumes consecutive rows are consecutive steps), the last `last` steps."""
    parts = []
    for sid, g in train.groupby("series_id", sort=True):
        s = _on_grid(g, freq).interpolate(limit_direction="both")
        if last is not None:
            s = s.iloc[-last:]
        parts.append(pd.DataFrame({"unique_id": sid, "ds": s.index.tz_localize(None), "y": s.to_numpy()}))
    return pd.concat(parts, ignore_index=True)
