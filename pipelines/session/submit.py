"""Settings for a driver JVM that `spark-submit` launches (job scripts, the Thrift SQL server).

A session built inside a running JVM cannot add JARs to the driver's class path, so
spark-submit must be given Delta (and the JDBC driver) up front, in a properties file.
"""

from __future__ import annotations

from pathlib import Path

from conf import LakecastConfig
from conf.errors import SessionError
from pipelines.session.jars import delta_jars, delta_package
from pipelines.session.settings import spark_settings


def submit_properties(cfg: LakecastConfig) -> dict[str, str]:
    """Settings for a driver JVM that `spark-submit` launches (job scripts, Thrift server).

    Write these with `write_properties` and pass `spark-submit --properties-file FILE`.
    """
    settings = spark_settings(cfg)
    extra = [p for p in settings.get("spark.jars.packages", "").split(",") if p]
    settings["spark.jars.packages"] = ",".join([delta_package(), *extra])
    settings.setdefault("spark.log.level", cfg.spark.log_level)
    return settings


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
