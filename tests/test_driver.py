"""`lakecast driver`: commands for a home run in its warm driver, as they would in their own process."""

from __future__ import annotations

import json
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from conf import load_config
from jobs._cli.driver_client import Endpoint
from jobs._cli.driver_server import differences
from tests.conftest import BIN, TEST_OVERRIDES, run_cli


def test_differences_name_the_spark_settings_that_would_change_the_session(tmp_path: Path) -> None:
    base = load_config(None, [f"home={tmp_path}"], env={})
    same = load_config(None, [f"home={tmp_path}", "train.max_epochs=3", "catalog.database=other"], env={})
    assert differences(base, same) == []  # job settings are the run's own: not a different session
    other = load_config(None, [f"home={tmp_path}", "spark.driver_memory=5g", "scoring.arrow_batch_rows=7"], env={})
    diff = differences(base, other)
    assert "spark.driver.memory: '5g' here, '2g' in the driver" in diff
    assert "spark.sql.execution.arrow.maxRecordsPerBatch: '7' here, '10000' in the driver" in diff
    pg = [f"home={tmp_path}", "catalog.metastore=postgres", "catalog.jdbc_url=jdbc:postgresql://db/hive"]
    a = load_config(None, [*pg, "catalog.jdbc_password=hunter2"], env={})
    b = load_config(None, [*pg, "catalog.jdbc_password=swordfish"], env={})
    diff = differences(a, b)
    assert "spark.hadoop.javax.jdo.option.ConnectionPassword differs" in diff
    assert "hunter2" not in " ".join(diff) and "swordfish" not in " ".join(diff)
    assert any(d.startswith("home ") for d in differences(base, load_config(None, [f"home={tmp_path}/x"], env={})))


def test_a_dead_drivers_endpoint_is_ignored_and_removed(tmp_path: Path) -> None:
    from jobs._cli.driver_client import endpoint_path, forward

    cfg = load_config(None, [f"home={tmp_path}"], env={})
    assert forward(cfg, "sql", {}) is None  # no driver: the command runs in its own process
    dead = subprocess.Popen(["true"])
    dead.wait()
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    path = endpoint_path(tmp_path)
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"pid": dead.pid, "port": port, "token": "x", "started_at": ""}))
    assert Endpoint.read(tmp_path) is None  # readable by others: not a driver's endpoint, not trusted
    path.chmod(0o600)
    assert forward(cfg, "sql", {}) is None
    assert not path.exists()
    # a driver on another host sharing the home (a volume): neither used nor removed from here
    path.write_text(json.dumps({"pid": dead.pid, "host": "elsewhere", "port": port, "token": "x"}))
    path.chmod(0o600)
    assert forward(cfg, "sql", {}) is None and path.exists()
    path.unlink()
    assert forward(cfg, "demo", {}) is None  # not a command the driver runs


def _sql(home: Path, statement: str, *extra: str) -> subprocess.CompletedProcess[str]:
    return run_cli(home, "sql", statement, "--format", "json", *extra, timeout=300)


def _status(home: Path) -> dict[str, object]:
    endpoint = Endpoint.read(home)
    assert endpoint is not None, f"no endpoint file under {home}"
    from jobs._cli.driver_client import request

    return next(f["status"] for f in request(endpoint, "status") if "status" in f)


@pytest.fixture(scope="module")
def driver_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    home = tmp_path_factory.mktemp("driver") / "home"
    # idle stop: a test session that dies cannot leave the driver's JVM behind for long
    started = run_cli(home, "driver", "start", "--set", "driver.idle_stop_minutes=15", timeout=600)
    assert started.returncode == 0, started.stderr
    try:
        yield home
    finally:
        run_cli(home, "driver", "stop", timeout=600)


def test_commands_run_in_the_warm_driver_with_their_output_and_exit_codes(driver_home: Path) -> None:
    before = _status(driver_home)
    ok = _sql(driver_home, "SELECT 1 AS one, 'a' AS letter")
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout) == [{"one": 1, "letter": "a"}]
    bad = _sql(driver_home, "SELECT no_such_column")
    assert bad.returncode == 1
    assert "no_such_column" in bad.stderr and "Traceback" not in bad.stderr
    after = _status(driver_home)
    assert after["runs"] == int(str(before["runs"])) + 2 and after["failed"] == int(str(before["failed"])) + 1
    assert after["pid"] == before["pid"] and after["running"] is None
    # the same driver still serves after a failed run
    assert json.loads(_sql(driver_home, "SELECT 2 AS two").stdout) == [{"two": 2}]


def test_a_run_uses_the_callers_working_directory(driver_home: Path, tmp_path: Path) -> None:
    gen = subprocess.run([str(BIN / "lakecast"), "generate", "raw", "--series", "3", "--days", "2"],
                         cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert gen.returncode == 0, gen.stderr
    sets = [x for o in TEST_OVERRIDES for x in ("--set", o)]
    ingest = subprocess.run([str(BIN / "lakecast"), "ingest", "raw", *sets], cwd=tmp_path, capture_output=True,
                            text=True, timeout=600, env={**os.environ, "LAKECAST_HOME": str(driver_home)})
    assert ingest.returncode == 0, ingest.stderr
    rows = json.loads(_sql(driver_home, "SELECT count(DISTINCT series_id) AS n FROM lakecast.observations").stdout)
    assert rows == [{"n": 3}]
    runs = json.loads(_sql(driver_home, "SELECT status FROM lakecast.job_runs WHERE job = 'ingest'").stdout)
    assert runs == [{"status": "succeeded"}]


def test_each_run_has_its_own_sql_settings_database_and_views(driver_home: Path) -> None:
    for statement in ("SET spark.sql.session.timeZone=America/New_York", "CREATE DATABASE IF NOT EXISTS other",
                      "USE other", "CREATE TEMPORARY VIEW leaked AS SELECT 1 AS x"):
        assert _sql(driver_home, statement).returncode == 0
    after = _sql(driver_home, "SELECT current_timezone() AS tz, current_database() AS db")
    assert json.loads(after.stdout) == [{"tz": "UTC", "db": "lakecast"}]  # as in a process of its own
    gone = _sql(driver_home, "SELECT * FROM leaked")
    assert gone.returncode == 1 and "leaked" in gone.stderr


def test_malformed_or_unauthenticated_requests_cannot_stop_the_driver(driver_home: Path) -> None:
    endpoint = Endpoint.read(driver_home)
    assert endpoint is not None
    for payload in (b"1\n", b"[]\n", b'{"hello": 5}\n', b'{"hello": "n"}\n{"token": "\xc3\xa9", "op": "stop"}\n',
                    b'{"hello": "n"}\n{"token": "wrong", "op": "stop"}\n', b"not json\n"):
        with socket.create_connection(("127.0.0.1", endpoint.port), timeout=5) as s:
            s.sendall(payload)
            s.shutdown(socket.SHUT_WR)
            while s.recv(4096):
                pass
    status = _status(driver_home)
    assert status["pid"] == endpoint.pid and status["stopping"] is False
    assert json.loads(_sql(driver_home, "SELECT 4 AS four").stdout) == [{"four": 4}]


def test_concurrent_callers_wait_their_turn(driver_home: Path) -> None:
    sets = [x for o in TEST_OVERRIDES for x in ("--set", o)]
    env = {**os.environ, "LAKECAST_HOME": str(driver_home)}
    procs = [subprocess.Popen([str(BIN / "lakecast"), "sql", f"SELECT {i} AS i", "--format", "json", *sets],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env) for i in range(3)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0], [e for _, e in outs]
    assert [json.loads(o) for o, _ in outs] == [[{"i": i}] for i in range(3)]


def test_other_spark_settings_are_refused_by_name_and_never_runs_in_process(driver_home: Path) -> None:
    other = _sql(driver_home, "SELECT 1", "--set", "spark.app_name=other")
    assert other.returncode == 1
    assert "spark.app.name: 'other' here, 'lakecast' in the driver" in other.stderr
    assert "lakecast driver stop" in other.stderr
    # in its own process, the command meets the catalog the driver holds: the one-line message names it
    own = _sql(driver_home, "SELECT 1", "--set", "driver.use=never")
    assert own.returncode == 1 and "held by the lakecast driver" in own.stderr
    assert "lakecast driver stop" in own.stderr and "Traceback" not in own.stderr
    # a command that never runs in a driver meets the same one-line message
    demo = run_cli(driver_home, "demo", "--series", "2", "--days", "30", timeout=300)
    assert demo.returncode == 1 and "held by the lakecast driver" in demo.stderr


def test_stop_releases_the_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert run_cli(home, "driver", "status").returncode == 1
    assert run_cli(home, "driver", "start").returncode == 0
    again = run_cli(home, "driver", "start")  # idempotent: reports the one running
    assert again.returncode == 0 and "already running" in again.stdout
    pid = Endpoint.read(home).pid  # type: ignore[union-attr]
    stopped = run_cli(home, "driver", "stop")
    assert stopped.returncode == 0 and f"pid {pid}" in stopped.stderr
    assert Endpoint.read(home) is None
    local = _sql(home, "SELECT 3 AS three")  # no driver: the command starts its own session
    assert local.returncode == 0 and json.loads(local.stdout) == [{"three": 3}]
