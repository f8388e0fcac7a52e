"""Talk to a home's warm driver (`lakecast driver`): find it, hand it a command, relay its output.

A fresh `lakecast predict` spends most of a small run starting and warming a JVM (see "Small
runs" in bench/RESULTS.md). A driver keeps one Spark session per home; a command started while
one serves its home sends its parsed options there and prints what comes back, so it costs a
Python start and a loopback connection instead. This side imports no Spark: it runs in every
short-lived CLI process.

The driver listens on 127.0.0.1 only and writes its port and a random token to
`<home>/driver/endpoint.json` (mode 0600): a caller that cannot read the home cannot use it.
Frames are JSON lines: `{"o": text}` (stdout), `{"e": text}` (stderr), `{"x": code}` (done),
`{"mismatch": why}` (the driver's session was built from other settings), `{"status": {...}}`.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conf import LakecastConfig

# Commands that run in a driver when one serves the home: the ones whose work is Spark's.
RUNS_IN_DRIVER = frozenset({"init", "migrate", "sql", "ingest", "train", "promote", "predict", "backfill",
                            "evaluate", "report", "forget"})
CONNECT_TIMEOUT_S = 5.0
_SERVING = False  # set in the driver's own process: its commands run there, never forwarded


def mark_serving() -> None:
    """Called once by the driver: commands in this process run here."""
    global _SERVING
    _SERVING = True


def serving() -> bool:
    return _SERVING


def endpoint_path(home: Path) -> Path:
    return home.resolve() / "driver" / "endpoint.json"


def new_token() -> str:
    return secrets.token_hex(24)


@dataclass(frozen=True)
class Endpoint:
    """Where a driver listens, as it wrote it into the home."""

    path: Path
    pid: int
    port: int
    token: str
    started_at: str

    @classmethod
    def read(cls, home: Path) -> Endpoint | None:
        """The endpoint of the driver serving `home` from this machine; None if there is none, or
        if the one recorded runs on another host (a home on a shared volume: its 127.0.0.1 and
        its process ids are not this machine's)."""
        path = endpoint_path(home)
        try:
            d = json.loads(path.read_text())
            if d.get("host", socket.gethostname()) != socket.gethostname():
                return None
            return cls(path, int(d["pid"]), int(d["port"]), str(d["token"]), str(d.get("started_at", "")))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def alive(self) -> bool:
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True

    def connect(self) -> socket.socket | None:
        """A connection to the driver, or None when nothing answers (a driver that died leaves
        its endpoint file behind; it is removed once its process is gone)."""
        try:
            return socket.create_connection(("127.0.0.1", self.port), timeout=CONNECT_TIMEOUT_S)
        except OSError:
            if not self.alive():
                self.path.unlink(missing_ok=True)
            return None


def frames(sock: socket.socket) -> Iterator[dict[str, Any]]:
    """The JSON-line frames the driver sends, until it closes the connection."""
    sock.settimeout(None)  # a run takes as long as it takes; a driver that dies closes the socket
    with sock.makefile("r", encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                yield json.loads(line)


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message, default=str) + "\n").encode())


def request(endpoint: Endpoint, op: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Send one request and yield the driver's frames; empty when no driver answers."""
    sock = endpoint.connect()
    if sock is None:
        return
    with sock:
        send(sock, {"token": endpoint.token, "op": op, **fields})
        yield from frames(sock)


class DriverMismatch(Exception):
    """The home's driver was started with other Spark or catalog settings than this command's."""


def forward(cfg: LakecastConfig, command: str, params: dict[str, Any]) -> int | None:
    """Run `command` with `params` in the driver serving `cfg.home`, relaying its output here.

    Returns the command's exit code, or None when no driver serves the home (the caller then
    runs the command itself). Raises DriverMismatch when one does, with other settings.
    """
    if _SERVING or cfg.driver.use == "never" or command not in RUNS_IN_DRIVER:
        return None
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        return None  # launched by spark-submit: its own JVM is already up, with the submitter's settings
    endpoint = Endpoint.read(cfg.home)
    if endpoint is None:
        return None
    env = {k: v for k, v in os.environ.items() if k.startswith("LAKECAST_")}
    started = False
    try:
        for frame in request(endpoint, "run", command=command, params=params, cwd=os.getcwd(), env=env):
            started = True
            if "o" in frame:
                sys.stdout.write(frame["o"])
                sys.stdout.flush()
            elif "e" in frame:
                sys.stderr.write(frame["e"])
                sys.stderr.flush()
            elif "x" in frame:
                return int(frame["x"])
            elif "mismatch" in frame:
                raise DriverMismatch(f"the lakecast driver serving {cfg.home.resolve()} (pid {endpoint.pid}) was "
                                     f"started with other settings: {frame['mismatch']}")
            elif "refused" in frame:
                return None  # stopping: run here once its session is gone
    except KeyboardInterrupt:
        sys.stderr.write(f"interrupted: the run goes on in the lakecast driver (pid {endpoint.pid}); "
                         "its outcome lands in lakecast.job_runs\n")
        return 130
    if not started:
        return None  # nothing answered: no driver
    raise ConnectionError(f"the lakecast driver (pid {endpoint.pid}) closed the connection before {command} "
                          f"finished; see {cfg.home.resolve() / 'logs' / 'driver.log'} and job_runs")
