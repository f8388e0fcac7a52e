"""The PostgreSQL-backed metastore: the Hive schema loaded into a real PostgreSQL server."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner

from conf import LakecastConfig
from jobs.cli import main
from pipelines.tooling.local_postgres import PostgresServer, metastore_overrides
from pipelines.tooling.metastore_schema import MetastoreError, init_schema, schema_scripts
from tests.conftest import make_config

pytestmark = pytest.mark.postgres


def _cfg(cfg: LakecastConfig, url: str) -> LakecastConfig:
    return make_config(cfg.home, *metastore_overrides(url))


def test_schema_scripts_run_in_order() -> None:
    names = [p.name for p in schema_scripts()]
    assert names[0] == "01-hive-schema-1.2.0.postgres.sql"
    assert names[-1] == "05-upgrade-2.2.0-to-2.3.0.postgres.sql"


def test_init_schema_creates_once_then_reports(spark: Any, cfg: LakecastConfig,
                                               postgres: PostgresServer) -> None:
    pg_cfg = _cfg(cfg, postgres.create_database("ms_init"))
    created = init_schema(spark.sparkContext._gateway, pg_cfg)
    assert (created.status, created.version) == ("created", "2.3.0") and created.tables > 50
    assert postgres.sql('SELECT "SCHEMA_VERSION" FROM "VERSION"', db="ms_init") == "2.3.0"
    again = init_schema(spark.sparkContext._gateway, pg_cfg)
    assert (again.status, again.version, again.tables) == ("present", "2.3.0", created.tables)


def test_init_schema_refuses_a_database_in_use(spark: Any, cfg: LakecastConfig,
                                               postgres: PostgresServer) -> None:
    url = postgres.create_database("ms_other")
    postgres.sql("CREATE TABLE invoices (id int)", db="ms_other")  # owned by another role
    with pytest.raises(MetastoreError, match=r"ms_other holds 1 tables \(e.g. \['invoices'\]\) but no Hive "
                                             r"VERSION table: use an empty database"):
        init_schema(spark.sparkContext._gateway, _cfg(cfg, url))
    assert postgres.sql("SELECT count(*) FROM pg_tables WHERE schemaname = 'public'", db="ms_other") == "1"


def test_unreachable_database_is_named(spark: Any, cfg: LakecastConfig, postgres: PostgresServer) -> None:
    url = f"jdbc:postgresql://127.0.0.1:{postgres.port}/no_such_db"
    with pytest.raises(MetastoreError, match=r"cannot connect to the metastore database .*/no_such_db as "
                                             r"'hive': .*database \"no_such_db\" does not exist"):
        init_schema(spark.sparkContext._gateway, _cfg(cfg, url))


def test_init_schema_command_needs_a_postgres_catalog() -> None:
    res = CliRunner().invoke(main, ["metastore", "init-schema"], env={"LAKECAST_HOME": "/nonexistent"})
    assert res.exit_code == 1
    assert "catalog.metastore is 'derby'" in res.output and "--conf conf/cluster.yaml" in res.output
