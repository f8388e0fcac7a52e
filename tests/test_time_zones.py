"""Any host clock, same results: timestamps cross Python <-> Spark as UTC, whatever `TZ` is.

Tests marked `tz` run again under TZ=America/New_York and TZ=Asia/Kolkata (`make test`); the
demo test compares the forecasts of whole `lakecast demo` runs under UTC and New York
(tests/demo_runs.py; add Asia/Kolkata to ZONES for a third; each zone costs a whole demo).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
import pytest

from conf import LakecastConfig
from conf.utc import from_utc_micros, to_utc_micros, utc_aware
from pipelines.flows.backfill import already_scored
from pipelines.flows.predict import default_as_of
from pipelines.session.settings import spark_settings
from pipelines.spark_utc import distinct_utc, max_utc, utc_lit
from pipelines.tables.sql_query import run_statement
from pipelines.tables.views import latest_runs
from pipelines.windows.grid import GridSpec, anchor_of, step_at_or_before, step_micros
from tests.conftest import make_config
from tests.demo_runs import ZONES, DemoRun

END = datetime(2024, 12, 31, 23)  # the demo's newest hour; 5 h before midnight UTC, 18:00 in New York


def _obs(spark: Any, times: list[datetime]) -> Any:
    rows = [("a", utc_aware(t), float(i)) for i, t in enumerate(times)]
    return spark.createDataFrame(rows, "series_id string, ts timestamp, value double")


@pytest.mark.tz
def test_the_jvm_and_the_session_are_in_utc(spark: Any) -> None:
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"
    assert spark.sparkContext._jvm.java.util.TimeZone.getDefault().getID() == "UTC"


def test_user_java_options_are_kept_and_the_jvm_zone_stays_utc(cfg: LakecastConfig) -> None:
    conf = {"spark.driver.extraJavaOptions": "-Dmine=1 -Duser.timezone=Europe/Paris",
            "spark.executor.extraJavaOptions": "-XX:+UseG1GC"}
    user = cfg.model_copy(update={"spark": cfg.spark.model_copy(update={"conf": conf})})
    driver = spark_settings(user)["spark.driver.extraJavaOptions"].split()
    assert f"-Dderby.system.home={cfg.home}" in driver and "-Dmine=1" in driver
    assert driver[-1] == "-Duser.timezone=UTC"  # the last -D of a key wins
    assert spark_settings(user)["spark.executor.extraJavaOptions"].split() == ["-XX:+UseG1GC",
                                                                               "-Duser.timezone=UTC"]
    assert spark_settings(cfg)["spark.executor.extraJavaOptions"] == "-Duser.timezone=UTC"


@pytest.mark.tz
def test_literals_and_reads_are_utc(spark: Any) -> None:
    t = datetime(2024, 3, 10, 7, 30)  # a DST change in New York (02:00 local); naive = UTC
    df = spark.range(1).select(utc_lit(t).alias("a"), utc_lit("2024-03-10T13:00:00+05:30").alias("b"))
    (row,) = df.selectExpr("unix_micros(a) AS a", "unix_micros(b) AS b").collect()
    assert (row["a"], row["b"]) == (to_utc_micros(t), to_utc_micros(t))
    obs = _obs(spark, [END - timedelta(hours=1), END])
    assert max_utc(obs, "ts") == END and distinct_utc(obs, "ts") == [END - timedelta(hours=1), END]
    assert max_utc(obs.where("false"), "ts") is None
    obs.createOrReplaceTempView("_tz_obs")
    _, rows, _ = run_statement(spark, "SELECT max(ts) AS t, 'x' AS s FROM _tz_obs", 10)
    assert rows == [(END, "x")]  # `lakecast sql` shows UTC


@pytest.mark.tz
def test_default_as_of_is_the_newest_observation(spark: Any, cfg: LakecastConfig) -> None:
    obs = _obs(spark, [END - timedelta(hours=2), END])
    assert default_as_of(obs, cfg) == END
    # now = 21:30 UTC, given in two ways: the complete hour before it (20:30) is older than the data
    assert default_as_of(obs, cfg, now=datetime(2024, 12, 31, 21, 30)) == datetime(2024, 12, 31, 20, 30)
    aware = datetime(2025, 1, 1, 3, 0, tzinfo=UTC).astimezone()  # the same instant in the host's zone
    assert default_as_of(obs, cfg, now=aware - timedelta(hours=5, minutes=30)) == datetime(2024, 12, 31, 20, 30)
    # period-end steps: on a month's last day that month is still running (the origin is the month before)
    me = make_config(cfg.home, "data.freq=ME")
    monthly = _obs(spark, [datetime(2023, 12, 31), datetime(2024, 1, 31)])  # a month-to-date row for January
    grid = GridSpec.from_config(me)

    def origin(now: datetime) -> datetime:  # the grid step at or before the default as-of
        t_us = to_utc_micros(default_as_of(monthly, me, now=now))
        anchor = anchor_of(grid, np.array([t_us]))
        return from_utc_micros(int(step_micros(grid, anchor, np.array([step_at_or_before(grid, anchor, t_us)]))[0]))

    assert origin(datetime(2024, 1, 31, 10)) == datetime(2023, 12, 31)  # was January, still running
    assert origin(datetime(2024, 1, 30, 10)) == datetime(2023, 12, 31)
    assert origin(datetime(2024, 2, 1)) == datetime(2024, 1, 31)


@pytest.mark.tz
def test_backfill_resumes_from_the_scored_origins(spark: Any, fresh_db: Any) -> None:
    cfg = fresh_db()
    scored = [END - timedelta(hours=6), END - timedelta(hours=3)]
    rows = ", ".join(f"('a', TIMESTAMP'{t}', TIMESTAMP'{t + timedelta(hours=1)}', 1, 1.0, 2.0, 3.0, 'm', '1', "
                     "NULL, 0, 'r', NULL, 'champion', NULL)" for t in scored)  # SQL literals: read in the session's UTC
    spark.sql(f"INSERT INTO {cfg.table('forecasts')} VALUES {rows}")
    times = [END - timedelta(hours=h) for h in (9, 6, 3, 0)]
    assert already_scored(spark, cfg, "m", "1", times) == set(scored)
    assert already_scored(spark, cfg, "m", "2", times) == set()


# --- the whole demo in other zones ----------------------------------------------------------


@pytest.mark.timeout(1200)
def test_demo_forecasts_are_identical_in_any_zone(spark: Any, zone_demos: dict[str, DemoRun]) -> None:
    """`lakecast demo` under UTC (PostgreSQL catalog when available) and under New York (Derby)."""
    forecasts, accuracy = {}, {}
    for tz, run in zone_demos.items():
        assert run.returncode == 0, f"lakecast demo under TZ={tz} failed:\n{run.output[-3000:]}"
        forecasts[tz] = [tuple(r) for r in run.table(spark, "forecasts").selectExpr(
            "series_id", "unix_micros(forecast_origin)", "unix_micros(target_ts)", "horizon_step",
            "p10", "p50", "p90").orderBy("series_id", "forecast_origin", "horizon_step").collect()]
        accuracy[tz] = [tuple(r) for r in run.table(spark, "forecast_accuracy").selectExpr(
            "series_id", "unix_micros(forecast_origin)", "unix_micros(target_ts)", "actual", "p50",
            "scaled_abs_error", "snaive_forecast").orderBy("series_id", "target_ts").collect()]
        started = [r[0] / 1e6 for r in latest_runs(run.table(spark, "job_run_events"))
                   .selectExpr("unix_micros(started_at)").collect()]  # one per run
        assert len(started) >= 4, tz  # ingest, train, promote, predict
        assert all(run.began - 60 <= s <= run.ended + 60 for s in started), (tz, run.began, started, run.ended)
    # scored from the last hour before the held-back day, then (after it arrived) from the last hour
    assert {r[1] for r in forecasts["UTC"]} == {to_utc_micros(END - timedelta(hours=24)), to_utc_micros(END)}
    assert len(forecasts["UTC"]) == 2 * 3 * 12
    # the first forecasts held to account against the day that arrived: every target has its actual
    first_origin = to_utc_micros(END - timedelta(hours=24))
    assert len(accuracy["UTC"]) == 3 * 12 and {r[1] for r in accuracy["UTC"]} == {first_origin}
    for tz in ZONES[1:]:
        assert forecasts[tz] == forecasts["UTC"], f"TZ={tz} forecasts differ from TZ=UTC"
        assert accuracy[tz] == accuracy["UTC"], f"TZ={tz} accuracy differs from TZ=UTC"
        assert (zone_demos[tz].home / "report.html").stat().st_size > 1000
