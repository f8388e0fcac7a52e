"""Which series need rescoring for an origin already scored (`lakecast predict --changed-only`).

Every forecast row carries `source_version`, the `observations` Delta version it was scored
from. For the run's origin (the grid step at or before `as_of`; only that partition of
`forecasts` is read) the newest `source_version` of the pinned model version says how far the
forecasts there are current; the observations' Change Data Feed from the next version to the
one this run pinned names the series with a row inserted, corrected or deleted at or before
`as_of` (later rows cannot change a window that ends at the origin). Only those series are
scored again; one overwrite replaces their rows and leaves every other forecast as it is. The cost
follows the commits since the last scoring, not the size of the history.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.window_contract import OBS_SERIES, OBS_TIME
from pipelines.spark_utc import utc_lit
from pipelines.windows.grid import GridSpec, shift

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

# Row changes that alter a window: a new row, a corrected value, a removed row (`forget`).
WINDOW_CHANGES = ("insert", "update_postimage", "delete")


def scored_source_version(spark: SparkSession, cfg: LakecastConfig, as_of: datetime,
                          models: list[tuple[str, str]]) -> int | None:
    """The observations version the forecasts at `as_of`'s origin are current with: per model
    version the newest `source_version` of its rows there, the oldest of those over `models`;
    None when one of them has no forecast at that origin (nothing to be incremental on)."""
    from pyspark.sql import functions as F

    after = shift(GridSpec.from_config(cfg), as_of, -1)  # the origin: after the step before as_of
    fc = spark.table(cfg.table("forecasts")).where(
        (F.col("forecast_origin") > utc_lit(after)) & (F.col("forecast_origin") <= utc_lit(as_of)))
    versions = []
    for name, version in models:
        row = (fc.where((F.col("model_name") == name) & (F.col("model_version") == version))
               .agg(F.max("source_version").alias("v")).head())
        if row is None or row["v"] is None:
            return None
        versions.append(int(row["v"]))
    return min(versions)


def changed_series(spark: SparkSession, cfg: LakecastConfig, start: int, end: int, as_of: datetime) -> DataFrame:
    """Distinct series ids (column `series_id`) with a row at or before `as_of` inserted, updated
    or deleted by the observations commits `start`..`end` (Change Data Feed, both inclusive)."""
    from pyspark.sql import functions as F

    return (spark.read.format("delta").option("readChangeFeed", "true")
            .option("startingVersion", start).option("endingVersion", end).table(cfg.table("observations"))
            .where(F.col("_change_type").isin(*WINDOW_CHANGES) & (F.col(OBS_TIME) <= utc_lit(as_of)))
            .select(F.col(OBS_SERIES).cast("string").alias("series_id")).distinct())


def only_series(obs: DataFrame, series: DataFrame) -> DataFrame:
    """`obs` (the observations table) restricted to `series` (a small, collected-size set:
    broadcast, no shuffle of obs)."""
    from pyspark.sql import functions as F

    keys = series.withColumnRenamed("series_id", "__changed_series")
    return (obs.join(F.broadcast(keys), F.col(OBS_SERIES).cast("string") == F.col("__changed_series"),
                     "left_semi"))
