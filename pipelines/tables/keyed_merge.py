"""A keyed MERGE that reads its source once when the target holds none of the source's keys.

A MERGE with a matched clause passes over the source twice (a join to find the files it touches,
then the rewrite with the inserts); an insert-only MERGE passes once. Where the writer found
nothing of the source's scope in the target (an empty `observations`, a forecast origin not yet
scored by the model) the insert-only form does the same work in about half the time. Should
another job commit some of the same keys between that check and the MERGE, the insert-only pass
skips them (its metrics show fewer rows inserted than read); the full MERGE then runs over the same
source, so nothing is lost, and the counts cover both commits.

Only on that race path is a run two commits rather than one: between them readers see the run's
new keys beside the other job's rows, and a run that fails after the first (retries spent, the
process killed) leaves those new keys written and its run failed in `job_runs`. Every row is
still whole and keyed, and running the job again completes it (the writes are idempotent).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conf.errors import LineageError
from pipelines.tables.commits import Commit, commit_of_run, commits_tagged
from pipelines.tables.conflicts import retry_on_conflict

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KeyedMerge:
    """What the run's MERGE(s) did: the last commit, and counts over every pass (Delta's metrics)."""

    commit: Commit
    source_rows: int
    inserted: int
    updated: int
    versions: tuple[int, ...]


def keyed_merge(spark: SparkSession, table: str, source: DataFrame, on: str, *, run_id: str,
                insert_first: bool, update: Mapping[str, str] | None = None,
                update_condition: str | None = None, insert: Mapping[str, str] | None = None) -> KeyedMerge:
    """MERGE `source` (unique keys) into `table` ON `on`, each commit tagged with `run_id`.

    Matched rows are updated (`update`'s columns, or all; only where `update_condition` holds),
    the rest inserted (`insert`'s values, or all). `insert_first`: the caller found none of the
    source's keys in the target, so an insert-only MERGE is tried first (see the module).
    Updated counts: Delta's numTargetRowsUpdated; with no `update_condition` every matched row is
    updated, so after an insert-only pass that lost a race it is the source rows not inserted
    (the second pass also rewrites the rows the first one inserted). An `update_condition` must
    be false where the target row equals the source row (as `NOT (t.value <=> s.value)` is), or
    the second pass would count the first one's inserts again. `KeyedMerge.versions` lists every
    commit of the run (two on the race path).
    """
    from delta.tables import DeltaTable

    def run(insert_only: bool) -> Commit | None:
        """The pass's commit; None when Delta wrote nothing (an insert-only MERGE whose every key
        matched, or an empty source: Delta then skips the commit)."""
        def write() -> None:
            merge = DeltaTable.forName(spark, table).alias("t").merge(source.alias("s"), on)
            if not insert_only:
                merge = (merge.whenMatchedUpdateAll(update_condition) if update is None
                         else merge.whenMatchedUpdate(condition=update_condition, set=dict(update)))
            merge = (merge.whenNotMatchedInsertAll() if insert is None
                     else merge.whenNotMatchedInsert(values=dict(insert)))
            merge.execute()

        with commits_tagged(spark, run_id):
            retry_on_conflict(write, what=f"MERGE into {table}")  # another job may write at once
        try:
            return commit_of_run(spark, table, run_id)
        except LineageError:  # the MERGE returned, so it succeeded: it had nothing to commit
            return None

    inserted_first, first = 0, None
    if insert_first:
        first = run(insert_only=True)
        if first is not None:
            rows, inserted_first = first.metric("numSourceRows"), first.metric("numTargetRowsInserted")
            if inserted_first == rows:
                return KeyedMerge(first, rows, inserted_first, 0, (first.version,))
        log.warning("%s received some of these keys from another job since it was checked: %d inserted "
                    "first; a keyed MERGE writes the rest", table, inserted_first)
    last = run(insert_only=False)
    if last is None:
        raise LineageError(f"the MERGE of run {run_id} into {table} committed nothing; its source was empty "
                           "(callers write only non-empty sources)")
    rows = last.metric("numSourceRows")
    if first is not None and rows != first.metric("numSourceRows"):
        raise LineageError(f"the two MERGEs of run {run_id} into {table} (versions {first.version} and "
                           f"{last.version}) read {first.metric('numSourceRows')} and {rows} source rows; "
                           "the source must not change between them")
    inserted = inserted_first + last.metric("numTargetRowsInserted")
    updated = last.metric("numTargetRowsUpdated") if update_condition is not None or not inserted_first \
        else rows - inserted
    versions = (last.version,) if first is None else (first.version, last.version)
    return KeyedMerge(last, rows, inserted, updated, versions)
