"""Ingest, step 3: count the classified rows (aggregates only) and check that every row is accounted for.

Only counts and a few sample values per file reach the driver. A file of which every row
fails the same way is unusable as a whole (wrong column, format or --freq): that is a fatal
`SourceError` before any write rather than a quarantine of the whole file.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field

from pyspark.sql import DataFrame
from pyspark.sql import functions as F

from conf.errors import AccountingError, SourceError
from pipelines.ingest.validate import GRID_HINTS, REASONS, STATUS_DUPLICATE, STATUS_VALID, IngestRules

log = logging.getLogger(__name__)

# A file whose every row fails for one of these is unusable as a whole (wrong column, format
# or --freq): that is a fatal SourceError rather than a quarantine of the whole file.
_FATAL_IF_ALL = ("malformed_row", "missing_series_id", "missing_timestamp", "bad_timestamp", "missing_value",
                 "bad_value", "off_grid")
_FATAL_HINT = {
    "malformed_row": "check ingest.csv_delimiter, or quote the values that hold it",
    "missing_series_id": "check --series-col (data.series_col)",
    "missing_timestamp": "check --time-col (data.time_col)",
    "bad_timestamp": "check --time-col, or set ingest.timestamp_format for non-ISO timestamps",
    "missing_value": "check --value-col (data.value_col)",
    "bad_value": "check --value-col (data.value_col)",
    "off_grid": "check --freq (data.freq) and data.timezone",
}


@dataclass
class IngestCounts:
    """Row counts of one batch; `check` asserts that every row read is accounted for.

    `read`, `valid`, `duplicates` and `quarantined_by_reason` come from counting the classified
    rows; `inserted`, `updated` and `unchanged` from Delta's metrics of the MERGE into
    observations, and `quarantine_written` from Delta's metrics of the quarantine append
    (`already_quarantined`: the rows an earlier batch of the same file put there, not appended
    again). So the identity read = inserted + updated + unchanged + duplicates + quarantined is a
    check of what was written against what was read, not true by construction.
    """

    read: int = 0
    valid: int = 0
    duplicates: int = 0
    quarantined_by_reason: dict[str, int] = field(default_factory=dict)
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    quarantine_written: int = 0
    already_quarantined: int = 0  # in quarantine from an earlier batch (the same file ingested again)

    @property
    def quarantined(self) -> int:
        return sum(self.quarantined_by_reason.values())

    def check(self, merged: bool = True) -> None:
        """Raise AccountingError, naming the counts, unless read = valid + duplicates +
        quarantined (classification) and, after the writes, read = inserted + updated +
        unchanged + duplicates + quarantined as Delta wrote them."""
        if self.read != self.valid + self.duplicates + self.quarantined:
            raise AccountingError(
                f"rows do not add up: read {self.read} != valid {self.valid} + duplicates "
                f"{self.duplicates} + quarantined {self.quarantined}"
            )
        if not merged:
            return
        written = {"inserted": self.inserted, "updated": self.updated, "unchanged": self.unchanged,
                   "quarantined": self.quarantine_written, "already_quarantined": self.already_quarantined}
        negative = {k: v for k, v in written.items() if v < 0}
        total = (self.inserted + self.updated + self.unchanged + self.duplicates + self.quarantine_written
                 + self.already_quarantined)
        if negative or self.read != total:
            already = f" + already quarantined {self.already_quarantined}" if self.already_quarantined else ""
            raise AccountingError(
                f"rows do not add up: read {self.read} != inserted {self.inserted} + updated "
                f"{self.updated} + unchanged {self.unchanged} + duplicates {self.duplicates} + "
                f"quarantined {self.quarantine_written}{already} (Delta's metrics of the writes; "
                f"{self.valid} rows were valid and {self.quarantined} quarantined when counted)"
            )

    def row_counts(self) -> dict[str, int]:
        """The job_runs.row_counts map."""
        counts = {
            "read": self.read, "inserted": self.inserted, "updated": self.updated,
            "unchanged": self.unchanged, "duplicates": self.duplicates, "quarantined": self.quarantined,
        }
        counts.update({f"quarantined.{k}": v for k, v in sorted(self.quarantined_by_reason.items())})
        if self.already_quarantined:
            counts["already_quarantined"] = self.already_quarantined
        return counts


@dataclass(frozen=True)
class _FileOutcome:
    status: str
    reason_code: str | None
    rows: int
    sample: str | None


def count_outcomes(classified: DataFrame, source: str, rules: IngestRules) -> IngestCounts:
    """Count the classified rows (one aggregate job); raise SourceError, before any write, for
    an empty source or a file of which every row fails the same way (it is unusable as a whole).
    """
    code = F.col("reason_code")
    sample = (F.when(code.isin("missing_series_id", "malformed_row"), F.col("raw"))
              .when(code.isin("missing_timestamp", "bad_timestamp", "off_grid"), F.col("ts_raw"))
              .when(code.isin("missing_value", "bad_value"), F.col("value_raw")))
    rows = (classified.groupBy("source_file", "status", "reason_code")
            .agg(F.count(F.lit(1)).alias("n"), F.first(sample, ignorenulls=True).alias("sample"))
            .collect())
    per_file: dict[str, list[_FileOutcome]] = defaultdict(list)
    counts = IngestCounts()
    for r in rows:
        per_file[r["source_file"]].append(_FileOutcome(r["status"], r["reason_code"], r["n"], r["sample"]))
        counts.read += r["n"]
        if r["status"] == STATUS_VALID:
            counts.valid += r["n"]
        elif r["status"] == STATUS_DUPLICATE:
            counts.duplicates += r["n"]
        else:
            counts.quarantined_by_reason[r["reason_code"]] = (
                counts.quarantined_by_reason.get(r["reason_code"], 0) + r["n"])
    if counts.read == 0:
        raise SourceError(f"source {source} has no data rows; it is an empty source (nothing was written)")
    _check_usable(per_file, rules)
    counts.check(merged=False)
    log.info("validated %d rows: %d valid, %d duplicates, %d quarantined %s", counts.read, counts.valid,
             counts.duplicates, counts.quarantined, dict(sorted(counts.quarantined_by_reason.items())))
    return counts


def _check_usable(per_file: dict[str, list[_FileOutcome]], rules: IngestRules) -> None:
    problems: list[str] = []
    for file, outcomes in sorted(per_file.items()):
        codes = {o.reason_code for o in outcomes}
        if len(codes) != 1 or None in codes:
            continue
        code = next(iter(codes))
        if code not in _FATAL_IF_ALL:
            continue
        n = sum(o.rows for o in outcomes)
        example = next((o.sample for o in outcomes if o.sample is not None), None)
        shown = f" (e.g. {example!r})" if example is not None else ""
        grid = f" '{rules.freq.alias}'" if code == "off_grid" else ""
        hint = _FATAL_HINT[code] + (GRID_HINTS.get(rules.freq.unit, "") if code == "off_grid" else "")
        problems.append(f"file {file}: all {n} rows fail with {code}{grid}{shown}: {REASONS[code]}; {hint}")
    if problems:
        raise SourceError("unusable source, nothing was written:\n  " + "\n  ".join(problems))
