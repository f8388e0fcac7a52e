"""The promotion rule, both directions, rollback and the never-without-a-champion guarantee.

`lakecast promote`'s own `run` on a real Delta `observations` table and a real SQLite MLflow
registry: a briefly trained model ("good") against an untrained one ("bad"), both trained on
the generated seasonal series that the table holds, compared by `run` on its backtest windows.
"""

from __future__ import annotations

import json
import math
import uuid
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from conf import LakecastConfig
from models import promote, registry
from models.registry import CHALLENGER, CHAMPION, VersionNotFoundError
from models.train import TrainResult, fit
from pipelines.flows import promote as promote_job
from pipelines.tables.ensure import ensure_tables
from tests.conftest import make_config
from tests.model_data import HORIZON, LOOKBACK, seasonal_series, seasonal_windows, time_split
from tests.scoring_helpers import write_observations

torch.set_num_threads(1)
T0 = datetime(2024, 1, 1)
LENGTH = 24 * 30
# Windows as tests.model_data cuts them; the backtest covers the steps after its test split starts.
SETTINGS = (f"windows.lookback={LOOKBACK}", f"windows.horizon={HORIZON}", "windows.stride=6",
            "windows.calendar_features=false", "promote.backtest_periods=96", "promote.mase_margin=0.05",
            "model.hidden_size=8", "model.num_layers=1", "train.max_epochs=8", "train.batch_size=64",
            "train.learning_rate=0.01", "train.device=cpu")


@pytest.fixture(scope="module")
def setup(spark: Any, lakecast_home: Path) -> tuple[LakecastConfig, TrainResult, TrainResult]:
    """A database whose observations are the series the two models were trained on."""
    cfg = make_config(lakecast_home, f"catalog.database=t_{uuid.uuid4().hex[:10]}", *SETTINGS)
    ensure_tables(spark, cfg)
    write_observations(spark, cfg, [(f"s{s}", T0 + timedelta(hours=i), float(v))
                                    for s, y in enumerate(seasonal_series(length=LENGTH)) for i, v in enumerate(y)])
    w, ends = seasonal_windows(length=LENGTH)
    train, val, _ = time_split(w, ends, train_end=LENGTH - 8 * 24, val_end=LENGTH - 4 * 24)
    good = fit(train, val, cfg)
    bad_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_epochs": 1,
                                                                           "learning_rate": 1e-6})})
    bad = fit(train, val, bad_cfg)
    return cfg, good, bad


def register(cfg: LakecastConfig, result: TrainResult) -> registry.ModelRef:
    """Log `result` as lakecast train does and register it (the newest version is challenger)."""
    import mlflow

    from models.lakecast_forecaster.predictor import ModelMeta
    from models.pyfunc import log_pyfunc

    registry.use_tracking(cfg)
    meta = ModelMeta(lookback=result.spec.lookback, n_features=result.spec.n_features,
                     feature_names=("value", "missing"), horizon=result.spec.horizon,
                     quantiles=(0.1, 0.5, 0.9), freq="h", network=result.spec)
    with mlflow.start_run() as run:
        info = log_pyfunc(result.model, meta, np.zeros((1, meta.lookback, meta.n_features), np.float32))
    ref, _ = registry.register(cfg, info.model_uri, run_id=run.info.run_id)
    return ref


def named(cfg: LakecastConfig, name: str) -> LakecastConfig:
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": name})})


def recorded(spark: Any, cfg: LakecastConfig, run_id: str) -> Any:
    return spark.table(cfg.table("job_runs")).where(f"run_id = '{run_id}'").head()


def test_rule_needs_the_margin_and_the_seasonal_naive() -> None:
    assert promote.rule(0.90, 1.00, 1.2, 0.05)[0]                 # 10 % better, beats seasonal naive
    ok, why = promote.rule(0.97, 1.00, 1.2, 0.05)                 # only 3 % better
    assert not ok and why.startswith("not enough better than the champion: MASE 0.9700 vs champion 1.0000")
    ok, why = promote.rule(0.90, 1.00, 0.85, 0.05)                # beats champion, not seasonal naive
    assert not ok and "does not beat seasonal naive 0.8500" in why
    assert not promote.rule(math.nan, 1.0, 1.2, 0.0)[0]
    assert not promote.rule(1.10, 1.00, 1.2, 0.0)[0]              # worse: never promoted


def test_each_version_is_backtested_with_its_own_floor() -> None:
    """A floored challenger against the same network unfloored: promotion compares what each
    version writes, so only the challenger's forecasts are raised to the floor."""
    from dataclasses import replace

    from models.evaluate import MODEL, backtest
    from models.lakecast_forecaster.lstm import LSTMSpec, build_model
    from models.lakecast_forecaster.predictor import ModelMeta, Predictor

    windows, _ = seasonal_windows(3)
    spec = LSTMSpec(n_features=windows.X.shape[2], lookback=LOOKBACK, horizon=HORIZON, hidden_size=8,
                    num_layers=1, dropout=0.0)
    module = build_model(spec, 2).eval()
    meta = ModelMeta(LOOKBACK, spec.n_features, tuple(f"f{i}" for i in range(spec.n_features)), HORIZON,
                     (0.1, 0.5, 0.9), "h", spec)
    pred = Predictor(module, meta).predict(windows.X)
    floor = float(np.median(windows.unscale(pred[..., 1].astype(np.float64))))  # binds for about half
    cmp = promote.compare(Predictor(module, replace(meta, floor=floor)), Predictor(module, meta), windows, season=24)
    assert cmp.challenger.overall[MODEL] == backtest(windows, pred, season=24, floor=floor).overall[MODEL]
    assert cmp.champion.overall[MODEL] == backtest(windows, pred, season=24).overall[MODEL]
    assert cmp.challenger.overall[MODEL]["mae"] != cmp.champion.overall[MODEL]["mae"]


def test_a_champion_without_the_members_context_is_compared_on_its_own_windows() -> None:
    """A challenger whose windows carry a context for its statistical members (`model.statistical_
    lookback`) against a champion trained before it, on the challenger's wider windows: each model
    reads the windows it was built for (their last steps: the scale is the shared lookback's), and
    MASE is scaled over that lookback, so the champion's figures are what a narrow backtest gives."""
    from dataclasses import replace

    from models.evaluate import MODEL, backtest
    from models.lakecast_forecaster.blend import StatisticalBlend
    from models.lakecast_forecaster.lstm import LSTMSpec, build_model
    from models.lakecast_forecaster.predictor import ModelMeta, Predictor

    narrow, _ = seasonal_windows(3)
    n, nf, ctx = len(narrow), narrow.X.shape[2], 48
    wide_X = np.concatenate((np.zeros((n, ctx, nf), dtype=np.float32), narrow.X), axis=1)
    wide_X[:, :ctx, 0] = np.sin(np.arange(ctx) * 2 * np.pi / 24)      # a context the members can read
    wide = replace(narrow, X=wide_X)
    spec = LSTMSpec(n_features=nf, lookback=LOOKBACK, horizon=HORIZON, hidden_size=8, num_layers=1, dropout=0.0)
    module = build_model(spec, 2).eval()
    blend = StatisticalBlend(24, (0.5,) * HORIZON, {"theta": (0.5,) * HORIZON})
    champion = ModelMeta(LOOKBACK, nf, tuple(f"f{i}" for i in range(nf)), HORIZON, (0.1, 0.5, 0.9), "h", spec,
                         blend=blend)
    challenger = replace(champion, lookback=LOOKBACK + ctx)
    cmp = promote.compare(Predictor(module, challenger), Predictor(module, champion), wide, season=24)
    want = backtest(narrow, Predictor(module, champion).predict(narrow.X), season=24).overall[MODEL]
    np.testing.assert_equal(cmp.champion.overall[MODEL], want)
    got = backtest(wide, Predictor(module, challenger).predict(wide.X), season=24, lookback=LOOKBACK)
    np.testing.assert_equal(cmp.challenger.overall[MODEL], got.overall[MODEL])
    assert cmp.challenger.overall[MODEL]["mae"] != want["mae"]   # its members read the context
    # MASE's scale and the baselines read the lookback, not the context
    np.testing.assert_equal(cmp.challenger.overall["seasonal_naive"], cmp.champion.overall["seasonal_naive"])


def test_better_challenger_is_promoted_worse_one_is_not(spark: Any, setup: Any) -> None:
    cfg, good, bad = setup
    cfg = named(cfg, "promote_both_ways")
    register(cfg, bad)
    out = promote_job.run(spark, cfg)
    assert (out.decision.outcome, out.comparison) == (promote.UNCHANGED, None)   # v1 is both aliases

    register(cfg, good)
    out = promote_job.run(spark, cfg)
    d = out.decision
    assert (d.outcome, d.previous_champion, d.champion) == (promote.PROMOTED, "1", "2"), d.reason
    assert out.comparison is not None and out.comparison.n_windows > 0
    assert registry.aliases(cfg) == {CHAMPION: "2", CHALLENGER: "2"}
    tags = registry.resolve(cfg, version="2").tags
    assert tags["promotion.decision"] == "promoted" and tags["promotion.champion_before"] == "1"
    assert float(tags["promotion.challenger_mase"]) < float(tags["promotion.seasonal_naive_mase"])
    assert tags["promotion.windows"] == str(out.comparison.n_windows)
    assert tags["promotion.job_run_id"] == out.job_run_id
    assert registry.resolve(cfg, version="1").tags["promotion.replaced_by"] == "2"
    run = recorded(spark, cfg, out.job_run_id)
    assert run.status == "succeeded"
    assert (json.loads(run.details)["decision"], json.loads(run.details)["candidate"]) == ("promoted", "2")

    register(cfg, bad)
    out = promote_job.run(spark, cfg)
    assert (out.decision.outcome, out.decision.champion) == (promote.KEPT, "2"), out.decision.reason
    assert registry.aliases(cfg) == {CHAMPION: "2", CHALLENGER: "3"}
    assert registry.resolve(cfg, version="3").tags["promotion.decision"] == "kept"


def test_rollback_pins_a_version_and_checks_it_exists(spark: Any, setup: Any) -> None:
    cfg, good, bad = setup
    cfg = named(cfg, "promote_rollback")
    register(cfg, bad)
    register(cfg, good)
    registry.set_alias(cfg, CHAMPION, "2")
    d = promote_job.run(spark, cfg, version=1).decision
    assert (d.outcome, d.previous_champion, d.champion) == (promote.PINNED, "2", "1")
    assert registry.aliases(cfg)[CHAMPION] == "1"
    assert registry.resolve(cfg, version="1").tags["promotion.decision"] == "pinned"
    assert promote_job.run(spark, cfg, version=1).decision.outcome == promote.UNCHANGED
    with pytest.raises(VersionNotFoundError, match=r"'promote_rollback' has no version 9 \(versions: 1, 2\)"):
        promote_job.run(spark, cfg, version=9)
    assert registry.aliases(cfg)[CHAMPION] == "1"


def test_a_registry_without_champion_gets_one(spark: Any, setup: Any) -> None:
    cfg, good, _ = setup
    cfg = named(cfg, "promote_no_champion")
    register(cfg, good)
    registry.client(cfg).delete_registered_model_alias(cfg.model.name, CHAMPION)   # someone removed it
    out = promote_job.run(spark, cfg)
    assert (out.decision.outcome, out.decision.champion) == (promote.NO_CHAMPION, "1")
    assert registry.aliases(cfg)[CHAMPION] == "1"
    assert registry.resolve(cfg, version="1").tags["promotion.job_run_id"] == out.job_run_id
