"""Build the one SparkSession a lakecast process uses: Delta Lake + a persistent Hive catalog.

Jobs call `build_session(cfg)` once and pass the session into library code; the settings
come from `session.settings`, the JARs from `session.jars`.
"""

from __future__ import annotations

import fcntl
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.errors import SessionError
from pipelines.session.catalog_lock import lock_for_session, release_session_lock
from pipelines.session.class_archive import java_options
from pipelines.session.jars import delta_package, ensure_jdbc_driver
from pipelines.session.java import check_java
from pipelines.session.settings import spark_settings
from pipelines.session.spark_errors import route_spark_error_logs
from pipelines.session.start_failure import DOWNLOAD_FAILED, explain_start_failure

if TYPE_CHECKING:  # pyspark is imported when a session is built, not when this module is
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)


def _delta_loadable(spark: SparkSession) -> bool:
    jvm = spark.sparkContext._jvm
    if jvm is None:
        return False
    utils = jvm.org.apache.spark.util.Utils
    return bool(utils.classIsLoadable("io.delta.sql.DeltaSparkSessionExtension"))


def build_session(cfg: LakecastConfig) -> SparkSession:
    """Start (or return the running) SparkSession for this configuration.

    Raises SessionError with an actionable message when Java is missing or too old, the
    Delta JARs cannot be resolved, or the embedded catalog is held by another process.
    """
    check_java()
    cfg.home.mkdir(parents=True, exist_ok=True)
    lock_for_session(cfg)
    if cfg.catalog.metastore == "postgres":
        ensure_jdbc_driver(cfg)

    from delta import configure_spark_with_delta_pip
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    settings = spark_settings(cfg)
    if archive := java_options(cfg, settings):  # not in spark_settings: spark-conf files stay portable
        settings["spark.driver.extraJavaOptions"] = f"{archive} {settings['spark.driver.extraJavaOptions']}"
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
            err = explain_start_failure(e, cfg, jvm_log)
            # A download cut short (network hiccup) leaves a partial JAR; Ivy fetches it again.
            if DOWNLOAD_FAILED in str(err) and attempt < attempts:
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
    route_spark_error_logs(cfg.home / "logs")  # pyspark's JSON error lines: a file, not the terminal
    log.info("spark %s on %s, home %s", spark.version, cfg.spark.master, cfg.home)
    return spark


def _start_jvm(builder: SparkSession.Builder, cfg: LakecastConfig, jvm_log: Path) -> SparkSession:
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


def stop_session(spark: SparkSession) -> None:
    """Stop Spark and release the catalog lock (so another process may open this home)."""
    spark.stop()
    release_session_lock()
