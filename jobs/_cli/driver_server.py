"""The warm driver's loop: one Spark session per home, commands from CLI processes, one at a time.

Runs execute on this process's main thread, in arrival order, each exactly as the command would
run in its own process (the same click callback, flow, job_runs record and exit code), with the
caller's working directory and `LAKECAST_*` variables, and its stdout and stderr (log lines
included) sent back as they are written. A thread accepts connections meanwhile, so `lakecast
driver status` answers during a run and later callers learn what they wait for. Between runs
the driver drops cached DataFrames and any MLflow run left open, and each run gets its own
SparkSession over the shared context (`newSession`: its own SQL settings, current database and
temporary views), so one run cannot leak into the next. Stopping (`lakecast driver stop`,
SIGTERM, Ctrl-C) waits for the run in progress.
"""

from __future__ import annotations

import contextlib
import fcntl
import hmac
import importlib
import io
import json
import logging
import os
import queue
import select
import signal
import socket
import sys
import threading
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any

import click

from conf import ConfigError, LakecastConfig, load_config
from conf.secrets import is_secret_name, redact_text
from jobs._cli.driver_client import (
    RUNS_IN_DRIVER,
    code_fingerprint,
    endpoint_path,
    mark_serving,
    new_token,
    proof,
    remove_endpoint,
)

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)
REQUEST_TIMEOUT_S = 10.0   # a connection must send each request line within this
SEND_TIMEOUT_S = 60.0      # a caller that reads nothing for this long is treated as gone
MAX_REQUEST_BYTES = 1 << 20
LOGGERS = ("", "lakecast", "pipelines", "models", "jobs")  # levels a run's -v may change


class _Conn:
    """One caller's connection; sends are serialised, and a caller gone away is ignored."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self._lock = threading.Lock()
        self.gone = False

    def caller_left(self) -> bool:
        """Whether the caller closed its end (e.g. interrupted while its run waited)."""
        try:
            readable, _, _ = select.select([self.sock], [], [], 0)
            return bool(readable) and self.sock.recv(1, socket.MSG_PEEK) == b""
        except OSError:
            return True

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
    warm: bool = False
    last_activity: float = field(default_factory=time.monotonic)


def differences(driver: LakecastConfig, caller: LakecastConfig) -> list[str]:
    """What in the caller's configuration would build another Spark session than the driver's:
    its home and every Spark setting derived from it (secret values named, never shown)."""
    from pipelines.session.settings import spark_settings

    out = []
    if driver.home.resolve() != caller.home.resolve():
        out.append(f"home {caller.home.resolve()} here, {driver.home.resolve()} in the driver")
    a, b = spark_settings(driver), spark_settings(caller)
    for key in sorted(set(a) | set(b)):
        if a.get(key) != b.get(key):
            shown = f": {b.get(key)!r} here, {a.get(key)!r} in the driver"
            out.append(key + (" differs" if is_secret_name(key) else shown))
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
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
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
        self._lock = threading.Lock()      # state and queue, between the connection threads and the loop
        self.fingerprint = code_fingerprint()
        self._err = sys.stderr  # the driver's own log (driver.log when started by `driver start`)

    # -- lifecycle ---------------------------------------------------------------------------

    def serve(self) -> None:
        from jobs._cli.context import use_warm_session

        mark_serving()
        path = endpoint_path(self.home)
        path.parent.mkdir(parents=True, exist_ok=True)
        os.chmod(path.parent, 0o700)
        with open(path.parent / "serve.lock", "a+") as held:  # one driver per home, even when two start at once
            try:
                fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise click.ClickException(f"another lakecast driver already serves {self.home}") from None
            use_warm_session(self.spark)
            listener = socket.create_server(("127.0.0.1", 0))
            listener.settimeout(0.5)
            port = listener.getsockname()[1]
            self._write_endpoint(port)
            for sig in (signal.SIGTERM, signal.SIGINT):
                signal.signal(sig, self._on_signal)
            acceptor = threading.Thread(target=self._accept, args=(listener,), name="driver-accept", daemon=True)
            acceptor.start()
            log.info("lakecast driver (pid %d) serving home %s on 127.0.0.1:%d", os.getpid(), self.home, port)
            try:
                self._warm_up()
                self._loop()
            finally:
                self._shut(listener, acceptor, path)

    def _loop(self) -> None:
        idle_s = self.cfg.driver.idle_stop_minutes * 60
        while not self._stop.is_set():
            try:
                conn, req = self._runs.get(timeout=0.5)
            except queue.Empty:
                if idle_s and time.monotonic() - self.state.last_activity > idle_s:
                    log.info("idle for %d minutes (driver.idle_stop_minutes): stopping",
                             self.cfg.driver.idle_stop_minutes)
                    self._stop.set()
                continue
            if conn.caller_left():  # interrupted while it waited: its run must not happen behind its back
                log.info("skipped %s: its caller left while it waited", req.get("command"))
                conn.close()
                continue
            self._run(conn, req)

    def _shut(self, listener: socket.socket, acceptor: threading.Thread, path: Path) -> None:
        with self._lock:
            self._stop.set()
        acceptor.join(timeout=2)
        listener.close()
        remove_endpoint(path, self.token)
        with self._lock:  # queued before the stop: their callers wait for this process to end, then run them
            while not self._runs.empty():
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
            table = self.cfg.table("job_run_events")  # the table every run appends to (job_runs is its view)
            if self.spark.catalog.tableExists(table):
                self.spark.table(table).select("job").limit(1).collect()
            self.spark.range(1, numPartitions=1).mapInPandas(_import_torch, "id long").collect()
        except Exception as e:  # noqa: BLE001 - warming is an optimisation: the first run pays instead
            log.warning("warm-up incomplete (%s); the first run pays for it", str(e).splitlines()[0][:200])
        self.state.warm = True
        log.info("warm in %.1f s", time.monotonic() - t0)

    def _write_endpoint(self, port: int) -> None:
        path = endpoint_path(self.home)
        tmp = path.with_name(f".endpoint.{os.getpid()}.json")
        tmp.unlink(missing_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump({"pid": os.getpid(), "host": socket.gethostname(), "port": port, "token": self.token,
                       "started_at": self.state.started_at.isoformat(timespec="seconds")}, fh)
        os.replace(tmp, path)

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self._stop.set()  # the loop notices between runs; nothing else here (a handler must not write)

    def status(self) -> dict[str, Any]:
        s = self.state
        return {"pid": os.getpid(), "home": str(self.home), "master": self.cfg.spark.master,
                "started_at": s.started_at.isoformat(timespec="seconds"), "runs": s.runs, "failed": s.failed,
                "running": s.current, "running_s": None if s.current_since is None
                else round(time.monotonic() - s.current_since, 1), "waiting": self._runs.qsize(),
                "warm": s.warm, "stopping": self._stop.is_set()}

    # -- connections (acceptor thread, one short thread per connection) -------------------------

    def _accept(self, listener: socket.socket) -> None:
        while not self._stop.is_set():
            try:
                sock, _ = listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._handle, args=(sock,), name="driver-conn", daemon=True).start()

    def _handle(self, sock: socket.socket) -> None:
        """Prove the token, read one request, answer it or queue it; nothing a caller sends can
        stop the driver (a malformed or unauthenticated request only closes its connection)."""
        conn = _Conn(sock)
        queued = False
        try:
            sock.settimeout(REQUEST_TIMEOUT_S)
            with sock.makefile("r", encoding="utf-8") as fh:
                hello = json.loads(fh.readline(4096) or "{}")
                if not isinstance(hello, dict) or not isinstance(hello.get("hello"), str):
                    return
                conn.send({"proof": proof(self.token, hello["hello"])})
                req = json.loads(fh.readline(MAX_REQUEST_BYTES) or "{}")
            if not isinstance(req, dict) or not hmac.compare_digest(str(req.get("token", "")).encode(),
                                                                   self.token.encode()):
                conn.send({"e": "lakecast driver: wrong token (read it from the home's driver/endpoint.json)\n",
                           "x": 2})
                return
            sock.settimeout(SEND_TIMEOUT_S)
            queued = self._answer(conn, req)
        except Exception as e:  # noqa: BLE001 - one bad connection, never the driver
            log.debug("connection dropped: %s", e)
        finally:
            if not queued:
                conn.close()

    def _answer(self, conn: _Conn, req: dict[str, Any]) -> bool:
        """Answer a control request, or queue a run; True when queued (the loop then owns `conn`)."""
        op = req.get("op")
        if op == "status":
            conn.send({"status": self.status()})
        elif op == "stop":
            self._stop.set()
            conn.send({"status": self.status()})
        elif op == "run":
            if req.get("fingerprint") != self.fingerprint:
                conn.send({"mismatch": "the driver runs other lakecast code (it was started before an upgrade or "
                                       "a change of the installed files); restart it: `lakecast driver stop` "
                                       "then `lakecast driver start`"})
                return False
            with self._lock:
                if self._stop.is_set():
                    conn.send({"refused": "the driver is stopping"})
                    return False
                ahead = self._runs.qsize() + (self.state.current is not None)
                conn.send({"accepted": ahead})
                if ahead:
                    conn.send({"e": f"lakecast driver: waiting for {ahead} run(s) ahead"
                                    f"{f' (running {self.state.current})' if self.state.current else ''}\n"})
                self._runs.put((conn, req))
            return True
        else:
            conn.send({"refused": f"unknown request {op!r}"})
        return False

    # -- runs (main thread) ----------------------------------------------------------------------

    def _run(self, conn: _Conn, req: dict[str, Any]) -> None:
        from jobs._cli.context import use_warm_session

        command = str(req.get("command"))
        with self._lock:
            self.state.current, self.state.current_since = command, time.monotonic()
        err = _Relay(conn, "e")
        saved = (os.getcwd(), dict(os.environ), sys.argv, sys.stdout, sys.stderr)
        levels = {name: logging.getLogger(name).level for name in LOGGERS}
        handlers = [h for h in logging.getLogger().handlers
                    if getattr(h, "_lakecast", False) and isinstance(h, logging.StreamHandler)]
        torch = sys.modules.get("torch")
        threads = torch.get_num_threads() if torch is not None else None
        code: int | None = 1
        try:
            use_warm_session(self.spark.newSession())  # the run's own SQL settings, database and views
            code = _exit_code(lambda: self._execute(conn, req, err, handlers), err)
        finally:
            use_warm_session(self.spark)
            for h in handlers:
                h.setStream(saved[4])
            for name, level in levels.items():
                logging.getLogger(name).setLevel(level)
            if threads is not None and (torch := sys.modules.get("torch")) is not None:
                torch.set_num_threads(threads)
            sys.stdout, sys.stderr = saved[3], saved[4]
            sys.argv = saved[2]
            os.environ.clear()
            os.environ.update(saved[1])
            os.chdir(saved[0])
            self._tidy()
            with self._lock:
                took = time.monotonic() - (self.state.current_since or time.monotonic())
                self.state.current = self.state.current_since = None
                self.state.last_activity = time.monotonic()
                if code is not None:
                    self.state.runs += 1
                    self.state.failed += int(code != 0)
            if code is not None:
                conn.send({"x": code})
                log.info("ran %s in %.1f s: exit %d%s", command, took, code, " (caller gone)" if conn.gone else "")
            conn.close()

    def _execute(self, conn: _Conn, req: dict[str, Any], err: _Relay,
                 handlers: list[logging.StreamHandler[Any]]) -> int | None:
        """Run the caller's command here, as its own process would; None if the settings differ."""
        from jobs.cli import COMMANDS, main

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
            conn.send({"mismatch": "it was started with other settings: " + "; ".join(diff)})
            return None
        argv = req.get("argv")
        sys.argv = [str(a) for a in argv] if isinstance(argv, list) and argv else ["lakecast", command]
        sys.stdout, sys.stderr = _Relay(conn, "o"), err
        for h in handlers:
            h.setStream(err)
        cmd = importlib.import_module(COMMANDS[command]).cli
        parent = click.Context(main, info_name="lakecast")  # usage lines read `lakecast <command>`
        with click.Context(cmd, info_name=command, parent=parent) as ctx:
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
