"""Sequence windows for the LSTM, built in Spark from `observations`: the public entry points.

One row per window, in the columns of `conf.window_contract` (series_id, forecast_origin,
inputs lookback x features row-major, targets, scale_loc/scale_scale, skip_reason).

Skipped rows are kept (inputs/targets/scales NULL) so they can be counted; consumers keep
`skip_reason IS NULL`. Usable windows hold only finite numbers. Windows start at a series'
first valid observation and follow every `windows.stride` steps. See `pipelines.windows.grid` for
the grid and fill rules and `pipelines.windows.features` for covariates and scaling.
`windows.strategy` picks the kernel that cuts them: `numpy_kernel` or `sql_kernel` (kernels
take a `pipelines.windows.spec.WindowSpec` and never import this module).

Example (training windows up to a cut-off, then numpy through Arrow):

    w = training_windows(spark.table("lakecast.observations"), cfg, cutoff="2024-06-01")
    log_window_counts(w, "train windows")
    batches = w.where("skip_reason IS NULL").toArrow()
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import TYPE_CHECKING, NamedTuple

from conf import LakecastConfig
from conf.auto_steps import steps
from conf.errors import LakecastError
from conf.utc import from_utc_micros, to_utc_micros
from pipelines.windows.features import feature_names
from pipelines.windows.grid import GridSpec, shift
from pipelines.windows.grid_spark import select_observations
from pipelines.windows.numpy_kernel import numpy_windows
from pipelines.windows.spec import WindowSpec
from pipelines.windows.sql_kernel import sql_windows

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)

STRATEGIES = ("numpy", "sql")

__all__ = [
    "STRATEGIES",
    "SplitCutoffs",
    "WindowError",
    "WindowSplits",
    "count_skipped_series",
    "count_skips",
    "feature_names",
    "inference_windows",
    "log_window_counts",
    "split_cutoffs",
    "split_windows",
    "training_windows",
    "window_counts",
]


class WindowError(LakecastError):
    """Windows cannot be built or split; the message says why."""


def _build(obs: DataFrame, cfg: LakecastConfig, mode: str, t_us: int | None,
           after_us: int | None = None) -> DataFrame:
    """Dispatch to the configured strategy; `after_us` keeps training windows with a later origin."""
    spec = WindowSpec.from_config(cfg)
    df = select_observations(obs)
    if spec.strategy == "sql":
        return sql_windows(df, spec, mode, t_us, after_us)
    return numpy_windows(df, spec, mode, t_us, after_us)


def training_windows(obs: DataFrame, cfg: LakecastConfig, cutoff: datetime | str | None = None) -> DataFrame:
    """Windows of `windows.lookback` inputs and `windows.horizon` targets every `windows.stride`
    steps, seeing nothing after `cutoff` (not even for filling gaps). Lazy: no Spark job runs.

    A series shorter than one window (lookback + horizon) but with `windows.min_history` steps
    before its last horizon gives one window padded on the left (its missing steps before the
    first observation); one with fewer keeps one `too_short` row.
    """
    return _build(obs, cfg, "training", None if cutoff is None else to_utc_micros(cutoff))


def inference_windows(obs: DataFrame, cfg: LakecastConfig, as_of: datetime | str) -> DataFrame:
    """One row per series: the last `windows.lookback` grid steps at or before `as_of`.

    forecast_origin is the series' last grid step at or before `as_of` (observed or not);
    `targets` is NULL. Reasons: too_short (no observation at or before as_of, or fewer than
    `windows.min_history` steps since the first; between that and the lookback the window is
    padded on the left), stale (last observation more than scoring.max_staleness
    steps before the origin), too_many_missing.
    """
    return _build(obs, cfg, "inference", to_utc_micros(as_of))


def window_counts(windows: DataFrame) -> dict[str, int]:
    """Rows by outcome in one Spark job: `usable` plus each skip reason present."""
    from pyspark.sql import functions as F

    rows = windows.groupBy(F.coalesce("skip_reason", F.lit("usable")).alias("r")).count().collect()
    counts = {r["r"]: int(r["count"]) for r in rows}
    return {"usable": counts.pop("usable", 0), **dict(sorted(counts.items()))}


def count_skips(windows: DataFrame) -> dict[str, int]:
    """Skipped windows by reason (only reasons that occur; usable rows are not counted)."""
    return {k: v for k, v in window_counts(windows).items() if k != "usable"}


def count_skipped_series(windows: DataFrame) -> dict[str, int]:
    """Distinct series with at least one window skipped for each reason."""
    from pyspark.sql import functions as F

    rows = (windows.where(F.col("skip_reason").isNotNull()).groupBy("skip_reason")
            .agg(F.countDistinct("series_id").alias("n")).collect())
    return {r["skip_reason"]: int(r["n"]) for r in sorted(rows, key=lambda r: r["skip_reason"])}


def log_window_counts(windows: DataFrame, what: str) -> dict[str, int]:
    """Count (one Spark job) and log one line: usable windows and skipped ones by reason."""
    counts = window_counts(windows)
    skipped = {k: v for k, v in counts.items() if k != "usable"}
    log.info("%s: %d usable, %d skipped %s", what, counts["usable"], sum(skipped.values()), skipped or "")
    return counts


class SplitCutoffs(NamedTuple):
    """Targets of train windows end at or before `train_end`, validation targets lie in
    (train_end, val_end], test targets in (val_end, end]; `end` is the data's last step."""

    train_end: datetime
    val_end: datetime
    end: datetime


class WindowSplits(NamedTuple):
    train: DataFrame
    val: DataFrame
    test: DataFrame


def split_cutoffs(obs: DataFrame, cfg: LakecastConfig, end: datetime | str | None = None) -> SplitCutoffs:
    """Cut-offs counted back from the data's end (or `end`): `train.test_periods` steps of
    test, before them `train.val_periods` steps of validation, the rest for training."""
    from pyspark.sql import functions as F

    if end is None:
        row = select_observations(obs).agg(F.max(F.unix_micros("ts")).alias("end")).head()
        if row is None or row["end"] is None:
            raise WindowError("cannot split: the observations are empty")
        end_dt = from_utc_micros(row["end"])
    else:
        end_dt = from_utc_micros(to_utc_micros(end))
    grid, s = GridSpec.from_config(cfg), steps(cfg)
    val_end = shift(grid, end_dt, -s.test_periods)
    return SplitCutoffs(shift(grid, val_end, -s.val_periods), val_end, end_dt)


def split_windows(obs: DataFrame, cfg: LakecastConfig, cutoffs: SplitCutoffs | None = None) -> WindowSplits:
    """Train / validation / test windows by time (`split_cutoffs` unless given).

    Each part is built with its own cut-off, so no part sees (or fills from) later data;
    validation and test keep windows whose first target falls after the previous cut-off.
    `too_short` rows are kept in every part: they say the series lacks history for it.
    """
    from pyspark.sql import functions as F

    c = cutoffs or split_cutoffs(obs, cfg)
    grid = GridSpec.from_config(cfg)

    def after(cutoff: datetime, t: datetime) -> DataFrame:
        # first target = origin + 1 step > t  <=>  origin > t - 1 step. The strategy skips
        # earlier windows without building them; the filter states the contract.
        after_us = to_utc_micros(shift(grid, t, -1))
        df = _build(obs, cfg, "training", to_utc_micros(cutoff), after_us)
        first_ok = F.col("forecast_origin") > F.timestamp_micros(F.lit(after_us))
        return df.where(first_ok | (F.col("skip_reason") == "too_short"))

    log.info("split cut-offs: train <= %s < val <= %s < test <= %s", c.train_end, c.val_end, c.end)
    return WindowSplits(
        training_windows(obs, cfg, cutoff=c.train_end),
        after(c.val_end, c.train_end),
        after(c.end, c.val_end),
    )
