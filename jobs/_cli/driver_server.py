"""The warm driver's loop: one Spark session per home, commands from CLI processes, one at a time.

Runs execute on this process's main thread, in arrival order, each exactly as the command would
run in its own process (the same click callback, flow, job_runs record and exit code), with the
caller's working directory and `LAKECAST_*` variables, and its stdout and stderr (log lines
included) sent back as they are written. A thread accepts connections meanwhile, so `lakecast
driver status` answers during a run and later callers learn what they wait for. Between runs
the driver drops cached DataFrames and any MLflow run left open, so one run cannot leak into the
next. Stopping (`lakecast driver stop`, SIGTERM, Ctrl-C) waits for the run in progress.
"""

from __future__ import annotations

import contextlib
import hmac
import importlib
import io
import json
import logging
import os
import queue
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from conf import ConfigError, LakecastConfig, load_config
from conf.secrets import redact_text
from jobs._cli.driver_client import RUNS_IN_DRIVER, endpoint_path, mark_serving, new_token

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 10.0   # a connection must send its request line within this


class _Conn:
    """One caller's connection; sends are serialised, and a caller gone away is ignored."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self.gone = False

    def send(self, message: dict[str, Any]) -> None:
        data = (json.dumps(message, default=str) + "\n").encode()
        with self._lock:
            if self.gone:
                return
            try:
                self.sock.sendall(data)
            except OSError:
                self.gone = True  # the caller was interrupted: the run completes and is recorded

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.sock.close()


class _Relay(io.TextIOBase):
    """A text stream whose writes travel to the caller as frames (`o`: stdout, `e`: stderr)."""

    def __init__(self, conn: _Conn, key: str) -> None:
        self._conn, self._key = conn, key

    def write(self, s: str) -> int:
        if s:
            self._conn.send({self._key: s})
        return len(s)

    def writable(self) -> bool:
        return True

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"


@dataclass
class _State:
    """What `lakecast driver status` reports."""

    started_at: datetime
    runs: int = 0
    failed: int = 0
    current: str | None = None
    current_since: float | None = None
    waiting: int = 0
    warm: bool = False
    last_activity: float = field(default_factory=time.monotonic)


def differences(driver: LakecastConfig, caller: LakecastConfig) -> list[str]:
    """Settings the driver's session was built from that the caller's configuration changes:
    home, every spark.* key and every catalog.* key (secrets named, never shown)."""
    out = []
    if driver.home.resolve() != caller.home.resolve():
        out.append(f"home {caller.home.resolve()} here, {driver.home.resolve()} in the driver")
    for section in ("spark", "catalog"):
        a, b = getattr(driver, section).model_dump(), getattr(caller, section).model_dump()
        for key in sorted(set(a) | set(b)):
            if a.get(key) != b.get(key):
                secret = "password" in key or "secret" in key
                out.append(f"{section}.{key} differs" if secret
                           else f"{section}.{key}: {b.get(key)!r} here, {a.get(key)!r} in the driver")
    return out


WARM_MODULES = ("mlflow", "torch", "pipelines.flows.predict", "pipelines.flows.ingest", "pipelines.flows.train",
                "pipelines.flows.evaluate")


def _import_torch(batches: Iterator[Any]) -> Iterator[Any]:
    """In a Python worker: import what scoring imports, so the first predict finds it loaded."""
    import torch  # noqa: F401

    yield from batches


def _exit_code(run: Callable[[], int | None], err: io.TextIOBase) -> int | None:
    """`run()`'s exit code as the command's own process would have ended (click's conventions)."""
    try:
        return run()
    except click.exceptions.Exit as e:
        return e.exit_code
    except click.ClickException as e:
        e.show(file=err)  # type: ignore[arg-type]
        return e.exit_code
    except click.Abort:
        err.write("Aborted!\n")
        return 1
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else 1
    except Exception as e:  # noqa: BLE001 - the run fails, the driver serves on
        err.write(redact_text("".join(traceback.format_exception(e))))
        return 1


class DriverServer:
    """Serve one home's commands from `spark` until stopped (or idle for driver.idle_stop_minutes)."""

    def __init__(self, cfg: LakecastConfig, spark: SparkSession) -> None:
        self.cfg = cfg
        self.spark = spark
        self.home = cfg.home.resolve()
        self.token = new_token()
        self.state = _State(started_at=datetime.now(UTC))
        self._runs: queue.Queue[tuple[_Conn, dict[str, Any]]] = queue.Queue()
        self._stop = threading.Event()
        self._err = sys.stderr  # the driver's own log (driver.log when started by `driver start`)

    # -- lifecycle ---------------------------------------------------------------------------

    def serve(self) -> None:
        from jobs._cli.context import use_warm_session

        mark_serving()
        use_warm_session(self.spark)
        listener = socket.create_server(("127.0.0.1", 0))
        listener.settimeout(0.5)
        port = listener.getsockname()[1]
        path = endpoint_path(self.home)
        self._write_endpoint(port)
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, self._on_signal)
        acceptor = threading.Thread(target=self._accept, args=(listener,), name="driver-accept", daemon=True)
        acceptor.start()
        log.info("lakecast driver (pid %d) serving home %s on 127.0.0.1:%d", os.getpid(), self.home, port)
        self._warm_up()
        idle_s = self.cfg.driver.idle_stop_minutes * 60
        try:
            while not self._stop.is_set():
                try:
                    conn, req = self._runs.get(timeout=0.5)
                except queue.Empty:
                    if idle_s and time.monotonic() - self.state.last_activity > idle_s:
                        log.info("idle for %d minutes (driver.idle_stop_minutes): stopping",
                                 self.cfg.driver.idle_stop_minutes)
                        self._stop.set()
                    continue
                self._run(conn, req)
        finally:
            self._stop.set()
            acceptor.join(timeout=5)
            listener.close()
            try:
                if json.loads(path.read_text()).get("token") == self.token:
                    path.unlink()
            except (OSError, ValueError):
                pass
            while not self._runs.empty():  # accepted after the stop: their callers run them themselves
                conn, _ = self._runs.get_nowait()
                conn.send({"refused": "the driver is stopping"})
                conn.close()
            log.info("lakecast driver stopped after %d runs (%d failed)", self.state.runs, self.state.failed)

    def _warm_up(self) -> None:
        """Pay once, before the first run, what every fresh process pays on its first run: the
        imports of the flows, MLflow and torch, the catalog's and Delta's first lookups and a
        Python worker importing torch (workers are reused). Runs that arrive meanwhile wait."""
        t0 = time.monotonic()
        try:
            for module in WARM_MODULES:
                importlib.import_module(module)
            table = self.cfg.table("job_runs")
            if self.spark.catalog.tableExists(table):
                self.spark.table(table).select("job").limit(1).collect()
            self.spark.range(1, numPartitions=1).mapInPandas(_import_torch, "id long").collect()
        except Exception as e:  # noqa: BLE001 - warming is an optimisation: the first run pays instead
            log.warning("warm-up incomplete (%s); the first run pays for it", str(e).splitlines()[0][:200])
        self.state.warm = True
        log.info("warm in %.1f s", time.monotonic() - t0)

    def _write_endpoint(self, port: int) -> None:
        path = endpoint_path(self.home)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        tmp = path.with_name(f".endpoint.{os.getpid()}.json")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "port": port, "token": self.token,
                       "started_at": self.state.started_at.isoformat(timespec="seconds")}, fh)
        os.replace(tmp, path)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        busy = f" after the running {self.state.current}" if self.state.current else ""
        self._err.write(f"lakecast driver: signal {signum}, stopping{busy}\n")
        self._stop.set()

    def status(self) -> dict[str, Any]:
        s = self.state
        return {"pid": os.getpid(), "home": str(self.home), "master": self.cfg.spark.master,
                "started_at": s.started_at.isoformat(timespec="seconds"), "runs": s.runs, "failed": s.failed,
                "running": s.current, "running_s": None if s.current_since is None
                else round(time.monotonic() - s.current_since, 1), "waiting": s.waiting,
                "warm": s.warm, "stopping": self._stop.is_set()}

    # -- connections (acceptor thread) ---------------------------------------------------------

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn = _Conn(sock)
            try:
                sock.settimeout(REQUEST_TIMEOUT_S)
                with sock.makefile("r", encoding="utf-8") as fh:
                    req = json.loads(fh.readline() or "{}")
                sock.settimeout(None)
            except (OSError, ValueError):
                conn.close()
                continue
            if not hmac.compare_digest(str(req.get("token", "")), self.token):
                conn.send({"e": "lakecast driver: wrong token (read it from the home's driver/endpoint.json)\n",
                           "x": 2})
                conn.close()
                continue
            op = req.get("op")
            if op == "status":
                conn.send({"status": self.status()})
                conn.close()
            elif op == "stop":
                self._stop.set()
                conn.send({"status": self.status()})
                conn.close()
            elif op == "run" and not self._stop.is_set():
                if self.state.current is not None or self.state.waiting:
                    conn.send({"e": f"lakecast driver: waiting for the running {self.state.current or 'command'}"
                                    f"{f' and {self.state.waiting} more' if self.state.waiting else ''}\n"})
                self.state.waiting += 1
                self._runs.put((conn, req))
            else:
                conn.send({"refused": "the driver is stopping" if op == "run" else f"unknown request {op!r}"})
                conn.close()

    # -- runs (main thread) ----------------------------------------------------------------------

    def _run(self, conn: _Conn, req: dict[str, Any]) -> None:
        self.state.waiting -= 1
        command = str(req.get("command"))
        self.state.current, self.state.current_since = command, time.monotonic()
        err = _Relay(conn, "e")
        saved = (os.getcwd(), dict(os.environ), sys.argv, sys.stdout, sys.stderr)
        handlers = [h for h in logging.getLogger().handlers
                    if getattr(h, "_lakecast", False) and isinstance(h, logging.StreamHandler)]
        code: int | None = 1
        try:
            code = _exit_code(lambda: self._execute(conn, req, err, handlers), err)
        finally:
            for h in handlers:
                h.setStream(saved[4])
            sys.stdout, sys.stderr = saved[3], saved[4]
            sys.argv = saved[2]
            os.environ.clear()
            os.environ.update(saved[1])
            os.chdir(saved[0])
            self._tidy()
            took = time.monotonic() - (self.state.current_since or time.monotonic())
            self.state.current = self.state.current_since = None
            self.state.last_activity = time.monotonic()
            if code is not None:
                self.state.runs += 1
                self.state.failed += int(code != 0)
                conn.send({"x": code})
                log.info("ran %s in %.1f s: exit %d%s", command, took, code, " (caller gone)" if conn.gone else "")
            conn.close()

    def _execute(self, conn: _Conn, req: dict[str, Any], err: _Relay,
                 handlers: list[logging.StreamHandler[Any]]) -> int | None:
        """Run the caller's command here, as its own process would; None if the settings differ."""
        from jobs.cli import COMMANDS

        command = str(req.get("command"))
        if command not in RUNS_IN_DRIVER:
            raise click.UsageError(f"{command!r} does not run in the driver; run it in its own process")
        os.chdir(str(req.get("cwd") or self.home))
        for key in [k for k in os.environ if k.startswith("LAKECAST_")]:
            del os.environ[key]
        os.environ.update({str(k): str(v) for k, v in dict(req.get("env") or {}).items()
                           if str(k).startswith("LAKECAST_")})
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in dict(req.get("params") or {}).items()}
        try:
            conf_file = params.get("conf_file")
            caller = load_config(str(conf_file) if conf_file else None, tuple(params.get("overrides") or ()))
        except ConfigError:
            caller = None  # the command itself reports it, as it would in its own process
        if caller is not None and (diff := differences(self.cfg, caller)):
            conn.send({"mismatch": "; ".join(diff)})
            return None
        sys.argv = ["lakecast", command]
        sys.stdout, sys.stderr = _Relay(conn, "o"), err
        for h in handlers:
            h.setStream(err)
        cmd = importlib.import_module(COMMANDS[command]).cli
        with click.Context(cmd, info_name=command) as ctx:
            ctx.invoke(cmd.callback, **params)  # type: ignore[arg-type]
        return 0

    def _tidy(self) -> None:
        """What one run may leave in a long-lived process: cached DataFrames, an open MLflow run."""
        try:
            self.spark.catalog.clearCache()
            alive = not self.spark.sparkContext._jsc.sc().isStopped()  # type: ignore[union-attr]
        except Exception as e:  # noqa: BLE001 - a session that cannot answer is as good as stopped
            self._err.write(f"lakecast driver: the Spark session does not answer: {e}\n")
            alive = False
        if not alive:  # commands then start their own sessions instead of failing here one after another
            self._err.write("lakecast driver: its Spark session has stopped; the driver stops\n")
            self._stop.set()
        mlflow = sys.modules.get("mlflow")
        if mlflow is not None:
            while mlflow.active_run() is not None:
                mlflow.end_run(status="FAILED")
