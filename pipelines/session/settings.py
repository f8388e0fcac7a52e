"""Every Spark setting of a lakecast session, derived from the typed configuration.

This is the only module that knows Spark's configuration keys; the session builder and
the spark-submit properties file both start from `spark_settings`.
"""

from __future__ import annotations

import sys

from conf import LakecastConfig
from pipelines.session.jars import jdbc_driver_jar


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
