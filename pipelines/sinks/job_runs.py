"""Record every job run: started, then succeeded or failed, as appends to `job_run_events`.

A run's `running` row is appended before any work, so a crashed process leaves a visible
trace, and its end row (counts, Delta versions, the error) is appended once at the end. The
`job_runs` view shows each run's latest row. Appends read nothing and do not conflict with
another job's: a few hundred milliseconds where a keyed MERGE of the end row took about 1.4 s
on a new home, more as the table grew (bench/RESULTS.md, "Small runs").
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig
from conf.errors import SchemaDriftError
from conf.secrets import redact, redact_text
from conf.utc import utc_aware
from pipelines.tables.conflicts import retry_on_conflict
from pipelines.tables.specs import JOB_RUN_EVENTS, JOB_RUNS_VIEW

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass
class RunRecord:
    """What a job reports about itself; filled in while it runs."""

    run_id: str
    job: str
    parameters: dict[str, Any]
    started_at: datetime
    status: str = "running"
    ended_at: datetime | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    versions_read: dict[str, int] = field(default_factory=dict)
    versions_written: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)
    error: str | None = None

    def as_row(self) -> tuple[Any, ...]:
        """The table row; secrets are masked here, whatever a job put in its record."""
        return (
            self.run_id,
            self.job,
            self.status,
            json.dumps(redact(self.parameters), default=str, sort_keys=True),
            utc_aware(self.started_at),  # aware: pyspark reads a naive datetime in the host's zone
            None if self.ended_at is None else utc_aware(self.ended_at),
            {k: int(v) for k, v in self.row_counts.items()},
            {k: int(v) for k, v in self.versions_read.items()},
            {k: int(v) for k, v in self.versions_written.items()},
            json.dumps(redact(self.details), default=str, sort_keys=True),
            redact_text(self.error) if self.error else None,
        )


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _append(spark: SparkSession, cfg: LakecastConfig, rec: RunRecord) -> None:
    """One event of a run: a blind append (it reads nothing; only a concurrent change of the
    table's metadata, such as a migrate, can conflict with it, and then it is retried)."""
    table = cfg.table(JOB_RUN_EVENTS.name)
    try:
        schema = spark.table(table).schema
    except Exception as e:
        if spark.catalog.tableExists(table):
            raise
        raise SchemaDriftError(
            f"table {table} is missing, so run {rec.run_id} cannot be recorded: a new home needs "
            "`lakecast init`; a home made before the run event log keeps its runs in the table "
            f"{cfg.table(JOB_RUNS_VIEW)}, which `lakecast migrate` renames to {table} (every row kept)"
        ) from e
    row = spark.createDataFrame([rec.as_row()], schema=schema)
    retry_on_conflict(lambda: row.write.insertInto(table), what=f"{table} row of {rec.run_id}")


@contextmanager
def record_run(
    spark: SparkSession, cfg: LakecastConfig, job: str, parameters: dict[str, Any]
) -> Iterator[RunRecord]:
    """Append a `running` row, yield the record to fill, then append its end: succeeded or failed.

    The job's exception is re-raised after the failure is recorded.
    """
    rec = RunRecord(
        run_id=f"{job}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        job=job,
        parameters={**parameters, "config": cfg.model_dump(mode="json")},
        started_at=_now(),
    )
    _append(spark, cfg, rec)
    try:
        yield rec
    except BaseException as e:
        rec.status, rec.ended_at = "failed", _now()
        rec.error = f"{type(e).__name__}: {e}"[:4000]
        try:
            _append(spark, cfg, rec)
        except Exception:
            log.exception("could not record the failure of run %s in %s", rec.run_id, cfg.table(JOB_RUN_EVENTS.name))
        raise
    rec.status, rec.ended_at = "succeeded", _now()
    _append(spark, cfg, rec)
