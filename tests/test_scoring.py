"""Batch scoring: forecasts equal the model's own outputs, idempotent MERGE, pinned version, lineage."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pytest
from click.testing import CliRunner

from conf import LakecastConfig
from models import registry
from models.lakecast_forecaster.predictor import ModelMismatchError, load_predictor
from pipelines.flows import predict
from pipelines.scoring.fused import series_runs
from pipelines.scoring.kernel import NON_FINITE, forecast_batch, target_times
from pipelines.scoring.plan import ScoringError, ScoringPlan, plan_for
from pipelines.scoring.spark import score_observations, score_windows
from pipelines.sinks.job_runs import record_run
from pipelines.tables.ensure import ensure_tables
from tests.conftest import collect_utc, make_config
from tests.scoring_helpers import (
    T0,
    own_forecasts,
    register_model,
    series_rows,
    tiny_model,
    write_observations,
)

# The models here are the network alone: below the lookback, model.statistical_lookback gives no
# context (`auto` would add the hourly members' four weeks; scoring with a context: test_statistical_blend).
SMALL = ("windows.lookback=24", "windows.horizon=6", "scoring.max_staleness=5", "scoring.precision=fp32",
         "model.statistical_lookback=1")
END = T0 + timedelta(hours=39)  # the newest observation: the default as-of


def _with_model(cfg: LakecastConfig) -> LakecastConfig:
    """The same database (and observations) under a model name of its own."""
    return make_config(cfg.home, f"catalog.database={cfg.catalog.database}",
                       f"model.name=m_{uuid.uuid4().hex[:8]}", *SMALL)


def _observations() -> list[tuple[str, datetime, float]]:
    rows = series_rows(4, 40)                                            # s0..s3: scorable
    rows += series_rows(1, 31, prefix="stale")                          # ends 9 steps before END
    rows += series_rows(1, 4, start=END - timedelta(hours=3), prefix="short")  # 4 < min_history (horizon 6)
    return rows


def _forecasts(spark: Any, cfg: LakecastConfig) -> list[Any]:
    """This model's forecasts (tests share one database, each with its own model name)."""
    return collect_utc(spark.table(cfg.table("forecasts")).where(f"model_name = '{cfg.model.name}'")
                       .orderBy("series_id", "target_ts"))


@pytest.fixture(scope="module")
def db(spark: Any, lakecast_home: Any) -> tuple[LakecastConfig, int]:
    """One database for this module, with the observations; returns it and their Delta version."""
    cfg = make_config(lakecast_home, f"catalog.database=t_{uuid.uuid4().hex[:10]}", *SMALL)
    ensure_tables(spark, cfg)
    return cfg, write_observations(spark, cfg, _observations())


@pytest.fixture(scope="module")
def scored(spark: Any, db: tuple[LakecastConfig, int]) -> Iterator[dict[str, Any]]:
    """A registered tiny model, scored once with `lakecast predict`'s defaults."""
    cfg, obs_version = _with_model(db[0]), db[1]
    ref = register_model(cfg, *tiny_model(cfg, seed=1))
    result = predict.run(spark, cfg)
    predictor = load_predictor(registry.download_version(cfg, ref))
    yield {"cfg": cfg, "ref": ref, "result": result, "obs_version": obs_version, "predictor": predictor}


# --- pure: one Arrow batch ------------------------------------------------------------------


def _plan(**kw: Any) -> ScoringPlan:
    base = {"model_key": "m/1", "lookback": 3, "n_features": 2, "horizon": 2, "freq": "h"}
    return ScoringPlan(**{**base, **kw})


def _batch(inputs: list[list[float] | None], skip: list[str | None], loc: float = 10.0,
           scale: float = 2.0) -> pa.RecordBatch:
    n = len(inputs)
    ts = pa.array([datetime(2024, 1, 1, 5)] * n, pa.timestamp("us", tz="UTC"))
    return pa.RecordBatch.from_pydict({
        "series_id": [f"s{i}" for i in range(n)], "forecast_origin": ts,
        "inputs": pa.array(inputs, pa.list_(pa.float32())),
        "scale_loc": [loc] * n, "scale_scale": [scale] * n, "skip_reason": pa.array(skip, pa.string()),
    })


def test_forecast_batch_unscales_orders_quantiles_and_passes_skips() -> None:
    seen: list[np.ndarray] = []
    offsets: list[np.ndarray] = []

    # quantiles deliberately crossed: high < median < low
    def crossing(X: np.ndarray, offset: np.ndarray) -> np.ndarray:
        seen.append(X)
        offsets.append(offset)
        base = X[:, -1, 0][:, None, None]
        return np.broadcast_to(base + np.array([1.0, 0.0, -1.0]), (len(X), 2, 3)).astype(np.float32)

    batch = _batch([[0, 0, 1, 0, 2, 0], None, [3, 0, 4, 0, 5, 0]], [None, "too_short", None])
    out = pa.Table.from_batches(list(forecast_batch(batch, crossing, _plan()))).to_pylist()
    skipped = [r for r in out if r["skip_reason"]]
    assert [(r["series_id"], r["skip_reason"], r["p50"]) for r in skipped] == [("s1", "too_short", None)]
    rows = [r for r in out if not r["skip_reason"]]
    assert [(r["series_id"], r["horizon_step"]) for r in rows] == [("s0", 1), ("s0", 2), ("s2", 1), ("s2", 2)]
    # s2's last value is 5 (scaled): median 5 * 2 + 10 = 20, the others 18 and 22, put in order
    s2 = [(r["p10"], r["p50"], r["p90"]) for r in rows if r["series_id"] == "s2"]
    assert s2 == [(18.0, 20.0, 22.0)] * 2
    assert rows[0]["target_ts"] - rows[0]["forecast_origin"] == timedelta(hours=1)
    assert seen[0].shape == (2, 3, 2) and seen[0][1, :, 0].tolist() == [3.0, 4.0, 5.0]
    # each usable window's offset, scale_loc / scale_scale: what the multiplicative members need
    assert offsets[0].tolist() == [5.0, 5.0]


def test_a_models_floor_raises_every_quantile_to_it_and_keeps_their_order() -> None:
    """A falling series whose forecast crosses zero: with the model's floor 0 no quantile is
    below it (the ones above are untouched); without a floor the same forecast is kept as is."""
    # scaled: p10 -7, p50 -5.5, p90 -4 -> -4, -1, 2 in units
    def falling(X: np.ndarray, offset: np.ndarray) -> np.ndarray:
        return np.broadcast_to(np.array([-7.0, -5.5, -4.0]), (len(X), 2, 3)).astype(np.float32)

    batch = _batch([[0.0] * 6, [0.0] * 6], [None, None])
    floored = pa.Table.from_batches(list(forecast_batch(batch, falling, _plan(floor=0.0)))).to_pylist()
    assert {(r["p10"], r["p50"], r["p90"]) for r in floored} == {(0.0, 0.0, 2.0)}
    raw = pa.Table.from_batches(list(forecast_batch(batch, falling, _plan()))).to_pylist()
    assert {(r["p10"], r["p50"], r["p90"]) for r in raw} == {(-4.0, -1.0, 2.0)}


def test_a_models_floor_reaches_the_written_forecasts(spark: Any, db: tuple[LakecastConfig, int]) -> None:
    """The same network registered with and without a floor, scored on the same observations:
    each forecast of the floored version is the other's raised to the floor (a floor in the
    middle of the forecasts, so that it binds for some and not for others)."""
    plain_cfg, floored_cfg = _with_model(db[0]), _with_model(db[0])
    module, meta = tiny_model(plain_cfg, seed=5)
    register_model(plain_cfg, module, meta)
    predict.run(spark, plain_cfg)
    raw = {(r.series_id, r.horizon_step): (r.p10, r.p50, r.p90) for r in _forecasts(spark, plain_cfg)}
    floor = float(np.median([q[1] for q in raw.values()]))
    assert any(q[1] < floor for q in raw.values()) and any(q[1] > floor for q in raw.values())
    register_model(floored_cfg, module, dataclasses.replace(meta, floor=floor))
    predict.run(spark, floored_cfg)
    got = {(r.series_id, r.horizon_step): (r.p10, r.p50, r.p90) for r in _forecasts(spark, floored_cfg)}
    assert got.keys() == raw.keys()
    for key, q in raw.items():
        assert got[key] == pytest.approx(tuple(max(v, floor) for v in q), rel=1e-9), key


def test_non_finite_forecasts_become_skipped_rows() -> None:
    def nan_for_first(X: np.ndarray, offset: np.ndarray) -> np.ndarray:
        out = np.zeros((len(X), 2, 3), np.float32)
        out[0, 1, 2] = np.nan
        return out

    out = pa.Table.from_batches(list(forecast_batch(_batch([[0.0] * 6, [1.0] * 6], [None, None]),
                                                    nan_for_first, _plan())))
    reasons = {(r["series_id"], r["skip_reason"]) for r in out.to_pylist()}
    assert reasons == {("s0", NON_FINITE), ("s1", None)}


def test_window_of_wrong_length_names_the_series() -> None:
    with pytest.raises(ScoringError, match=r"series 's1' has 4 input values.*lookback 3 x 2 features = 6"):
        list(forecast_batch(_batch([[0.0] * 6, [0.0] * 4], [None, None]), lambda X, offset: X, _plan()))


def test_series_runs_join_a_series_across_batches() -> None:
    def batch(ids: list[str], start: int) -> pa.RecordBatch:
        ts = pa.array([datetime(2024, 1, 1) + timedelta(hours=start + i) for i in range(len(ids))],
                      pa.timestamp("us", tz="UTC"))
        return pa.RecordBatch.from_pydict({"series_id": ids, "ts": ts,
                                           "value": pa.array([1.0, None, 3.0][: len(ids)], pa.float64())})

    runs = list(series_runs(iter([batch(["a", "a", "b"], 0), batch(["b", "b"], 3), batch(["b", "c"], 5)])))
    assert [(sid, len(ts)) for sid, ts, _ in runs] == [("a", 2), ("b", 4), ("c", 1)]
    b_ts, b_values = runs[1][1], runs[1][2]
    assert (np.diff(b_ts) == 3_600_000_000).all()          # one series, in order, across three batches
    np.testing.assert_array_equal(b_values, [3.0, 1.0, np.nan, 1.0])  # NULL -> NaN


def test_plan_takes_the_precisions_batch_size() -> None:
    from types import SimpleNamespace

    meta = SimpleNamespace(lookback=24, network_lookback=24, n_features=2, horizon=6, freq="h", floor=0.0)
    cfg = make_config(Path("/tmp/unused"), "scoring.arrow_batch_rows=600")
    fp32, bf16 = (plan_for(meta, cfg, model_key="m/1", precision=p) for p in ("fp32", "bf16"))
    assert (fp32.batch_size, bf16.batch_size) == (64, 256)
    assert fp32.gather_windows == 100  # 600 forecast rows per output batch / horizon 6
    assert fp32.floor == bf16.floor == 0.0  # the model's floor travels to the workers
    fixed = make_config(Path("/tmp/unused"), "scoring.batch_size=8")
    assert plan_for(meta, fixed, model_key="m/1", precision="bf16").batch_size == 8


def test_target_times_fixed_and_calendar() -> None:
    def us(*dt: datetime) -> np.ndarray:
        return np.array(dt, dtype="datetime64[us]").astype(np.int64)

    def back(a: np.ndarray) -> list[str]:
        return [str(x) for x in a.astype("datetime64[us]").astype("datetime64[m]")]

    def steps(origin: datetime, horizon: int, freq: str) -> list[str]:
        return back(target_times(us(origin), horizon, freq)[0])

    assert steps(datetime(2024, 1, 1, 23), 2, "h") == ["2024-01-02T00:00", "2024-01-02T01:00"]
    assert steps(datetime(2024, 1, 1), 2, "15min") == ["2024-01-01T00:15", "2024-01-01T00:30"]
    assert steps(datetime(2024, 1, 1), 3, "MS") == ["2024-02-01T00:00", "2024-03-01T00:00",
                                                   "2024-04-01T00:00"]
    assert steps(datetime(2023, 10, 1), 2, "QS") == ["2024-01-01T00:00", "2024-04-01T00:00"]
    assert steps(datetime(2024, 1, 1), 1, "2MS") == ["2024-03-01T00:00"]


# --- Spark: lakecast predict ------------------------------------------------------------


@pytest.mark.tz  # the default as-of is the newest observation, whatever the host's zone
def test_forecasts_equal_the_models_own_outputs(spark: Any, scored: dict[str, Any]) -> None:
    cfg, result = scored["cfg"], scored["result"]
    rows = _forecasts(spark, cfg)
    expected = own_forecasts(spark, cfg, scored["predictor"], result.as_of, scored["obs_version"])
    assert result.as_of == END
    assert len(rows) == len(expected) == 4 * 6
    for r in rows:
        np.testing.assert_allclose([r.p10, r.p50, r.p90], expected[(r.series_id, r.horizon_step)], rtol=1e-5)
        assert r.forecast_origin == END and r.target_ts == END + timedelta(hours=r.horizon_step)
        assert r.p10 <= r.p50 <= r.p90


@pytest.mark.tz
def test_lineage_and_job_run_are_recorded(spark: Any, scored: dict[str, Any]) -> None:
    cfg, ref, result = scored["cfg"], scored["ref"], scored["result"]
    lineage = {(r.model_name, r.model_version, r.model_run_id, r.source_version, r.job_run_id)
               for r in _forecasts(spark, cfg)}
    (run,) = spark.sql(f"SELECT * FROM {cfg.table('job_runs')} WHERE run_id = '{result.run_id}'").collect()
    assert lineage == {(cfg.model.name, ref.version, ref.run_id, scored["obs_version"], result.run_id)}
    assert all(r.scored_at is not None for r in _forecasts(spark, cfg))
    assert run.status == "succeeded"
    assert run.row_counts == {"series": 6, "scored_series": 4, "forecast_rows": 24, "skipped_stale": 1,
                              "skipped_too_short": 1, "inserted": 24, "updated": 0}
    assert run.versions_read == {"observations": scored["obs_version"]}
    assert run.versions_written == {"forecasts": result.forecasts_version}
    commit = spark.sql(f"DESCRIBE HISTORY {cfg.table('forecasts')}").filter(
        f"version = {result.forecasts_version}").head()  # the version is that of the run's own commit
    assert (commit.operation, commit.userMetadata, commit.operationMetrics["numTargetRowsInserted"]) == (
        "MERGE", result.run_id, "24")
    details = json.loads(run.details)
    assert details["model_version"] == ref.version and details["model_run_id"] == ref.run_id
    assert details["precision"] == "fp32" and details["precision_reason"] == "scoring.precision is fp32"
    # which series got no forecast, not only how many
    assert result.summary()["series skipped"] == "stale: 1 (stale0), too_short: 1 (short0)"
    assert result.skipped == {"stale": ["stale0"], "too_short": ["short0"]}
    assert "skipped_series" not in details  # no series id in the append-only run log (forget could not remove it)


def test_rerun_same_as_of_replaces_never_duplicates(spark: Any, scored: dict[str, Any]) -> None:
    cfg = scored["cfg"]
    before = _forecasts(spark, cfg)
    again = predict.run(spark, cfg, as_of=END)
    after = _forecasts(spark, cfg)
    assert len(after) == len(before) == 24
    assert again.counts["inserted"] == 0 and again.counts["updated"] == 24
    values = ["series_id", "forecast_origin", "target_ts", "horizon_step", "p10", "p50", "p90",
              "model_version"]
    assert [[r[c] for c in values] for r in after] == [[r[c] for c in values] for r in before]
    assert {r.job_run_id for r in after} != {r.job_run_id for r in before}  # lineage names the new run


def _assert_same_forecasts(got: list[Any], want: list[Any]) -> None:
    """Keys, versions and skip reasons exactly; p10/p50/p90 to a relative 1e-5.

    Rows are grouped into model batches differently (fused vs two stages, other gather and batch
    sizes), so the matrix products sum in another order and float32 differs in the last bits;
    1e-5 relative is ~100 float32 ulps, far below any real change of a forecast.
    """
    got, want = sorted(map(tuple, got), key=str), sorted(map(tuple, want), key=str)
    assert [r[:4] + r[7:] for r in got] == [r[:4] + r[7:] for r in want]  # keys, model, lineage, skip reasons
    np.testing.assert_allclose(np.array([r[4:7] for r in got], dtype=float),   # skipped rows: NaN == NaN
                               np.array([r[4:7] for r in want], dtype=float), rtol=1e-5, atol=0)


def test_fused_windows_score_like_two_stages(spark: Any, scored: dict[str, Any]) -> None:
    from models.shipping import ModelLoader, pack_model_dir
    from pipelines.windows.build import inference_windows

    cfg, predictor = scored["cfg"], scored["predictor"]
    rows = _observations()
    rows += [("gappy", ts, v) for sid, ts, v in series_rows(1, 40) if ts.hour % 8 >= 4]  # gaps of 4 > max_gap
    rows += [("holes", ts, v) for sid, ts, v in series_rows(1, 40) if ts.hour not in (5, 30)]  # filled
    rows += [("late", END + timedelta(hours=2), 1.0)]                                  # after as-of only
    rows += series_rows(1, 10, start=END - timedelta(hours=9), prefix="young")  # < lookback: padded
    obs = spark.createDataFrame(rows, "series_id string, ts timestamp, value double")
    plan = plan_for(predictor.meta, cfg, model_key="fused/test", precision="fp32")
    blob = pack_model_dir(registry.download_version(cfg, scored["ref"]))

    def loader(p: ScoringPlan) -> ModelLoader:
        return ModelLoader(blob, key=p.model_key, precision=p.precision, batch_size=p.batch_size)

    two = score_windows(inference_windows(obs, cfg, END), plan, loader(plan)).collect()
    fused = score_observations(obs, cfg, END, plan, loader(plan)).collect()
    _assert_same_forecasts(fused, two)
    # small gathers and model batches: windows flushed mid-partition, series split across calls
    small = dataclasses.replace(plan, gather_windows=2, batch_size=3)
    _assert_same_forecasts(score_observations(obs, cfg, END, small, loader(small)).collect(), two)
    reasons = {r.series_id: r.skip_reason for r in fused if r.skip_reason}
    assert reasons == {"gappy": "too_many_missing", "late": "too_short", "stale0": "stale", "short0": "too_short"}
    assert len([r for r in fused if r.skip_reason is None]) == 6 * 6
    assert {r.series_id for r in fused if r.skip_reason is None} >= {"young0", "holes"}


def test_raw_column_names_are_ingests_alone(spark: Any, scored: dict[str, Any], tmp_path: Path) -> None:
    """`data.series_col/time_col/value_col` name the raw files' columns: ingest maps them to the
    observations table's series_id, ts, value, and every reader after it (window builders,
    predict's bounded read and default as-of, changed series, fused scoring) reads those: the same
    windows and forecasts as the same rows under the default names."""
    from pipelines.flows import ingest
    from pipelines.scoring.changed_series import changed_series, only_series
    from pipelines.windows.build import inference_windows, training_windows
    from pipelines.windows.recent import recent_observations

    base, rows = scored["cfg"], _observations()
    cfg = make_config(base.home, f"catalog.database=t_{uuid.uuid4().hex[:10]}", f"model.name={base.model.name}",
                      *SMALL, "data.series_col=sid", "data.time_col=when", "data.value_col=amount")
    raw = tmp_path / "raw.csv"
    raw.write_text("sid,when,amount\n" + "".join(f"{s},{t.isoformat()},{v!r}\n" for s, t, v in rows))
    result = ingest.run(spark, cfg, str(raw), create_tables=True)
    assert (result.counts.inserted, result.counts.quarantined) == (len(rows), 0)
    obs = spark.table(cfg.table("observations"))
    ref = spark.sql(f"SELECT * FROM {base.table('observations')} VERSION AS OF {scored['obs_version']}")

    def same(build: Any) -> None:
        got, want = (sorted(map(tuple, collect_utc(build(o, c))), key=str) for o, c in ((obs, cfg), (ref, base)))
        assert got == want and got

    same(lambda o, c: training_windows(o, c))
    same(lambda o, c: inference_windows(o, c, END))
    same(lambda o, c: recent_observations(o, c, END).select("series_id", "ts", "value"))
    v = result.observations_version
    assert v is not None
    changed = changed_series(spark, cfg, v, v, END)
    assert {r.series_id for r in changed.collect()} == {"s0", "s1", "s2", "s3", "stale0", "short0"}
    assert only_series(obs, changed).count() == len(rows)

    run = predict.run(spark, cfg, version=scored["ref"].version)  # default as-of: the newest ts, END
    assert run.counts["scored_series"] == 4
    want = own_forecasts(spark, base, scored["predictor"], END, scored["obs_version"])
    got = _forecasts(spark, cfg)
    assert {(r.series_id, r.horizon_step) for r in got} == want.keys()
    for r in got:
        assert r.forecast_origin == END
        np.testing.assert_allclose([r.p10, r.p50, r.p90], want[(r.series_id, r.horizon_step)], rtol=1e-5)


def test_alias_moved_mid_run_does_not_change_the_version(spark: Any, db: tuple[LakecastConfig, int]) -> None:
    cfg, obs_version = _with_model(db[0]), db[1]
    v1 = register_model(cfg, *tiny_model(cfg, seed=1))
    with record_run(spark, cfg, "predict", {}) as rec:
        pinned = predict.pin_model(cfg, alias="champion")
        # The alias moves to a new version and the pinned one vanishes from the registry while
        # the run goes on: workers must neither see the move nor need the registry at all.
        v2 = register_model(cfg, *tiny_model(cfg, seed=2))
        registry.set_alias(cfg, "champion", v2.version)
        registry.client(cfg).delete_model_version(cfg.model.name, v1.version)
        result = predict.score_and_write(spark, cfg, pinned, rec)
    rows = _forecasts(spark, cfg)
    assert {r.model_version for r in rows} == {v1.version} and len(rows) == 24
    expected = own_forecasts(spark, cfg, load_predictor(pinned.local_dir), result.as_of, obs_version)
    for r in rows:
        np.testing.assert_allclose([r.p10, r.p50, r.p90], expected[(r.series_id, r.horizon_step)], rtol=1e-5)


def test_shadow_scores_the_challenger_beside_the_champion_in_one_merge(spark: Any, db: tuple[LakecastConfig, int],
                                                                      ) -> None:
    cfg, obs_version = _with_model(db[0]), db[1]
    champ = register_model(cfg, *tiny_model(cfg, seed=1))    # the first version is champion
    chall = register_model(cfg, *tiny_model(cfg, seed=2))    # the next one challenger
    result = predict.run(spark, cfg, shadow=True)
    rows = _forecasts(spark, cfg)
    by_version = {v: [r for r in rows if r.model_version == v] for v in (champ.version, chall.version)}
    assert len(rows) == 48 and {v: len(r) for v, r in by_version.items()} == {champ.version: 24, chall.version: 24}
    assert {r.model_role for r in by_version[champ.version]} == {"champion"}
    assert {r.model_role for r in by_version[chall.version]} == {"challenger"}
    for ref in (champ, chall):  # each version's rows are its own model's outputs on the same windows
        want = own_forecasts(spark, cfg, load_predictor(registry.download_version(cfg, ref)), result.as_of,
                             obs_version)
        for r in by_version[ref.version]:
            np.testing.assert_allclose([r.p10, r.p50, r.p90], want[(r.series_id, r.horizon_step)], rtol=1e-5)
    assert {r.job_run_id for r in rows} == {result.run_id}
    commit = spark.sql(f"DESCRIBE HISTORY {cfg.table('forecasts')}").filter(
        f"version = {result.forecasts_version}").head()  # one MERGE wrote both
    assert (commit.userMetadata, commit.operationMetrics["numSourceRows"]) == (result.run_id, "48")
    assert (result.counts["forecast_rows"], result.counts["shadow_forecast_rows"]) == (24, 24)
    assert result.summary()["shadow"] == f"{cfg.model.name}/{chall.version} (alias challenger): 4 series scored"
    latest = spark.table(cfg.table("forecasts_latest")).where(f"model_name = '{cfg.model.name}'").collect()
    assert len(latest) == 24 and {r.model_version for r in latest} == {champ.version}  # the champion's only

    again = predict.run(spark, cfg)  # the champion alone: its rows replaced, the challenger's untouched
    assert (again.counts["inserted"], again.counts["updated"]) == (0, 24)
    after = _forecasts(spark, cfg)
    kept = [tuple(r) for r in after if r.model_version == chall.version]
    assert kept == [tuple(r) for r in by_version[chall.version]]


def test_model_for_other_windows_is_refused_before_any_work(spark: Any, db: tuple[LakecastConfig, int],
                                                           ) -> None:
    cfg = _with_model(db[0])
    register_model(cfg, *tiny_model(cfg, lookback=12))
    with pytest.raises(ModelMismatchError,
                       match=r"trained for lookback 12 \(configured windows.lookback=24\)"):
        predict.run(spark, cfg)
    (run,) = spark.table(cfg.table("job_runs")).where("status = 'failed'").collect()
    assert "lookback 12" in run.error and run.versions_read == {} and run.row_counts == {}
    assert _forecasts(spark, cfg) == []


def test_forecasts_table_rejects_crossed_quantiles(spark: Any, scored: dict[str, Any]) -> None:
    table = scored["cfg"].table("forecasts")
    with pytest.raises(Exception, match="quantiles_ordered"):  # Delta's constraint error
        spark.sql(f"INSERT INTO {table} VALUES ('x', TIMESTAMP'2024-01-01', TIMESTAMP'2024-01-01 01:00', 1, "
                  "2.0, 1.0, 3.0, 'm', '1', NULL, 0, NULL, NULL, NULL, NULL)")


def test_cli_rejects_alias_with_version_and_bad_as_of() -> None:
    from jobs.cli import main

    both = CliRunner().invoke(main, ["predict", "--alias", "champion", "--version", "1"])
    assert both.exit_code == 2 and "give --alias or --version, not both" in both.output
    shadow = CliRunner().invoke(main, ["predict", "--shadow", "--version", "1"])
    assert shadow.exit_code == 2 and "--shadow scores the champion and the challenger" in shadow.output
    pinned = CliRunner().invoke(main, ["promote", "--by", "live", "--version", "2"])
    assert pinned.exit_code == 2 and "give --version or --by live, not both" in pinned.output
    for job in ("ingest", "train", "promote", "predict"):  # every scheduled job, before any work
        args = [job, "landing/"] if job == "ingest" else [job]
        bad = CliRunner().invoke(main, [*args, "--as-of", "yesterday"])
        assert bad.exit_code == 2 and "'yesterday' is not an ISO timestamp" in bad.output, (job, bad.output)
        assert "--as-of" in bad.output


README_QUERIES = (
    # 1. the live forecast of one series, with its 80 % interval
    """SELECT target_ts, horizon_step, p10, p50, p90, model_version
       FROM lakecast.forecasts_latest WHERE series_id = 's1' ORDER BY target_ts""",
    # 2. the worst series of the live model over its evaluated forecasts (after `lakecast evaluate`)
    """SELECT series_id, count(*) AS n, avg(scaled_abs_error) AS mase,
              avg(CAST(inside_p10_p90 AS DOUBLE)) AS coverage_p10_p90
       FROM lakecast.forecast_accuracy WHERE model_role = 'champion'
       GROUP BY series_id ORDER BY mase DESC NULLS LAST LIMIT 10""",
    # 3. the latest scoring runs: model, precision, data version, what was skipped
    """SELECT run_id, ended_at, get_json_object(details, '$.model_version') AS model_version,
              get_json_object(details, '$.precision') AS precision,
              versions_read['observations'] AS observations_version,
              try_element_at(row_counts, 'scored_series') AS scored,
              try_element_at(row_counts, 'skipped_stale') AS stale,
              try_element_at(row_counts, 'skipped_too_short') AS too_short
       FROM lakecast.job_runs WHERE job = 'predict' AND status = 'succeeded'
       ORDER BY started_at DESC LIMIT 5""",
)


def test_readme_queries_run(spark: Any, scored: dict[str, Any]) -> None:
    cfg = scored["cfg"]
    db = cfg.catalog.database
    live, _, runs = (spark.sql(q.replace("lakecast.", f"{db}.")).collect() for q in README_QUERIES)
    assert [r.horizon_step for r in live] == [1, 2, 3, 4, 5, 6]
    run = next(r for r in runs if r.run_id == scored["result"].run_id)
    assert (run.precision, run.scored, run.stale, run.too_short) == ("fp32", 4, 1, 1)


def test_changed_only_rescores_just_the_series_whose_inputs_changed(spark: Any, lakecast_home: Any) -> None:
    """`predict --changed-only` after a correction at s1 (before the origin) and a new row of s2
    (after it): only s1 is scored again, equal to the model on the new observations; every other
    forecast row is untouched. Nothing changed: nothing scored. An origin never scored: all series."""
    cfg = make_config(lakecast_home, f"catalog.database=t_{uuid.uuid4().hex[:10]}",
                      f"model.name=m_{uuid.uuid4().hex[:8]}", *SMALL)
    ensure_tables(spark, cfg)
    write_observations(spark, cfg, _observations())
    ref = register_model(cfg, *tiny_model(cfg, seed=3))
    full = predict.run(spark, cfg, as_of=END)
    before = {(r.series_id, r.horizon_step): tuple(r) for r in _forecasts(spark, cfg)}
    assert full.counts["scored_series"] == 4 and len(before) == 24
    obs = cfg.table("observations")
    spark.sql(f"UPDATE {obs} SET value = value + 7.5 WHERE series_id = 's1' "
              f"AND ts = TIMESTAMP'{(END - timedelta(hours=2)).isoformat()}Z'")
    version = write_observations(spark, cfg, [("s2", END + timedelta(hours=1), 99.0)])

    inc = predict.run(spark, cfg, as_of=END, changed_only=True)
    assert (inc.counts["changed_series"], inc.counts["scored_series"], inc.counts["forecast_rows"]) == (1, 1, 6)
    assert (inc.counts["inserted"], inc.counts["updated"]) == (0, 6) and inc.source_version == version
    after = {(r.series_id, r.horizon_step): tuple(r) for r in _forecasts(spark, cfg)}
    assert after.keys() == before.keys()
    assert {k for k in after if after[k] != before[k]} == {("s1", h) for h in range(1, 7)}
    want = own_forecasts(spark, cfg, load_predictor(registry.download_version(cfg, ref)), END, version)
    for r in _forecasts(spark, cfg):
        if r.series_id == "s1":
            assert (r.source_version, r.job_run_id) == (version, inc.run_id)
            np.testing.assert_allclose([r.p10, r.p50, r.p90], want[("s1", r.horizon_step)], rtol=1e-5)
    assert inc.summary()["changed only"] == "1 series changed since the origin was scored"
    # one overwrite of s1's rows alone: with deletion vectors its 6 old rows are marked and only its
    # new ones written; the other series' 18 rows in the same file are not copied into a new one
    (commit,) = spark.sql(f"DESCRIBE HISTORY {cfg.table('forecasts')}").where(
        f"version = {inc.forecasts_version}").collect()
    metrics = {k: int(v) for k, v in commit["operationMetrics"].items()}
    assert commit["operation"] == "WRITE" and "series_id IN ('s1')" in commit["operationParameters"]["predicate"]
    assert (metrics["numDeletedRows"], metrics["numOutputRows"] - metrics["numCopiedRows"]) == (6, 6), metrics
    assert metrics["numRemovedFiles"] == 0 and metrics["numRemovedBytes"] == 0, metrics
    (run,) = spark.table(cfg.table("job_runs")).where(f"run_id = '{inc.run_id}'").collect()
    assert json.loads(run.details)["changed_only"] == {"since_version": full.source_version, "changed_series": 1}

    idle = predict.run(spark, cfg, as_of=END, changed_only=True)  # nothing changed since: nothing scored
    assert idle.counts["changed_series"] == 0 and idle.forecasts_version is None
    assert {(r.series_id, r.horizon_step): tuple(r) for r in _forecasts(spark, cfg)} == after

    earlier = predict.run(spark, cfg, as_of=END - timedelta(hours=1), changed_only=True)  # never scored
    assert "changed_series" not in earlier.counts and earlier.counts["scored_series"] == 4

    # a change recorded without change data (feed switched off): not readable, so every series
    spark.sql(f"ALTER TABLE {obs} SET TBLPROPERTIES (delta.enableChangeDataFeed = false)")
    spark.sql(f"UPDATE {obs} SET value = value + 1 WHERE series_id = 's3' "
              f"AND ts = TIMESTAMP'{(END - timedelta(hours=1)).isoformat()}Z'")
    blind = predict.run(spark, cfg, as_of=END, changed_only=True)
    assert "changed_series" not in blind.counts and blind.counts["scored_series"] == 4
    (run,) = spark.table(cfg.table("job_runs")).where(f"run_id = '{blind.run_id}'").collect()
    assert json.loads(run.details)["changed_only"]["scored"] == "all series (changes not readable)"
