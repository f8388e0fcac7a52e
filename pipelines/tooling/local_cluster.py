"""A Spark standalone cluster on this machine, for the cluster tests and bench/cluster_bench.py.

The master and workers are the real programs (pyspark's `bin/spark-class`) on 127.0.0.1 with
free ports, under a working directory of the caller's, torn down by process group so an
executor or Python worker they spawned cannot outlive the run. Its PostgreSQL counterpart is
pipelines.tooling.local_postgres. Tooling, not a flow: no job imports it.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
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
    try:
        tasks = list(Path(f"/proc/{pid}/task").iterdir())
    except OSError:  # the process ended between its parent's listing and this one
        return out
    for task in tasks:
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
