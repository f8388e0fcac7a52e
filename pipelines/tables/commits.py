"""Delta commits that carry the job run id, and finding them again by it.

Every write of a job run is tagged with its run id as Delta's `userMetadata` (visible in
`DESCRIBE HISTORY`), so the version a run wrote is the version of *its* commit, found by run
id, not whatever "latest" is after the write when other jobs write at the same time; the
commit's `operationMetrics` are Delta's own count of what the write did.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from conf.errors import LineageError
from pipelines.session.settings import DELTA_COMMIT_USER_METADATA, session_conf

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

USER_METADATA = DELTA_COMMIT_USER_METADATA
_FIRST_LOOK = 8  # commits read first; the history is read further only when others wrote since


@dataclass(frozen=True)
class Commit:
    """One Delta commit: its version, operation and Delta's operation metrics (as ints)."""

    table: str
    version: int
    operation: str
    metrics: dict[str, int]

    def metric(self, name: str) -> int:
        """A metric Delta reports for this operation; a missing one is an error, never 0."""
        if name not in self.metrics:
            raise LineageError(f"{self.operation} version {self.version} of {self.table} has no "
                                f"operation metric {name!r} (it has {', '.join(sorted(self.metrics))})")
        return self.metrics[name]


@contextmanager
def commits_tagged(spark: SparkSession, run_id: str) -> Iterator[None]:
    """Every Delta commit this session makes inside the block carries `run_id` as userMetadata.

    A session setting (a MERGE has no writer option), restored on the way out.
    """
    with session_conf(spark, USER_METADATA, run_id):
        yield


def commit_of_run(spark: SparkSession, table: str, run_id: str, *, first_look: int = _FIRST_LOOK) -> Commit:
    """The newest commit of `table` whose userMetadata is `run_id`, wherever it lies in the history.

    Reads the last `first_look` commits first and eight times more each round (then all of
    it) only when other jobs committed since. Raises LineageError when no commit carries the run id.
    """
    from delta.tables import DeltaTable

    delta = DeltaTable.forName(spark, table)
    limit: int | None = first_look
    while True:
        history = delta.history(limit) if limit is not None else delta.history()
        rows = history.select("version", "operation", "operationMetrics", "userMetadata").collect()
        mine = [r for r in rows if r["userMetadata"] == run_id]
        if mine:
            r = max(mine, key=lambda r: r["version"])
            metrics = {str(k): int(v) for k, v in (r["operationMetrics"] or {}).items()
                       if str(v).lstrip("-").isdigit()}
            return Commit(table, int(r["version"]), str(r["operation"]), metrics)
        if limit is None or len(rows) < limit:
            break
        limit = limit * 8 if limit < 4096 else None
    raise LineageError(f"no commit of {table} carries run id {run_id!r} (userMetadata) in its history")
