"""Writer of the governed `forecasts` table (scoring: `lakecast predict`).

One write per run: a keyed MERGE (insert-only at an origin its version has not scored), or for
`predict --changed-only` one overwrite of the rescored series' rows. A re-run of the same as-of
replaces rather than duplicates, and a run that fails commits nothing (except on the MERGE's rare
race path, `tables.keyed_merge`). Each commit carries the job run id (Delta userMetadata); its
version and counts are read from that commit, found by the run id.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from pyspark.sql import DataFrame, SparkSession

from conf import LakecastConfig
from pipelines.spark_utc import utc_sql_literal
from pipelines.tables.commits import commit_of_run, commits_tagged
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.keyed_merge import keyed_merge
from pipelines.tables.specs import FORECASTS, sql_quote

log = logging.getLogger(__name__)

# model_version is part of the key: a challenger scored in shadow lives beside the champion, never over it.
FORECAST_KEY = ("series_id", "forecast_origin", "target_ts", "model_name", "model_version")


@dataclass(frozen=True)
class ForecastsMerge:
    """What a run's write into forecasts did, by Delta's own metrics of its commit(s)."""

    source_rows: int
    inserted: int
    updated: int
    versions: tuple[int, ...]     # the run's commits: two only on the MERGE's race path

    @property
    def version(self) -> int:
        """The run's last commit."""
        return self.versions[-1]


# At most this many series names go into a changed-only overwrite's condition (one per origin and
# model version); above it the keyed MERGE is used. A bound on the statement's size, not a measured
# break-even: 20,000 names is about 0.3 MB of SQL, planned once.
MAX_NAMED_SERIES = 20_000


def merge_condition(origins: Sequence[datetime], key: Sequence[str] = FORECAST_KEY) -> str:
    """The MERGE's ON: the key, and the run's origins as literals (the table is partitioned by
    forecast_origin), so Delta reads and rewrites only those partitions and records only them
    as read: runs for other origins commit without a conflict."""
    on = " AND ".join(f"t.{k} = s.{k}" for k in key)
    if not origins:
        return on
    lits = ", ".join(utc_sql_literal(o) for o in sorted(set(origins)))
    return f"t.forecast_origin IN ({lits}) AND {on}"


def merge_forecasts(spark: SparkSession, cfg: LakecastConfig, forecasts: DataFrame, *,
                    run_id: str, insert_first: bool | None = None) -> ForecastsMerge:
    """MERGE a run's forecasts (fully computed) into `forecasts` as one Delta transaction.

    Keyed on (series_id, forecast_origin, target_ts, model_name, model_version): re-running the
    same as-of with the same version replaces the rows (new values and lineage), never duplicates
    them; another version's forecasts (a shadow-scored challenger) sit beside them. A run that fails
    before or during the MERGE commits nothing, so no partial forecasts are ever visible (on the
    insert-only race path the run is two commits: see `tables.keyed_merge`). The commit carries
    `run_id`; inserted/updated are Delta's numTargetRowsInserted/Updated, over both commits there.
    The source's distinct origins and model versions are read first (cache it): the origins are
    named in the condition, so the MERGE touches only their partitions, and where none of those
    origins holds a forecast of those versions yet (a scheduled run at a new origin) the MERGE is
    insert-only, one pass (`tables.keyed_merge`). `insert_first`: None decides so; tests force it.
    """
    from pyspark.sql import functions as F

    from conf.utc import from_utc_micros

    table = cfg.table(FORECASTS.name)
    source = forecasts.select(*FORECASTS.column_names)
    scopes = [(from_utc_micros(r["o"]), r["model_name"], r["model_version"]) for r in source.select(
        F.unix_micros("forecast_origin").alias("o"), "model_name", "model_version").distinct().collect()]
    if insert_first is None:
        insert_first = bool(scopes) and not _holds_any(spark, table, scopes)
    merged = keyed_merge(spark, table, source, merge_condition([o for o, _, _ in scopes]), run_id=run_id,
                         insert_first=insert_first)
    log.info("merged into %s: %d inserted, %d replaced (version %d)", table, merged.inserted, merged.updated,
             merged.commit.version)
    return ForecastsMerge(merged.source_rows, merged.inserted, merged.updated, merged.versions)


def _holds_any(spark: SparkSession, table: str, scopes: Sequence[tuple[datetime, str, str]]) -> bool:
    """True when `table` has a row of any (origin, model name, model version) in `scopes`; reads
    only those origins' partitions, and stops at the first row."""
    origins = ", ".join(utc_sql_literal(o) for o in sorted({o for o, _, _ in scopes}))
    each = " OR ".join(f"(forecast_origin = {utc_sql_literal(o)} AND model_name = '{sql_quote(n)}' "
                       f"AND model_version = '{sql_quote(v)}')" for o, n, v in sorted(set(scopes)))
    return bool(spark.table(table).where(f"forecast_origin IN ({origins}) AND ({each})").limit(1).collect())


def replace_condition(groups: Sequence[tuple[datetime, str, str, Sequence[str]]]) -> str:
    """The replaceWhere of `replace_series_forecasts`: per (origin, model name, model version), the
    series the source holds for it, under the origins as a top-level literal list, so Delta prunes
    to their partitions (and another origin's run never conflicts) before it reads a row."""
    origins = ", ".join(utc_sql_literal(o) for o in sorted({g[0] for g in groups}))
    branches = []
    for origin, name, version, series in sorted(groups, key=lambda g: g[:3]):
        names = ", ".join(f"'{sql_quote(x)}'" for x in sorted(set(series)))
        branches.append(f"(forecast_origin = {utc_sql_literal(origin)} AND model_name = '{sql_quote(name)}' "
                        f"AND model_version = '{sql_quote(version)}' AND series_id IN ({names}))")
    return f"forecast_origin IN ({origins}) AND ({' OR '.join(branches)})"


def replace_series_forecasts(spark: SparkSession, cfg: LakecastConfig, forecasts: DataFrame, *,
                             run_id: str) -> ForecastsMerge:
    """Write a run that rescored a few series of origins already scored (`predict --changed-only`):
    one Delta overwrite of exactly the rows of those (origin, model version, series), `replaceWhere`.

    The same outcome as `merge_forecasts` here, in one pass over the origin instead of a MERGE's
    two: every (series, origin, version) the source holds carries all of that version's horizon
    steps, so each old row it replaces is one the MERGE would have updated, and no other row is
    touched (a series the run could not score is not named, so its forecasts stay). With deletion
    vectors the old rows are marked, not copied. Counts from Delta's metrics of the commit:
    replaced = numDeletedRows, written = numOutputRows - numCopiedRows. Above MAX_NAMED_SERIES
    series the list costs more to plan than it saves: a keyed MERGE instead.
    """
    from pyspark.sql import functions as F

    from conf.errors import LineageError
    from conf.utc import from_utc_micros

    table = cfg.table(FORECASTS.name)
    # an overwrite, unlike a MERGE, does not cast to the table's types: cast, never alter them
    source = forecasts.select(*[F.col(c.name).cast(c.type).alias(c.name) for c in FORECASTS.columns])
    keys = source.select(F.unix_micros("forecast_origin").alias("o"), "model_name", "model_version",
                         "series_id").distinct().collect()
    n_series = len({k["series_id"] for k in keys})
    if not keys or len(keys) > MAX_NAMED_SERIES:  # one name per (origin, version, series)
        return merge_forecasts(spark, cfg, forecasts, run_id=run_id)
    grouped: dict[tuple[int, str, str], list[str]] = {}
    for k in keys:
        grouped.setdefault((k["o"], k["model_name"], k["model_version"]), []).append(k["series_id"])
    condition = replace_condition([(from_utc_micros(o), n, v, s) for (o, n, v), s in grouped.items()])
    with commits_tagged(spark, run_id):
        retry_on_conflict(lambda: source.write.format("delta").mode("overwrite")
                          .option("replaceWhere", condition).saveAsTable(table),
                          what=f"overwrite of {n_series} series' forecasts in {table}")
    commit = commit_of_run(spark, table, run_id)
    written = commit.metric("numOutputRows") - commit.metric("numCopiedRows")
    replaced = commit.metric("numDeletedRows")
    if replaced > written:  # a row removed with nothing in its place: never expected, so loud
        raise LineageError(f"overwrite version {commit.version} of {table} (run {run_id}, committed) removed "
                           f"{replaced} forecast rows but wrote {written}: some rescored series lost "
                           "forecasts; run a plain `lakecast predict` for this as-of to write them all")
    log.info("replaced the forecasts of %d series in %s: %d inserted, %d replaced (version %d)",
             n_series, table, written - replaced, replaced, commit.version)
    return ForecastsMerge(written, written - replaced, replaced, (commit.version,))
