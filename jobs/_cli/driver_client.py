"""Talk to a home's warm driver (`lakecast driver`): find it, hand it a command, relay its output.

A fresh `lakecast predict` spends most of a small run starting and warming a JVM (see "Small
runs" in bench/RESULTS.md). A driver keeps one Spark session per home; a command started while
one serves its home sends its parsed options there and prints what comes back, so it costs a
Python start and a loopback connection instead. This side imports no Spark: it runs in every
short-lived CLI process.

The driver listens on 127.0.0.1 only and writes its port and a random token to
`<home>/driver/endpoint.json` (mode 0600, in a 0700 folder): a caller that cannot read the home
cannot use it. Before a caller sends anything else, the driver proves it holds the token (an
HMAC of the caller's nonce), so a process that took over a dead driver's port learns nothing.
Frames are JSON lines: `{"proof": hex}`, `{"accepted": n}` (queued behind n runs), `{"o": text}`
(stdout), `{"e": text}` (stderr), `{"x": code}` (done), `{"mismatch": why}` (other settings or
code), `{"refused": why}` (stopping), `{"status": {...}}`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import socket
import stat
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conf import LakecastConfig

# Commands that run in a driver when one serves the home: the ones whose work is Spark's.
RUNS_IN_DRIVER = frozenset({"init", "migrate", "sql", "ingest", "train", "promote", "predict", "backfill",
                            "evaluate", "report", "forget"})
CONNECT_TIMEOUT_S = 5.0
FIRST_FRAME_TIMEOUT_S = 30.0   # a live driver answers every request at once (a run: `accepted`)
STOPPING_WAIT_S = 120.0        # a driver that refused a run because it is stopping: wait for it to go
PACKAGES = ("conf", "jobs", "pipelines", "models")
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


def proof(token: str, nonce: str) -> str:
    """What the driver answers to a caller's nonce: only a holder of the token can compute it."""
    return hmac.new(token.encode(), nonce.encode(), hashlib.sha256).hexdigest()


def code_fingerprint() -> str:
    """Which lakecast code this process runs (every module's path, size and mtime): a driver
    started before an upgrade or a `git pull` must not run a newer caller's options."""
    root = Path(__file__).resolve().parents[2]
    h = hashlib.sha256()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            st = path.stat()
            h.update(f"{path.relative_to(root)}:{st.st_size}:{st.st_mtime_ns};".encode())
    return h.hexdigest()[:16]


def remove_endpoint(path: Path, token: str) -> None:
    """Delete the endpoint file if it is still the one holding `token` (not a newer driver's)."""
    try:
        if json.loads(path.read_text()).get("token") == token:
            path.unlink()
    except (OSError, ValueError, AttributeError):
        pass


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
            st = path.stat()
            if st.st_uid != os.getuid() or stat.S_IMODE(st.st_mode) & 0o077:
                return None  # not written by this user's driver, or readable by others: not trusted
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
        its endpoint file behind; it is removed once its process is gone, if it is still its)."""
        try:
            return socket.create_connection(("127.0.0.1", self.port), timeout=CONNECT_TIMEOUT_S)
        except OSError:
            if not self.alive():
                remove_endpoint(self.path, self.token)
            return None

    def wait_gone(self, timeout_s: float = STOPPING_WAIT_S) -> None:
        deadline = time.monotonic() + timeout_s
        while self.alive() and time.monotonic() < deadline:
            time.sleep(0.2)


def _frames(fh: Any, sock: socket.socket) -> Iterator[dict[str, Any]]:
    """The JSON-line frames the driver sends, until it closes the connection. The first must come
    within FIRST_FRAME_TIMEOUT_S; after it a run takes as long as it takes (a driver that dies
    closes the socket)."""
    first = True
    for line in fh:
        if line.strip():
            frame = json.loads(line)
            if not isinstance(frame, dict):
                raise ValueError(f"unexpected frame {line[:80]!r}")
            if first:
                sock.settimeout(None)
                first = False
            yield frame


def send(sock: socket.socket, message: dict[str, Any]) -> None:
    sock.sendall((json.dumps(message) + "\n").encode())


def request(endpoint: Endpoint, op: str, **fields: Any) -> Iterator[dict[str, Any]]:
    """Send one request and yield the driver's frames; empty when no driver answers. The driver
    first proves it holds the endpoint's token; only then does the request (with it) leave."""
    sock = endpoint.connect()
    if sock is None:
        return
    with sock, sock.makefile("r", encoding="utf-8") as fh:
        nonce = secrets.token_hex(16)
        try:
            sock.settimeout(FIRST_FRAME_TIMEOUT_S)
            send(sock, {"hello": nonce})
            answer = json.loads(fh.readline(4096) or "{}")
        except (OSError, ValueError):
            return
        if not isinstance(answer, dict) or not hmac.compare_digest(str(answer.get("proof", "")),
                                                                  proof(endpoint.token, nonce)):
            return  # not the driver that wrote the endpoint (its port was taken by something else)
        send(sock, {"token": endpoint.token, "op": op, **fields})
        yield from _frames(fh, sock)


class DriverMismatch(Exception):
    """The home's driver was started with other Spark or catalog settings than this command's."""


def _print(frame: dict[str, Any]) -> bool:
    """Write an output frame where the command's own process would; False for other frames."""
    for key, stream in (("o", sys.stdout), ("e", sys.stderr)):
        if key in frame:
            stream.write(str(frame[key]))
            stream.flush()
            return True
    return False


def _driver_for(cfg: LakecastConfig, command: str, params: dict[str, Any]) -> Endpoint | None:
    """The driver to run `command` in, or None when it runs in this process."""
    if _SERVING or cfg.driver.use == "never" or command not in RUNS_IN_DRIVER:
        return None
    if os.environ.get("PYSPARK_GATEWAY_PORT"):
        return None  # launched by spark-submit: its own JVM is already up, with the submitter's settings
    try:
        json.dumps(params)
    except (TypeError, ValueError):
        return None  # an option value that does not travel as JSON: run here
    return Endpoint.read(cfg.home)


def forward(cfg: LakecastConfig, command: str, params: dict[str, Any]) -> int | None:
    """Run `command` with `params` in the driver serving `cfg.home`, relaying its output here.

    Returns the command's exit code, or None when no driver serves the home (the caller then
    runs the command itself). Raises DriverMismatch when one does, with other settings.
    """
    endpoint = _driver_for(cfg, command, params)
    if endpoint is None:
        return None
    env = {k: v for k, v in os.environ.items() if k.startswith("LAKECAST_")}
    started = False
    try:
        for frame in request(endpoint, "run", command=command, params=params, cwd=os.getcwd(), env=env,
                             argv=sys.argv, fingerprint=code_fingerprint()):
            started = started or "accepted" in frame
            if _print(frame):
                continue
            if "x" in frame:
                return int(frame["x"])
            elif "mismatch" in frame:
                raise DriverMismatch(f"the lakecast driver serving {cfg.home.resolve()} (pid {endpoint.pid}) cannot "
                                     f"run this command: {frame['mismatch']}")
            elif "refused" in frame:
                endpoint.wait_gone()  # stopping: run here once its session (and the catalog) is free
                return None
    except ValueError as e:
        raise ConnectionError(f"the lakecast driver (pid {endpoint.pid}) sent an unreadable answer ({e}); see "
                              f"{cfg.home.resolve() / 'logs' / 'driver.log'} and job_runs") from None
    except KeyboardInterrupt:
        sys.stderr.write(f"interrupted: a run the lakecast driver (pid {endpoint.pid}) had started goes on and "
                         "its outcome lands in lakecast.job_runs; one still waiting is dropped\n")
        return 130
    if not started:
        return None  # no driver took the run: it runs here
    raise ConnectionError(f"the lakecast driver (pid {endpoint.pid}) closed the connection before {command} "
                          f"finished; see {cfg.home.resolve() / 'logs' / 'driver.log'} and job_runs")
