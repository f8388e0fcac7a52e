"""Forecasts + actuals -> `forecast_accuracy` rows: pure DataFrame functions, no I/O.

Every metric is per row, so any aggregate (MAE, MASE, bias, coverage, pinball) is a plain
mean over the rows a query selects; the MASE denominator is the one stored with the forecast
when it was scored (`forecasts.mase_scale`), never recomputed from a history that may have
changed since.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

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


def accuracy_rows(pairs: DataFrame, *, job_run_id: str, evaluated_at: datetime) -> DataFrame:
    """`forecast_accuracy` rows (in the table's column order) of forecast/actual pairs."""
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
        *(pinball(y, F.col(c), q).alias(f"pinball_{c}") for c, q in QUANTILES),
        ((y >= p10) & (y <= p90)).alias("inside_p10_p90"),
        F.col("model_role"),
        utc_lit(evaluated_at).alias("evaluated_at"),
        F.lit(job_run_id).alias("job_run_id"),
    )
