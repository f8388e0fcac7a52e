"""Where the JARs a lakecast JVM needs come from: Delta (via Spark's Ivy) and the metastore's JDBC driver.

Spark's Ivy resolves Delta into `spark.jars.ivy`; the JDBC driver must be on the driver's class
path before the JVM starts, so it is fetched here from Maven Central (checksum-verified) once.
"""

from __future__ import annotations

import hashlib
import logging
import os
import urllib.request
from pathlib import Path

from conf import LakecastConfig
from conf.errors import SessionError

log = logging.getLogger(__name__)

MAVEN_CENTRAL = "https://repo1.maven.org/maven2"


def delta_package() -> str:
    """Maven coordinate of the Delta JAR matching the installed delta-spark and pyspark.

    Mirrors `delta.configure_spark_with_delta_pip`, which the builder uses; named here so
    error messages and the Thrift server's class path can refer to it.
    """
    from importlib.metadata import version

    spark_mm = ".".join(version("pyspark").split(".")[:2])
    return f"io.delta:delta-spark_{spark_mm}_2.13:{version('delta-spark')}"


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


def delta_jars(cfg: LakecastConfig) -> list[Path]:
    """The Delta JARs in the Ivy cache that a JVM needs on its own class path.

    The Thrift server's sessions resolve `DeltaCatalog` through the system class loader,
    which `--packages` does not reach.
    """
    group, artifact, ver = _maven_parts(delta_package())
    storage = f"{group}:delta-storage:{ver}"
    return [_ivy_jar(f"{group}:{artifact}:{ver}", cfg.ivy_dir), _ivy_jar(storage, cfg.ivy_dir)]
