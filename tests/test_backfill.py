"""`lakecast backfill`: one pinned model over a range of as-of times, skipping what is done."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import pytest
from click.testing import CliRunner

from conf import LakecastConfig
from conf.freq import parse_freq
from jobs.cli import main
from pipelines.flows import backfill
from pipelines.flows.backfill import BackfillError, as_of_times, parse_every
from pipelines.tables.ensure import delta_version, ensure_tables
from tests.conftest import collect_utc, make_config
from tests.scoring_helpers import T0, register_model, series_rows, tiny_model, write_observations

SMALL = ("windows.lookback=24", "windows.horizon=6", "scoring.max_staleness=5", "scoring.precision=fp32")


def test_as_of_times_fixed_and_calendar_steps() -> None:
    t = datetime(2024, 1, 1)
    days = [t + timedelta(days=i) for i in range(3)]
    assert as_of_times(t, t + timedelta(days=2), parse_every("1d")) == days
    assert as_of_times(t, t + timedelta(hours=13), parse_every("6h")) == [t, t + timedelta(hours=6),
                                                                          t + timedelta(hours=12)]
    jan31 = datetime(2024, 1, 31)
    assert as_of_times(jan31, datetime(2024, 4, 30), parse_every("MS")) == [
        jan31, datetime(2024, 2, 29), datetime(2024, 3, 31), datetime(2024, 4, 30)]  # the day is kept
    assert as_of_times(t, t, parse_every("1W")) == [t]


def test_bad_range_and_step_are_refused() -> None:
    t = datetime(2024, 1, 2)
    with pytest.raises(BackfillError, match=r"--end 2024-01-01T00:00:00 is before --start 2024-01-02"):
        as_of_times(t, t - timedelta(days=1), parse_freq("D"))
    with pytest.raises(BackfillError, match=r"--every '3x'.*not a supported frequency"):
        parse_every("3x")


def test_cli_rejects_a_bad_step_before_spark_starts() -> None:
    args = ["backfill", "--start", "2024-01-01", "--end", "2024-01-02", "--every", "1y"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code != 0 and "--every '1y'" in res.output


@pytest.fixture(scope="module")
def scored_db(spark: Any, lakecast_home: Any) -> LakecastConfig:
    """A database with 3 series of 48 hourly points and a registered tiny champion."""
    tag = uuid.uuid4().hex[:8]
    cfg = make_config(lakecast_home, f"catalog.database=t_{tag}", f"model.name=m_{tag}", *SMALL)
    ensure_tables(spark, cfg)
    write_observations(spark, cfg, series_rows(3, 48))
    register_model(cfg, *tiny_model(cfg, seed=3))
    return cfg


def _origins(spark: Any, cfg: LakecastConfig) -> dict[datetime, int]:
    rows = collect_utc(spark.table(cfg.table("forecasts")).groupBy("forecast_origin").count())
    return {r["forecast_origin"]: r["count"] for r in rows}


def test_backfill_scores_each_time_once_and_resumes(spark: Any, scored_db: LakecastConfig) -> None:
    cfg = scored_db
    start = T0 + timedelta(hours=30)
    first = backfill.run(spark, cfg, start=start, end=start + timedelta(hours=3), every="3h")
    assert first.scored == [start, start + timedelta(hours=3)] and first.skipped == []
    assert _origins(spark, cfg) == {start: 18, start + timedelta(hours=3): 18}  # 3 series x horizon 6

    # An interrupted run leaves its finished times committed; the longer re-run does the rest.
    version = delta_version(spark, cfg.table("forecasts"))
    resumed = backfill.run(spark, cfg, start=start, end=start + timedelta(hours=6), every="3h")
    assert resumed.skipped == [start, start + timedelta(hours=3)]
    assert resumed.scored == [start + timedelta(hours=6)]
    assert delta_version(spark, cfg.table("forecasts")) == version + 1  # only the new time was written

    runs = spark.table(cfg.table("job_runs")).where(f"parameters LIKE '%{resumed.job_run_id}%'").collect()
    assert [(r["job"], r["status"]) for r in runs] == [("predict", "succeeded")]  # one per scored time
    parent = spark.table(cfg.table("job_runs")).where(f"run_id = '{resumed.job_run_id}'").head()
    assert parent["status"] == "succeeded" and parent["row_counts"] == {
        "as_of_times": 3, "scored": 1, "skipped": 2, "forecast_rows": 18}


def test_backfill_force_rescores_without_duplicates(spark: Any, scored_db: LakecastConfig) -> None:
    cfg = scored_db
    t = T0 + timedelta(hours=40)
    backfill.run(spark, cfg, start=t, end=t, every="1h")
    again = backfill.run(spark, cfg, start=t, end=t, every="1h")
    assert again.scored == [] and again.skipped == [t]
    forced = backfill.run(spark, cfg, start=t, end=t, every="1h", force=True)
    assert forced.scored == [t]
    rows = spark.table(cfg.table("forecasts")).where(f"forecast_origin = '{t}'")
    assert rows.count() == 18
    assert rows.select("job_run_id").distinct().count() == 1  # replaced by the forced run, not added
