"""`lakecast migrate`: bring the governed tables of an existing home to the current specs, in place.

Data flow: every governed table -> its plan (tables.migrate_plan: typed steps and blockers)
-> refuse if anything is blocked -> apply each table's steps in order (a layout or NOT NULL
change rebuilds the table, every row kept and counted before and after; the rest are ALTERs)
-> views -> job_runs. The run event log goes first (a home of a release before it keeps its runs
in a `job_runs` table, renamed to `job_run_events` with a view in its place), so the migrate run
itself is recorded in it. Idempotent: a home at the current specs plans nothing and no table is
written, not even a job_runs row. `dry_run` only plans.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.errors import MigrationError
from pipelines.sinks.job_runs import record_run
from pipelines.tables.commits import commits_tagged
from pipelines.tables.ensure import delta_version
from pipelines.tables.migrate_plan import RenameTable, Repartition, SetNotNull, Step, TablePlan, plan_table
from pipelines.tables.repartition import rewrite_table
from pipelines.tables.specs import ALL_TABLES, JOB_RUN_EVENTS
from pipelines.tables.views import ensure_views, job_runs_sql

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
JOB = "migrate"


@dataclass
class MigrateResult:
    """The plan, and when applied, the Delta version each changed table reached."""

    plans: list[TablePlan]
    dry_run: bool
    versions: dict[str, int] = field(default_factory=dict)
    rows_rewritten: dict[str, int] = field(default_factory=dict)
    job_run_id: str | None = None

    @property
    def steps(self) -> list[Step]:
        return [s for p in self.plans for s in p.steps]

    @property
    def blockers(self) -> list[str]:
        return [f"{p.table}: {b}" for p in self.plans for b in p.blockers]


def plan(spark: SparkSession, cfg: LakecastConfig) -> list[TablePlan]:
    """One plan per governed table of the home (the database is created when missing)."""
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {cfg.catalog.database} "
              "COMMENT 'lakecast governed forecasting tables'")
    return [plan_table(spark, spec, cfg) for spec in ALL_TABLES]


def _apply(spark: SparkSession, p: TablePlan, run_id: str, out: MigrateResult) -> None:
    rebuild = [s for s in p.steps if isinstance(s, (Repartition, SetNotNull))]
    renames = [s for s in p.steps if isinstance(s, RenameTable)]
    for rename in renames:  # a catalog operation, not a commit; the steps after it were planned on the old table
        log.info("migrate %s: renaming %s to it (rows and history kept)", p.table, rename.old)
        for sql in rename.statements():
            spark.sql(sql)
    with commits_tagged(spark, run_id):
        if rebuild:  # first: the ALTERs after it are metadata only
            log.info("migrate %s: rebuilding it: %s", p.table, "; ".join(s.problem for s in rebuild))
            spec = next(t for t in ALL_TABLES if cfg_name(p.table) == t.name)
            not_null = [c.name for c in spec.columns if not c.nullable]
            out.rows_rewritten[p.table] = rewrite_table(spark, p.table, spec.partitioned_by, not_null=not_null).rows
        for step in p.steps:
            if step in renames:
                continue
            if step not in rebuild:
                log.info("migrate %s: %s", p.table, step.problem)
            for sql in step.statements():
                spark.sql(sql)
    out.versions[cfg_name(p.table)] = delta_version(spark, p.table)


def cfg_name(table: str) -> str:
    """`db.forecasts` -> `forecasts`."""
    return table.split(".")[-1]


def run(spark: SparkSession, cfg: LakecastConfig, *, dry_run: bool = False) -> MigrateResult:
    """Plan every governed table; unless `dry_run`, apply the plan and record it in job_runs."""
    out = MigrateResult(plan(spark, cfg), dry_run)
    if dry_run:
        return out
    if out.blockers:
        raise MigrationError("lakecast migrate cannot fix (nothing was changed; fix these by hand or use "
                             "a new database):\n  " + "\n  ".join(out.blockers))
    if not out.steps:
        log.info("every governed table matches its spec: nothing to migrate")
        ensure_views(spark, cfg)  # no commit: puts back a view a migrate stopped before creating
        return out
    # The run event log first: the run is recorded in it, so it must have the current schema.
    events = cfg.table(JOB_RUN_EVENTS.name)
    for p in out.plans:
        if p.table == events and p.steps:
            _apply(spark, p, f"{JOB}-job_run_events", out)
            spark.sql(job_runs_sql(cfg))  # where a renamed table was: the runs stay readable as job_runs
    with record_run(spark, cfg, JOB, {"dry_run": False}) as rec:
        out.job_run_id = rec.run_id
        for p in out.plans:
            if p.steps and p.table != events:
                _apply(spark, p, rec.run_id, out)
        ensure_views(spark, cfg)
        rec.details["steps"] = {p.table: [s.problem for s in p.steps] for p in out.plans if p.steps}
        rec.versions_written.update(out.versions)
        rec.row_counts.update({f"rows_kept_{cfg_name(t)}": n for t, n in out.rows_rewritten.items()})
    return out
