"""`lakecast ingest`: validate a raw source into observations; quarantine what fails; account for all.

Data flow: read (strings) -> validate (classify every row) -> count (fatal checks, before any
write) -> MERGE observations -> append quarantine -> check read = inserted + updated +
unchanged + duplicates + quarantined -> record in job_runs.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import click
from pyspark import StorageLevel

from conf import LakecastConfig
from jobs.context import JobContext, as_of_option, common_options
from jobs.output import print_summary
from pipelines.ingest.validate import (
    FORMATS,
    REASONS,
    ColumnNames,
    IngestCounts,
    IngestRules,
    count_outcomes,
    quarantine_rows,
    read_source,
    valid_observations,
    validate,
)
from pipelines.sinks.job_runs import record_run
from pipelines.sinks.merges import append_quarantine, merge_observations

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IngestResult:
    """What one ingest did: its counts, batch id and the Delta versions it wrote."""

    batch_id: str
    counts: IngestCounts
    observations_version: int
    quarantine_version: int


def run(spark: Any, cfg: LakecastConfig, source: str, *, fmt: str | None = None,
        series_col: str | None = None, time_col: str | None = None, value_col: str | None = None,
        freq: str | None = None, now: datetime | None = None,
        as_of: datetime | str | None = None) -> IngestResult:
    """Ingest SOURCE; raise SourceError (nothing written) when it cannot be used at all.

    `as_of` is the batch's logical time (a scheduler's date): rows later than it plus
    `data.max_future` are quarantined as `future_timestamp`. Default: the wall clock (`now`),
    which also stamps `ingested_at`/`updated_at`.
    """
    from pipelines.windows.grid import from_utc_micros, to_utc_micros

    columns = ColumnNames.from_config(cfg, series_col, time_col, value_col)
    rules = IngestRules.from_config(cfg, freq=freq, columns=columns)
    params = {"source": source, "format": fmt, "columns": columns.__dict__, "freq": rules.freq.alias,
              "as_of": None if as_of is None else str(as_of)}
    with record_run(spark, cfg, "ingest", params) as rec:
        now = now or datetime.now(UTC)
        cutoff = now if as_of is None else from_utc_micros(to_utc_micros(as_of)).replace(tzinfo=UTC)
        raw = read_source(spark, source, columns, cfg, fmt=fmt)
        classified = validate(raw, rules, now=cutoff).persist(StorageLevel.MEMORY_AND_DISK)
        try:
            counts = count_outcomes(classified, source, rules)
            merged = merge_observations(spark, cfg, valid_observations(classified), valid_rows=counts.valid,
                                        batch_id=rec.run_id, now=now)
            counts.inserted, counts.updated = merged.inserted, merged.updated
            counts.unchanged = merged.unchanged
            q_version = append_quarantine(spark, cfg, quarantine_rows(classified, rec.run_id, now),
                                          n_rows=counts.quarantined)
        finally:
            classified.unpersist()
        counts.check()
        rec.row_counts = counts.row_counts()
        rec.versions_written = {"observations": merged.version, "quarantine": q_version}
        rec.details = {"batch_id": rec.run_id}
        return IngestResult(rec.run_id, counts, merged.version, q_version)


def summary(result: IngestResult) -> dict[str, Any]:
    """The facts printed after an ingest, in reading order."""
    c = result.counts
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
    facts["observations version"] = result.observations_version
    facts["quarantine version"] = result.quarantine_version
    facts["batch id"] = result.batch_id
    return facts


@click.command("ingest")
@click.argument("source")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="Source format; by default from the file extensions (a folder with _delta_log is Delta).")
@click.option("--series-col", default=None, help="Series id column (default: data.series_col).")
@click.option("--time-col", default=None, help="Timestamp column (default: data.time_col).")
@click.option("--value-col", default=None, help="Value column (default: data.value_col).")
@click.option("--freq", default=None, help="Series frequency, a pandas alias such as h, 15min, D, MS "
              "(default: data.freq).")
@as_of_option("The batch's logical time (ISO, UTC; a scheduler's date): rows later than T + "
              "data.max_future are quarantined as future_timestamp. Default: now.")
@common_options
def cli(job: JobContext, source: str, fmt: str | None, series_col: str | None, time_col: str | None,
        value_col: str | None, freq: str | None, as_of: str | None) -> None:
    """Validate SOURCE (a CSV/Parquet file, folder or glob, or a Delta path/table) into observations.

    Rows that fail validation go to the quarantine table with a reason; re-ingesting the same
    source changes nothing.
    """
    if freq is not None:
        from conf.freq import parse_freq

        try:
            parse_freq(freq)
        except ValueError as e:
            raise click.BadParameter(str(e), param_hint="--freq") from None
    from jobs import init_tables

    init_tables.run(job.spark, job.cfg)  # the governed tables must exist; creating them is idempotent
    result = run(job.spark, job.cfg, source, fmt=fmt, series_col=series_col, time_col=time_col,
                 value_col=value_col, freq=freq, as_of=as_of)
    print_summary(f"lakecast ingest {source}", summary(result))


if __name__ == "__main__":
    cli()
