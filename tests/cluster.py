"""Real servers for the heavy tests: a Spark standalone cluster and a PostgreSQL server.

Both run on 127.0.0.1 with free ports, keep everything under a temporary directory and are
torn down by process group, so an executor or backend they spawned cannot outlive a test
run. Nothing here is a stand-in: the master, workers and PostgreSQL are the real programs
(pyspark's `bin/spark-class`, Debian's `initdb`/`pg_ctl`).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pyspark

SPARK_HOME = Path(pyspark.__file__).resolve().parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(predicate: object, timeout: float, what: str, log: Path | None = None) -> None:
    """Poll `predicate()` until true; on timeout fail naming `what` and the log's tail."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return
        time.sleep(0.3)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    raise TimeoutError(f"{what} not ready after {timeout:.0f} s\n{tail}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _children(pid: int) -> list[int]:
    """Direct children of `pid`; a JVM forks from its other threads, so read every task's list."""
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            out += [int(x) for x in (task / "children").read_text().split()]
        except OSError:
            continue
    return out


def descendants(pid: int) -> list[int]:
    out: list[int] = []
    todo = _children(pid)
    while todo:
        p = todo.pop()
        out.append(p)
        todo.extend(_children(p))
    return out


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _stop_group(proc: subprocess.Popen[bytes], grace: float = 10.0) -> None:
    """SIGTERM the process group we created for `proc`, then SIGKILL what is left."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=grace)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # executors and Python workers share the group
    proc.wait(timeout=30)


def spark_env() -> dict[str, str]:
    """Environment for anything that talks to the local cluster: loopback only."""
    return {**os.environ, "SPARK_HOME": str(SPARK_HOME), "SPARK_LOCAL_IP": "127.0.0.1"}


@dataclass
class StandaloneCluster:
    """A Spark standalone master and `workers` workers started with pyspark's spark-class."""

    workdir: Path
    workers: int = 2
    cores: int = 1
    memory: str = "1g"
    port: int = 0
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    logs: list[Path] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"spark://127.0.0.1:{self.port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        log = self.workdir / f"{name}.log"
        env = {
            **spark_env(),
            "SPARK_DAEMON_MEMORY": "256m",
            "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false",
            "SPARK_WORKER_OPTS": "-Dspark.worker.cleanup.enabled=false",
        }
        with open(log, "wb") as fh:
            proc = subprocess.Popen(
                [str(SPARK_HOME / "bin" / "spark-class"), *args], stdout=fh, stderr=subprocess.STDOUT,
                env=env, cwd=self.workdir, start_new_session=True,
            )
        self.procs.append(proc)
        self.logs.append(log)
        return proc

    def start(self, timeout: float = 120) -> StandaloneCluster:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                    "--port", str(self.port), "--webui-port", str(free_port()))
        master_log = self.logs[0]
        wait_for(lambda: "elected leader" in master_log.read_text(errors="replace"), timeout,
                 "spark master", master_log)
        for i in range(self.workers):
            wdir = self.workdir / f"worker{i}"
            wdir.mkdir(exist_ok=True)
            self._spawn(f"worker{i}", "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                        "--port", str(free_port()), "--webui-port", str(free_port()),
                        "--cores", str(self.cores), "--memory", self.memory, "--work-dir", str(wdir),
                        self.url)
        wait_for(lambda: master_log.read_text(errors="replace").count("Registering worker")
                 >= self.workers, timeout, f"{self.workers} spark workers", master_log)
        return self

    def worker_pid(self, i: int) -> int:
        return self.procs[1 + i].pid

    def executor_pids(self, i: int) -> list[int]:
        """Executor JVMs that worker `i` runs now."""
        return [p for p in _children(self.worker_pid(i)) if "CoarseGrainedExecutorBackend" in cmdline(p)]

    def python_workers(self, i: int) -> list[int]:
        """Python worker processes under worker `i`'s executors (pandas UDFs running)."""
        return [p for e in self.executor_pids(i) for p in descendants(e) if "pyspark" in cmdline(p)]

    def stop(self) -> None:
        for proc in reversed(self.procs):  # workers (and their executors) first
            _stop_group(proc)
        self.procs.clear()


def postgres_bindir() -> Path | None:
    """Directory of PostgreSQL's server programs (initdb, pg_ctl), newest version first."""
    found = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"),
                   key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0, reverse=True)
    if found:
        return found[0].parent
    initdb = shutil.which("initdb")
    return Path(initdb).parent if initdb else None


@dataclass
class PostgresServer:
    """A throwaway PostgreSQL cluster: `initdb` into a temp dir, served on a free port.

    initdb refuses to run as root, so as root the server runs as the `postgres` user
    (from Debian's package) in a directory handed to it; trust authentication on
    127.0.0.1 only.
    """

    bindir: Path
    port: int = 0
    root: Path | None = None
    _owner: str | None = None

    def _run(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        cmd = [str(self.bindir / args[0]), *args[1:]]
        if self._owner:
            cmd = ["runuser", "-u", self._owner, "--", *cmd]
        res = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd="/")
        if res.returncode != 0:
            log = self.root / "postgres.log" if self.root else None
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(
                f"{' '.join(args[:2])} failed ({res.returncode}): {res.stderr}{res.stdout}\n{tail}"
            )
        return res

    def start(self) -> PostgresServer:
        self.root = Path(tempfile.mkdtemp(prefix="lakecast-pg-"))
        if os.geteuid() == 0:
            import pwd

            users = {u.pw_name for u in pwd.getpwall()}
            self._owner = next((u for u in ("postgres", "nobody") if u in users), None)
            if self._owner is None:
                raise RuntimeError("initdb refuses root and there is no `postgres` or `nobody` user")
            subprocess.run(["chown", "-R", f"{self._owner}:", str(self.root)], check=True)
        data = self.root / "data"
        self._run("initdb", "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8",
                  "--no-sync", "--locale=C")
        self.port = free_port()
        opts = (f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=60")
        self._run("pg_ctl", "-D", str(data), "-o", opts, "-l", str(self.root / "postgres.log"),
                  "-w", "-t", "60", "start")
        return self

    def sql(self, statement: str, db: str = "postgres") -> str:
        res = self._run("psql", "-h", "127.0.0.1", "-p", str(self.port), "-U", "postgres", "-d", db,
                        "-v", "ON_ERROR_STOP=1", "-At", "-c", statement)
        return res.stdout.strip()

    def create_database(self, name: str, user: str = "hive", password: str = "hive") -> str:
        """A new empty database owned by `user`; returns its JDBC URL."""
        if not self.sql(f"SELECT 1 FROM pg_roles WHERE rolname = '{user}'"):
            self.sql(f"CREATE ROLE {user} LOGIN PASSWORD '{password}'")
        self.sql(f"CREATE DATABASE {name} OWNER {user}")
        return f"jdbc:postgresql://127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.root is None:
            return
        data = self.root / "data"
        if (data / "postmaster.pid").exists():
            try:
                self._run("pg_ctl", "-D", str(data), "-m", "immediate", "-w", "stop", timeout=60)
            except (RuntimeError, subprocess.TimeoutExpired):
                pid = int((data / "postmaster.pid").read_text().split()[0])
                os.kill(pid, signal.SIGKILL)
        shutil.rmtree(self.root, ignore_errors=True)
        self.root = None


def metastore_overrides(jdbc_url: str) -> tuple[str, ...]:
    """`--set` overrides that put a lakecast run on a PostgreSQL metastore."""
    return ("catalog.metastore=postgres", f"catalog.jdbc_url={jdbc_url}",
            "catalog.jdbc_user=hive", "catalog.jdbc_password=hive")


def start_cluster(workdir: Path) -> Iterator[StandaloneCluster]:
    """Generator for a fixture: a started two-worker cluster, stopped afterwards."""
    cluster = StandaloneCluster(workdir)
    try:
        yield cluster.start()
    finally:
        cluster.stop()


def start_postgres() -> Iterator[PostgresServer]:
    """Generator for a fixture: a started PostgreSQL server, removed afterwards."""
    bindir = postgres_bindir()
    if bindir is None:
        import pytest

        pytest.skip("PostgreSQL server programs not found (apt-get install postgresql)")
    server = PostgresServer(bindir)
    try:
        yield server.start()
    finally:
        server.stop()
