"""Every Spark setting of a lakecast session, derived from the typed configuration.

This is the only module that knows Spark's configuration keys; the session builder and
the spark-submit properties file both start from `spark_settings`.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.secrets import reveal
from pipelines.session.jars import jdbc_driver_jar

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# The JVMs' default zone is UTC whatever the host's TZ (the last -D of a key wins), so no
# JVM-side conversion that falls back on it (java.sql.Timestamp, Hive) can shift a time.
_UTC_JVM = "-Duser.timezone=UTC"
_JVM_OPTIONS = ("spark.driver.extraJavaOptions", "spark.executor.extraJavaOptions")

# Set around a write (never at start): the Delta commits then carry the job run id.
DELTA_COMMIT_USER_METADATA = "spark.databricks.delta.commitInfo.userMetadata"


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
        "spark.sql.sources.parallelPartitionDiscovery.parallelism": str(cfg.spark.file_listing_parallelism),
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.sql.execution.arrow.maxRecordsPerBatch": str(cfg.scoring.arrow_batch_rows),
        "spark.ui.enabled": str(cfg.spark.ui_enabled).lower(),
        "spark.pyspark.python": sys.executable,
        "spark.pyspark.driver.python": sys.executable,
        "spark.executorEnv.PYSPARK_PYTHON": sys.executable,
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={home}",
        "spark.executor.extraJavaOptions": "",
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
                # Spark masks it in its UI and logs: spark.redaction.regex matches "password".
                "spark.hadoop.javax.jdo.option.ConnectionPassword": reveal(cfg.catalog.jdbc_password),
                # autoCreateAll deadlocks on PostgreSQL: the schema is created up front.
                "spark.hadoop.datanucleus.schema.autoCreateAll": "false",
                "spark.hadoop.datanucleus.autoCreateSchema": "false",
                "spark.hadoop.datanucleus.fixedDatastore": "true",
            }
        )
    if packages:
        settings["spark.jars.packages"] = ",".join(packages)
    user = dict(cfg.spark.conf)
    for key in _JVM_OPTIONS:  # the user's JVM options are kept; the JVM's zone is always UTC
        settings[key] = " ".join(o for o in (settings[key], user.pop(key, ""), _UTC_JVM) if o)
    settings.update(user)
    return settings


@contextmanager
def session_conf(spark: SparkSession, key: str, value: str) -> Iterator[None]:
    """Set a Spark session setting for the block only; the previous value (or none) is restored."""
    try:
        before: str | None = spark.conf.get(key)
    except Exception:  # noqa: BLE001 - an optional setting that is not set raises
        before = None
    if before == "<undefined>":
        before = None
    spark.conf.set(key, value)
    try:
        yield
    finally:
        if before is None:
            spark.conf.unset(key)
        else:
            spark.conf.set(key, before)
