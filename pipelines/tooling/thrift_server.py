"""Spark's Thrift JDBC/ODBC server over the lakecast catalog (`lakecast sql-server` runs it).

BI tools and `beeline` (it ships in pyspark's `bin/`) query the governed tables and views:

    lakecast sql-server --set sql_server.port=10000
    beeline -u jdbc:hive2://127.0.0.1:10000/lakecast -e "SELECT * FROM forecasts_latest LIMIT 5"

The server is its own JVM (HiveThriftServer2 via spark-submit) with the same settings as
every job, plus the Delta JARs on its driver class path: its sessions load `DeltaCatalog`
through the system class loader, which `--packages` alone does not reach. On the embedded
Derby catalog it holds the catalog for as long as it runs; with a PostgreSQL metastore, jobs
keep writing while analysts query.
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from types import FrameType

from conf import LakecastConfig
from conf.errors import LakecastError
from pipelines.session.catalog_lock import hold_catalog
from pipelines.session.jars import ensure_jdbc_driver
from pipelines.session.submit import thrift_server_properties

log = logging.getLogger(__name__)

THRIFT_CLASS = "org.apache.spark.sql.hive.thriftserver.HiveThriftServer2"


class SqlServerError(LakecastError):
    """The Thrift server did not come up; the message points at its log."""


def is_loopback(host: str) -> bool:
    """True for addresses only this machine reaches (127.0.0.0/8, ::1, localhost); 0.0.0.0 is all."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: other machines may resolve it


def check_exposure(cfg: LakecastConfig) -> None:
    """Refuse to serve every governed table to the network without authentication.

    Called before anything starts; `sql_server.allow_unauthenticated_remote: true` opts out.
    """
    s = cfg.sql_server
    if is_loopback(s.host) or s.authentication != "none" or s.allow_unauthenticated_remote:
        return
    raise SqlServerError(
        f"refusing to listen on sql_server.host {s.host} (not loopback) without authentication: "
        "anyone who reaches the port could read every table. Set sql_server.authentication=ldap "
        "with sql_server.ldap_url and sql_server.ldap_base_dn (or sql_server.ldap_user_dn_pattern), "
        "or sql_server.host=127.0.0.1, or sql_server.allow_unauthenticated_remote=true to serve "
        "without authentication on purpose"
    )


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).resolve().parent


def jdbc_url(cfg: LakecastConfig) -> str:
    host = "127.0.0.1" if cfg.sql_server.host in ("0.0.0.0", "") else cfg.sql_server.host
    return f"jdbc:hive2://{host}:{cfg.sql_server.port}/{cfg.catalog.database}"


def command(cfg: LakecastConfig, properties: Path) -> list[str]:
    """The spark-submit command line that starts the Thrift server."""
    return [
        str(spark_home() / "bin" / "spark-submit"),
        "--properties-file", str(properties),
        "--class", THRIFT_CLASS,
        "--name", f"{cfg.spark.app_name}-sql-server",
        "spark-internal",
        "--hiveconf", f"hive.server2.thrift.port={cfg.sql_server.port}",
        "--hiveconf", f"hive.server2.thrift.bind.host={cfg.sql_server.host}",
    ]


def _port_open(host: str, port: int) -> bool:
    import socket

    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def _raise_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt


def run(cfg: LakecastConfig, *, ready_timeout: float = 300.0) -> int:
    """Start the server, log its JDBC URL once it listens, and wait for it to end.

    SIGTERM or Ctrl-C stops the server too; returns its exit code.
    """
    check_exposure(cfg)
    if cfg.catalog.metastore == "postgres":
        ensure_jdbc_driver(cfg)
    log_dir = cfg.home / "logs"
    log_dir.mkdir(parents=True, exist_ok=True)
    from pipelines.session.submit import write_properties

    # The properties may hold the metastore password: a private directory (mode 0700), the file
    # removed as soon as the server listens (spark-submit has read it) and the directory on exit,
    # so no secret stays on disk.
    private = Path(tempfile.mkdtemp(prefix="lakecast-sql-server-"))
    try:
        properties = write_properties(thrift_server_properties(cfg), private / "sql-server.properties")
        return _run_server(cfg, properties, log_dir / "sql-server.log", ready_timeout)
    finally:
        shutil.rmtree(private, ignore_errors=True)


def _run_server(cfg: LakecastConfig, properties: Path, server_log: Path, ready_timeout: float) -> int:
    env = {**os.environ, "SPARK_HOME": str(spark_home())}
    previous = signal.signal(signal.SIGTERM, _raise_interrupt)
    with hold_catalog(cfg), open(server_log, "ab") as fh:
        log.info("starting the Thrift SQL server on %s:%d (log: %s)",
                 cfg.sql_server.host, cfg.sql_server.port, server_log)
        # Hive and Derby write their files into the working directory: keep them in the home.
        proc = subprocess.Popen(command(cfg, properties), stdout=fh, stderr=subprocess.STDOUT,
                                env=env, cwd=cfg.home, start_new_session=True)
        try:
            return _serve(cfg, proc, server_log, ready_timeout, properties)
        except KeyboardInterrupt:
            log.info("stopping the SQL server")
            return 0
        finally:
            _stop(proc)
            signal.signal(signal.SIGTERM, previous)


def _serve(cfg: LakecastConfig, proc: subprocess.Popen[bytes], server_log: Path, timeout: float,
           properties: Path) -> int:
    host = "127.0.0.1" if cfg.sql_server.host in ("0.0.0.0", "") else cfg.sql_server.host
    deadline = time.monotonic() + timeout
    while not _port_open(host, cfg.sql_server.port):
        if proc.poll() is not None or time.monotonic() > deadline:
            tail = [ln for ln in server_log.read_text(errors="replace").splitlines()
                    if "Exception" in ln or "ERROR" in ln][-3:]
            raise SqlServerError(
                f"the Thrift SQL server did not start listening on {host}:{cfg.sql_server.port} "
                f"({'exited ' + str(proc.returncode) if proc.poll() is not None else 'timed out'}): "
                f"{' | '.join(tail) or 'no error logged'}. Log: {server_log}"
            )
        time.sleep(0.5)
    properties.unlink(missing_ok=True)  # read at start-up; a listening server no longer needs it
    login = " -n USER -p PASSWORD" if cfg.sql_server.authentication != "none" else ""
    log.info("SQL server ready: beeline -u %s%s", jdbc_url(cfg), login)
    return proc.wait()


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
