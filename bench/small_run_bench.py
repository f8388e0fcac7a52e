"""A small scheduled predict against a bare `lakecast sql "SELECT 1"`, each a fresh process.

    python -m bench.small_run_bench              # 20 series x 30 days, 3 runs each
    python -m bench.small_run_bench --repeat 5

One home is prepared by `lakecast demo` (20 series, one training epoch). Then, alternately,
`lakecast sql "SELECT 1"` (the fixed cost of any command: interpreter, imports, JVM, Spark
session, the catalog) and `lakecast predict --as-of T` (the same, plus the job: the tables'
drift check, job_runs, model resolution and download, scoring, the MERGE), each a fresh
process, on the embedded defaults (local[*], Derby, SQLite). `RESULT
small_predict_vs_sql_start` is the median predict wall over the median sql wall (issue 17's
target: at most 2.0). Job time is `ended_at - started_at` from job_runs. Each pair runs twice per
round, with the driver JVM's class archive (`spark.class_archive`, the default) and without it,
so `class_archive_*_speedup` compare the two in the same run.

Then `lakecast driver start` (a warm session for the home, timed once) and the same two
commands again, each still a fresh process, now run in the driver: `RESULT
small_predict_driver_vs_sql_start` is the median predict wall through the driver over the
median cold `sql` wall above, both measured in this run.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path
from statistics import median

from bench._commands import IVY, timed_lakecast


def _lakecast(home: Path, *args: str) -> tuple[float, str]:
    return timed_lakecast(home, args, ["train.max_epochs=1", "train.plot_series=0"])


def _wait_for_class_archive(timeout_s: float = 600.0) -> None:
    """The demo's first command started the JVM class archive's build in the background (once
    per JVM and class path): wait for it, so every timed run with the archive has one."""
    folder = IVY / "class-archive"
    deadline = time.time() + timeout_s
    while time.time() < deadline and (any(folder.glob("*.building")) or not any(folder.glob("*.jsa"))):
        time.sleep(2)
    print(f"  class archive: {', '.join(p.name for p in folder.glob('*.jsa')) or 'none'}", flush=True)


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
        _wait_for_class_archive()
        walls: dict[str, list[float]] = {}
        for i in range(a.repeat):
            for archive in ("true", "false"):  # the JVM class archive on and off, alternately
                for name, args in (("sql", ("sql", "SELECT 1")), ("predict", ("predict", "--as-of", as_of))):
                    took, _ = _lakecast(home, *args, "--set", f"spark.class_archive={archive}")
                    key = name if archive == "true" else f"{name}_no_archive"
                    walls.setdefault(key, []).append(took)
                    print(f"  run {i + 1} {key:20s} {took:.1f} s wall", flush=True)
        _, out = _lakecast(home, "sql", "SELECT started_at, ended_at FROM lakecast.job_runs WHERE job = 'predict' "
                           "AND status = 'succeeded' ORDER BY started_at", "--format", "json")
        rows = json.loads(out[out.index("["):])[-2 * a.repeat::2]  # the runs with the archive
        driver_start, _ = _lakecast(home, "driver", "start")
        print(f"  driver start {driver_start:.1f} s wall", flush=True)
        try:
            for i in range(a.repeat):
                for name, args in (("sql", ("sql", "SELECT 1")), ("predict", ("predict", "--as-of", as_of))):
                    took, _ = _lakecast(home, *args)
                    walls.setdefault(f"{name}_driver", []).append(took)
                    print(f"  run {i + 1} {name + '_driver':20s} {took:.1f} s wall", flush=True)
        finally:
            _lakecast(home, "driver", "stop")
    jobs = [(datetime.fromisoformat(str(r["ended_at"])) - datetime.fromisoformat(str(r["started_at"])))
            .total_seconds() for r in rows]
    sql, pred, job = median(walls["sql"]), median(walls["predict"]), median(jobs)
    sql_off, pred_off = median(walls["sql_no_archive"]), median(walls["predict_no_archive"])
    print(f"\n{a.series} series x {a.days} days, predict as of {as_of}, median of {a.repeat} runs each, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"  lakecast sql 'SELECT 1'  {sql:6.1f} s wall")
    print(f"  lakecast predict         {pred:6.1f} s wall ({job:.1f} s between job_runs start and end)")
    print(f"  without the JVM class archive: sql {sql_off:.1f} s, predict {pred_off:.1f} s")
    sql_drv, pred_drv = median(walls["sql_driver"]), median(walls["predict_driver"])
    print(f"  through a warm driver (started in {driver_start:.1f} s): sql {sql_drv:.1f} s, predict {pred_drv:.1f} s")
    print(f"RESULT small_sql_start_wall_s={sql:.1f}")
    print(f"RESULT small_predict_wall_s={pred:.1f}")
    print(f"RESULT small_predict_job_s={job:.1f}")
    print(f"RESULT small_predict_vs_sql_start={pred / sql:.2f}")
    print(f"RESULT small_sql_start_no_archive_wall_s={sql_off:.1f}")
    print(f"RESULT small_predict_no_archive_wall_s={pred_off:.1f}")
    print(f"RESULT class_archive_sql_speedup={sql_off / sql:.2f}")
    print(f"RESULT class_archive_predict_speedup={pred_off / pred:.2f}")
    print(f"RESULT driver_start_wall_s={driver_start:.1f}")
    print(f"RESULT small_sql_driver_wall_s={sql_drv:.2f}")
    print(f"RESULT small_predict_driver_wall_s={pred_drv:.1f}")
    print(f"RESULT small_predict_driver_vs_sql_start={pred_drv / sql:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
