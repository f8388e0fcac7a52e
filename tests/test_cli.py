"""The `lakecast` CLI as a user runs it: help, errors, and tables seen from another process."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from conf import LakecastConfig
from jobs.cli import COMMANDS, main
from tests.conftest import BIN, run_cli


def test_help_lists_every_command() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0
    commands_section = result.output.split("Commands:")[1].splitlines()
    listed = {line.split()[0] for line in commands_section if re.match(r"^  [a-z]", line)}
    assert listed == set(COMMANDS)
    jobs = {"init", "sql", "demo", "ingest", "train", "promote", "predict", "backfill", "sql-server"}
    assert jobs <= listed
    for name in COMMANDS:  # every listed command loads and has its own help
        sub = CliRunner().invoke(main, [name, "--help"], prog_name="lakecast")  # as the installed script
        assert sub.exit_code == 0, (name, sub.output)
        assert f"Usage: lakecast {name}" in sub.output
    sub = CliRunner().invoke(main, ["sql", "--help"])
    assert "--format" in sub.output and "--set" in sub.output and "--conf" in sub.output


def test_config_error_stops_before_spark() -> None:
    result = CliRunner().invoke(main, ["init", "--set", "data.freq=3x"])
    assert result.exit_code == 2
    assert "data.freq" in result.output and "'3x'" in result.output


def test_unexpected_error_is_one_line_with_the_traceback_in_a_file(tmp_path: Path) -> None:
    from conf import load_config
    from jobs._cli.context import unexpected_error

    cfg = load_config(None, [f"home={tmp_path}"], env={})
    try:
        {}["stage 3 lost"]  # a real exception, with a traceback
    except KeyError as e:
        msg = unexpected_error(cfg, e)
    log = tmp_path / "logs" / "lakecast-errors.log"
    assert msg == f"KeyError: 'stage 3 lost' (traceback in {log})"
    assert "Traceback (most recent call last)" in log.read_text() and "stage 3 lost" in log.read_text()


def test_the_error_log_keeps_no_series_id_of_a_forget(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`lakecast forget` exists so that nothing keeps the id; a failed one must not write it to the log."""
    from conf import load_config
    from jobs._cli.context import unexpected_error

    cfg = load_config(None, [f"home={tmp_path}"], env={})
    monkeypatch.setattr("sys.argv", ["lakecast", "forget", "--series", "patient-4711", "--series=patient-42",
                                     "--reason", "erasure request"])
    try:
        raise RuntimeError("metastore unreachable")
    except RuntimeError as e:
        unexpected_error(cfg, e)
    log = (tmp_path / "logs" / "lakecast-errors.log").read_text()
    assert "metastore unreachable" in log and "erasure request" in log
    assert "patient-4711" not in log and "patient-42" not in log and log.count("<a series to forget>") == 2
    monkeypatch.setattr("sys.argv", ["lakecast", "predict", "--series", "kept"])  # other commands: as typed
    try:
        raise RuntimeError("later")
    except RuntimeError as e:
        unexpected_error(cfg, e)
    assert "--series kept" in (tmp_path / "logs" / "lakecast-errors.log").read_text()


def test_missing_java_is_explained(tmp_path: Path) -> None:
    env = {"PATH": str(BIN), "JAVA_HOME": ""}
    proc = run_cli(tmp_path, "init", env=env)
    assert proc.returncode == 1
    assert "Java was not found" in proc.stderr and "Java 17" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_busy_catalog_is_one_line(spark: Any, cfg: LakecastConfig) -> None:
    """The session fixture holds this home's embedded catalog; a second process is told so."""
    proc = run_cli(cfg.home, "sql", "SELECT 1")
    assert proc.returncode == 1
    assert f"the lakecast catalog at {cfg.home} is in use by pid {os.getpid()}" in proc.stderr
    assert "PostgreSQL-backed metastore" in proc.stderr
    assert "Traceback" not in proc.stderr and "XSDB6" not in proc.stderr


def test_tables_are_visible_from_another_process(zone_demos: dict[str, Any]) -> None:
    """The tables a finished `lakecast demo` process created (the suite's shared demo home on the
    embedded Derby catalog), queried by another `lakecast sql` process."""
    demo = zone_demos["America/New_York"]
    assert demo.returncode == 0, demo.output[-3000:]
    query = run_cli(demo.home, "sql", "SHOW TABLES IN lakecast", "--format", "json")
    assert query.returncode == 0, query.stderr
    names = {r["tableName"] for r in json.loads(query.stdout)}
    assert {"observations", "quarantine", "forecasts", "forecast_accuracy", "job_runs", "forecasts_latest"} <= names
    bad = run_cli(demo.home, "sql", "SELECT nope FROM lakecast.forecasts")
    assert bad.returncode == 1
    # one line with Spark's error class; pyspark's JSON line with the Java stack trace in a file
    assert not [line for line in bad.stderr.splitlines() if line.lstrip().startswith("{")]
    assert "Error: SQL failed: UNRESOLVED_COLUMN.WITH_SUGGESTION: " in bad.stderr and "`nope`" in bad.stderr
    assert "CheckAnalysis" not in bad.stderr and "o72" not in bad.stderr
    assert "CheckAnalysis" in (demo.home / "logs" / "spark-errors.log").read_text()


def test_unresolvable_jar_is_explained(tmp_path: Path) -> None:
    proc = run_cli(tmp_path, "sql", "SELECT 1", "--set",
                   'spark.extra_packages=["io.lakecast:does-not-exist:0.0.1"]')
    assert proc.returncode == 1
    assert "could not resolve its JARs" in proc.stderr
    assert "io.lakecast#does-not-exist;0.0.1: not found" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert (tmp_path / "logs" / "spark-jvm.log").is_file()
