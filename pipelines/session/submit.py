"""Settings for a driver JVM that `spark-submit` launches (job scripts, the Thrift SQL server).

A session built inside a running JVM cannot add JARs to the driver's class path, so
spark-submit must be given Delta (and the JDBC driver) up front, in a properties file.
"""

from __future__ import annotations

import os
import tempfile
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
    settings.update(thrift_auth_settings(cfg))
    return settings


def thrift_auth_settings(cfg: LakecastConfig) -> dict[str, str]:
    """HiveServer2's authentication from `sql_server.*` (spark.hadoop.* reaches its HiveConf).

    LDAP: a client's user and password are checked by binding to `ldap_url` as
    `uid=USER,<ldap_base_dn>`, as each `ldap_user_dn_pattern` (`%s` = USER, `:`-separated),
    or as USER@<ldap_domain>. None: HiveServer2's default, any user name, no password.
    """
    s = cfg.sql_server
    if s.authentication == "none":
        return {}
    hive = {"hive.server2.authentication": "LDAP", "hive.server2.authentication.ldap.url": s.ldap_url,
            "hive.server2.authentication.ldap.baseDN": s.ldap_base_dn,
            "hive.server2.authentication.ldap.userDNPattern": s.ldap_user_dn_pattern,
            "hive.server2.authentication.ldap.Domain": s.ldap_domain}
    return {f"spark.hadoop.{k}": v for k, v in hive.items() if v}


def properties_text(settings: dict[str, str]) -> str:
    """Settings as a Java properties file (`spark-submit --properties-file`)."""

    def esc(s: str) -> str:
        return s.replace("\\", "\\\\").replace("\n", "\\n")

    def esc_key(s: str) -> str:
        return esc(s).replace("=", "\\=").replace(":", "\\:")

    lines = [f"{esc_key(k)}={esc(v)}" for k, v in settings.items()]
    return "# written by lakecast from its configuration; regenerate, do not edit\n" + "\n".join(lines) + "\n"


def write_properties(settings: dict[str, str], path: Path) -> Path:
    """Write the file readable by its owner only (mode 0600): it may hold the metastore password.

    The text goes to a new file created 0600 (never a window with wider permissions), which
    then replaces `path`, so an older world-readable file is not reused.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # created with mode 0600
    try:
        with os.fdopen(fd, "w") as fh:
            fh.write(properties_text(settings))
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
