"""`lakecast evaluate`: forecasts joined with the actuals as they arrive, incrementally, into forecast_accuracy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conf import LakecastConfig
from models.evaluate import mase_scale
from pipelines.flows import evaluate, ingest
from pipelines.scoring.kernel import seasonal_mae
from pipelines.sinks.forecasts import merge_forecasts
from pipelines.tables.ensure import delta_version
from tests.conftest import collect_utc

ORIGIN = datetime(2024, 3, 1, 23)  # the last hour of the history
SERIES = ("a", "b")
NOW = datetime(2024, 3, 2, tzinfo=UTC)


def _ingest(spark: Any, cfg: LakecastConfig, folder: Path, name: str, rows: list[tuple[str, datetime, float]]) -> None:
    path = folder / f"{name}.csv"
    path.write_text("series_id,ts,value\n" + "".join(f"{s},{t:%Y-%m-%dT%H:%M:%S}Z,{v}\n" for s, t, v in rows))
    ingest.run(spark, cfg, str(path), now=NOW)


def _forecasts(spark: Any, cfg: LakecastConfig, origin: datetime, version: str, role: str, bump: float,
               model: str = "m") -> None:
    """Six hourly steps per series from `origin`; series b has no MASE scale (a flat window)."""
    rows = []
    for i, sid in enumerate(SERIES):
        for h in range(1, 7):
            p50 = 10.0 * (i + 1) + h + bump
            rows.append((sid, origin.replace(tzinfo=UTC), (origin + timedelta(hours=h)).replace(tzinfo=UTC), h,
                         p50 - 2.0, p50, p50 + 2.0, model, version, "run", 0, f"predict-{version}",
                         NOW, role, 4.0 if sid == "a" else None))
    df = spark.createDataFrame(rows, spark.table(cfg.table("forecasts")).schema)
    merge_forecasts(spark, cfg, df, run_id=f"test-{version}-{origin:%H}")


def _reference(spark: Any, cfg: LakecastConfig) -> dict[tuple[Any, ...], tuple[float, ...]]:
    """The accuracy rows computed in numpy from the current forecasts and observations."""
    obs = {(r["series_id"], r["ts"]): r["value"] for r in collect_utc(spark.table(cfg.table("observations")))}
    out = {}
    for f in collect_utc(spark.table(cfg.table("forecasts"))):
        y = obs.get((f["series_id"], f["target_ts"]))
        if y is None:
            continue
        q = np.array([f["p10"], f["p50"], f["p90"]])
        d = y - q
        pin = np.maximum(np.array([0.1, 0.5, 0.9]) * d, (np.array([0.1, 0.5, 0.9]) - 1) * d)
        scaled = abs(y - f["p50"]) / f["mase_scale"] if f["mase_scale"] else None
        key = (f["series_id"], f["forecast_origin"], f["target_ts"], f["model_name"], f["model_version"])
        out[key] = (y, y - f["p50"], abs(y - f["p50"]), scaled, *pin.tolist(), f["p10"] <= y <= f["p90"],
                    f["model_role"])
    return out


def _accuracy(spark: Any, cfg: LakecastConfig) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {(r["series_id"], r["forecast_origin"], r["target_ts"], r["model_name"], r["model_version"]):
            (r["actual"], r["error"], r["abs_error"], r["scaled_abs_error"], r["pinball_p10"], r["pinball_p50"],
             r["pinball_p90"], r["inside_p10_p90"], r["model_role"])
            for r in collect_utc(spark.table(cfg.table("forecast_accuracy")))}


def _assert_equal(got: dict[Any, Any], want: dict[Any, Any]) -> None:
    assert got.keys() == want.keys()
    for k, w in want.items():  # the numbers to rounding; the flag and the role exactly
        num = [np.nan if v is None else v for v in w[:7]]  # NULL scaled error: no scale
        assert [np.nan if v is None else v for v in got[k][:7]] == pytest.approx(num, rel=1e-12, abs=1e-12,
                                                                                  nan_ok=True), k
        assert got[k][7:] == w[7:], k


def test_accuracy_follows_the_actuals_as_they_arrive(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                                     tmp_path: Path) -> None:
    cfg = fresh_db()
    history = [(s, ORIGIN - timedelta(hours=k), 5.0 + k % 3) for s in SERIES for k in range(24)]
    _ingest(spark, cfg, tmp_path, "history", history)
    _forecasts(spark, cfg, ORIGIN, "1", "champion", 0.0)
    _forecasts(spark, cfg, ORIGIN, "2", "challenger", 0.5, model="m2")  # the same targets, another model

    first = evaluate.run(spark, cfg)  # no actual for any target yet
    assert first.mode == evaluate.FULL and first.counts["evaluated"] == 0 and first.accuracy_version is None

    day = [(s, ORIGIN + timedelta(hours=h), 12.0 * (i + 1) + h) for i, s in enumerate(SERIES) for h in (1, 2, 3)]
    _ingest(spark, cfg, tmp_path, "arrived", day)
    second = evaluate.run(spark, cfg)
    assert second.mode == evaluate.INCREMENTAL
    assert second.counts["actuals_changed"] == 6 and second.counts["evaluated"] == 12  # 6 actuals x 2 models
    _assert_equal(_accuracy(spark, cfg), _reference(spark, cfg))
    mase = {v["model"]: v["mase"] for v in second.by_version}
    assert set(mase) == {"m/1", "m2/2"} and all(m is not None and m > 0 for m in mase.values())

    table = cfg.table("forecast_accuracy")
    version = delta_version(spark, table)
    again = evaluate.run(spark, cfg)  # nothing new: nothing written
    assert again.counts["evaluated"] == 0 and delta_version(spark, table) == version

    _ingest(spark, cfg, tmp_path, "corrected", [("a", ORIGIN + timedelta(hours=2), 99.0)])
    corrected = evaluate.run(spark, cfg)
    assert (corrected.counts["evaluated"], corrected.counts["updated"], corrected.counts["inserted"]) == (2, 2, 0)
    _assert_equal(_accuracy(spark, cfg), _reference(spark, cfg))
    updated = spark.table(table).where(f"job_run_id = '{corrected.run_id}'").collect()
    assert {(r["series_id"], r["actual"]) for r in updated} == {("a", 99.0)}

    later = ORIGIN + timedelta(hours=1)  # scored after its actuals arrived: the forecasts' changes reach them
    _forecasts(spark, cfg, later, "1", "champion", 1.0)
    backfilled = evaluate.run(spark, cfg)
    assert backfilled.counts["forecasts_changed"] == 12 and backfilled.counts["inserted"] == 4  # h=2,3 x 2 series
    _assert_equal(_accuracy(spark, cfg), _reference(spark, cfg))

    run = spark.table(cfg.table("job_runs")).where(f"run_id = '{backfilled.run_id}'").head()
    assert run["status"] == "succeeded" and run["versions_written"]["forecast_accuracy"] == backfilled.accuracy_version
    assert run["versions_read"]["forecasts"] == delta_version(spark, cfg.table("forecasts"))

    as_of = evaluate.run(spark, cfg, as_of=ORIGIN + timedelta(hours=1))  # reads everything, changes nothing
    assert as_of.mode == evaluate.AS_OF and as_of.counts["evaluated"] == 4  # the first hour: 2 series x 2 versions
    _assert_equal(_accuracy(spark, cfg), _reference(spark, cfg))
    assert evaluate.run(spark, cfg).mode == evaluate.INCREMENTAL  # and later runs still start from the last


def test_the_stored_scale_is_the_backtests_mase_denominator() -> None:
    rng = np.random.default_rng(7)
    history = rng.normal(10, 3, size=(5, 48))
    history[4] = 3.0  # a flat window: no scale
    loc, scale = history.mean(axis=1), history.std(axis=1) + 0.5
    X = ((history - loc[:, None]) / scale[:, None])[:, :, None].astype(np.float32)
    want = mase_scale(history, season=24)
    got = seasonal_mae(X, scale, "h")
    assert np.isnan(got[4]) and np.isnan(want[4])
    np.testing.assert_allclose(got[:4], want[:4], rtol=1e-5)
    short = seasonal_mae(X[:, :12], scale, "h")  # lookback shorter than a day: lag 1, as the backtest
    np.testing.assert_allclose(short[:4], mase_scale(history[:, :12], season=24)[:4], rtol=1e-5)
