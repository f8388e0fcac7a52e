"""The same `lakecast predict` run on local[2] and on a Spark standalone cluster (2 workers).

    python -m bench.cluster_bench                 # 100 series x 60 days, 2 runs each
    python -m bench.cluster_bench --series 400 --repeat 3

One home is prepared by `lakecast demo` (default windows and model, one training epoch).
A master and two workers (1 core, 1 GB each) start on 127.0.0.1 with pyspark's
`bin/spark-class`; then `lakecast predict --as-of T` runs alternately with
`spark.master=local[2]` (baseline) and `spark.master=spark://127.0.0.1:PORT`, each a fresh
process, so both include the JVM start. Wall time is the whole command; job time is
`ended_at - started_at` from `job_runs` (scoring and MERGE, without the JVM start).
On one 2-core machine the cluster cannot be faster (same cores, plus executor JVMs and
network hops): the figure shows the overhead of going distributed, not a speed-up.
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


def _lakecast(home: Path, *args: str, master: str) -> tuple[float, str]:
    sets = [f"spark.master={master}", "spark.shuffle_partitions=4",
            "train.max_epochs=1", "scoring.precision=fp32", "train.plot_series=0"]
    if master.startswith("spark://"):
        sets += ["spark.conf.spark.executor.memory=768m", "spark.conf.spark.executor.cores=1"]
    return timed_lakecast(home, args, sets, env={"SPARK_LOCAL_IP": "127.0.0.1"}, what=f" on {master}")


def main(argv: list[str]) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--series", type=int, default=100)
    p.add_argument("--days", type=int, default=60)
    p.add_argument("--repeat", type=int, default=2)
    a = p.parse_args(argv)
    from pipelines.tooling.local_cluster import StandaloneCluster

    with tempfile.TemporaryDirectory(prefix="lakecast-cluster-bench-") as tmp:
        home = Path(tmp) / "home"
        print(f"preparing: lakecast demo --series {a.series} --days {a.days} (local[2]) ...", flush=True)
        took, _ = _lakecast(home, "demo", "--series", str(a.series), "--days", str(a.days), master="local[2]")
        print(f"  demo took {took:.0f} s", flush=True)
        as_of = "2024-12-31T00:00:00"
        cluster = StandaloneCluster(Path(tmp) / "cluster", workers=2, cores=1, memory="1g")
        walls: dict[str, list[float]] = {"local": [], "cluster": []}
        try:
            cluster.start()
            for i in range(a.repeat):
                for name, master in (("local", "local[2]"), ("cluster", cluster.url)):
                    took, _ = _lakecast(home, "predict", "--as-of", as_of, master=master)
                    walls[name].append(took)
                    print(f"  run {i + 1} {name:7s} ({master}): {took:.1f} s wall", flush=True)
        finally:
            cluster.stop()
        _, out = _lakecast(home, "sql", "SELECT parameters, started_at, ended_at FROM lakecast.job_runs "
                           "WHERE job = 'predict' AND status = 'succeeded' ORDER BY started_at",
                           "--format", "json", master="local[1]")
        rows = json.loads(out[out.index("["):])
    jobs: dict[str, list[float]] = {"local": [], "cluster": []}
    for r in rows[1:]:  # the first is the demo's own predict
        name = "cluster" if "spark://" in r["parameters"] else "local"
        start, end = (datetime.fromisoformat(str(r[k])) for k in ("started_at", "ended_at"))
        jobs[name].append((end - start).total_seconds())
    lw, cw = median(walls["local"]), median(walls["cluster"])
    lj, cj = median(jobs["local"]), median(jobs["cluster"])
    print(f"\n{a.series} series x {a.days} days, predict as of {as_of}, median of {a.repeat} runs, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    print(f"{'':10s} {'wall s':>8s} {'job s':>8s}")
    print(f"{'local[2]':10s} {lw:8.1f} {lj:8.1f}")
    print(f"{'cluster':10s} {cw:8.1f} {cj:8.1f}")
    print(f"RESULT cluster_predict_local_wall_s={lw:.1f}")
    print(f"RESULT cluster_predict_cluster_wall_s={cw:.1f}")
    print(f"RESULT cluster_predict_local_job_s={lj:.1f}")
    print(f"RESULT cluster_predict_cluster_job_s={cj:.1f}")
    print(f"RESULT cluster_over_local_wall={cw / lw:.2f}")
    print(f"RESULT cluster_over_local_job={cj / lj:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
