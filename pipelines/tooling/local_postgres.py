"""A throwaway PostgreSQL server on this machine, for the metastore and cluster tests.

`initdb` into a temporary directory, served on 127.0.0.1 on a free port with trust
authentication, removed on stop. These are the real programs (Debian's `initdb`/`pg_ctl`).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

from pipelines.tooling.local_cluster import free_port


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
