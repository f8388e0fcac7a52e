"""`lakecast ingest`: validate a raw source into observations; quarantine what fails; account for all.

Data flow: read (strings) -> validate (classify every row) -> count (fatal checks, before any
write) -> MERGE observations -> append quarantine -> check read = inserted + updated +
unchanged + duplicates + quarantined -> record in job_runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from conf import LakecastConfig
from pipelines.flows import init_tables
from pipelines.ingest.account import IngestCounts, count_outcomes
from pipelines.ingest.read import ColumnNames, read_source
from pipelines.ingest.validate import REASONS, IngestRules, quarantine_rows, valid_observations, validate
from pipelines.sinks.job_runs import record_run
from pipelines.sinks.observations import merge_observations
from pipelines.sinks.quarantine import append_quarantine, not_yet_quarantined

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did: its counts, batch id and the Delta versions it wrote (its commits,
    found by run id; `observations_version` is None when no row was valid, `quarantine_version`
    when none was quarantined)."""

    batch_id: str
    counts: IngestCounts
    observations_version: int | None
    quarantine_version: int | None

    def summary(self) -> dict[str, Any]:
        """The facts printed after an ingest, in reading order."""
        c = self.counts
        facts: dict[str, Any] = {
            "rows read": c.read,
            "accepted (new)": c.inserted,
            "updated": c.updated,
            "unchanged": c.unchanged,
            "duplicates in batch": c.duplicates,
            "quarantined": c.quarantined,
        }
        for code in REASONS:
            if c.quarantined_by_reason.get(code):
                facts[f"  {code}"] = c.quarantined_by_reason[code]
        if c.already_quarantined:
            facts["  already in quarantine (not appended again)"] = c.already_quarantined
        facts["observations version"] = "unchanged" if self.observations_version is None else self.observations_version
        facts["quarantine version"] = "unchanged" if self.quarantine_version is None else self.quarantine_version
        facts["batch id"] = self.batch_id
        return facts


def run(spark: SparkSession, cfg: LakecastConfig, source: str, *, fmt: str | None = None,
        series_col: str | None = None, time_col: str | None = None, value_col: str | None = None,
        freq: str | None = None, now: datetime | None = None, as_of: datetime | str | None = None,
        create_tables: bool = False) -> IngestResult:
    """Ingest SOURCE; raise SourceError (nothing written) when it cannot be used at all.

    `as_of` is the batch's logical time (a scheduler's date): rows later than it plus
    `data.max_future` are quarantined as `future_timestamp`. Default: the wall clock (`now`),
    which also stamps `ingested_at`/`updated_at`. `create_tables` first creates the governed
    tables (idempotent), as `lakecast ingest` does.
    """
    from pyspark import StorageLevel

    from conf.utc import utc_aware

    if create_tables:
        init_tables.run(spark, cfg)
    columns = ColumnNames.from_config(cfg, series_col, time_col, value_col)
    rules = IngestRules.from_config(cfg, freq=freq, columns=columns)
    params = {"source": source, "format": fmt, "columns": columns.__dict__, "freq": rules.freq.alias,
              "as_of": None if as_of is None else str(as_of)}
    with record_run(spark, cfg, "ingest", params) as rec:
        now = utc_aware(now or datetime.now(UTC))  # naive `now`/`as_of` are UTC, never host-local
        cutoff = now if as_of is None else utc_aware(as_of)
        raw = read_source(spark, source, columns, cfg, fmt=fmt)
        classified = validate(raw, rules, now=cutoff).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = count_outcomes(classified, source, rules)
            # Both commits carry the run id; their counts and versions are Delta's, found by it.
            merged = None
            if counts.valid:  # a batch of only quarantined rows and duplicates changes no observation
                merged = merge_observations(spark, cfg, valid_observations(classified), run_id=rec.run_id,
                                            batch_id=rec.run_id, now=now)
                counts.inserted, counts.updated = merged.inserted, merged.updated
                counts.unchanged = merged.unchanged
            q_rows, fresh = quarantine_rows(classified, rec.run_id, now), 0
            if counts.quarantined:  # a row the same file already put there is not appended again
                q_rows = not_yet_quarantined(q_rows, spark.table(cfg.table("quarantine"))).persist(
                    StorageLevel.MEMORY_AND_DISK)
                fresh = q_rows.count()
                counts.already_quarantined = counts.quarantined - fresh
            try:
                q_commit = append_quarantine(spark, cfg, q_rows, n_rows=fresh, run_id=rec.run_id)
            finally:
                q_rows.unpersist()
            counts.quarantine_written = 0 if q_commit is None else q_commit.metric("numOutputRows")
        finally:
            classified.unpersist()
        counts.check()
        rec.row_counts = counts.row_counts()
        q_version = None if q_commit is None else q_commit.version
        rec.versions_written = {} if merged is None else {"observations": merged.version}
        if q_version is not None:
            rec.versions_written["quarantine"] = q_version
        rec.details = {"batch_id": rec.run_id}
        if merged is not None and len(merged.versions) > 1:  # lost the insert-only race: both commits
            rec.details["observations_versions"] = list(merged.versions)
        return IngestResult(rec.run_id, counts, None if merged is None else merged.version, q_version)
