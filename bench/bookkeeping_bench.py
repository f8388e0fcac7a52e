"""What a command pays for its bookkeeping: its `job_runs` rows and the tables' drift check.

    python -m bench.bookkeeping_bench              # 8 measured rounds after 2 warm-up rounds
    python -m bench.bookkeeping_bench --rounds 15 --warmup 3

Every job records its run: a `running` row, then its end state, each an append to the event log
`job_run_events` (the `job_runs` view shows each run's latest row); until 2026-12-07 `job_runs`
was a table whose end row was a keyed MERGE. init, ingest, evaluate, forget and demo also check
every governed table for drift first (`ensure_tables`; predict, train, promote and backfill do
not). In one SparkSession on a temporary home (the embedded defaults), each round times:
  - `record_run` around an empty job (two appends);
  - the two appends apart: the `running` row and the end row;
  - the previous release's end row, a keyed MERGE into a one-row-per-run table of the same
    columns in a database of its own (the baseline the append is measured against);
  - a read through the `job_runs` view: the newest succeeded run of a job (what an analyst's
    query costs; evaluate reads the log itself);
  - `ensure_tables` on the existing home (the drift check of the six tables, then the views).
The operations alternate so each sees the same machine load. Every tenth commit to a Delta table
also writes a checkpoint (about a second on these small tables); which operation pays it depends
only on how many commits came before, so a write that wrote one is counted apart: the RESULT
lines are medians over the rounds without a checkpoint, and the checkpoints' extra time is
printed beside them. A real command makes two commits to the log: one command in five pays one.
The home is new: the tables hold a few dozen rows, one small file each (a MERGE reads them all).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


def _merge_end(spark: Any, table: str, rec: Any) -> None:
    """The previous release's end row: a keyed MERGE into a table of one row per run."""
    df = spark.createDataFrame([rec.as_row()], schema=spark.table(table).schema)
    df.createOrReplaceTempView("_bench_job_run")
    spark.sql(f"""MERGE INTO {table} t USING _bench_job_run s ON t.run_id = s.run_id
        WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *""")


@dataclass
class _Op:
    """One timed operation: what runs untimed before it, and the table whose checkpoints it may write."""

    run: Callable[[], None]
    before: Callable[[], None] | None = None
    log: Path | None = None  # the table's _delta_log
    plain: list[float] = field(default_factory=list)  # rounds without a checkpoint
    checkpointed: list[float] = field(default_factory=list)

    def checkpoints(self) -> int:
        return len(list(self.log.glob("*.checkpoint*.parquet"))) if self.log else 0


class _Writes:
    """The timed operations, on one session: the home's own tables and the baseline's database."""

    def __init__(self, spark: Any, cfg: Any, merge_table: str) -> None:
        from pipelines.sinks import job_runs

        self.spark, self.cfg, self.merge_table, self.jr = spark, cfg, merge_table, job_runs
        self.pending: dict[str, Any] = {}

    def log(self, table: str) -> Path:
        db, name = table.split(".")
        return Path(self.cfg.home) / "warehouse" / f"{db}.db" / name / "_delta_log"

    def record(self) -> Any:
        return self.jr.RunRecord(run_id=f"bench-{uuid.uuid4().hex[:12]}", job="bench",
                                 parameters={"config": self.cfg.model_dump(mode="json")},
                                 started_at=self.jr._now())

    def ended(self, key: str) -> Any:
        rec = self.pending[key]
        rec.status, rec.ended_at = "succeeded", self.jr._now()
        rec.row_counts, rec.versions_read = {"rows": 480}, {"observations": 3}
        return rec

    def prepare(self, key: str) -> Callable[[], None]:
        """Untimed: the `running` row the timed write then ends."""
        def go() -> None:
            self.pending[key] = self.record()
            if key == "merge":
                _merge_end(self.spark, self.merge_table, self.pending[key])
            else:
                self.jr._append(self.spark, self.cfg, self.pending[key])
        return go

    def whole(self) -> None:
        with self.jr.record_run(self.spark, self.cfg, "bench", {}):
            pass

    def start(self) -> None:
        self.jr._append(self.spark, self.cfg, self.record())

    def end_append(self) -> None:
        self.jr._append(self.spark, self.cfg, self.ended("append"))

    def end_merge(self) -> None:
        _merge_end(self.spark, self.merge_table, self.ended("merge"))

    def read_view(self) -> None:
        self.spark.table(self.cfg.table("job_runs")).where("job = 'bench' AND status = 'succeeded'") \
            .orderBy("started_at", ascending=False).limit(1).collect()

    def ensure(self) -> None:
        from pipelines.tables.ensure import ensure_tables

        ensure_tables(self.spark, self.cfg)

    def ops(self) -> dict[str, _Op]:
        events = self.log(self.cfg.table("job_run_events"))
        return {
            "record_run (two appends)": _Op(self.whole, log=events),
            "start: append of the running row": _Op(self.start, log=events),
            "end: append of the end row (lakecast)": _Op(self.end_append, self.prepare("append"), events),
            "end: keyed MERGE (before 2026-12-07)": _Op(self.end_merge, self.prepare("merge"),
                                                        self.log(self.merge_table)),
            "read: a job's newest run via job_runs": _Op(self.read_view),
            "ensure_tables on the existing home": _Op(self.ensure),
        }


def _measure(ops: dict[str, _Op], rounds: int, warmup: int) -> None:
    """Time each operation in each of `rounds`, after `warmup` rounds (the JVM's first MERGEs plan
    and compile slowly); a round that wrote a checkpoint is kept apart (marked *)."""
    for i in range(warmup + rounds):
        shown = []
        for op in ops.values():
            if op.before is not None:
                op.before()
            had = op.checkpoints()
            t0 = time.perf_counter()
            op.run()
            took = time.perf_counter() - t0
            wrote = op.checkpoints() > had
            if i >= warmup:
                (op.checkpointed if wrote else op.plain).append(took)
            shown.append(f"{took:.2f}{'*' if wrote else ''}")
        print(f"round {i - warmup + 1 if i >= warmup else f'w{i + 1}'}: {', '.join(shown)}", flush=True)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8, help="measured rounds (default 8)")
    ap.add_argument("--warmup", type=int, default=2, help="rounds before those, not counted (default 2)")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)
    if args.rounds < 1 or args.warmup < 0:
        ap.error("--rounds must be at least 1 and --warmup at least 0")

    from conf import load_config
    from pipelines.session.builder import build_session, stop_session
    from pipelines.tables.ensure import ensure_tables

    home = Path(tempfile.mkdtemp(prefix="lakecast_bookkeeping_bench_"))
    cfg = load_config(None, [f"home={home}", *args.set], env={})
    spark = build_session(cfg)
    try:
        ensure_tables(spark, cfg)
        merge_table = _baseline_table(spark, cfg)
        writes = _Writes(spark, cfg, merge_table)
        ops = writes.ops()
        print("columns: " + " | ".join(ops), flush=True)
        _measure(ops, args.rounds, args.warmup)
        _check(spark, cfg, merge_table, args.rounds + args.warmup)
        med: dict[str, float] = {}
        for label, op in ops.items():
            med[label] = statistics.median(op.plain) if op.plain else float("nan")
            extra = (f"; {len(op.checkpointed)} round(s) wrote a checkpoint, median "
                     f"{statistics.median(op.checkpointed):.3f} s") if op.checkpointed else ""
            print(f"{label:40s} median {med[label]:.3f} s without a checkpoint{extra}", flush=True)
        labels = list(ops)
        names = dict(zip(("job_runs_record_run_s", "job_runs_start_append_s", "job_runs_end_append_s",
                          "job_runs_end_merge_s", "job_runs_view_read_s", "ensure_tables_existing_s"),
                         labels, strict=True))
        for key, label in names.items():
            print(f"RESULT {key}={med[label]:.3f}")
        merge, append = med[names["job_runs_end_merge_s"]], med[names["job_runs_end_append_s"]]
        print(f"RESULT job_runs_end_merge_vs_append={merge / append:.2f}")
    finally:
        stop_session(spark)


def _baseline_table(spark: Any, cfg: Any) -> str:
    """The previous release's `job_runs`: the event log's columns, one row per run, not append-only."""
    from dataclasses import replace

    from pipelines.tables.specs import JOB_RUN_EVENTS, create_table_sql

    db = f"{cfg.catalog.database}_merge"
    spark.sql(f"CREATE DATABASE IF NOT EXISTS {db}")
    base = cfg.model_copy(update={"catalog": cfg.catalog.model_copy(update={"database": db})})
    spec = replace(JOB_RUN_EVENTS, name="job_runs", properties={}, renamed_from=None)
    spark.sql(create_table_sql(spec, base))
    return base.table("job_runs")


def _check(spark: Any, cfg: Any, merge_table: str, n: int) -> None:
    """Every timed write took effect. Each round adds three runs to the home's log: record_run's
    (two events), the timed start's (a running row that is never ended) and the timed end's (two
    events); and one ended row per run to the baseline's table."""
    events, runs = spark.table(cfg.table("job_run_events")).count(), spark.table(cfg.table("job_runs"))
    got = (events, runs.count(), runs.where("status = 'succeeded'").count())
    assert got == (5 * n, 3 * n, 2 * n), f"{cfg.table('job_run_events')}: (events, runs, ended) {got} for {n} rounds"
    base = spark.table(merge_table)
    assert (base.count(), base.where("status = 'succeeded'").count()) == (n, n), f"{merge_table}: not {n} ended rows"


if __name__ == "__main__":
    main()
