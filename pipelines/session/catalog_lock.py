"""One lakecast process per home on the embedded Derby catalog, told in one line.

Embedded Derby admits one JVM at a time and reports a second one with a long stack trace;
an advisory lock file beside the metastore turns that into a message naming the holder.
"""

from __future__ import annotations

import fcntl
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

from conf import LakecastConfig
from conf.errors import CatalogBusyError
from conf.secrets import loggable_argv


class CatalogLock:
    """An advisory lock file beside the Derby metastore: one lakecast process per home."""

    def __init__(self, home: Path) -> None:
        self.path = home / "catalog.lock"
        self._fh: IO[str] | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = open(self.path, "a+")  # noqa: SIM115 - held for the process lifetime
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown process"
            fh.close()
            if "driver serve" in holder:  # a warm driver: most commands run in it; this one cannot
                raise CatalogBusyError(
                    f"the lakecast catalog at {self.path.parent} is held by the lakecast driver serving this "
                    f"home ({holder}); this command does not run in the driver (or was told not to: "
                    "driver.use=never). Stop the driver first (`lakecast driver stop`), or configure a "
                    "PostgreSQL-backed metastore (catalog.metastore: postgres) to run both at once."
                ) from None
            raise CatalogBusyError(
                f"the lakecast catalog at {self.path.parent} is in use by {holder}; the embedded "
                "Derby metastore admits one process at a time. Wait for it to finish, use another "
                "LAKECAST_HOME, or configure a PostgreSQL-backed metastore (catalog.metastore: "
                "postgres, see conf/cluster.yaml) to run jobs concurrently."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} ({' '.join(Path(sys.argv[0]).name.split() + loggable_argv(sys.argv)[1:3])})\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


# The lock this process holds while its SparkSession is open (build_session .. stop_session).
_held: CatalogLock | None = None


def lock_for_session(cfg: LakecastConfig) -> None:
    """Take the catalog lock for this process's session (once; a no-op off Derby)."""
    global _held
    if cfg.catalog.metastore == "derby" and _held is None:
        lock = CatalogLock(cfg.home)
        lock.acquire()
        _held = lock


def release_session_lock() -> None:
    """Release the lock `lock_for_session` took, so another process may open this home."""
    global _held
    if _held is not None:
        _held.release()
        _held = None


@contextmanager
def hold_catalog(cfg: LakecastConfig) -> Iterator[None]:
    """Hold the embedded catalog's lock while a JVM that lakecast launched itself uses it.

    Used around the Thrift server, so a job started meanwhile gets the one-line message
    instead of Derby's stack trace. A PostgreSQL metastore needs no lock.
    """
    if cfg.catalog.metastore != "derby":
        yield
        return
    lock = CatalogLock(cfg.home)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()
