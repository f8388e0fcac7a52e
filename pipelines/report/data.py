"""What the accuracy report shows, read from `forecast_accuracy` and `observations` as plain Python.

Each query is one aggregate (or one small selection for the fan charts); times travel as UTC
epoch microseconds, so the host's zone never enters.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig

if TYPE_CHECKING:
    from pyspark.sql import SparkSession


@dataclass(frozen=True)
class FanChart:
    """One series around the champion's latest evaluated origin: history, forecast band, actuals."""

    series_id: str
    model: str
    origin_us: int
    mase: float | None
    history: list[tuple[int, float]]                       # (ts_us, value) up to the origin
    forecast: list[tuple[int, float, float, float, float]]  # (target_us, p10, p50, p90, actual)


@dataclass
class ReportData:
    """Everything the page draws; empty lists when nothing has been evaluated yet."""

    database: str
    window: int
    by_day: list[dict[str, Any]] = field(default_factory=list)    # version x origin day
    by_step: list[dict[str, Any]] = field(default_factory=list)   # version x horizon step
    worst: list[FanChart] = field(default_factory=list)
    totals: dict[str, Any] = field(default_factory=dict)


def _rows(spark: SparkSession, sql: str) -> list[dict[str, Any]]:
    return [r.asDict() for r in spark.sql(sql).collect()]


def read_report_data(spark: SparkSession, cfg: LakecastConfig, *, worst: int = 6) -> ReportData:
    """The report's figures: live accuracy per version by origin day and by horizon step, and the
    `worst` series of the champion (MASE over its last `monitor.window` origins) as fan charts."""
    fa, obs = cfg.table("forecast_accuracy"), cfg.table("observations")
    out = ReportData(cfg.catalog.database, cfg.monitor.window)
    both = "scaled_abs_error IS NOT NULL AND snaive_scaled_abs_error IS NOT NULL"
    out.by_day = _rows(spark, f"""
        SELECT concat(model_name, '/', model_version) AS model,
               unix_micros(CAST(CAST(forecast_origin AS DATE) AS TIMESTAMP)) AS day_us, count(*) AS n,
               avg(CASE WHEN {both} THEN scaled_abs_error END) AS mase,
               avg(CASE WHEN {both} THEN snaive_scaled_abs_error END) AS snaive_mase,
               avg(CAST(inside_p10_p90 AS DOUBLE)) AS coverage
        FROM {fa} GROUP BY 1, 2 ORDER BY 1, 2""")
    out.by_step = _rows(spark, f"""
        SELECT concat(model_name, '/', model_version) AS model, horizon_step, count(*) AS n,
               avg(abs_error) AS mae, avg(CASE WHEN {both} THEN scaled_abs_error END) AS mase,
               avg(CASE WHEN {both} THEN snaive_scaled_abs_error END) AS snaive_mase
        FROM {fa} GROUP BY 1, 2 ORDER BY 1, 2""")
    totals = _rows(spark, f"""
        SELECT count(*) AS n, count(DISTINCT series_id) AS series, count(DISTINCT forecast_origin) AS origins,
               date_format(max(evaluated_at), 'yyyy-MM-dd HH:mm:ss') AS evaluated_at FROM {fa}""")[0]
    out.totals = totals  # evaluated_at formatted by Spark in the session's UTC: never the host's zone
    champ = _rows(spark, f"""
        SELECT model_name, model_version FROM {fa} WHERE model_role = 'champion'
        ORDER BY forecast_origin DESC, model_version DESC LIMIT 1""")
    if not champ:
        return out
    name, version = champ[0]["model_name"], champ[0]["model_version"]
    mine = f"model_name = '{name}' AND model_version = '{version}'"
    ranked = _rows(spark, f"""
        WITH recent AS (
          SELECT DISTINCT forecast_origin FROM {fa} WHERE {mine} ORDER BY forecast_origin DESC
          LIMIT {int(cfg.monitor.window)})
        SELECT series_id, avg(scaled_abs_error) AS mase,
               unix_micros(max(forecast_origin)) AS origin_us
        FROM {fa} WHERE {mine} AND forecast_origin IN (SELECT forecast_origin FROM recent)
        GROUP BY series_id ORDER BY mase DESC NULLS LAST, series_id LIMIT {int(worst)}""")
    if not ranked:
        return out
    ids = ", ".join("'" + str(r["series_id"]).replace("'", "''") + "'" for r in ranked)
    origin_of = {str(r["series_id"]): int(r["origin_us"]) for r in ranked}
    fc = _rows(spark, f"""
        SELECT series_id, unix_micros(forecast_origin) AS o, unix_micros(target_ts) AS t, p10, p50, p90, actual,
               horizon_step
        FROM {fa} WHERE {mine} AND series_id IN ({ids})
          AND unix_micros(forecast_origin) IN ({", ".join(str(o) for o in set(origin_of.values()))})
        ORDER BY series_id, target_ts""")
    span = 3 * max((int(f["horizon_step"]) for f in fc), default=1)  # history: three horizons back
    step_us = max(1, min((int(f["t"]) - int(f["o"])) // int(f["horizon_step"]) for f in fc)) if fc else 1
    lo, hi = min(origin_of.values()) - span * step_us, max(origin_of.values())
    hist = _rows(spark, f"""
        SELECT series_id, unix_micros(ts) AS t, value FROM {obs}
        WHERE series_id IN ({ids}) AND ts BETWEEN timestamp_micros({lo}) AND timestamp_micros({hi})
          AND value IS NOT NULL ORDER BY series_id, ts""")
    for r in ranked:
        sid, origin = str(r["series_id"]), int(r["origin_us"])
        mine_fc = [f for f in fc if f["series_id"] == sid and int(f["o"]) == origin]
        mine_hist = [h for h in hist if h["series_id"] == sid and int(h["t"]) <= origin][-span:]
        out.worst.append(FanChart(
            sid, f"{name}/{version}", origin, None if r["mase"] is None else float(r["mase"]),
            [(int(h["t"]), float(h["value"])) for h in mine_hist],
            [(int(f["t"]), float(f["p10"]), float(f["p50"]), float(f["p90"]), float(f["actual"])) for f in mine_fc]))
    return out
