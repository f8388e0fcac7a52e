"""lakecast on real multi-process infrastructure: a Spark standalone cluster (master and two
workers on 127.0.0.1), a PostgreSQL-backed metastore, and Spark's Thrift SQL server.

The home is the session's UTC demo (tests/demo_runs.py: a whole `lakecast demo` on a PostgreSQL
catalog whose password comes from the environment), shared with the tests that read it, so no
second demo runs here. What these tests write goes into a database of its own (`on_cluster`) in
that catalog and warehouse, leaving the demo's `lakecast` database as the demo wrote it:
  - ingest, then predict through `spark-submit jobs/predict.py`, on the cluster give the local
    observations and forecasts, although one executor is killed while predict runs (Spark's
    retries complete it, or it fails clearly with nothing written and runs again);
  - two predict processes for two as-of times write the one catalog at the same time, leaving
    exactly one forecast per key;
  - `lakecast sql-server` serves the demo's `forecasts_latest` to pyspark's bundled beeline.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from conf import LakecastConfig, load_config
from pipelines.tables.views import latest_runs
from pipelines.tooling.local_cluster import (
    SPARK_HOME,
    StandaloneCluster,
    cmdline,
    free_port,
    port_open,
    spark_env,
    wait_for,
)
from tests.conftest import REPO, TEST_OVERRIDES
from tests.demo_runs import DemoRun

pytestmark = [pytest.mark.cluster, pytest.mark.postgres]

BIN = Path(sys.executable).parent
DB = "on_cluster"  # where these tests write: the demo's own `lakecast` database stays as the demo left it
KEY = ("series_id", "forecast_origin", "target_ts", "model_name")
# The demo's data ends 2025-01-01T00:00 (exclusive); these as-of times lie inside it.
AS_OF_ONE = "2024-12-29T00:00:00"
AS_OF_OTHER = "2024-12-28T00:00:00"


class Home:
    """The UTC demo's home (PostgreSQL catalog, password from the environment) and the cluster."""

    def __init__(self, demo: DemoRun, cluster: StandaloneCluster) -> None:
        self.path = demo.home
        # the demo's own settings (its tiny model, its catalog), with a smaller driver for the
        # processes that run beside the cluster's JVMs
        self.sets = (*TEST_OVERRIDES, *demo.sets, "spark.driver_memory=1g")
        self.secret_env = demo.env
        self.cluster = cluster
        self.demo_forecasts: list[Any] = []  # the forecasts table as the demo left it

    def overrides(self, master: str = "local[2]", db: str = DB) -> tuple[str, ...]:
        extra = ("spark.conf.spark.executor.memory=640m", "spark.conf.spark.executor.cores=1",
                 "spark.conf.spark.task.maxFailures=4") if master.startswith("spark://") else ()
        return (*self.sets, f"spark.master={master}", f"catalog.database={db}", *extra)

    def config(self, master: str = "local[2]") -> LakecastConfig:
        return load_config(None, [f"home={self.path}", *self.overrides(master)], env=self.secret_env)

    def env(self) -> dict[str, str]:
        return {**spark_env(), **self.secret_env, "LAKECAST_HOME": str(self.path),
                "PATH": f"{BIN}:{os.environ['PATH']}"}

    def lakecast(self, *args: str, master: str = "local[2]", db: str = DB) -> list[str]:
        sets = [x for o in self.overrides(master, db) for x in ("--set", o)]
        return [str(BIN / "lakecast"), *args, *sets]

    def run(self, *args: str, master: str = "local[2]", timeout: int = 1200,
            ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(self.lakecast(*args, master=master), capture_output=True, text=True,
                              timeout=timeout, env=self.env(), cwd=REPO)

    def table(self, spark: Any, name: str, db: str = DB) -> Any:
        """A table read by path (this test process has its own catalog)."""
        return spark.read.format("delta").load(str(self.path / "warehouse" / f"{db}.db" / name))

    def forecasts(self, spark: Any, db: str = DB) -> list[Any]:
        return self.table(spark, "forecasts", db).orderBy(*KEY).collect()

    def job_runs(self, spark: Any, db: str = DB) -> list[Any]:
        """The `job_runs` view's rows, from its event log read by path."""
        return latest_runs(self.table(spark, "job_run_events", db)).orderBy("started_at").collect()


def _ok(res: subprocess.CompletedProcess[str], what: str) -> None:
    assert res.returncode == 0, (
        f"{what} failed ({res.returncode}):\n{res.stdout[-3000:]}\n{res.stderr[-5000:]}"
    )


# Rows the cluster's ingest must quarantine, each for its reason (the demo's few series may have
# none): reason_code -> (series_id, ts, value) as written in the file.
CRAFTED = {"missing_series_id": ("", "2024-12-30T00:00:00Z", "1.5"),
           "bad_timestamp": ("crafted", "30/12/2024 01h", "1.5"),
           "bad_value": ("crafted", "2024-12-30T02:00:00Z", "n/a")}


@pytest.fixture(scope="module")
def home(spark: Any, zone_demos: dict[str, DemoRun], cluster: StandaloneCluster,
         tmp_path_factory: pytest.TempPathFactory) -> Home:
    """The session's UTC demo home, which must have run on PostgreSQL; then `lakecast ingest` on
    the cluster, into the `on_cluster` database, of the demo's files and a file of bad rows."""
    demo = zone_demos["UTC"]
    if not demo.postgres:
        pytest.skip("PostgreSQL server programs not found (apt-get install postgresql)")
    assert demo.returncode == 0, f"the UTC demo failed:\n{demo.output[-3000:]}"
    h = Home(demo, cluster)
    h.demo_forecasts = h.forecasts(spark, "lakecast")
    files = tmp_path_factory.mktemp("cluster_input") / "files"
    shutil.copytree(h.path / "demo_data", files)
    (files / "crafted.csv").write_text("series_id,ts,value\n" + "".join(f"{','.join(r)}\n" for r in CRAFTED.values()))
    _ok(h.run("ingest", str(files), "--format", "csv", "--freq", "h", master=cluster.url),
        "lakecast ingest on the cluster")
    return h


def _by_key(rows: list[Any], origin: str) -> dict[tuple[Any, ...], Any]:
    t = datetime.fromisoformat(origin)
    return {tuple(r[k] for k in KEY): r for r in rows if r["forecast_origin"] == t}


def _recorded_rows(spark: Any, home: Home, as_of: str) -> int:
    """Forecast rows the latest succeeded predict for `as_of` reported in job_runs."""
    runs = [r for r in home.job_runs(spark) if r["job"] == "predict" and r["status"] == "succeeded"
            and f'"as_of": "{as_of}"' in (r["parameters"] or "")]
    assert runs, f"no succeeded predict run for {as_of} in job_runs"
    return int(runs[-1]["row_counts"]["forecast_rows"])


def _one_per_key(rows: list[Any]) -> None:
    keys = [tuple(r[k] for k in KEY) for r in rows]
    dupes = {k for k in keys if keys.count(k) > 1}
    assert not dupes, f"{len(dupes)} forecast keys appear more than once, e.g. {sorted(dupes)[:2]}"


@pytest.mark.timeout(2400)  # includes the demos and the ingest on a slow machine
def test_ingest_and_predict_on_cluster_equal_local(spark: Any, home: Home, tmp_path: Path) -> None:
    """On the standalone cluster, into a database of its own: `lakecast ingest` of the demo's
    files (the fixture), then `spark-submit jobs/predict.py`; observations and forecasts equal the
    demo's local[2] run (same registered model)."""
    origins = {r["forecast_origin"] for r in home.demo_forecasts}
    assert len(origins) == 2, origins  # the demo scored before its held-back day arrived and after
    as_of = max(origins).isoformat()  # the end of its data: what ingesting all the demo's files gives
    local = _by_key(home.demo_forecasts, as_of)
    assert len(local) >= 6  # at least one series scored over the horizon

    cols = ("series_id", "ts", "value")
    local_obs = home.table(spark, "observations", "lakecast").select(*cols).orderBy(*cols[:2]).collect()
    cluster_obs = home.table(spark, "observations").select(*cols).orderBy(*cols[:2]).collect()
    assert cluster_obs == local_obs and len(local_obs) > 0
    bad = ("reason_code", "ts_raw", "value_raw")
    local_bad = [tuple(r) for r in home.table(spark, "quarantine", "lakecast").select(*bad).collect()]
    cluster_bad = [tuple(r) for r in home.table(spark, "quarantine").select(*bad).collect()]
    crafted = [(code, ts, value) for code, (_, ts, value) in CRAFTED.items()]
    assert sorted(cluster_bad) == sorted([*local_bad, *crafted])  # the demo's bad rows and the crafted ones

    from jobs.spark_conf import run as spark_conf
    from pipelines.session.submit import write_properties

    # outside the home: the file holds the metastore password (test_secrets checks the home)
    props = write_properties(spark_conf(home.config(home.cluster.url)), tmp_path / "cluster.properties")
    sets = [x for o in home.overrides(home.cluster.url) for x in ("--set", o)]
    submit = [str(BIN / "spark-submit"), "--properties-file", str(props), str(REPO / "jobs" / "predict.py"),
              "--as-of", as_of, *sets]
    # One executor is killed as soon as it runs the scoring UDFs: Spark's retries complete the
    # run with the same forecasts, or it fails with one clear line and writes nothing (then it
    # runs again undisturbed, so the comparison below always happens).
    proc = subprocess.Popen(submit, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=home.env(), cwd=REPO)
    try:
        killed = _kill_first_busy_executor(home.cluster, proc)
        _, err = proc.communicate(timeout=1200)
    finally:
        if proc.poll() is None:
            proc.kill()
    if proc.returncode != 0:
        assert "Error:" in err and "Traceback" not in err, f"after killing {killed}:\n{err[-3000:]}"
        assert not _by_key(home.forecasts(spark), as_of), "a failed run wrote forecasts"
        res = subprocess.run(submit, capture_output=True, text=True, timeout=1200, env=home.env(), cwd=REPO)
        _ok(res, "spark-submit jobs/predict.py on the cluster (again, after the executor was killed)")
    clustered = _by_key(home.forecasts(spark), as_of)
    assert clustered.keys() == local.keys(), f"after killing {killed}"
    for k, row in clustered.items():
        assert row["job_run_id"] != local[k]["job_run_id"]  # really scored, by the cluster run
        assert row["model_version"] == local[k]["model_version"]
        for q in ("p10", "p50", "p90"):
            assert row[q] == pytest.approx(local[k][q], rel=1e-5, abs=1e-6), (k, q)
    assert len(clustered) == _recorded_rows(spark, home, as_of)
    runs = [r for r in home.job_runs(spark) if r["status"] == "succeeded"]
    assert [r["job"] for r in runs][:2] == ["ingest", "predict"]
    assert all(home.cluster.url in r["parameters"] for r in runs[:2])  # the recorded config names the cluster


def _kill_first_busy_executor(cluster: StandaloneCluster, proc: subprocess.Popen[str],
                              timeout: float = 900) -> str:
    """SIGKILL an executor JVM as soon as it runs Python tasks (the job's UDFs)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        for i in range(cluster.workers):
            if cluster.python_workers(i):
                victim = cluster.executor_pids(i)[0]
                what = cmdline(victim)
                os.kill(victim, signal.SIGKILL)
                return f"worker {i} executor pid {victim}: {what[-80:]}"
        time.sleep(0.1)
    raise AssertionError("predict ended (or never ran Python tasks) before an executor could be killed")


@pytest.mark.timeout(1800)
def test_two_as_of_times_at_once_on_postgres_catalog(spark: Any, home: Home) -> None:
    """Two predict processes for two as-of times write one catalog at the same time (Derby would
    refuse the second). Afterwards every key has exactly one forecast."""
    procs = [subprocess.Popen(home.lakecast("predict", "--as-of", t, master="local[1]"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=home.env(),
                              cwd=REPO) for t in (AS_OF_ONE, AS_OF_OTHER)]
    results = [(p, *p.communicate(timeout=1200)) for p in procs]
    for p, out, err in results:
        assert p.returncode == 0, f"{p.args[1:4]} failed:\n{out[-2000:]}\n{err[-4000:]}"
    rows = home.forecasts(spark)
    _one_per_key(rows)
    for t in (AS_OF_ONE, AS_OF_OTHER):
        assert len(_by_key(rows, t)) == _recorded_rows(spark, home, t) > 0, t
    runs = [r for r in home.job_runs(spark) if r["job"] == "predict"][-2:]  # the newest two: these
    assert {r["status"] for r in runs} == {"succeeded"}
    assert {json.loads(r["parameters"])["as_of"] for r in runs} == {AS_OF_ONE, AS_OF_OTHER}
    a, b = sorted(runs, key=lambda r: r["started_at"])
    assert b["started_at"] < a["ended_at"], "the two runs did not overlap"


def _beeline(port: int, sql: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(SPARK_HOME / "bin" / "beeline"), "-u", f"jdbc:hive2://127.0.0.1:{port}/lakecast",
         "--silent=true", "--showHeader=true", "--outputformat=csv2", "-e", sql],
        capture_output=True, text=True, timeout=300, env=spark_env(), cwd=REPO,
    )


@pytest.mark.timeout(1800)
def test_sql_server_serves_forecasts_latest_to_beeline(spark: Any, home: Home) -> None:
    port = free_port()
    proc = subprocess.Popen(home.lakecast("sql-server", "--set", f"sql_server.port={port}", db="lakecast"),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=home.env(),
                            cwd=REPO)
    try:
        wait_for(lambda: port_open(port) or proc.poll() is not None, 300, "the Thrift SQL server",
                 home.path / "logs" / "sql-server.log")
        assert proc.poll() is None, proc.communicate()[0][-3000:]
        res = _beeline(port, "SELECT count(*) AS n, count(DISTINCT series_id) AS s, "
                             "max(forecast_origin) AS o FROM forecasts_latest")
        assert res.returncode == 0, res.stderr[-3000:]
        lines = [ln.rsplit("> ", 1)[-1] for ln in res.stdout.splitlines() if ln.strip()]  # no prompt
        assert "n,s,o" in lines, res.stdout
        n, s, origin = lines[lines.index("n,s,o") + 1].split(",")
        table = home.path / "warehouse" / "lakecast.db" / "forecasts"
        latest = spark.sql(  # forecasts_latest has one row per (series_id, target_ts)
            f"SELECT count(DISTINCT series_id, target_ts) AS n FROM delta.`{table}`").head()["n"]
        assert (int(n), int(s)) == (latest, len({r["series_id"] for r in home.demo_forecasts}))
        assert origin.startswith("2024-12-31")  # the demo scored at the end of its data
    finally:
        proc.send_signal(signal.SIGTERM)
        out = proc.communicate(timeout=120)[0]
    assert proc.returncode == 0, out[-2000:]
    assert not port_open(port), "the Thrift server outlived `lakecast sql-server`"
