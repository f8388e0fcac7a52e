"""A small scheduled predict against a bare `lakecast sql "SELECT 1"`, each a fresh process.

    python -m bench.small_run_bench              # 20 series x 30 days, 3 runs each
    python -m bench.small_run_bench --repeat 5

One home is prepared by `lakecast demo` (20 series, one training epoch). Then, alternately,
`lakecast sql "SELECT 1"` (the fixed cost of any command: interpreter, imports, JVM, Spark
session, the catalog) and `lakecast predict --as-of T` (the same, plus the job: the tables'
drift check, job_runs, model resolution and download, scoring, the MERGE), each a fresh
process, on the embedded defaults (local[*], Derby, SQLite). `RESULT
small_predict_vs_sql_start` is the median predict wall over the median sql wall (issue 17's
target: at most 2.0). Job time is `ended_at - started_at` from job_runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from datetime import datetime
from pathlib import Path
from statistics import median

from bench._commands import timed_lakecast


def _lakecast(home: Path, *args: str) -> tuple[float, str]:
    return timed_lakecast(home, args, ["train.max_epochs=1", "train.plot_series=0"])


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=20)
    p.add_argument("--days", type=int, default=30)
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lakecast-small-bench-") as tmp:
        home = Path(tmp) / "home"
        print(f"preparing: lakecast demo --series {a.series} --days {a.days} ...", flush=True)
        took, _ = _lakecast(home, "demo", "--series", str(a.series), "--days", str(a.days))
        print(f"  demo took {took:.0f} s", flush=True)
        as_of = "2024-12-30T23:00:00"
        walls: dict[str, list[float]] = {"sql": [], "predict": []}
        for i in range(a.repeat):
            for name, args in (("sql", ("sql", "SELECT 1")), ("predict", ("predict", "--as-of", as_of))):
                took, _ = _lakecast(home, *args)
                walls[name].append(took)
                print(f"  run {i + 1} {name:8s} {took:.1f} s wall", flush=True)
        _, out = _lakecast(home, "sql", "SELECT started_at, ended_at FROM lakecast.job_runs WHERE job = 'predict' "
                           "AND status = 'succeeded' ORDER BY started_at", "--format", "json")
        rows = json.loads(out[out.index("["):])[-a.repeat:]
    jobs = [(datetime.fromisoformat(str(r["ended_at"])) - datetime.fromisoformat(str(r["started_at"])))
            .total_seconds() for r in rows]
    sql, pred, job = median(walls["sql"]), median(walls["predict"]), median(jobs)
    print(f"\n{a.series} series x {a.days} days, predict as of {as_of}, median of {a.repeat} runs each, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  lakecast sql 'SELECT 1'  {sql:6.1f} s wall")
    print(f"  lakecast predict         {pred:6.1f} s wall ({job:.1f} s between job_runs start and end)")
    print(f"RESULT small_sql_start_wall_s={sql:.1f}")
    print(f"RESULT small_predict_wall_s={pred:.1f}")
    print(f"RESULT small_predict_job_s={job:.1f}")
    print(f"RESULT small_predict_vs_sql_start={pred / sql:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
