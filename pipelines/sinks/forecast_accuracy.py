"""Writer of the governed `forecast_accuracy` table (`lakecast evaluate`).

One keyed MERGE per run. Rows whose inputs did not change are left alone (a re-run writes
nothing); a corrected actual or a re-scored forecast updates its row. Like `forecasts`, the
table is partitioned by origin and the condition names the run's origins, so a MERGE reads and
rewrites only those partitions, whatever the history.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from pyspark.sql import DataFrame, SparkSession

from conf import LakecastConfig
from pipelines.sinks.forecasts import merge_condition
from pipelines.spark_utc import distinct_utc
from pipelines.tables.commits import commit_of_run, commits_tagged
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.specs import FORECAST_ACCURACY

log = logging.getLogger(__name__)

ACCURACY_KEY = ("series_id", "forecast_origin", "target_ts", "model_name", "model_version")
# A row is rewritten only when what it was computed from changed.
_INPUTS = ("actual", "p10", "p50", "p90", "scaled_abs_error", "snaive_forecast", "horizon_step", "model_role")


@dataclass(frozen=True)
class AccuracyMerge:
    """What one MERGE into forecast_accuracy did, by Delta's metrics of its commit."""

    source_rows: int
    inserted: int
    updated: int
    version: int


def merge_accuracy(spark: SparkSession, cfg: LakecastConfig, rows: DataFrame, *, run_id: str) -> AccuracyMerge:
    """MERGE accuracy rows (computed; cache them: their origins are read first) as one transaction."""
    from delta.tables import DeltaTable

    table = cfg.table(FORECAST_ACCURACY.name)
    source = rows.select(*FORECAST_ACCURACY.column_names)
    on = merge_condition(distinct_utc(source, "forecast_origin"), ACCURACY_KEY)
    changed = " OR ".join(f"NOT (t.{c} <=> s.{c})" for c in _INPUTS)
    with commits_tagged(spark, run_id):
        retry_on_conflict(lambda: (
            DeltaTable.forName(spark, table).alias("t")
            .merge(source.alias("s"), on)
            .whenMatchedUpdateAll(condition=changed)
            .whenNotMatchedInsertAll()
            .execute()
        ), what=f"MERGE into {table}")
    commit = commit_of_run(spark, table, run_id)
    out = AccuracyMerge(commit.metric("numSourceRows"), commit.metric("numTargetRowsInserted"),
                        commit.metric("numTargetRowsUpdated"), commit.version)
    log.info("merged into %s: %d new, %d updated of %d evaluated (version %d)",
             table, out.inserted, out.updated, out.source_rows, out.version)
    return out
