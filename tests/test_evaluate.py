"""`lakecast evaluate`: forecasts joined with the actuals as they arrive, incrementally, into forecast_accuracy."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from click.testing import CliRunner

from conf import LakecastConfig
from conf.schema import MonitorConfig
from models import registry
from models.evaluate import mase_scale
from models.live_metrics import day_step
from models.promote import rule
from models.registry import client, use_tracking
from pipelines.accuracy.alerts import LiveStats, breaches
from pipelines.flows import evaluate, ingest, promote
from pipelines.scoring.kernel import seasonal_mae
from pipelines.sinks.forecasts import merge_forecasts
from pipelines.tables.ensure import delta_version
from tests.conftest import TEST_OVERRIDES, collect_utc
from tests.demo_runs import DemoRun

ORIGIN = datetime(2024, 3, 1, 23)  # the last hour of the history
SERIES = ("a", "b")
NOW = datetime(2024, 3, 2, tzinfo=UTC)
MONITOR = ("monitor.min_targets=4", "monitor.coverage_tolerance=0.25")
BACKTEST_MASE = 10.0  # the champion's, as training logged it: above its live 8.775 until the shift


def _register(cfg: LakecastConfig, name: str) -> str:
    """Version 1 of `name` in the registry, from a run that logged a backtest MASE; the run id."""
    import mlflow

    use_tracking(cfg)
    with mlflow.start_run() as run:
        mlflow.log_metric("test_lstm_mase", BACKTEST_MASE)
    c = client(cfg)
    c.create_registered_model(name)
    c.create_model_version(name, source=run.info.artifact_uri, run_id=run.info.run_id)
    return str(run.info.run_id)


def _challenger(cfg: LakecastConfig, name: str) -> None:
    """Version 2 of `name` as challenger (version 1 stays champion)."""
    import mlflow

    use_tracking(cfg)
    with mlflow.start_run() as run:
        mlflow.log_metric("test_lstm_mase", BACKTEST_MASE)
    client(cfg).create_model_version(name, source=run.info.artifact_uri, run_id=run.info.run_id)
    registry.set_alias(cfg, "champion", "1", name)
    registry.set_alias(cfg, "challenger", "2", name)


def _sets(cfg: LakecastConfig, *extra: str) -> list[str]:
    """--set options that point the CLI at this test's home and database."""
    db = cfg.catalog.database  # also the model's registered name
    return [x for o in (f"home={cfg.home}", f"catalog.database={db}", f"model.name={db}", *TEST_OVERRIDES, *MONITOR,
                        *extra) for x in ("--set", o)]


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
    return _reference_of(spark.table(cfg.table("observations")), spark.table(cfg.table("forecasts")))


def _reference_of(observations: Any, forecasts: Any) -> dict[tuple[Any, ...], tuple[float, ...]]:
    """The accuracy rows of hourly `forecasts` against `observations` (DataFrames), in numpy."""
    obs = {(r["series_id"], r["ts"]): r["value"] for r in collect_utc(observations)}
    out = {}
    for f in collect_utc(forecasts):
        y = obs.get((f["series_id"], f["target_ts"]))
        if y is None:
            continue
        q = np.array([f["p10"], f["p50"], f["p90"]])
        d = y - q
        pin = np.maximum(np.array([0.1, 0.5, 0.9]) * d, (np.array([0.1, 0.5, 0.9]) - 1) * d)
        scaled = abs(y - f["p50"]) / f["mase_scale"] if f["mase_scale"] else None
        snaive = obs.get((f["series_id"], f["target_ts"] - timedelta(hours=24)))  # one season (a day) before
        snaive_scaled = abs(y - snaive) / f["mase_scale"] if f["mase_scale"] and snaive is not None else None
        key = (f["series_id"], f["forecast_origin"], f["target_ts"], f["model_name"], f["model_version"])
        out[key] = (y, y - f["p50"], abs(y - f["p50"]), scaled, snaive, snaive_scaled, *pin.tolist(),
                    f["p10"] <= y <= f["p90"], f["model_role"])
    return out


def _accuracy(spark: Any, cfg: LakecastConfig) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return _accuracy_of(spark.table(cfg.table("forecast_accuracy")))


def _accuracy_of(accuracy: Any) -> dict[tuple[Any, ...], tuple[Any, ...]]:
    return {(r["series_id"], r["forecast_origin"], r["target_ts"], r["model_name"], r["model_version"]):
            (r["actual"], r["error"], r["abs_error"], r["scaled_abs_error"], r["snaive_forecast"],
             r["snaive_scaled_abs_error"], r["pinball_p10"], r["pinball_p50"], r["pinball_p90"], r["inside_p10_p90"],
             r["model_role"])
            for r in collect_utc(accuracy)}


def _assert_equal(got: dict[Any, Any], want: dict[Any, Any]) -> None:
    assert got.keys() == want.keys()
    for k, w in want.items():  # the numbers to rounding; the flag and the role exactly
        num = [np.nan if v is None else v for v in w[:9]]  # NULL scaled errors: no scale
        assert [np.nan if v is None else v for v in got[k][:9]] == pytest.approx(num, rel=1e-12, abs=1e-12,
                                                                                  nan_ok=True), k
        assert got[k][9:] == w[9:], k


def test_accuracy_follows_the_actuals_as_they_arrive(spark: Any, fresh_db: Callable[..., LakecastConfig],
                                                     tmp_path: Path) -> None:
    cfg = fresh_db(*MONITOR)
    m = cfg.catalog.database  # the champion's registered name: unique to this database
    run_id = _register(cfg, m)
    history = [(s, ORIGIN - timedelta(hours=k), 5.0 + k % 3) for s in SERIES for k in range(24)]
    _ingest(spark, cfg, tmp_path, "history", history)
    _forecasts(spark, cfg, ORIGIN, "1", "champion", 0.0, model=m)
    # the challenger in shadow: the same model name and targets, another version, beside the champion
    _forecasts(spark, cfg, ORIGIN, "2", "challenger", 0.5, model=m)
    assert spark.table(cfg.table("forecasts")).count() == 24
    latest = spark.table(cfg.table("forecasts_latest")).collect()  # analysts see the champion's only
    assert len(latest) == 12 and {(r["model_version"], r["model_role"]) for r in latest} == {("1", "champion")}

    first = evaluate.run(spark, cfg)  # no actual for any target yet
    assert first.mode == evaluate.FULL and first.counts["evaluated"] == 0 and first.accuracy_version is None

    day = [(s, ORIGIN + timedelta(hours=h), 10.0 * (i + 1) + h + 0.5) for i, s in enumerate(SERIES) for h in (1, 2, 3)]
    _ingest(spark, cfg, tmp_path, "arrived", day)
    second = evaluate.run(spark, cfg)
    assert second.mode == evaluate.INCREMENTAL
    assert second.counts["actuals_changed"] == 6 and second.counts["evaluated"] == 12  # 6 actuals x 2 models
    _assert_equal(_accuracy(spark, cfg), _reference(spark, cfg))
    mase = {v["model"]: v["mase"] for v in second.by_version}
    assert set(mase) == {f"{m}/1", f"{m}/2"} and mase[f"{m}/1"] > 0 and mase[f"{m}/2"] == 0  # v2 hit every actual
    assert all(v["snaive_mase"] is not None and v["snaive_mase"] > 0 for v in second.by_version)
    assert spark.table(cfg.table("forecast_accuracy")).where("snaive_forecast IS NULL").count() == 0

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
    _forecasts(spark, cfg, later, "1", "champion", 1.0, model=m)
    backfilled = evaluate.run(spark, cfg)
    assert backfilled.counts["forecasts_changed"] == 12 and backfilled.counts["inserted"] == 4  # h=2,3 x 2 series
    _assert_equal(_accuracy(spark, cfg), _reference(spark, cfg))

    by_version = {(str(r["origin_day"]), r["horizon_step"]): r for r in spark.table(cfg.table("accuracy_by_version"))
                  .where(f"model_name = '{m}' AND model_version = '1'").collect()}
    # ORIGIN's day (steps 1-3), the later origin's (1-2)
    assert {k: r["n"] for k, r in by_version.items()} == {("2024-03-01", 1): 2, ("2024-03-01", 2): 2,
                                                          ("2024-03-01", 3): 2, ("2024-03-02", 1): 2,
                                                          ("2024-03-02", 2): 2}
    assert by_version[("2024-03-01", 2)]["coverage_p10_p90"] == 0.5  # a's 99 is outside the band
    worst = spark.sql(f"SELECT * FROM {cfg.table('accuracy_by_series')} WHERE model_name = '{m}' "
                      "AND model_version = '1' "
                      "ORDER BY mase DESC NULLS LAST").collect()
    assert [(r["series_id"], r["origins"], r["n"]) for r in worst] == [("a", 2, 5), ("b", 2, 5)]
    a_scaled = [v[3] for k, v in _reference(spark, cfg).items() if k[0] == "a" and k[3:] == (m, "1")]
    assert worst[0]["mase"] == pytest.approx(sum(a_scaled) / 5) and worst[1]["mase"] is None  # b has no scale

    run = spark.table(cfg.table("job_runs")).where(f"run_id = '{backfilled.run_id}'").head()
    assert run["status"] == "succeeded" and run["versions_written"]["forecast_accuracy"] == backfilled.accuracy_version
    assert run["versions_read"]["forecasts"] == delta_version(spark, cfg.table("forecasts"))

    assert backfilled.live is not None and backfilled.live.model_version == "1" and backfilled.live.origins == 2
    assert backfilled.alerts == [] and backfilled.live.coverage == pytest.approx(0.8)  # 8 of 10 inside
    assert backfilled.backtest_mase == BACKTEST_MASE and backfilled.live.mase == pytest.approx(sum(a_scaled) / 5)
    history_ = client(cfg).get_metric_history(run_id, "live_mase")  # each run's new rows, in the training run
    assert backfilled.mlflow_runs == [run_id] and {h.step for h in history_} == {day_step(datetime.now(UTC).date())}
    assert history_[0].value == pytest.approx(mase[f"{m}/1"])

    as_of = evaluate.run(spark, cfg, as_of=ORIGIN + timedelta(hours=1))  # reads everything, changes nothing
    assert as_of.mode == evaluate.AS_OF and as_of.counts["evaluated"] == 4  # the first hour: 2 series x 2 versions
    _assert_equal(_accuracy(spark, cfg), _reference(spark, cfg))
    assert evaluate.run(spark, cfg).mode == evaluate.INCREMENTAL  # and later runs still start from the last

    # promote --by live: the rule on the targets both versions were evaluated on, as numpy says
    _challenger(cfg, m)
    ref = _reference(spark, cfg)
    shared = [(ref[k][3], ref[(*k[:4], "1")][3], ref[(*k[:4], "1")][5]) for k in ref
              if k[3:] == (m, "2") and ref[k][3] is not None and (*k[:4], "1") in ref]
    want_ch, want_cm, want_sn = np.mean(shared, axis=0)
    want_ok, want_why = rule(want_ch, want_cm, want_sn, 0.01)
    assert len(shared) == 3 and want_ok  # series a at ORIGIN, steps 1-3 (b has no scale)
    from jobs.cli import main

    refused = CliRunner().invoke(main, ["promote", "--by", "live", *_sets(cfg, "promote.min_live_targets=4")])
    assert refused.exit_code == 1 and "share 3 evaluated target(s) in forecast_accuracy, fewer than " \
        "promote.min_live_targets=4" in refused.output, refused.output
    assert registry.aliases(cfg, m)["champion"] == "1"
    live_cfg = cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": m}), "promote":
                                      cfg.promote.model_copy(update={"min_live_targets": 3, "mase_margin": 0.01})})
    out = promote.run(spark, live_cfg, by=promote.LIVE)
    assert out.live is not None and out.live.n == 3
    assert (out.live.challenger_mase, out.live.champion_mase, out.live.seasonal_naive_mase) == pytest.approx(
        (want_ch, want_cm, want_sn), rel=1e-12)
    assert out.decision.outcome == "promoted" and out.decision.reason == f"live on 3 shared targets: {want_why}"
    assert registry.aliases(cfg, m) == {"champion": "2", "challenger": "2"}
    assert client(cfg).get_model_version(m, "2").tags["promotion.basis"] == "live"

    # a level shift in the actuals: the champion's band no longer holds them
    shifted = [(s, ORIGIN + timedelta(hours=h), 1000.0 + h) for s in SERIES for h in (4, 5, 6)]
    _ingest(spark, cfg, tmp_path, "shifted", shifted)
    alerted = evaluate.run(spark, cfg)
    assert len(alerted.alerts) == 2, alerted.alerts
    mase_alert, coverage_alert = alerted.alerts
    assert mase_alert.startswith(f"champion {m}/1: live MASE ") and "above its backtest MASE 10.000" in mase_alert
    assert coverage_alert.startswith(f"champion {m}/1: p10-p90 coverage 0.364 over its last 2 origin(s), 22 targets")
    details = spark.table(cfg.table("job_runs")).where(f"run_id = '{alerted.run_id}'").head()["details"]
    assert "p10-p90 coverage 0.364" in details
    sets = _sets(cfg)
    res = CliRunner().invoke(main, ["evaluate", "--fail-on-alert", *sets])
    assert res.exit_code == 1, res.output
    assert f"Error: 2 accuracy alert(s): champion {m}/1: live MASE" in res.output and "coverage 0.364" in res.output
    assert CliRunner().invoke(main, ["evaluate", *sets]).exit_code == 0  # alerts print, the run succeeds

    page = tmp_path / "out" / "accuracy.html"  # `lakecast report`: the champion's worst series as fan charts
    res = CliRunner().invoke(main, ["report", str(page), "--worst", "2", *sets])
    assert res.exit_code == 0 and page.is_file(), res.output
    html = page.read_text()
    assert 'id="fan-0"' in html and 'id="fan-1"' in html and 'id="fan-2"' not in html
    assert "a: MASE " in html and "b: MASE -" in html  # worst first; b has no MASE scale
    assert f"({m}/1, origin 03-02 00:00)" in html  # the newest origin the champion was evaluated at
    assert "<script" not in html and "http" not in html.split("</style>")[1]  # nothing to run or fetch


def test_the_demos_accuracy_equals_the_reference(spark: Any, zone_demos: dict[str, DemoRun]) -> None:
    """A real train -> predict -> actuals arrive -> evaluate (`lakecast demo`): every row of
    forecast_accuracy equals numpy's from the demo's forecasts and observations."""
    run = zone_demos["UTC"]
    assert run.returncode == 0, run.output[-3000:]
    got = _accuracy_of(run.table(spark, "forecast_accuracy"))
    want = _reference_of(run.table(spark, "observations"), run.table(spark, "forecasts"))
    assert len(got) == 3 * 12  # the first origin's 12 steps of 3 series; the second has no actuals yet
    _assert_equal(got, want)


def test_breaches_name_the_rule_and_the_numbers() -> None:
    mon = MonitorConfig(mase_degradation=0.25, coverage_tolerance=0.1, min_targets=10)
    ok = LiveStats("m", "3", origins=7, n=100, mase=0.9, snaive_mase=1.0, coverage=0.78)
    assert breaches(ok, backtest_mase=0.8, monitor=mon) == []  # 0.9 <= 0.8 x 1.25
    worse = LiveStats("m", "3", origins=7, n=100, mase=1.2, snaive_mase=1.1, coverage=0.6)
    got = breaches(worse, backtest_mase=0.8, monitor=mon)
    assert got == [
        "champion m/3: live MASE 1.200 over its last 7 origin(s), 100 targets is above its backtest MASE 0.800 "
        "by more than monitor.mase_degradation=0.25",
        "champion m/3: live MASE 1.200 over its last 7 origin(s), 100 targets is worse than seasonal naive's "
        "1.100 on the same targets",
        "champion m/3: p10-p90 coverage 0.600 over its last 7 origin(s), 100 targets is outside 0.80 +- "
        "monitor.coverage_tolerance=0.1"]
    assert breaches(worse, backtest_mase=None, monitor=mon)[0].endswith("on the same targets")  # no backtest
    few = LiveStats("m", "3", origins=1, n=9, mase=5.0, snaive_mase=1.0, coverage=0.0)
    assert breaches(few, backtest_mase=0.8, monitor=mon) == []  # too few targets to judge


def test_the_stored_scale_is_the_backtests_mase_denominator() -> None:
    rng = np.random.default_rng(7)
    history = rng.normal(10, 3, size=(5, 48))
    history[4] = 3.0  # a flat window: no scale
    loc, scale = history.mean(axis=1), history.std(axis=1) + 0.5
    scaled = (history - loc[:, None]) / scale[:, None]
    X = np.stack([scaled, np.zeros_like(scaled)], axis=2).astype(np.float32)  # value, missing
    want = mase_scale(history, season=24)
    got = seasonal_mae(X, scale, "h")
    assert np.isnan(got[4]) and np.isnan(want[4])
    np.testing.assert_allclose(got[:4], want[:4], rtol=1e-5)
    short = seasonal_mae(X[:, :12], scale, "h")  # lookback shorter than a day: lag 1, as the backtest
    np.testing.assert_allclose(short[:4], mase_scale(history[:, :12], season=24)[:4], rtol=1e-5)
    # a short series' window: 30 steps of padding (missing, value 0) before 18 of data, which is
    # shorter than a season: lag 1 over the data only, as the backtest with the same padding
    X[0, :30] = (0.0, 1.0)
    padded = seasonal_mae(X, scale, "h")
    data = history[0, 30:]
    assert padded[0] == pytest.approx(np.abs(np.diff(data)).mean(), rel=1e-5)
    assert mase_scale(history, 24, np.array([30, 0, 0, 0, 0]))[0] == pytest.approx(padded[0], rel=1e-5)
    np.testing.assert_allclose(padded[1:4], want[1:4], rtol=1e-5)


def test_a_backtest_scores_the_forecasts_raised_to_the_models_floor() -> None:
    """What scoring writes is what the backtest scores: quantiles below the floor count at it."""
    from models.arrays import WindowArrays
    from models.evaluate import MODEL, backtest

    rng = np.random.default_rng(3)
    n, lookback, h = 6, 24, 4
    X = np.stack([rng.normal(0, 1, (n, lookback)), np.zeros((n, lookback))], axis=2).astype(np.float32)
    y = np.abs(rng.normal(0, 1, (n, h))).astype(np.float32)        # actuals >= 0 (loc 0, scale 1)
    q = np.stack([y - 2.0, y - 1.0, y + 0.5], axis=-1).astype(np.float32)   # p10 and p50 often below 0
    w = WindowArrays(X, y, np.zeros(n), np.ones(n))
    raw = backtest(w, q, season=12).overall[MODEL]
    floored = backtest(w, q, season=12, floor=0.0).overall[MODEL]
    want_mae = float(np.abs(y - np.maximum(q[..., 1], 0.0)).mean())
    assert floored["mae"] == pytest.approx(want_mae, rel=1e-6) and floored["mae"] < raw["mae"]
    assert floored["pinball"] < raw["pinball"]


def test_season_ago_keeps_month_ends(spark: Any) -> None:
    from pipelines.accuracy.rows import season_ago

    df = spark.createDataFrame(
        [(datetime(2025, 2, 28, tzinfo=UTC), 1), (datetime(2024, 2, 29, tzinfo=UTC), 13),
         (datetime(2024, 4, 30, tzinfo=UTC), 2)], "target_ts timestamp, horizon_step int")
    got = [r.ref for r in collect_utc(df.select(season_ago("ME").alias("ref")))]
    # a year back, two years for step 13 (past one season), and month ends stay month ends
    assert got == [datetime(2024, 2, 29), datetime(2022, 2, 28), datetime(2023, 4, 30)]
    starts = spark.createDataFrame([(datetime(2024, 3, 1, tzinfo=UTC), 1)], "target_ts timestamp, horizon_step int")
    assert [r.ref for r in collect_utc(starts.select(season_ago("MS").alias("ref")))] == [datetime(2023, 3, 1)]
