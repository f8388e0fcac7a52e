"""What a command pays for its bookkeeping: the `job_runs` rows and the tables' drift check.

    python -m bench.bookkeeping_bench              # 8 measured rounds after 2 warm-up rounds
    python -m bench.bookkeeping_bench --rounds 15 --warmup 3

Every job records its run in `job_runs` (a `running` row, then its end state); init, ingest,
evaluate, forget and demo also check every governed table for drift first (`ensure_tables`;
predict, train, promote and backfill do not). In one SparkSession on a temporary home (the
embedded defaults), each round times:
  - `record_run` around an empty job (its `running` row, an append, then its end state, a keyed
    MERGE);
  - the two writes apart: the `running` append (`_insert`) and the end MERGE (`_upsert`);
  - two other ways to write the end state, each on a `job_runs` of its own database so the
    home's table keeps one row per run: a Delta UPDATE of the run's row (columns set from
    literals), and a second append (what an append-only event log with a view for each run's
    latest row would write; issue 17, "Small runs");
  - `ensure_tables` on the existing home (the drift check of the six tables, then the views).
The operations alternate so each sees the same machine load. Every tenth commit to a Delta table
also writes a checkpoint (about a second on these small tables); which operation pays it depends
only on how many commits came before, so a write that wrote one is counted apart: the RESULT
lines are medians over the rounds without a checkpoint, and the checkpoints' extra time is
printed beside them. A real command makes two commits to `job_runs`: one command in five pays one.
The home is new: `job_runs` holds a few dozen rows, one small file each (a MERGE reads them all).
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


def _update_end(spark: Any, table: str, row: tuple[Any, ...]) -> None:
    """The run's end state as a Delta UPDATE of its row, every column from a literal."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    def lit(v: Any, dtype: Any) -> Any:
        if isinstance(v, dict):
            pairs = [c for k, x in v.items() for c in (F.lit(k), F.lit(x))]
            return F.create_map(*pairs).cast(dtype)
        return F.lit(v).cast(dtype)

    schema = spark.table(table).schema  # read each time, as `_insert` and `_upsert` do
    values = dict(zip(schema.fieldNames(), row, strict=True))
    run_id = values.pop("run_id")
    sets = {k: lit(v, schema[k].dataType) for k, v in values.items()}
    DeltaTable.forName(spark, table).update(F.col("run_id") == run_id, sets)


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
    """The timed operations, on one session: the home's own tables and two scratch databases."""

    def __init__(self, spark: Any, cfg: Any, alt: dict[str, Any]) -> None:
        from pipelines.sinks import job_runs

        self.spark, self.cfg, self.alt, self.jr = spark, cfg, alt, job_runs
        self.pending: dict[str, Any] = {}

    def log(self, c: Any) -> Path:
        return Path(c.home) / "warehouse" / f"{c.catalog.database}.db" / "job_runs" / "_delta_log"

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
            self.jr._insert(self.spark, self.alt.get(key, self.cfg), self.pending[key])
        return go

    def whole(self) -> None:
        with self.jr.record_run(self.spark, self.cfg, "bench", {}):
            pass

    def start(self) -> None:
        self.jr._insert(self.spark, self.cfg, self.record())

    def end_merge(self) -> None:
        self.jr._upsert(self.spark, self.cfg, self.ended("merge"))

    def end_update(self) -> None:
        _update_end(self.spark, self.alt["update"].table("job_runs"), self.ended("update").as_row())

    def end_append(self) -> None:
        self.jr._insert(self.spark, self.alt["append"], self.ended("append"))

    def ensure(self) -> None:
        from pipelines.tables.ensure import ensure_tables

        ensure_tables(self.spark, self.cfg)

    def ops(self) -> dict[str, _Op]:
        home_log = self.log(self.cfg)
        return {
            "record_run (start append + end MERGE)": _Op(self.whole, log=home_log),
            "start: append of the running row": _Op(self.start, log=home_log),
            "end: keyed MERGE (lakecast today)": _Op(self.end_merge, self.prepare("merge"), home_log),
            "end: UPDATE of the run's row": _Op(self.end_update, self.prepare("update"), self.log(self.alt["update"])),
            "end: a second append (event log)": _Op(self.end_append, self.prepare("append"),
                                                    self.log(self.alt["append"])),
            "ensure_tables on the existing home": _Op(self.ensure),
        }


def _measure(ops: dict[str, _Op], rounds: int, warmup: int) -> None:
    """Time each operation in each of `rounds`, after `warmup` rounds (the JVM's first MERGEs and
    UPDATEs plan and compile slowly); a round that wrote a checkpoint is kept apart (marked *)."""
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
    alt = {name: load_config(None, [f"home={home}", *args.set, f"catalog.database={cfg.catalog.database}_{name}"],
                             env={}) for name in ("update", "append")}
    spark = build_session(cfg)
    try:
        for c in (cfg, *alt.values()):
            ensure_tables(spark, c)
        ops = _Writes(spark, cfg, alt).ops()
        print("columns: " + " | ".join(ops), flush=True)
        _measure(ops, args.rounds, args.warmup)
        _check(spark, cfg, alt, args.rounds + args.warmup)
        med: dict[str, float] = {}
        for label, op in ops.items():
            med[label] = statistics.median(op.plain) if op.plain else float("nan")
            extra = (f"; {len(op.checkpointed)} round(s) wrote a checkpoint, median "
                     f"{statistics.median(op.checkpointed):.3f} s") if op.checkpointed else ""
            print(f"{label:40s} median {med[label]:.3f} s without a checkpoint{extra}", flush=True)
        names = {"job_runs_record_run_s": "record_run (start append + end MERGE)",
                 "job_runs_start_append_s": "start: append of the running row",
                 "job_runs_end_merge_s": "end: keyed MERGE (lakecast today)",
                 "job_runs_end_update_s": "end: UPDATE of the run's row",
                 "job_runs_end_append_s": "end: a second append (event log)",
                 "ensure_tables_existing_s": "ensure_tables on the existing home"}
        for key, label in names.items():
            print(f"RESULT {key}={med[label]:.3f}")
        merge, append = med[names["job_runs_end_merge_s"]], med[names["job_runs_end_append_s"]]
        print(f"RESULT job_runs_end_merge_vs_append={merge / append:.2f}")
    finally:
        stop_session(spark)


def _check(spark: Any, cfg: Any, alt: dict[str, Any], n: int) -> None:
    """Every timed write took effect: one row per run in the home, `n` ended runs in each scratch table."""
    dupes = spark.table(cfg.table("job_runs")).groupBy("run_id").count().where("count > 1").count()
    assert dupes == 0, f"{dupes} run ids with more than one row in {cfg.table('job_runs')}"
    for name, rows in (("update", n), ("append", 2 * n)):  # the append keeps the running row beside the end
        table = alt[name].table("job_runs")
        got = spark.table(table).count()
        ended = spark.table(table).where("status = 'succeeded'").count()
        assert (got, ended) == (rows, n), f"{table}: {got} rows, {ended} succeeded; expected {rows} and {n}"


if __name__ == "__main__":
    main()
