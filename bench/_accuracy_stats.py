"""The statistical standards of `bench.accuracy_bench`: statsforecast's AutoETS, AutoARIMA,
AutoTheta and SeasonalNaive, each fitted and forecast on its own (so each has its own time),
with 80 % prediction intervals as p10/p90 and the point forecast as p50.

statsforecast is the benchmark-only extra (`pip install -e '.[bench]'`; `make bench` installs it).
"""

from __future__ import annotations

import os
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

METHODS = ("AutoETS", "AutoARIMA", "AutoTheta", "SeasonalNaive")
STATISTICAL = ("AutoETS", "AutoARIMA", "AutoTheta")  # "best statistical method" is among these


@dataclass
class StatRun:
    p10: np.ndarray  # (series, h)
    p50: np.ndarray
    p90: np.ndarray
    seconds: float


def _model(name: str, season: int, length: int) -> Any:
    try:
        from statsforecast import models
    except ImportError as e:
        raise SystemExit("bench.accuracy_bench needs statsforecast: pip install --constraint "
                         "requirements.lock -e '.[bench]' (make bench does)") from e
    long_or_fine = length > 150 or season > 12
    factories: dict[str, Callable[[], Any]] = {
        "AutoETS": lambda: models.AutoETS(season_length=season),
        # R's auto.arima default: the approximate (CSS) search for long or finely seasonal series;
        # statsforecast's exact search takes over 5 CPU-seconds per 400-month series.
        "AutoARIMA": lambda: models.AutoARIMA(season_length=season, approximation=long_or_fine),
        "AutoTheta": lambda: models.AutoTheta(season_length=season),
        "SeasonalNaive": lambda: models.SeasonalNaive(season_length=season),
    }
    return factories[name]()


def fit_predict(name: str, df: pd.DataFrame, freq: str, season: int, horizon: int,
                series: list[str], n_jobs: int | None = None) -> StatRun:
    """Fit method `name` on `df` (unique_id, ds, y) and forecast `horizon` steps per series."""
    from statsforecast import StatsForecast

    # Optimiser notes from AutoARIMA's candidate models, one per series: the table says how it did.
    warnings.filterwarnings("ignore", message="possible convergence problem", category=UserWarning)
    length = int(df.groupby("unique_id").size().max())
    from statsforecast.models import Naive

    # A series too short for the method (AutoETS refuses a handful of points) gets the naive
    # forecast, as a statsforecast user would configure it, rather than failing the dataset.
    sf = StatsForecast(models=[_model(name, season, length)], freq=freq, n_jobs=n_jobs or os.cpu_count() or 1,
                       fallback_model=Naive())
    t0 = time.perf_counter()
    fc = sf.forecast(df=df, h=horizon, level=[80])
    seconds = time.perf_counter() - t0
    fc = fc.sort_values(["unique_id", "ds"])
    fc["k"] = fc.groupby("unique_id").cumcount()
    cols = {"p10": f"{name}-lo-80", "p50": name, "p90": f"{name}-hi-80"}
    out = []
    for col in cols.values():
        wide = fc.pivot(index="unique_id", columns="k", values=col).reindex(index=series, columns=range(horizon))
        out.append(wide.to_numpy(dtype=float))
    return StatRun(out[0], out[1], out[2], seconds)
