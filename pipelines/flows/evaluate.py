"""`lakecast evaluate [--as-of T]`: hold forecasts to account as their actuals arrive.

Data flow: pin the observations and forecasts versions -> the previous evaluate's versions
(job_runs) -> the keys of observations and forecasts new or changed since (each table's
Change Data Feed) -> the forecasts those actuals reach, and the actuals those forecasts reach
(files pruned by time range and forecast origin) -> `forecast_accuracy` rows -> one MERGE
(unchanged rows untouched) -> job_runs, with the versions read, so the next run starts there.

The first run, a run whose change data is gone (VACUUM), and `--as-of T` (actuals up to T
only; it does not move the starting point of later runs) read everything instead.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig
from conf.utc import from_utc_micros, to_utc_micros
from pipelines.accuracy.alerts import LiveStats, breaches, live_stats
from pipelines.accuracy.rows import accuracy_rows, forecast_actual_pairs, season_ago, with_seasonal_naive
from pipelines.flows import init_tables
from pipelines.sinks.forecast_accuracy import ACCURACY_KEY, merge_accuracy
from pipelines.sinks.forecasts import FORECAST_KEY
from pipelines.sinks.job_runs import record_run
from pipelines.spark_utc import distinct_utc, utc_lit
from pipelines.tables.ensure import delta_version

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

JOB = "evaluate"
INCREMENTAL, FULL, AS_OF = "incremental", "full", "as_of"


@dataclass
class EvaluateResult:
    """What one evaluate run did."""

    run_id: str
    mode: str
    versions_read: dict[str, int]
    counts: dict[str, int] = field(default_factory=dict)
    accuracy_version: int | None = None
    by_version: list[dict[str, Any]] = field(default_factory=list)
    live: LiveStats | None = None
    backtest_mase: float | None = None
    alerts: list[str] = field(default_factory=list)
    mlflow_runs: list[str] = field(default_factory=list)  # training runs the live metrics went to

    def summary(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "run": self.run_id,
            "mode": self.mode,
            "observations version": self.versions_read.get("observations"),
            "forecasts version": self.versions_read.get("forecasts"),
            "accuracy rows": f"{self.counts.get('evaluated', 0)} evaluated ({self.counts.get('inserted', 0)} new, "
                             f"{self.counts.get('updated', 0)} updated)",
            "forecast_accuracy version": self.accuracy_version,
        }
        if self.live is not None:
            lv = self.live
            mase = "n/a" if lv.mase is None else f"{lv.mase:.3f}"
            snaive = "n/a" if lv.snaive_mase is None else f"{lv.snaive_mase:.3f}"
            bt = "n/a" if self.backtest_mase is None else f"{self.backtest_mase:.3f}"
            out[f"champion {lv.model_name}/{lv.model_version} live"] = (
                f"last {lv.origins} origin(s), n={lv.n}: MASE={mase} (backtest {bt}, seasonal naive {snaive}) "
                f"p10-p90 coverage={lv.coverage:.3f}")
        out["alerts"] = "; ".join(self.alerts) if self.alerts else "none"
        for v in self.by_version:
            mase = "n/a" if v["mase"] is None else f"{v['mase']:.3f}"
            snaive = "n/a" if v["snaive_mase"] is None else f"{v['snaive_mase']:.3f}"
            out[f"model {v['model']}"] = (f"n={v['n']} MAE={v['mae']:.4g} MASE={mase} (seasonal naive {snaive}) "
                                          f"p10-p90 coverage={v['coverage']:.3f}")
        return out


def _last_marks(spark: SparkSession, cfg: LakecastConfig) -> dict[str, int] | None:
    """Versions read by the newest succeeded evaluate that advanced the starting point.

    Read from the run event log, not the `job_runs` view: a `succeeded` row is a run's last, so
    the filter alone finds them, where the view ranks every event of every run first.
    """
    from pyspark.sql import functions as F

    row = (spark.table(cfg.table("job_run_events"))
           .where((F.col("job") == JOB) & (F.col("status") == "succeeded")
                  & (F.get_json_object("details", "$.advances_marks") == "true"))
           .orderBy(F.col("started_at").desc()).select("versions_read").head())
    if row is None:
        return None
    marks = dict(row["versions_read"] or {})
    return marks if {"observations", "forecasts"} <= marks.keys() else None


def _changed_keys(spark: SparkSession, table: str, start: int, end: int, key: tuple[str, ...]) -> DataFrame:
    """Distinct keys of rows inserted or updated by commits start..end (the Change Data Feed)."""
    from pyspark.sql import functions as F

    return (spark.read.format("delta").option("readChangeFeed", "true")
            .option("startingVersion", start).option("endingVersion", end).table(table)
            .where(F.col("_change_type").isin("insert", "update_postimage"))
            .select(*key).distinct())


def _time_range(df: DataFrame, col: str) -> tuple[datetime, datetime] | None:
    from pyspark.sql import functions as F

    us = F.unix_micros(F.col(col))
    row = df.agg(F.min(us).alias("lo"), F.max(us).alias("hi")).head()
    if row is None or row["lo"] is None:
        return None
    return from_utc_micros(row["lo"]), from_utc_micros(row["hi"])


def _between(col: str, rng: tuple[datetime, datetime]) -> Any:
    """A range predicate Delta can skip files with (literals, not a join)."""
    from pyspark.sql import functions as F

    return F.col(col).between(utc_lit(rng[0]), utc_lit(rng[1]))


def _incremental_pairs(spark: SparkSession, cfg: LakecastConfig, obs: DataFrame, fc: DataFrame,
                       marks: dict[str, int], versions: dict[str, int],
                       counts: dict[str, int]) -> DataFrame | None:
    """Pairs reached by what changed since `marks`; None when nothing changed."""
    parts = []
    if versions["observations"] > marks["observations"]:
        keys = _changed_keys(spark, cfg.table("observations"), marks["observations"] + 1,
                             versions["observations"], ("series_id", "ts")).cache()
        counts["actuals_changed"] = keys.count()
        rng = _time_range(keys, "ts")
        if rng is not None:
            actuals = obs.where(_between("ts", rng)).join(keys, ["series_id", "ts"], "left_semi")
            parts.append(forecast_actual_pairs(fc.where(_between("target_ts", rng)), actuals))
    if versions["forecasts"] > marks["forecasts"]:
        keys = _changed_keys(spark, cfg.table("forecasts"), marks["forecasts"] + 1, versions["forecasts"],
                             FORECAST_KEY).cache()
        counts["forecasts_changed"] = keys.count()
        origins = distinct_utc(keys, "forecast_origin")
        rng = _time_range(keys, "target_ts")
        if origins and rng is not None:
            from pyspark.sql import functions as F

            new_fc = (fc.where(F.col("forecast_origin").isin([utc_lit(o) for o in origins]))
                      .join(keys, list(FORECAST_KEY), "left_semi"))
            parts.append(forecast_actual_pairs(new_fc, obs.where(_between("ts", rng))))
    if not parts:
        return None
    pairs = parts[0]
    for p in parts[1:]:
        pairs = pairs.unionByName(p)
    return pairs.dropDuplicates(list(ACCURACY_KEY))


def _by_version(rows: DataFrame) -> list[dict[str, Any]]:
    """This run's rows summarised per model version (what the command prints)."""
    from pyspark.sql import functions as F

    agg = (rows.groupBy("model_name", "model_version")
           .agg(F.count("*").alias("n"), F.avg("abs_error").alias("mae"),
                F.avg("scaled_abs_error").alias("mase"),
                F.avg(F.when(F.col("scaled_abs_error").isNotNull(), F.col("snaive_scaled_abs_error")))
                .alias("snaive_mase"),
                F.avg(F.col("inside_p10_p90").cast("double")).alias("coverage"))
           .orderBy("model_name", "model_version").collect())
    return [{"model": f"{r['model_name']}/{r['model_version']}", "n": int(r["n"]), "mae": float(r["mae"]),
             "mase": None if r["mase"] is None else float(r["mase"]),
             "snaive_mase": None if r["snaive_mase"] is None else float(r["snaive_mase"]),
             "coverage": float(r["coverage"])}
            for r in agg]


def _monitor(spark: SparkSession, cfg: LakecastConfig, result: EvaluateResult) -> None:
    """This run's metrics per version into MLflow; the champion's live accuracy and its alerts, on
    forecast_accuracy as this run left it."""
    from models.live_metrics import log_live_metrics
    from models.registry import backtest_mase

    if result.by_version:
        result.mlflow_runs = log_live_metrics(cfg, result.by_version, datetime.now(UTC).date())
    result.live = live_stats(spark.table(cfg.table("forecast_accuracy")), cfg.monitor.window)
    if result.live is None:
        return
    result.backtest_mase = backtest_mase(cfg, result.live.model_name, result.live.model_version)
    result.alerts = breaches(result.live, result.backtest_mase, cfg.monitor)
    for a in result.alerts:
        log.warning("ALERT %s", a)


def run(spark: SparkSession, cfg: LakecastConfig, *, as_of: datetime | str | None = None) -> EvaluateResult:
    """Evaluate the forecasts whose actuals arrived since the last run (all of them the first time)."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import AnalysisException
    from pyspark.sql import functions as F

    init_tables.run(spark, cfg)  # forecast_accuracy on a home made before it existed
    obs_t, fc_t = cfg.table("observations"), cfg.table("forecasts")
    as_of_dt = None if as_of is None else from_utc_micros(to_utc_micros(as_of))
    params = {"as_of": None if as_of_dt is None else as_of_dt.isoformat()}
    with record_run(spark, cfg, JOB, params) as rec:
        versions = {"observations": delta_version(spark, obs_t), "forecasts": delta_version(spark, fc_t)}
        rec.versions_read = dict(versions)
        obs = spark.sql(f"SELECT series_id, ts, value FROM {obs_t} VERSION AS OF {versions['observations']}")
        fc = spark.sql(f"SELECT * FROM {fc_t} VERSION AS OF {versions['forecasts']}")
        counts: dict[str, int] = {}
        marks = None if as_of_dt is not None else _last_marks(spark, cfg)
        mode = AS_OF if as_of_dt is not None else FULL if marks is None else INCREMENTAL
        pairs: DataFrame | None
        if mode == INCREMENTAL:
            assert marks is not None
            try:
                pairs = _incremental_pairs(spark, cfg, obs, fc, marks, versions, counts)
            except (AnalysisException, Py4JJavaError) as e:  # change data vacuumed or not enabled then
                first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
                log.warning("change data since versions %s is not readable (%s); evaluating everything",
                            marks, first[:300])
                mode, counts = FULL, {}
        if mode == AS_OF:
            assert as_of_dt is not None
            pairs = forecast_actual_pairs(fc, obs.where(F.col("ts") <= utc_lit(as_of_dt)))
        elif mode == FULL:
            pairs = forecast_actual_pairs(fc, obs)
        result = EvaluateResult(rec.run_id, mode, versions)
        evaluated = 0
        if pairs is not None:
            pairs = pairs.cache()
            # the seasonal naive reference reads only the observations its reference times reach
            refs = _time_range(pairs.select(season_ago(cfg.data.freq).alias("ref")), "ref")
            if refs is not None:  # else no forecast met an actual
                rows = accuracy_rows(with_seasonal_naive(pairs, obs.where(_between("ts", refs)), cfg.data.freq),
                                     job_run_id=rec.run_id, evaluated_at=rec.started_at.replace(tzinfo=UTC)).cache()
                evaluated = rows.count()
                merged = merge_accuracy(spark, cfg, rows, run_id=rec.run_id)
                counts.update(inserted=merged.inserted, updated=merged.updated)
                result.accuracy_version = merged.version
                rec.versions_written["forecast_accuracy"] = merged.version
                result.by_version = _by_version(rows)
                rows.unpersist()
            pairs.unpersist()
        counts["evaluated"] = evaluated
        result.counts = counts
        _monitor(spark, cfg, result)
        rec.row_counts = dict(counts)
        rec.details = {"mode": mode, "advances_marks": mode != AS_OF,
                       "from_versions": None if marks is None or mode != INCREMENTAL
                       else {k: v + 1 for k, v in marks.items()},
                       "by_version": result.by_version, "alerts": result.alerts,
                       "mlflow_runs_logged": result.mlflow_runs,
                       "live": None if result.live is None else
                       {**result.live.as_dict(), "backtest_mase": result.backtest_mase}}
        log.info("evaluate (%s): %s", mode, json.dumps(counts, sort_keys=True))
        return result
