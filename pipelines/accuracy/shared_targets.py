"""Champion and challenger on the targets both were shadow-scored on, for `lakecast promote --by live`.

One aggregate over `forecast_accuracy`: the two versions' rows joined on (series_id,
forecast_origin, target_ts), kept where both have a scaled error and seasonal naive has one
too, so the three MASEs are means over exactly the same targets.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


@dataclass(frozen=True)
class SharedTargets:
    """Live MASE of both versions and of seasonal naive on their shared targets."""

    n: int
    origins: int
    challenger_mase: float
    champion_mase: float
    seasonal_naive_mase: float
    first_origin: str
    last_origin: str


def shared_targets(accuracy: DataFrame, model_name: str, challenger: str, champion: str) -> SharedTargets:
    """The comparison over every target both versions of `model_name` were evaluated on."""
    from pyspark.sql import functions as F

    def side(version: str, prefix: str) -> DataFrame:
        return accuracy.where((F.col("model_name") == model_name) & (F.col("model_version") == version)
                              & F.col("scaled_abs_error").isNotNull()).select(
            "series_id", "forecast_origin", "target_ts",
            F.col("scaled_abs_error").alias(f"{prefix}_scaled"),
            F.col("snaive_scaled_abs_error").alias(f"{prefix}_snaive"))

    both = (side(challenger, "ch").join(side(champion, "cm"), ["series_id", "forecast_origin", "target_ts"])
            .where(F.col("cm_snaive").isNotNull()))
    r = both.agg(F.count("*").alias("n"), F.countDistinct("forecast_origin").alias("origins"),
                 F.avg("ch_scaled").alias("ch"), F.avg("cm_scaled").alias("cm"), F.avg("cm_snaive").alias("sn"),
                 F.date_format(F.min("forecast_origin"), "yyyy-MM-dd'T'HH:mm").alias("first"),
                 F.date_format(F.max("forecast_origin"), "yyyy-MM-dd'T'HH:mm").alias("last")).head()
    assert r is not None
    nan = float("nan")
    return SharedTargets(int(r["n"]), int(r["origins"]), nan if r["ch"] is None else float(r["ch"]),
                         nan if r["cm"] is None else float(r["cm"]), nan if r["sn"] is None else float(r["sn"]),
                         r["first"] or "-", r["last"] or "-")
