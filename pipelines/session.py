"""Build the one SparkSession a lakecast process uses: Delta Lake + a persistent Hive catalog.

This is the only module that knows Spark's configuration keys. Jobs call
`build_session(cfg)` once and pass the session into library code.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from typing import IO, Any

from conf import LakecastConfig
from pipelines.errors import LakecastError

log = logging.getLogger(__name__)

MIN_JAVA = 17


class SessionError(LakecastError):
    """Spark could not start; the message says why and what to do."""


class CatalogBusyError(SessionError):
    """Another process holds the embedded Derby catalog of this lakecast home."""


def java_major_version(java: str | None = None) -> int:
    """Major version of the `java` on PATH (or JAVA_HOME); raises SessionError if none."""
    java = java or (
        str(Path(os.environ["JAVA_HOME"]) / "bin" / "java") if os.environ.get("JAVA_HOME") else None
    ) or shutil.which("java")
    if not java or not Path(java).exists():
        raise SessionError(
            f"Java was not found (JAVA_HOME={os.environ.get('JAVA_HOME')!r}, no `java` on PATH). "
            f"Spark needs Java {MIN_JAVA}+: install it (e.g. `apt-get install openjdk-17-jre-headless`) "
            "or set JAVA_HOME."
        )
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30).stderr
    except (OSError, subprocess.TimeoutExpired) as e:
        raise SessionError(f"could not run {java} -version: {e}") from e
    m = re.search(r'version "(\d+)(?:\.(\d+))?', out)
    if not m:
        raise SessionError(f"could not read the Java version from `{java} -version`: {out.strip()!r}")
    major = int(m.group(1))
    if major == 1 and m.group(2):  # "1.8.0_x" style
        major = int(m.group(2))
    return major


def check_java() -> None:
    major = java_major_version()
    if major < MIN_JAVA:
        raise SessionError(
            f"Java {major} found, but Spark 4 needs Java {MIN_JAVA} or newer: install Java 17 "
            "and point JAVA_HOME at it."
        )


class _CatalogLock:
    """An advisory lock file beside the Derby metastore: one lakecast process per home.

    Embedded Derby admits one JVM at a time and reports a second one with a long stack
    trace; this lock turns that into a one-line message naming the holder.
    """

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
            raise CatalogBusyError(
                f"the lakecast catalog at {self.path.parent} is in use by {holder}; the embedded "
                "Derby metastore admits one process at a time. Wait for it to finish, use another "
                "LAKECAST_HOME, or configure a PostgreSQL-backed metastore (catalog.metastore: "
                "postgres, see conf/cluster.yaml) to run jobs concurrently."
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(f"pid {os.getpid()} ({' '.join(Path(sys.argv[0]).name.split() + sys.argv[1:3])})\n")
        fh.flush()
        self._fh = fh

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None


_lock: _CatalogLock | None = None


def delta_package() -> str:
    """Maven coordinate of the Delta JAR matching the installed delta-spark and pyspark.

    Mirrors `delta.configure_spark_with_delta_pip`, which the builder uses; named here so
    error messages and the Thrift server's class path can refer to it.
    """
    from importlib.metadata import version

    spark_mm = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_mm}_2.13:{version('delta-spark')}"


def spark_settings(cfg: LakecastConfig) -> dict[str, str]:
    """All Spark settings for a lakecast session, derived from the typed configuration."""
    home = cfg.home
    packages = list(cfg.spark.extra_packages)
    settings: dict[str, str] = {
        "spark.master": cfg.spark.master,
        "spark.app.name": cfg.spark.app_name,
        "spark.driver.memory": cfg.spark.driver_memory,
        "spark.jars.ivy": str(cfg.ivy_dir),
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.shuffle.partitions": str(cfg.spark.shuffle_partitions),
        "spark.databricks.delta.snapshotPartitions": str(cfg.spark.delta_snapshot_partitions),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.scoring.arrow_batch_rows),
        "spark.ui.enabled": str(cfg.spark.ui_enabled).lower(),
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={home}",
        "spark.hadoop.hive.metastore.schema.verification": "false",
    }
    if cfg.catalog.metastore == "derby":
        settings["spark.hadoop.javax.jdo.option.ConnectionURL"] = (
            f"jdbc:derby:;databaseName={home / 'metastore_db'};create=true"
        )
        settings["spark.hadoop.datanucleus.schema.autoCreateAll"] = "true"
    else:
        packages.append(cfg.catalog.jdbc_driver_package)
        settings.update(
            {
                "spark.hadoop.javax.jdo.option.ConnectionURL": str(cfg.catalog.jdbc_url),
                "spark.hadoop.javax.jdo.option.ConnectionDriverName": "org.postgresql.Driver",
                "spark.hadoop.javax.jdo.option.ConnectionUserName": cfg.catalog.jdbc_user or "",
                "spark.hadoop.javax.jdo.option.ConnectionPassword": cfg.catalog.jdbc_password or "",
                # autoCreateAll deadlocks on PostgreSQL: the schema is created up front.
                "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
                "spark.hadoop.datanucleus.autoCreateSchema": "false",
                "spark.hadoop.datanucleus.fixedDatastore": "true",
            }
        )
    if packages:
        settings["spark.jars.packages"] = ",".join(packages)
    settings.update(cfg.spark.conf)
    return settings


def build_session(cfg: LakecastConfig) -> Any:
    """Start (or return the running) SparkSession for this configuration.

    Raises SessionError with an actionable message when Java is missing or too old, the
    Delta JARs cannot be resolved, or the embedded catalog is held by another process.
    """
    global _lock
    check_java()
    cfg.home.mkdir(parents=True, exist_ok=True)
    if cfg.catalog.metastore == "derby" and _lock is None:
        lock = _CatalogLock(cfg.home)
        lock.acquire()
        _lock = lock

    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = spark_settings(cfg)
    extra = [p for p in settings.pop("spark.jars.packages", "").split(",") if p]
    builder = SparkSession.builder
    for key, value in settings.items():
        builder = builder.config(key, value)
    # Delta's JAR (and `extra` packages) resolve through Spark's Ivy into spark.jars.ivy.
    builder = configure_spark_with_delta_pip(builder, extra_packages=extra)
    prev = os.getcwd()
    try:
        # Derby and Hive drop files (derby.log, metastore_db) in the working directory.
        os.chdir(cfg.home)
        spark = builder.enableHiveSupport().getOrCreate()
    except Exception as e:  # noqa: BLE001 - re-raised with the reason a user can act on
        raise _explain_start_failure(e, cfg) from e
    finally:
        os.chdir(prev)
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    log.info("spark %s on %s, home %s", spark.version, cfg.spark.master, cfg.home)
    return spark


def _explain_start_failure(e: Exception, cfg: LakecastConfig) -> SessionError:
    text = str(e)
    if "unresolved dependency" in text or "Java gateway process exited" in text:
        return SessionError(
            f"Spark could not start or could not resolve the Delta Lake JARs ({delta_package()}) "
            f"into {cfg.ivy_dir}. The first run downloads them from Maven Central: check "
            "network access to repo1.maven.org, or copy a warm ivy cache there. Cause: "
            + text.strip().splitlines()[-1][:500]
        )
    return SessionError(f"Spark failed to start: {text.strip()[:1000]}")


def stop_session(spark: Any) -> None:
    """Stop Spark and release the catalog lock (so another process may open this home)."""
    global _lock
    spark.stop()
    if _lock is not None:
        _lock.release()
        _lock = None
