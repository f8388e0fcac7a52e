"""Build the one SparkSession a lakecast process uses: Delta Lake + a persistent Hive catalog.

This is the only module that knows Spark's configuration keys. Jobs call
`build_session(cfg)` once and pass the session into library code.
"""

from __future__ import annotations

import fcntl
import hashlib
import logging
import os
import re
import shutil
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from conf import LakecastConfig
from conf.errors import LakecastError

log = logging.getLogger(__name__)

MIN_JAVA = 17
MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


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
        # The metastore client loads the JDBC driver from the driver JVM's own class path,
        # which `spark.jars.packages` reaches too late; `ensure_jdbc_driver` fetches the JAR.
        settings["spark.driver.extraClassPath"] = str(jdbc_driver_jar(cfg))
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


def _maven_parts(coordinate: str) -> tuple[str, str, str]:
    parts = coordinate.split(":")
    if len(parts) != 3 or not all(parts):
        raise SessionError(
            f"{coordinate!r} is not a Maven coordinate group:artifact:version "
            "(check catalog.jdbc_driver_package, e.g. org.postgresql:postgresql:42.7.4)"
        )
    return parts[0], parts[1], parts[2]


def _ivy_jar(coordinate: str, ivy_dir: Path) -> Path:
    """Where Spark's Ivy keeps a resolved JAR: `<ivy>/jars/<group>_<artifact>-<version>.jar`."""
    group, artifact, ver = _maven_parts(coordinate)
    return ivy_dir / "jars" / f"{group}_{artifact}-{ver}.jar"


def jdbc_driver_jar(cfg: LakecastConfig) -> Path:
    """The metastore's JDBC driver JAR, kept beside the Delta JARs in the Ivy cache."""
    return _ivy_jar(cfg.catalog.jdbc_driver_package, cfg.ivy_dir)


def ensure_jdbc_driver(cfg: LakecastConfig) -> Path:
    """Fetch the JDBC driver JAR from Maven Central once (checksum-verified); then offline."""
    jar = jdbc_driver_jar(cfg)
    if jar.is_file():
        return jar
    group, artifact, ver = _maven_parts(cfg.catalog.jdbc_driver_package)
    url = f"{MAVEN_CENTRAL}/{group.replace('.', '/')}/{artifact}/{ver}/{artifact}-{ver}.jar"
    log.info("first start on a PostgreSQL metastore: fetching %s into %s", url, jar.parent)
    try:
        with urllib.request.urlopen(url, timeout=120) as r:
            data = r.read()
        with urllib.request.urlopen(url + ".sha1", timeout=60) as r:
            want = r.read().decode().split()[0]
    except OSError as e:
        raise SessionError(
            f"could not download the metastore's JDBC driver {url}: {e}. Check network access "
            f"to Maven Central, or copy the JAR to {jar}."
        ) from e
    if hashlib.sha1(data).hexdigest() != want:
        raise SessionError(f"{url} does not match its published SHA-1; not installing it at {jar}")
    jar.parent.mkdir(parents=True, exist_ok=True)
    part = jar.with_name(f".{jar.name}.{os.getpid()}.part")
    part.write_bytes(data)
    part.replace(jar)  # atomic: a concurrent process sees the whole JAR or none
    return jar


def submit_properties(cfg: LakecastConfig) -> dict[str, str]:
    """Settings for a driver JVM that `spark-submit` launches (job scripts, Thrift server).

    A session built inside a running JVM cannot add JARs to the driver's class path, so
    spark-submit must be given Delta (and the JDBC driver) up front: write these with
    `write_properties` and pass `spark-submit --properties-file FILE`.
    """
    settings = spark_settings(cfg)
    extra = [p for p in settings.get("spark.jars.packages", "").split(",") if p]
    settings["spark.jars.packages"] = ",".join([delta_package(), *extra])
    settings.setdefault("spark.log.level", cfg.spark.log_level)
    return settings


def delta_jars(cfg: LakecastConfig) -> list[Path]:
    """The Delta JARs in the Ivy cache that a JVM needs on its own class path.

    The Thrift server's sessions resolve `DeltaCatalog` through the system class loader,
    which `--packages` does not reach.
    """
    group, artifact, ver = _maven_parts(delta_package())
    storage = f"{group}:delta-storage:{ver}"
    return [_ivy_jar(f"{group}:{artifact}:{ver}", cfg.ivy_dir), _ivy_jar(storage, cfg.ivy_dir)]


def thrift_server_properties(cfg: LakecastConfig) -> dict[str, str]:
    """`submit_properties` plus the Delta JARs on the driver class path (HiveThriftServer2)."""
    settings = submit_properties(cfg)
    missing = [str(p) for p in delta_jars(cfg) if not p.is_file()]
    if missing:
        raise SessionError(
            f"the Delta JARs {', '.join(missing)} are not in the Ivy cache yet; run any lakecast "
            "command once (e.g. `lakecast init`) to fetch them, then start the SQL server"
        )
    cp = [settings["spark.driver.extraClassPath"]] if settings.get("spark.driver.extraClassPath") else []
    settings["spark.driver.extraClassPath"] = ":".join([*cp, *(str(p) for p in delta_jars(cfg))])
    return settings


def properties_text(settings: dict[str, str]) -> str:
    """Settings as a Java properties file (`spark-submit --properties-file`)."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("\n", "\\n")

    def esc_key(s: str) -> str:
        return esc(s).replace("=", "\\=").replace(":", "\\:")

    lines = [f"{esc_key(k)}={esc(v)}" for k, v in settings.items()]
    return "# written by lakecast from its configuration; regenerate, do not edit\n" + "\n".join(lines) + "\n"


def write_properties(settings: dict[str, str], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(properties_text(settings))
    return path


@contextmanager
def hold_catalog(cfg: LakecastConfig) -> Iterator[None]:
    """Hold the embedded catalog's lock while a JVM that lakecast launched itself uses it.

    Used around the Thrift server, so a job started meanwhile gets the one-line message
    instead of Derby's stack trace. A PostgreSQL metastore needs no lock.
    """
    if cfg.catalog.metastore != "derby":
        yield
        return
    lock = _CatalogLock(cfg.home)
    lock.acquire()
    try:
        yield
    finally:
        lock.release()


def _delta_loadable(spark: Any) -> bool:
    utils = spark.sparkContext._jvm.org.apache.spark.util.Utils
    return bool(utils.classIsLoadable("io.delta.sql.DeltaSparkSessionExtension"))


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
    if cfg.catalog.metastore == "postgres":
        ensure_jdbc_driver(cfg)

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
    if not any((cfg.ivy_dir / "jars").glob("io.delta_delta-spark*.jar")):
        log.info("first start: resolving Delta Lake JARs (%s) from Maven Central into %s",
                 delta_package(), cfg.ivy_dir)
    jvm_log = cfg.home / "logs" / "spark-jvm.log"
    jvm_log.parent.mkdir(parents=True, exist_ok=True)
    attempts = 3
    for attempt in range(1, attempts + 1):
        try:
            spark = _start_jvm(builder, cfg, jvm_log)
            break
        except Exception as e:
            err = _explain_start_failure(e, cfg, jvm_log)
            # A download cut short (network hiccup) leaves a partial JAR; Ivy fetches it again.
            if "download failed" in str(err) and attempt < attempts:
                log.warning("JAR download failed (attempt %d of %d); retrying", attempt, attempts)
                continue
            raise err from e
    if os.environ.get("PYSPARK_GATEWAY_PORT") and not _delta_loadable(spark):
        # Launched by spark-submit: its JVM was started without the Delta JARs.
        raise SessionError(
            "Delta Lake is not on this spark-submit driver's class path. spark-submit needs "
            "lakecast's Spark settings up front: `lakecast spark-conf --out lakecast.properties` "
            "(same --conf/--set), then `spark-submit --properties-file lakecast.properties "
            "jobs/<job>.py ...`."
        )
    spark.sparkContext.setLogLevel(cfg.spark.log_level)
    log.info("spark %s on %s, home %s", spark.version, cfg.spark.master, cfg.home)
    return spark


def _start_jvm(builder: Any, cfg: LakecastConfig, jvm_log: Path) -> Any:
    """Launch the JVM with its stderr in `jvm_log`, one process at a time per Ivy cache.

    Two processes resolving into the same Ivy cache at once truncate each other's
    downloads, so JVM start (which resolves the packages) holds a lock on the cache.
    """
    cfg.ivy_dir.mkdir(parents=True, exist_ok=True)
    prev = os.getcwd()
    saved_fd = os.dup(2)
    try:
        with open(cfg.ivy_dir / ".resolve.lock", "a+") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            # Derby and Hive drop files (derby.log, metastore_db) in the working directory.
            os.chdir(cfg.home)
            # The JVM's own stderr (Ivy resolution, log4j warnings) goes to a log file under the
            # home, so a terminal shows lakecast's stage lines, and errors quote what matters.
            with open(jvm_log, "ab") as fh:
                os.dup2(fh.fileno(), 2)
                return builder.enableHiveSupport().getOrCreate()
    finally:
        os.dup2(saved_fd, 2)
        os.close(saved_fd)
        os.chdir(prev)


def _tail_reasons(jvm_log: Path) -> list[str]:
    """The lines of the JVM log that say why it failed (unresolved modules, exceptions)."""
    try:
        lines = jvm_log.read_text(errors="replace").splitlines()[-400:]
    except OSError:
        return []
    keys = ("unresolved dependency", "::", "Exception", "Error:", "not found")
    picked = [ln.strip() for ln in lines if any(k in ln for k in keys) and not ln.startswith("\tat ")]
    return [p for p in picked if p.strip(": ")][-6:]


def _explain_start_failure(e: Exception, cfg: LakecastConfig, jvm_log: Path) -> SessionError:
    text = str(e)
    reasons = _tail_reasons(jvm_log)
    joined = "\n".join(reasons)
    if "download failed" in joined:
        return SessionError(
            f"Spark could not download its JARs into the Ivy cache {cfg.ivy_dir} "
            f"({delta_package()} and its dependencies come from Maven Central): download failed. "
            f"Check network access to Maven Central and retry. Full JVM log: {jvm_log}"
        )
    if "unresolved dependency" in joined or "UNRESOLVED DEPENDENCIES" in joined:
        unresolved = [r for r in reasons if "unresolved dependency" in r]
        return SessionError(
            f"Spark could not resolve its JARs into the Ivy cache {cfg.ivy_dir} "
            f"({'; '.join(unresolved) or joined}). The first run downloads Delta Lake "
            f"({delta_package()}) from Maven Central: check network access to Maven Central "
            "and the Maven coordinates in spark.extra_packages, or copy a warm Ivy cache "
            f"there. Full JVM log: {jvm_log}"
        )
    if "JAVA_GATEWAY_EXITED" in text or "Java gateway process exited" in text:
        return SessionError(
            f"the Spark JVM exited while starting: {joined or 'no reason logged'}. "
            f"Full JVM log: {jvm_log}"
        )
    return SessionError(f"Spark failed to start: {text.strip()[:1000]} (JVM log: {jvm_log})")


def stop_session(spark: Any) -> None:
    """Stop Spark and release the catalog lock (so another process may open this home)."""
    global _lock
    spark.stop()
    if _lock is not None:
        _lock.release()
        _lock = None
