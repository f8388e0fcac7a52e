"""Writer of the governed `forecasts` table (scoring: `lakecast predict`).

One keyed MERGE per run, so a re-run of the same as-of replaces rather than duplicates, and
a run that fails commits nothing. The commit carries the job run id (Delta userMetadata); its
version and counts are read from that commit, found by the run id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession

from conf import LakecastConfig
from pipelines.spark_utc import distinct_utc, utc_sql_literal
from pipelines.tables.commits import commit_of_run, commits_tagged
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.specs import FORECASTS, sql_quote

log = logging.getLogger(__name__)

# model_version is part of the key: a challenger scored in shadow lives beside the champion, never over it.
FORECAST_KEY = ("series_id", "forecast_origin", "target_ts", "model_name", "model_version")


@dataclass(frozen=True)
class ForecastsMerge:
    """What one MERGE into forecasts did, by Delta's own metrics of its commit."""

    source_rows: int
    inserted: int
    updated: int
    version: int


# At most this many series are named in a MERGE's ON (`merge_condition`'s `series`); above it the
# list would cost more to plan than the rows it lets the MERGE skip.
MAX_NAMED_SERIES = 20_000


def merge_condition(origins: Sequence[datetime], key: Sequence[str] = FORECAST_KEY,
                    series: Sequence[str] | None = None) -> str:
    """The MERGE's ON: the key, and the run's origins as literals (the table is partitioned by
    forecast_origin), so Delta reads and rewrites only those partitions and records only them
    as read: runs for other origins commit without a conflict.

    `series` (a superset of the source's series; `predict --changed-only` passes the changed
    ones): also named, so both of the MERGE's passes over the origin's rows keep only those
    series' rows before the join. With 1 % of 100,000 series it halved the MERGE of their 24,000
    rows into an origin of 2.4 M (bench/RESULTS.md, "Incremental rescoring")."""
    on = " AND ".join(f"t.{k} = s.{k}" for k in key)
    if series is not None and 0 < len(series) <= MAX_NAMED_SERIES:
        names = ", ".join(f"'{sql_quote(x)}'" for x in sorted(set(series)))
        on = f"t.series_id IN ({names}) AND {on}"
    if not origins:
        return on
    lits = ", ".join(utc_sql_literal(o) for o in sorted(set(origins)))
    return f"t.forecast_origin IN ({lits}) AND {on}"


def merge_forecasts(spark: SparkSession, cfg: LakecastConfig, forecasts: DataFrame, *,
                    run_id: str, series: Sequence[str] | None = None) -> ForecastsMerge:
    """MERGE a run's forecasts (fully computed) into `forecasts` as one Delta transaction.

    Keyed on (series_id, forecast_origin, target_ts, model_name, model_version): re-running the
    same as-of with the same version replaces the rows (new values and lineage), never duplicates
    them; another version's forecasts (a shadow-scored challenger) sit beside them. A run that fails
    before or during the MERGE commits nothing, so no partial forecasts are ever visible.
    The commit carries `run_id`; inserted/updated are its numTargetRowsInserted/Updated.
    The source's distinct origins are read first (cache it) and named in the condition: the
    MERGE touches only their partitions. `series`: every series the source may hold, when the
    caller knows them to be few (`merge_condition`).
    """
    from delta.tables import DeltaTable

    table = cfg.table(FORECASTS.name)
    source = forecasts.select(*FORECASTS.column_names)
    on = merge_condition(distinct_utc(source, "forecast_origin"), series=series)
    with commits_tagged(spark, run_id):
        retry_on_conflict(lambda: (
            DeltaTable.forName(spark, table).alias("t")
            .merge(source.alias("s"), on)
            .whenMatchedUpdateAll()
            .whenNotMatchedInsertAll()
            .execute()
        ), what=f"MERGE into {table}")  # a run for the same origin may write at once
    commit = commit_of_run(spark, table, run_id)
    inserted, updated = commit.metric("numTargetRowsInserted"), commit.metric("numTargetRowsUpdated")
    version = commit.version
    source_rows = commit.metric("numSourceRows")
    log.info("merged into %s: %d inserted, %d replaced (version %d)", table, inserted, updated, version)
    return ForecastsMerge(source_rows, inserted, updated, version)
