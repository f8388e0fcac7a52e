"""What every command pays for its bookkeeping: the `job_runs` rows and the tables' drift check.

    python -m bench.bookkeeping_bench              # 8 measured rounds after two warm-up rounds
    python -m bench.bookkeeping_bench --rounds 15

In one SparkSession on a temporary home (the embedded defaults), each round times:
  - `record_run` around an empty job: what a command pays for job_runs (its `running` row, an
    append, then its end state, a keyed MERGE);
  - the two writes apart: the `running` append (`_insert`) and the end MERGE (`_upsert`);
  - two other ways to write the end state, each on a `job_runs` of its own database so the
    home's table keeps one row per run: a Delta UPDATE of the run's row (columns set from
    literals), and a second append (what an append-only event log with a view for the latest
    state would write; issue 17, "Small runs");
  - `ensure_tables` on the existing home: the drift check of every governed table and the views,
    which every command runs before its work.
Medians (and means) over the measured rounds, after two warm-up rounds; the writes alternate so
each sees the same machine load. Every tenth commit to a Delta table also writes a checkpoint,
so one table's writes alternate between a cheap and a dearer round; the mean counts it.
`RESULT job_runs_end_merge_vs_append` is the end MERGE's median over the append's.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any


def _update_end(spark: Any, table: str, row: tuple[Any, ...], schema: Any) -> None:
    """The run's end state as a Delta UPDATE of its row, every column from a literal."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    def lit(v: Any, dtype: Any) -> Any:
        if isinstance(v, dict):
            pairs = [c for k, x in v.items() for c in (F.lit(k), F.lit(x))]
            return F.create_map(*pairs).cast(dtype)
        return F.lit(v).cast(dtype)

    values = dict(zip(schema.fieldNames(), row, strict=True))
    run_id = values.pop("run_id")
    sets = {k: lit(v, schema[k].dataType) for k, v in values.items()}
    DeltaTable.forName(spark, table).update(F.col("run_id") == run_id, sets)


class _Writes:
    """The timed operations, on one session: the home's own tables and two scratch databases."""

    def __init__(self, spark: Any, cfg: Any, alt: dict[str, Any]) -> None:
        from pipelines.sinks import job_runs

        self.spark, self.cfg, self.alt, self.jr = spark, cfg, alt, job_runs
        self.schema = spark.table(cfg.table("job_runs")).schema
        self.pending: dict[str, Any] = {}

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
        _update_end(self.spark, self.alt["update"].table("job_runs"), self.ended("update").as_row(), self.schema)

    def end_append(self) -> None:
        self.jr._insert(self.spark, self.alt["append"], self.ended("append"))

    def ensure(self) -> None:
        from pipelines.tables.ensure import ensure_tables

        ensure_tables(self.spark, self.cfg)


def _measure(timed: dict[str, tuple[Callable[[], None] | None, Callable[[], None]]],
             rounds: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each operation in each of `rounds`, after `warmup` rounds (the JVM's first
    MERGEs and UPDATEs plan and compile slowly)."""
    secs: dict[str, list[float]] = {k: [] for k in timed}
    for i in range(warmup + rounds):
        for label, (before, fn) in timed.items():
            if before is not None:
                before()
            t0 = time.perf_counter()
            fn()
            if i >= warmup:
                secs[label].append(time.perf_counter() - t0)
        if i >= warmup:
            print(f"round {i - warmup + 1}: " + ", ".join(f"{s[-1]:.2f}" for s in secs.values()), flush=True)
    return secs


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rounds", type=int, default=8, help="measured rounds")
    ap.add_argument("--warmup", type=int, default=2, help="rounds before those, not counted")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="config override")
    args = ap.parse_args(argv)

    from conf import load_config
    from pipelines.session.builder import build_session, stop_session
    from pipelines.tables.ensure import ensure_tables

    home = Path(tempfile.mkdtemp(prefix="lakecast_bookkeeping_bench_"))
    cfg = load_config(None, [f"home={home}", *args.set], env={})
    alt = {name: load_config(None, [f"home={home}", f"catalog.database=bookkeeping_{name}", *args.set], env={})
           for name in ("update", "append")}
    spark = build_session(cfg)
    try:
        for c in (cfg, *alt.values()):
            ensure_tables(spark, c)
        w = _Writes(spark, cfg, alt)
        timed: dict[str, tuple[Callable[[], None] | None, Callable[[], None]]] = {
            "record_run (start append + end MERGE)": (None, w.whole),
            "start: append of the running row": (None, w.start),
            "end: keyed MERGE (lakecast today)": (w.prepare("merge"), w.end_merge),
            "end: UPDATE of the run's row": (w.prepare("update"), w.end_update),
            "end: a second append (event log)": (w.prepare("append"), w.end_append),
            "ensure_tables on the existing home": (None, w.ensure),
        }
        print("columns: " + " | ".join(timed), flush=True)
        secs = _measure(timed, args.rounds, args.warmup)
        med = {k: statistics.median(v) for k, v in secs.items()}
        for label, v in secs.items():  # the mean counts the Delta checkpoint every tenth commit pays
            print(f"{label:40s} median {med[label]:.3f} s, mean {statistics.mean(v):.3f} s", flush=True)
        dupes = spark.table(cfg.table("job_runs")).groupBy("run_id").count().where("count > 1").count()
        assert dupes == 0, f"{dupes} run ids with more than one row in {cfg.table('job_runs')}"
        r = list(med.values())
        print(f"RESULT job_runs_record_run_s={r[0]:.3f}")
        print(f"RESULT job_runs_start_append_s={r[1]:.3f}")
        print(f"RESULT job_runs_end_merge_s={r[2]:.3f}")
        print(f"RESULT job_runs_end_update_s={r[3]:.3f}")
        print(f"RESULT job_runs_end_append_s={r[4]:.3f}")
        print(f"RESULT job_runs_end_merge_vs_append={r[2] / r[4]:.2f}")
        print(f"RESULT ensure_tables_existing_s={r[5]:.3f}")
    finally:
        stop_session(spark)


if __name__ == "__main__":
    main()
