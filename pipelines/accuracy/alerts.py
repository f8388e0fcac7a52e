"""Degradation alerts: is the champion still earning its place on the actuals that arrived?

`live_stats` reads the champion's rows of `forecast_accuracy` over its trailing
`monitor.window` origins (partition-pruned aggregates); `breaches` is the pure decision: live MASE
against the version's backtest MASE and against seasonal naive on the same targets, p10-p90
coverage against the nominal 80 %.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from conf.schema import MonitorConfig

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

NOMINAL_COVERAGE = 0.8  # p10..p90


@dataclass(frozen=True)
class LiveStats:
    """The champion's live accuracy over its trailing origins."""

    model_name: str
    model_version: str
    origins: int
    n: int
    mase: float | None
    snaive_mase: float | None
    coverage: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DAY_US = 86_400_000_000


def live_stats(accuracy: DataFrame, window: int) -> LiveStats | None:
    """Stats of the version that scored as champion most recently, over its last `window` origins.

    Reads in proportion to the window, not the history: one aggregate finds the newest (and
    oldest) champion origin, then only partitions from a look-back span back are read, the
    span widened eightfold until it holds `window` origins or reaches the oldest.
    """
    from pyspark.sql import functions as F

    champ = accuracy.where(F.col("model_role") == "champion")
    bounds = champ.agg(F.unix_micros(F.max("forecast_origin")).alias("hi"),
                       F.unix_micros(F.min("forecast_origin")).alias("lo")).head()
    if bounds is None or bounds["hi"] is None:
        return None
    hi, oldest = int(bounds["hi"]), int(bounds["lo"])

    def origin_between(lo: int) -> Column:
        return F.col("forecast_origin").between(F.timestamp_micros(F.lit(lo)), F.timestamp_micros(F.lit(hi)))

    newest = (champ.where(origin_between(hi)).select("model_name", "model_version")
              .orderBy(F.col("model_version").desc()).head())
    assert newest is not None
    mine = champ.where((F.col("model_name") == newest["model_name"])
                       & (F.col("model_version") == newest["model_version"]))
    span = DAY_US
    while True:
        lo = max(hi - span, oldest)
        origins = sorted(int(r[0]) for r in mine.where(origin_between(lo))
                         .select(F.unix_micros("forecast_origin")).distinct().collect())
        if len(origins) >= window or lo <= oldest:
            break
        span *= 8
    recent = mine.where(origin_between(origins[-window:][0]))
    both = F.col("scaled_abs_error").isNotNull() & F.col("snaive_scaled_abs_error").isNotNull()
    r = recent.agg(
        F.countDistinct("forecast_origin").alias("origins"), F.count("*").alias("n"),
        F.avg(F.when(both, F.col("scaled_abs_error"))).alias("mase"),
        F.avg(F.when(both, F.col("snaive_scaled_abs_error"))).alias("snaive_mase"),
        F.avg(F.col("inside_p10_p90").cast("double")).alias("coverage"),
    ).head()
    assert r is not None
    return LiveStats(str(newest["model_name"]), str(newest["model_version"]), int(r["origins"]), int(r["n"]),
                     None if r["mase"] is None else float(r["mase"]),
                     None if r["snaive_mase"] is None else float(r["snaive_mase"]), float(r["coverage"]))


def breaches(stats: LiveStats, backtest_mase: float | None, monitor: MonitorConfig) -> list[str]:
    """One sentence per breached rule; none below `monitor.min_targets` evaluated targets."""
    if stats.n < monitor.min_targets:
        return []
    key = f"champion {stats.model_name}/{stats.model_version}"
    span = f"over its last {stats.origins} origin(s), {stats.n} targets"
    out = []
    if stats.mase is not None and backtest_mase is not None and backtest_mase > 0:
        limit = backtest_mase * (1 + monitor.mase_degradation)
        if stats.mase > limit:
            out.append(f"{key}: live MASE {stats.mase:.3f} {span} is above its backtest MASE {backtest_mase:.3f} "
                       f"by more than monitor.mase_degradation={monitor.mase_degradation:g}")
    if stats.mase is not None and stats.snaive_mase is not None and stats.mase > stats.snaive_mase:
        out.append(f"{key}: live MASE {stats.mase:.3f} {span} is worse than seasonal naive's "
                   f"{stats.snaive_mase:.3f} on the same targets")
    if abs(stats.coverage - NOMINAL_COVERAGE) > monitor.coverage_tolerance:
        out.append(f"{key}: p10-p90 coverage {stats.coverage:.3f} {span} is outside "
                   f"{NOMINAL_COVERAGE:.2f} +- monitor.coverage_tolerance={monitor.coverage_tolerance:g}")
    return out
