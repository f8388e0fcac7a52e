"""`lakecast forget`: a data subject's series leaves every governed table, the snapshots and the files.

Data flow: ids -> salted hashes (the only form ever stored or logged) -> for each governed
table with a `series_id` column: count per series, DELETE (one commit), REORG … APPLY (PURGE),
VACUUM RETAIN governance.forget_retention_hours -> training snapshots under the home that hold
the series are removed -> forget_log (one row per series and table) -> the MLflow runs trained
on an observations version older than the DELETE are listed -> job_runs.
"""

from __future__ import annotations

import logging
import re
import shutil
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.errors import ForgetError, LakecastError
from pipelines.flows import init_tables
from pipelines.sinks.forget_log import (
    ForgetLogRow,
    append_forget_log,
    home_salt,
    last_observations_delete,
    series_hash,
)
from pipelines.sinks.job_runs import RunRecord, record_run
from pipelines.tables.ensure import table_exists
from pipelines.tables.purge import count_by_series, delete_series, purge_files
from pipelines.tables.specs import series_tables
from pipelines.windows.transfer import holds_series, snapshot_roots

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from models.lineage import TrainedRun

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TableForget:
    """What forget did to one governed table."""

    table: str
    rows_by_hash: dict[str, int]
    delete_version: int | None  # None: nothing to delete
    purged_version: int

    @property
    def rows_removed(self) -> int:
        return sum(self.rows_by_hash.values())


@dataclass(frozen=True)
class ForgetResult:
    """What `lakecast forget` did, by salted hash; the ids themselves are not kept."""

    job_run_id: str
    hashes: tuple[str, ...]
    tables: tuple[TableForget, ...]
    snapshots_removed: tuple[Path, ...]
    forget_log_version: int
    trained_runs: tuple[TrainedRun, ...] = field(default=())

    @property
    def rows_removed(self) -> int:
        return sum(t.rows_removed for t in self.tables)

    @property
    def nothing_to_forget(self) -> bool:
        return self.rows_removed == 0 and not self.snapshots_removed


def read_series_file(path: str | Path) -> list[str]:
    """Series ids from a file: one per line; blank lines and lines starting with # are ignored."""
    try:
        lines = Path(path).read_text().splitlines()
    except OSError as e:
        raise ForgetError(f"cannot read --series-file {path}: {e.strerror or e}") from None
    return [ln.strip() for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]


def _ids(series: Iterable[str]) -> list[str]:
    """Trimmed (as ingest stores them), unique, in the order given."""
    ids = list(dict.fromkeys(s.strip() for s in series if s and s.strip()))
    if not ids:
        raise ForgetError("no series to forget: give --series ID (repeatable) or --series-file FILE")
    return ids


def _scrubbed(text: str, hashes: dict[str, str]) -> str:
    """`text` with every id replaced by its hash, for errors that may quote a statement or a row."""
    for sid in sorted(hashes, key=len, reverse=True):
        text = text.replace(sid, f"<series {hashes[sid][:12]}>")
    return text


def _forget_table(spark: SparkSession, cfg: LakecastConfig, name: str, hashes: dict[str, str],
                  tag: str) -> TableForget:
    table = cfg.table(name)
    ids = list(hashes)
    counts = count_by_series(spark, table, ids)
    version = None
    if counts:
        commit = delete_series(spark, table, ids, tag=tag)
        version = commit.version
        removed = commit.metrics.get("numTargetRowsDeleted", sum(counts.values()))
        if removed != sum(counts.values()):
            log.warning("%s: delete version %d removed %s rows, %d were counted before (a concurrent write)",
                        table, version, removed, sum(counts.values()))
    purged = purge_files(spark, table, retention_hours=cfg.governance.forget_retention_hours, tag=tag)
    by_hash = {hashes[sid]: counts.get(sid, 0) for sid in ids}
    log.info("%s: %d rows removed (DELETE version %s), files purged (version %d)",
             table, sum(by_hash.values()), version, purged)
    return TableForget(table, by_hash, version, purged)


def _remove_snapshots(cfg: LakecastConfig, ids: set[str]) -> tuple[Path, ...]:
    """Training snapshots left under the home that hold one of the series (whole folder)."""
    removed = tuple(root for root in snapshot_roots(cfg.home) if holds_series(root, ids))
    for root in removed:
        shutil.rmtree(root)
        log.info("removed training snapshot %s", root)
    return removed


def _record(rec: RunRecord, tables: Sequence[TableForget], snapshots: Sequence[Path], log_version: int,
            runs: Sequence[TrainedRun]) -> None:
    rec.row_counts = {"series": len(rec.parameters["series_hashes"]),
                      "rows_removed": sum(t.rows_removed for t in tables),
                      **{f"{t.table.rsplit('.', 1)[-1]}_rows_removed": t.rows_removed for t in tables},
                      "snapshot_dirs_removed": len(snapshots), "mlflow_runs_listed": len(runs)}
    rec.versions_written = {"forget_log": log_version}
    for t in tables:
        name = t.table.rsplit(".", 1)[-1]
        if t.delete_version is not None:
            rec.versions_written[name] = t.delete_version
        rec.versions_written[f"{name}_purged"] = t.purged_version
    rec.details = {"snapshots_removed": [p.name for p in snapshots],
                   "mlflow_runs_trained_on_series": [r.run_id for r in runs],
                   "nothing_to_forget": sum(t.rows_removed for t in tables) == 0 and not snapshots}


def run(spark: SparkSession, cfg: LakecastConfig, series: Iterable[str], *, reason: str) -> ForgetResult:
    """Forget the series everywhere lakecast keeps them; audit by salted hash. Re-running is a no-op.

    Raises ForgetError (nothing is named but hashes) when the request is wrong or a step fails.
    """
    from models.lineage import runs_trained_before

    ids = _ids(series)
    reason = reason.strip()
    if not reason:
        raise ForgetError("--reason is required: why the series is forgotten (stored in forget_log)")
    if any(re.search(rf"(?<![\w-]){re.escape(sid)}(?![\w-])", reason) for sid in ids):
        raise ForgetError("--reason must not contain a series id: it is stored in forget_log and job_runs, "
                          "where only the salted hash of the id may appear")
    salt = home_salt(cfg.home)
    hashes = {sid: series_hash(salt, sid) for sid in ids}
    init_tables.run(spark, cfg)  # forget_log on a home made before it existed
    params = {"series_hashes": list(hashes.values()), "reason": reason,
              "retention_hours": cfg.governance.forget_retention_hours}
    with record_run(spark, cfg, "forget", params) as rec:
        try:
            tables = tuple(_forget_table(spark, cfg, spec.name, hashes, rec.run_id)
                           for spec in series_tables() if table_exists(spark, cfg, spec.name))
            snapshots = _remove_snapshots(cfg, set(ids))
            log_version = append_forget_log(
                spark, cfg, [ForgetLogRow(hashes[sid], t.table, t.rows_by_hash[hashes[sid]], t.delete_version,
                                          t.purged_version) for t in tables for sid in ids],
                forget_run_id=rec.run_id, reason=reason)
            deleted_at = last_observations_delete(spark, cfg, list(hashes.values()))
            runs = tuple(runs_trained_before(cfg, cfg.table("observations"), deleted_at)
                         if deleted_at is not None else ())
        except LakecastError:
            raise
        except Exception as e:  # noqa: BLE001 - Spark may quote the statement or a row: keep ids out of job_runs
            first = next((ln for ln in str(e).splitlines() if ln.strip()), type(e).__name__)
            raise ForgetError(f"forget failed: {type(e).__name__}: {_scrubbed(first, hashes)[:1000]}") from None
        _record(rec, tables, snapshots, log_version, runs)
        return ForgetResult(rec.run_id, tuple(hashes.values()), tables, snapshots, log_version, runs)
