"""The promotion rule, both directions, rollback and the never-without-a-champion guarantee.

Real SQLite MLflow registry; a briefly trained model ("good") against an untrained one
("bad"), compared on the same generated seasonal windows.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from conf import LakecastConfig
from models import promote, registry
from models.lakecast_forecaster.predictor import Predictor
from models.registry import CHALLENGER, CHAMPION, VersionNotFoundError
from models.train import fit
from tests.conftest import make_config
from tests.model_data import SEASON, seasonal_windows, time_split

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory):
    cfg = make_config(tmp_path_factory.mktemp("promote_home"), "model.hidden_size=8", "model.num_layers=1",
                      "train.max_epochs=8", "train.batch_size=64", "train.learning_rate=0.01",
                      "train.device=cpu", "promote.mase_margin=0.05")
    registry.use_tracking(cfg)
    w, ends = seasonal_windows()
    train, val, test = time_split(w, ends, train_end=24 * 22, val_end=24 * 26)
    good = fit(train, val, cfg)
    bad_cfg = cfg.model_copy(update={"train": cfg.train.model_copy(update={"max_epochs": 1,
                                                                           "learning_rate": 1e-6})})
    bad = fit(train, val, bad_cfg)
    return cfg, good, bad, test


def register(cfg: LakecastConfig, result, name: str) -> tuple[registry.ModelRef, Predictor]:
    import mlflow

    from models.lakecast_forecaster.predictor import ModelMeta
    from models.pyfunc import log_pyfunc

    meta = ModelMeta(lookback=result.spec.lookback, n_features=result.spec.n_features,
                     feature_names=("value", "missing"), horizon=result.spec.horizon,
                     quantiles=(0.1, 0.5, 0.9), freq="h", network=result.spec)
    with mlflow.start_run() as run:
        info = log_pyfunc(result.model, meta, np.zeros((1, meta.lookback, meta.n_features), np.float32))
    ref, _ = registry.register(cfg, info.model_uri, run_id=run.info.run_id)
    return ref, Predictor(result.model, meta)


def named(cfg: LakecastConfig, name: str) -> LakecastConfig:
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": name})})


def run_rule(cfg: LakecastConfig, test, by_version: dict[str, Predictor]) -> promote.Decision:
    """What `lakecast promote` does after loading the two versions."""
    challenger = registry.resolve(cfg, alias=CHALLENGER)
    shortcut = promote.without_comparison(cfg, challenger)
    if shortcut is None:
        champion = registry.resolve(cfg, alias=CHAMPION)
        cmp = promote.compare(by_version[challenger.version], by_version[champion.version], test,
                              season=SEASON)
        shortcut = promote.decide(cfg, challenger, champion, cmp)
    promote.apply(cfg, shortcut, job_run_id="test-run")
    return shortcut


def test_rule_needs_the_margin_and_the_seasonal_naive() -> None:
    assert promote.rule(0.90, 1.00, 1.2, 0.05)[0]                 # 10 % better, beats seasonal naive
    ok, why = promote.rule(0.97, 1.00, 1.2, 0.05)                 # only 3 % better
    assert not ok and why.startswith("not enough better than the champion: MASE 0.9700 vs champion 1.0000")
    ok, why = promote.rule(0.90, 1.00, 0.85, 0.05)                # beats champion, not seasonal naive
    assert not ok and "does not beat seasonal naive 0.8500" in why
    assert not promote.rule(math.nan, 1.0, 1.2, 0.0)[0]
    assert not promote.rule(1.10, 1.00, 1.2, 0.0)[0]              # worse: never promoted


def test_better_challenger_is_promoted_worse_one_is_not(setup) -> None:
    cfg, good, bad, test = setup
    cfg = named(cfg, "promote_both_ways")
    v1, p1 = register(cfg, bad, "bad")
    by_version = {v1.version: p1}
    assert run_rule(cfg, test, by_version).outcome == promote.UNCHANGED   # v1 is both aliases

    v2, p2 = register(cfg, good, "good")
    by_version[v2.version] = p2
    d = run_rule(cfg, test, by_version)
    assert (d.outcome, d.previous_champion, d.champion) == (promote.PROMOTED, "1", "2"), d.reason
    assert registry.aliases(cfg) == {CHAMPION: "2", CHALLENGER: "2"}
    tags = registry.resolve(cfg, version="2").tags
    assert tags["promotion.decision"] == "promoted" and tags["promotion.champion_before"] == "1"
    assert float(tags["promotion.challenger_mase"]) < float(tags["promotion.seasonal_naive_mase"])
    assert tags["promotion.windows"] == str(len(test)) and tags["promotion.job_run_id"] == "test-run"
    assert registry.resolve(cfg, version="1").tags["promotion.replaced_by"] == "2"

    v3, p3 = register(cfg, bad, "bad again")
    by_version[v3.version] = p3
    d = run_rule(cfg, test, by_version)
    assert (d.outcome, d.champion) == (promote.KEPT, "2")
    assert registry.aliases(cfg) == {CHAMPION: "2", CHALLENGER: "3"}
    assert registry.resolve(cfg, version="3").tags["promotion.decision"] == "kept"


def test_rollback_pins_a_version_and_checks_it_exists(setup) -> None:
    cfg, good, bad, _ = setup
    cfg = named(cfg, "promote_rollback")
    register(cfg, bad, "v1")
    register(cfg, good, "v2")
    registry.set_alias(cfg, CHAMPION, "2")
    d = promote.pin(cfg, 1)
    promote.apply(cfg, d)
    assert (d.outcome, d.previous_champion, d.champion) == (promote.PINNED, "2", "1")
    assert registry.aliases(cfg)[CHAMPION] == "1"
    assert registry.resolve(cfg, version="1").tags["promotion.decision"] == "pinned"
    assert promote.pin(cfg, 1).outcome == promote.UNCHANGED
    with pytest.raises(VersionNotFoundError, match=r"'promote_rollback' has no version 9 \(versions: 1, 2\)"):
        promote.pin(cfg, 9)
    assert registry.aliases(cfg)[CHAMPION] == "1"


def test_a_registry_without_champion_gets_one(setup) -> None:
    cfg, good, _, test = setup
    cfg = named(cfg, "promote_no_champion")
    v1, p1 = register(cfg, good, "v1")
    registry.client(cfg).delete_registered_model_alias(cfg.model.name, CHAMPION)   # someone removed it
    d = run_rule(cfg, test, {v1.version: p1})
    assert (d.outcome, d.champion) == (promote.NO_CHAMPION, "1")
    assert registry.aliases(cfg)[CHAMPION] == "1"
