"""`lakecast sql-server` pieces that need no server (the served query is in test_cluster.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from conf import ConfigError
from conf.errors import CatalogBusyError, SessionError
from jobs.cli import main
from pipelines.session.catalog_lock import CatalogLock, hold_catalog
from pipelines.session.submit import properties_text, thrift_server_properties
from pipelines.tooling.thrift_server import THRIFT_CLASS, SqlServerError, check_exposure, command, jdbc_url
from tests.conftest import make_config


def test_command_starts_the_thrift_server_with_lakecast_settings(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "sql_server.port=10123", "sql_server.host=0.0.0.0")
    cmd = command(cfg, tmp_path / "p.properties")
    assert cmd[0].endswith("bin/spark-submit") and cmd[cmd.index("--class") + 1] == THRIFT_CLASS
    assert cmd[cmd.index("--properties-file") + 1] == str(tmp_path / "p.properties")
    assert "hive.server2.thrift.port=10123" in cmd and "hive.server2.thrift.bind.host=0.0.0.0" in cmd
    assert jdbc_url(cfg) == "jdbc:hive2://127.0.0.1:10123/lakecast"


def test_thrift_settings_put_delta_on_the_driver_class_path(tmp_path: Path) -> None:
    settings = thrift_server_properties(make_config(tmp_path))  # the test Ivy cache holds the JARs
    cp = settings["spark.driver.extraClassPath"].split(":")
    assert any("delta-spark_" in p for p in cp) and any("delta-storage-" in p for p in cp)
    assert all(Path(p).is_file() for p in cp)


def test_thrift_settings_need_the_jars_fetched_first(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, f"spark.ivy_dir={tmp_path / 'empty_ivy'}")
    with pytest.raises(SessionError, match=r"are not in the Ivy cache yet; run any lakecast command once"):
        thrift_server_properties(cfg)


def test_server_holds_the_embedded_catalog(tmp_path: Path) -> None:
    """On Derby a job started while the server runs gets the one-line busy message."""
    cfg = make_config(tmp_path)
    with hold_catalog(cfg), pytest.raises(CatalogBusyError, match=r"is in use by pid \d+"):
        CatalogLock(cfg.home).acquire()
    lock = CatalogLock(cfg.home)
    lock.acquire()  # released when the server stops
    lock.release()


def test_remote_host_without_authentication_is_refused_before_anything_starts(tmp_path: Path) -> None:
    res = CliRunner().invoke(main, ["sql-server", "--set", "sql_server.host=0.0.0.0"],
                             env={"LAKECAST_HOME": str(tmp_path)})
    assert res.exit_code == 1
    error = res.output.strip()
    assert "\n" not in error and "refusing to listen on sql_server.host 0.0.0.0" in error
    for key in ("sql_server.authentication=ldap", "sql_server.ldap_url", "sql_server.ldap_base_dn",
                "sql_server.allow_unauthenticated_remote=true"):
        assert key in error
    assert not (tmp_path / "logs").exists()  # no Spark, no JAR download, no server
    for host in ("10.0.0.5", "sql.example.com", "::"):
        with pytest.raises(SqlServerError, match=f"sql_server.host {host} "):
            check_exposure(make_config(tmp_path, f"sql_server.host='{host}'"))


def test_loopback_or_explicit_opt_out_is_served(tmp_path: Path) -> None:
    for sets in (("sql_server.host=127.0.0.1",), ("sql_server.host=localhost",), ("sql_server.host='::1'",),
                 ("sql_server.host=0.0.0.0", "sql_server.allow_unauthenticated_remote=true")):
        check_exposure(make_config(tmp_path, *sets))  # no error
    assert thrift_server_properties(make_config(tmp_path, "sql_server.host=0.0.0.0",
                                                "sql_server.allow_unauthenticated_remote=true")
                                    ).get("spark.hadoop.hive.server2.authentication") is None


def test_ldap_settings_reach_the_thrift_server_properties(tmp_path: Path) -> None:
    cfg = make_config(tmp_path, "sql_server.host=0.0.0.0", "sql_server.authentication=ldap",
                      "sql_server.ldap_url=ldap://ldap.example.com:389",
                      "sql_server.ldap_base_dn=ou=people,dc=example,dc=com")
    check_exposure(cfg)
    text = properties_text(thrift_server_properties(cfg))
    assert "spark.hadoop.hive.server2.authentication=LDAP\n" in text
    assert "spark.hadoop.hive.server2.authentication.ldap.url=ldap://ldap.example.com:389\n" in text
    assert "spark.hadoop.hive.server2.authentication.ldap.baseDN=ou=people,dc=example,dc=com\n" in text
    with pytest.raises(ConfigError, match=r"sql_server.authentication is 'ldap' but sql_server.ldap_url is not set"):
        make_config(tmp_path, "sql_server.authentication=ldap")
