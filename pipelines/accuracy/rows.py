"""Forecasts + actuals -> `forecast_accuracy` rows: pure DataFrame functions, no I/O.

Every metric is per row, so any aggregate (MAE, MASE, bias, coverage, pinball) is a plain
mean over the rows a query selects; the MASE denominator is the one stored with the forecast
when it was scored (`forecasts.mase_scale`), never recomputed from a history that may have
changed since.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from conf.freq import parse_freq
from pipelines.spark_utc import utc_lit

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

QUANTILES = (("p10", 0.1), ("p50", 0.5), ("p90", 0.9))


def pinball(actual: Column, forecast: Column, q: float) -> Column:
    """Quantile loss of `forecast` at level q: q*(y-f) when under-forecast, (1-q)*(f-y) when over."""
    from pyspark.sql import functions as F

    diff = actual - forecast
    return F.greatest(F.lit(q) * diff, F.lit(q - 1.0) * diff)


def forecast_actual_pairs(forecasts: DataFrame, actuals: DataFrame) -> DataFrame:
    """Each forecast whose target time has an actual: forecasts' columns plus `actual`.

    `actuals` has (series_id, ts, value); NULL values are not actuals.
    """
    from pyspark.sql import functions as F

    a = actuals.where(F.col("value").isNotNull()).select(
        F.col("series_id").alias("_sid"), F.col("ts").alias("_ts"), F.col("value").alias("actual"))
    return (forecasts.join(a, (F.col("series_id") == F.col("_sid")) & (F.col("target_ts") == F.col("_ts")))
            .drop("_sid", "_ts"))


def season_ago(freq: str) -> Column:
    """The time seasonal naive forecasts `target_ts` from: whole seasons back, the fewest that reach
    the origin or before it (ceil(horizon_step / season) seasons), as the backtest's baseline."""
    from pyspark.sql import functions as F

    f = parse_freq(freq)
    m = f.season_length()
    seasons = F.floor((F.col("horizon_step") - 1) / m) + 1
    if f.is_calendar:
        months = (seasons * (m * f.months)).cast("int")
        if f.period_end:  # month ends stay month ends (Feb 28 2025 -> Feb 29 2024)
            back = F.add_months(F.to_date("target_ts"), -months)
            return F.to_timestamp(F.last_day(back))  # grid steps are at midnight (UTC session)
        return F.col("target_ts") - F.make_ym_interval(F.lit(0), months)
    step_us = int(f.step.total_seconds() * 1_000_000)
    return F.timestamp_micros(F.unix_micros(F.col("target_ts")) - seasons * F.lit(m * step_us))


def with_seasonal_naive(pairs: DataFrame, actuals: DataFrame, freq: str) -> DataFrame:
    """`pairs` plus `snaive_forecast`: the actual one or more seasons before the target (NULL when
    not observed), the reference every live MASE is read against."""
    from pyspark.sql import functions as F

    ref = pairs.withColumn("_ref_ts", season_ago(freq))
    a = actuals.select(F.col("series_id").alias("_sid"), F.col("ts").alias("_ts"),
                       F.col("value").alias("snaive_forecast"))
    on = (F.col("series_id") == F.col("_sid")) & (F.col("_ref_ts") == F.col("_ts"))
    return ref.join(a, on, "left").drop("_sid", "_ts", "_ref_ts")


def accuracy_rows(pairs: DataFrame, *, job_run_id: str, evaluated_at: datetime) -> DataFrame:
    """`forecast_accuracy` rows (in the table's column order) of forecast/actual pairs
    (`with_seasonal_naive` applied)."""
    from pyspark.sql import functions as F

    y, p10, p50, p90 = F.col("actual"), F.col("p10"), F.col("p50"), F.col("p90")
    abs_err = F.abs(y - p50)
    scale = F.col("mase_scale")
    return pairs.select(
        "series_id", "forecast_origin", "target_ts", "model_name", "model_version", "horizon_step",
        y.alias("actual"), p10.alias("p10"), p50.alias("p50"), p90.alias("p90"),
        (y - p50).alias("error"),
        abs_err.alias("abs_error"),
        F.when(scale > 0, abs_err / scale).alias("scaled_abs_error"),
        F.col("snaive_forecast"),
        F.when(scale > 0, F.abs(y - F.col("snaive_forecast")) / scale).alias("snaive_scaled_abs_error"),
        *(pinball(y, F.col(c), q).alias(f"pinball_{c}") for c, q in QUANTILES),
        ((y >= p10) & (y <= p90)).alias("inside_p10_p90"),
        F.col("model_role"),
        utc_lit(evaluated_at).alias("evaluated_at"),
        F.lit(job_run_id).alias("job_run_id"),
    )
