"""`lakecast sql` for scripts and people: csv lines, the --limit note, Spark errors in one line.

The command runs in this process (click's CliRunner) on the session fixture's SparkSession, so
stdout and stderr are seen apart without starting another JVM.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from click.testing import CliRunner, Result

from conf import LakecastConfig
from tests.conftest import TEST_OVERRIDES

# p10 > p50: breaks the forecasts table's CHECK constraint `quantiles_ordered`.
BAD_QUANTILES = ("INSERT INTO forecasts VALUES ('s1', timestamp'2024-01-01 00:00', timestamp'2024-01-01 01:00', "
                 "1, 5.0, 1.0, 6.0, 'm', '1', NULL, NULL, NULL, NULL, NULL, NULL)")


def _sql(cfg: LakecastConfig, *args: str) -> Result:
    from jobs.cli import main

    sets = [x for o in (f"home={cfg.home}", f"catalog.database={cfg.catalog.database}", *TEST_OVERRIDES)
            for x in ("--set", o)]
    return CliRunner().invoke(main, ["sql", *args, *sets])


@pytest.fixture(scope="module")
def db(spark: Any, cfg: LakecastConfig) -> Iterator[LakecastConfig]:
    """Tables of their own; `lakecast sql` makes their database current: restored afterwards."""
    from pipelines.tables.ensure import ensure_tables
    from tests.conftest import make_config

    c = make_config(cfg.home, "catalog.database=t_sqlcli")
    ensure_tables(spark, c)
    previous = spark.catalog.currentDatabase()
    yield c
    spark.catalog.setCurrentDatabase(previous)


def test_csv_ends_lines_with_newline_and_a_cut_result_says_so_on_stderr(db: LakecastConfig) -> None:
    cut = _sql(db, "SELECT id, 'a,b' AS s FROM range(5)", "--format", "csv", "--limit", "3")
    assert cut.exit_code == 0, cut.output
    assert cut.stdout == 'id,s\n0,"a,b"\n1,"a,b"\n2,"a,b"\n'  # no \r, quoting kept
    # the note is stderr's last line (stage lines may precede it when this test starts Spark)
    assert cut.stderr.endswith("\n")
    assert cut.stderr.splitlines()[-1] == "lakecast sql: result cut at --limit 3 rows; --limit 0 prints all"

    exact = _sql(db, "SELECT id FROM range(5)", "--format", "csv", "--limit", "5")
    assert exact.stdout == "id\n0\n1\n2\n3\n4\n" and "cut" not in exact.stderr  # 5 rows fit a limit of 5

    everything = _sql(db, "SELECT id FROM range(1500)", "--format", "csv", "--limit", "0")
    assert everything.exit_code == 0, everything.output
    assert everything.stdout.splitlines()[1:] == [str(i) for i in range(1500)] and "cut" not in everything.stderr

    table = _sql(db, "SELECT id FROM range(3)", "--limit", "2")
    assert "cut at --limit 2" in table.stderr and "cut" not in table.stdout


def test_constraint_violation_names_the_constraint_and_the_values(db: LakecastConfig) -> None:
    res = _sql(db, BAD_QUANTILES)
    assert res.exit_code == 1
    err = res.stderr.strip().splitlines()[-1]  # after the stage lines (INFO: starting Spark ...)
    assert err == ("Error: SQL failed: DELTA_VIOLATE_CONSTRAINT_WITH_VALUES: CHECK constraint quantiles_ordered "
                   "((p10 <= p50) AND (p50 <= p90)) violated by row with values: p10 : 5.0, p50 : 1.0, p90 : 6.0")
    assert "o72" not in res.output and "An error occurred while calling" not in res.output


def test_other_spark_errors_are_one_line_with_the_error_class(db: LakecastConfig) -> None:
    res = _sql(db, "SELECT nope FROM forecasts")
    assert res.exit_code == 1
    lines = res.stderr.strip().splitlines()
    assert lines[-1].startswith("Error: SQL failed: UNRESOLVED_COLUMN.WITH_SUGGESTION: ") and "`nope`" in lines[-1]
    assert not [ln for ln in lines if "Error" in ln or "{" in ln][:-1]  # one error line, no JSON
    # pyspark's JSON line with the Java stack trace went to the log file.
    log = (db.home / "logs" / "spark-errors.log").read_text()
    assert '"errorClass": "UNRESOLVED_COLUMN.WITH_SUGGESTION"' in log and "CheckAnalysis" in log

    parse = _sql(db, "SELEC 1")
    assert parse.stderr.strip().splitlines()[-1].startswith(
        "Error: SQL failed: PARSE_SYNTAX_ERROR: Syntax error at or near 'SELEC'")


def test_jobs_report_py4j_errors_by_error_class(spark: Any, db: LakecastConfig) -> None:
    """The one-line message of every job (jobs._cli.context) for a raw Py4JJavaError and a converted one."""
    from py4j.protocol import Py4JJavaError
    from pyspark.errors import AnalysisException

    from jobs._cli.context import unexpected_error

    spark.catalog.setCurrentDatabase(db.catalog.database)
    with pytest.raises(Py4JJavaError) as raw:  # pyspark does not convert Delta's exception
        spark.sql(BAD_QUANTILES)
    msg = unexpected_error(db, raw.value)
    assert msg.startswith("DELTA_VIOLATE_CONSTRAINT_WITH_VALUES: CHECK constraint quantiles_ordered ")
    assert "p10 : 5.0, p50 : 1.0, p90 : 6.0 (traceback in " in msg
    with pytest.raises(AnalysisException) as converted:  # pyspark's own conversion
        spark.sql("SELECT * FROM no_such_table")
    assert unexpected_error(db, converted.value).startswith(
        "TABLE_OR_VIEW_NOT_FOUND: The table or view `no_such_table` cannot be found.")
    assert "DeltaInvariantViolationException" in (db.home / "logs" / "lakecast-errors.log").read_text()
