"""Record every job run in the `job_runs` table: started, then succeeded or failed.

A run is inserted as `running` before any work, so a crashed process leaves a visible
trace, and updated once at the end with counts, Delta versions and the error.
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
from conf.secrets import redact, redact_text
from conf.utc import utc_aware
from pipelines.tables.conflicts import retry_on_conflict

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


def _insert(spark: SparkSession, cfg: LakecastConfig, rec: RunRecord) -> None:
    """The `running` row of a new run id: a blind append (no scan of job_runs, no conflict with
    other jobs' appends), a fraction of a keyed MERGE's cost on every run."""
    table = cfg.table("job_runs")
    spark.createDataFrame([rec.as_row()], schema=spark.table(table).schema).write.insertInto(table)


def _upsert(spark: SparkSession, cfg: LakecastConfig, rec: RunRecord) -> None:
    table = cfg.table("job_runs")
    df = spark.createDataFrame([rec.as_row()], schema=spark.table(table).schema)
    df.createOrReplaceTempView("_lakecast_job_run")
    # Jobs running at once (PostgreSQL catalog) race on this table; the MERGE is keyed.
    retry_on_conflict(lambda: spark.sql(
        f"""MERGE INTO {table} t USING _lakecast_job_run s ON t.run_id = s.run_id
        WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *"""
    ), what=f"job_runs row {rec.run_id}")


@contextmanager
def record_run(
    spark: SparkSession, cfg: LakecastConfig, job: str, parameters: dict[str, Any]
) -> Iterator[RunRecord]:
    """Insert a `running` row, yield the record to fill, then mark it succeeded or failed.

    The job's exception is re-raised after the failure is recorded.
    """
    rec = RunRecord(
        run_id=f"{job}-{datetime.now(UTC):%Y%m%dT%H%M%S}-{uuid.uuid4().hex[:8]}",
        job=job,
        parameters={**parameters, "config": cfg.model_dump(mode="json")},
        started_at=_now(),
    )
    _insert(spark, cfg, rec)  # the run id is new: nothing to match
    try:
        yield rec
    except BaseException as e:
        rec.status, rec.ended_at = "failed", _now()
        rec.error = f"{type(e).__name__}: {e}"[:4000]
        try:
            _upsert(spark, cfg, rec)
        except Exception:
            log.exception("could not record the failure of run %s in job_runs", rec.run_id)
        raise
    rec.status, rec.ended_at = "succeeded", _now()
    _upsert(spark, cfg, rec)
