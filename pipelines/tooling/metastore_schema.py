"""Create the Hive metastore schema in an empty PostgreSQL database, once per team.

Spark's built-in Hive 2.3 client must not create its own tables on PostgreSQL (DataNucleus'
`autoCreateAll` deadlocks there), so the official Apache Hive scripts in
`deploy/metastore/postgres` (schema 1.2.0, then the upgrades to 2.3.0) are loaded up front:
here through the JDBC driver the metastore itself uses, or by the PostgreSQL image's init
directory in docker-compose.yml. A PostgreSQL-backed catalog admits many lakecast processes
at once, unlike the embedded Derby default.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from conf import LakecastConfig
from conf.errors import LakecastError
from conf.secrets import reveal
from pipelines.session.jars import ensure_jdbc_driver

log = logging.getLogger(__name__)

SCHEMA_DIR = Path(__file__).resolve().parents[2] / "deploy" / "metastore" / "postgres"
HIVE_SCHEMA_VERSION = "2.3.0"


class MetastoreError(LakecastError):
    """The metastore database cannot be used or initialised; the message says what to do."""


@dataclass(frozen=True)
class SchemaStatus:
    status: str  # "created" or "present"
    version: str
    tables: int


def schema_scripts(directory: Path = SCHEMA_DIR) -> list[Path]:
    """The schema scripts in the order they must run (their names sort that way)."""
    scripts = sorted(directory.glob("*.sql"))
    if not scripts:
        raise MetastoreError(f"no Hive schema scripts (*.sql) in {directory}")
    return scripts


def _connect(gateway: Any, cfg: LakecastConfig) -> Any:
    """A JDBC connection from inside the Spark JVM, loading the driver JAR by its own loader.

    A separate class loader works whether or not the JAR is on this JVM's class path (the
    test suite's session runs on Derby and has no PostgreSQL driver).
    """
    if cfg.catalog.metastore != "postgres" or not cfg.catalog.jdbc_url:
        raise MetastoreError(
            f"catalog.metastore is {cfg.catalog.metastore!r}: the schema is only loaded into a "
            "PostgreSQL metastore; set catalog.metastore=postgres and catalog.jdbc_url "
            "(see conf/cluster.yaml)"
        )
    jvm = gateway.jvm
    driver = _driver(gateway, ensure_jdbc_driver(cfg))
    props = jvm.java.util.Properties()
    props.setProperty("user", cfg.catalog.jdbc_user or "")
    props.setProperty("password", reveal(cfg.catalog.jdbc_password))
    try:
        conn = driver.connect(cfg.catalog.jdbc_url, props)
    except Exception as e:  # py4j wraps the SQLException; re-raised with context
        raise MetastoreError(
            f"cannot connect to the metastore database {cfg.catalog.jdbc_url} as "
            f"{cfg.catalog.jdbc_user!r}: {_sql_message(e)}"
        ) from e
    if conn is None:
        raise MetastoreError(f"{cfg.catalog.jdbc_url} is not a PostgreSQL JDBC URL (jdbc:postgresql://...)")
    return conn


# One driver instance per JVM and JAR: py4j caches methods by class name, so a second copy
# of the class from another loader would be called through the first one's methods.
_drivers: dict[tuple[int, str], Any] = {}


def _driver(gateway: Any, jar: Path) -> Any:
    key = (id(gateway), str(jar))
    if key not in _drivers:
        jvm = gateway.jvm
        urls = gateway.new_array(jvm.java.net.URL, 1)
        urls[0] = jvm.java.io.File(str(jar)).toURI().toURL()
        loader = jvm.java.net.URLClassLoader(urls, jvm.java.lang.ClassLoader.getSystemClassLoader())
        _drivers[key] = loader.loadClass("org.postgresql.Driver").newInstance()
    return _drivers[key]


def _sql_message(e: BaseException) -> str:
    text = str(e)
    for line in text.splitlines():
        if "PSQLException" in line or "SQLException" in line:
            return line.split("Exception:", 1)[-1].strip()[:500]
    return text.strip().splitlines()[0][:500] if text.strip() else type(e).__name__


def _public_tables(conn: Any) -> set[str]:
    stmt = conn.createStatement()
    rs = stmt.executeQuery(
        "SELECT tablename FROM pg_catalog.pg_tables WHERE schemaname = 'public'"
    )
    names = set()
    while rs.next():
        names.add(str(rs.getString(1)))
    stmt.close()
    return names


def _schema_version(conn: Any) -> str:
    stmt = conn.createStatement()
    rs = stmt.executeQuery('SELECT "SCHEMA_VERSION" FROM "VERSION"')
    version = rs.getString(1) if rs.next() else "unknown"
    stmt.close()
    return str(version)


def init_schema(gateway: Any, cfg: LakecastConfig, scripts_dir: Path = SCHEMA_DIR) -> SchemaStatus:
    """Load the Hive schema into the configured PostgreSQL database; idempotent.

    An initialised database is reported, not touched; a database holding other tables but
    no Hive `VERSION` table is refused, so nothing is mixed into it.
    """
    conn = _connect(gateway, cfg)
    try:
        tables = _public_tables(conn)
        if "VERSION" in tables:
            version = _schema_version(conn)
            log.info("metastore schema present in %s: version %s, %d tables",
                     cfg.catalog.jdbc_url, version, len(tables))
            return SchemaStatus("present", version, len(tables))
        if tables:
            raise MetastoreError(
                f"{cfg.catalog.jdbc_url} holds {len(tables)} tables (e.g. {sorted(tables)[:3]}) but no "
                "Hive VERSION table: use an empty database for the metastore"
            )
        conn.setAutoCommit(False)
        for script in schema_scripts(scripts_dir):
            try:
                conn.createStatement().execute(script.read_text())
            except Exception as e:  # rolled back, re-raised naming the script
                conn.rollback()
                raise MetastoreError(
                    f"loading {script.name} into {cfg.catalog.jdbc_url} failed (nothing was kept): "
                    f"{_sql_message(e)}"
                ) from e
        conn.commit()
        conn.setAutoCommit(True)
        tables = _public_tables(conn)
        version = _schema_version(conn)
        log.info("metastore schema created in %s: version %s, %d tables",
                 cfg.catalog.jdbc_url, version, len(tables))
        return SchemaStatus("created", version, len(tables))
    finally:
        conn.close()
