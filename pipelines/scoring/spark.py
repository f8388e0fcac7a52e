"""Distributed batch scoring in Spark: inference windows (or observations) -> scored rows.

The UDFs are thin (`mapInArrow` over `pipelines.scoring.worker.score_partition` or
`pipelines.scoring.fused.score_observations_partition`). They receive a loader (see
`pipelines.scoring.worker`) and never learn how models are stored. Scored rows
(SCORED_SCHEMA) hold forecasts (`skip_reason` NULL) and one row per skipped window;
`forecast_rows` and `scored_counts` split them.
"""

from __future__ import annotations

from datetime import datetime
from functools import partial
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.utc import to_utc_micros
from conf.window_contract import INFERENCE_COLUMNS, OBS_SERIES, OBS_TIME, OBS_VALUE, OBSERVATION_COLUMNS
from pipelines.scoring.fused import score_observations_partition
from pipelines.scoring.kernel import SCORED_SCHEMA
from pipelines.scoring.plan import Lineage, ScoringError, ScoringPlan
from pipelines.scoring.worker import Loader, score_partition
from pipelines.spark_utc import utc_lit
from pipelines.windows.spec import WindowSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame


def score_windows(windows: DataFrame, plan: ScoringPlan, loader: Loader) -> DataFrame:
    """Inference windows -> scored rows (SCORED_SCHEMA): forecasts, plus one row per skipped window.

    Forecast rows have `skip_reason` NULL; a skipped window appears once with its reason and
    NULL forecasts (`forecast_rows` / `scored_counts` split them).
    """
    missing = [c for c in INFERENCE_COLUMNS if c not in windows.columns]
    if missing:
        raise ScoringError(f"windows lack column(s) {', '.join(missing)}; have {', '.join(windows.columns)}")
    return windows.select(*INFERENCE_COLUMNS).mapInArrow(
        partial(score_partition, plan=plan, loader=loader), SCORED_SCHEMA)


def score_observations(obs: DataFrame, cfg: LakecastConfig, as_of: datetime, plan: ScoringPlan,
                       loader: Loader) -> DataFrame:
    """Observations (the table's OBSERVATION_COLUMNS) -> scored rows (SCORED_SCHEMA) in ONE Python
    stage: windows are cut in the UDF.

    The same rows as `score_windows(inference_windows(obs, cfg, as_of), ...)` (the window code
    is `pipelines.windows.numpy_kernel.series_windows` either way), but the windows never cross into
    the JVM and back: each crossing costs more CPU per window than the model itself (see
    bench/RESULTS.md). Observations are shuffled by series and sorted by time; a worker
    gathers windows for about `scoring.arrow_batch_rows` forecast rows before each model call
    (which runs them in batches of `scoring.batch_size`).
    """
    from pyspark.sql import functions as F

    missing = [c for c in OBSERVATION_COLUMNS if c not in obs.columns]
    if missing:
        raise ScoringError(f"cannot score: column(s) {', '.join(missing)} not found in the observations "
                           f"(columns: {', '.join(obs.columns)}); scoring reads the observations table's "
                           f"{', '.join(OBSERVATION_COLUMNS)}, as `lakecast ingest` writes them")
    rows = obs.select(F.col(OBS_SERIES).cast("string").alias(OBS_SERIES),
                      F.col(OBS_TIME).cast("timestamp").alias(OBS_TIME),
                      F.col(OBS_VALUE).cast("double").alias(OBS_VALUE))
    fn = partial(score_observations_partition, plan=plan, loader=loader, spec=WindowSpec.from_config(cfg),
                 as_of_us=to_utc_micros(as_of))
    return (rows.repartition("series_id").sortWithinPartitions("series_id", "ts")
            .mapInArrow(fn, SCORED_SCHEMA))


def forecast_rows(scored: DataFrame, lineage: Lineage) -> DataFrame:
    """The forecast rows of `score_windows` with lineage, in the `forecasts` table's column order."""
    from pyspark.sql import functions as F

    return scored.filter(F.col("skip_reason").isNull()).select(
        "series_id", "forecast_origin", "target_ts", "horizon_step", "p10", "p50", "p90",
        F.lit(lineage.model_name).alias("model_name"),
        F.lit(lineage.model_version).alias("model_version"),
        F.lit(lineage.model_run_id).cast("string").alias("model_run_id"),
        F.lit(lineage.source_version).cast("bigint").alias("source_version"),
        F.lit(lineage.job_run_id).alias("job_run_id"),
        utc_lit(lineage.scored_at).alias("scored_at"),
        F.lit(lineage.model_role).alias("model_role"),
        "mase_scale",
    )


def skipped_series(scored: DataFrame, reasons: list[str], n: int) -> dict[str, list[str]]:
    """The first `n` series ids (in order) skipped for each of `reasons`: a count alone does not
    tell a user which of their series got no forecast."""
    from pyspark.sql import functions as F

    return {r: [row["series_id"] for row in scored.where(F.col("skip_reason") == r).select("series_id")
                .distinct().orderBy("series_id").limit(n).collect()] for r in reasons}


def scored_counts(scored: DataFrame) -> dict[str, int]:
    """Rows by outcome in one pass: `forecast_rows`, and windows skipped per reason."""
    counts = {r["skip_reason"]: int(r["count"]) for r in scored.groupBy("skip_reason").count().collect()}
    out = {"forecast_rows": counts.pop(None, 0)}
    out.update({f"skipped_{k}": v for k, v in sorted(counts.items())})
    return out
