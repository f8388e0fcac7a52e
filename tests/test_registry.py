"""The MLflow side on a real SQLite store: logging, registering, aliases, downloads, reloads."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conf import LakecastConfig
from models import registry
from models.lakecast_forecaster.lstm import LSTMSpec, build_model
from models.lakecast_forecaster.predictor import (
    ModelLoadError,
    ModelMeta,
    ModelMismatchError,
    Predictor,
    load_predictor,
)
from models.registry import (
    CHALLENGER,
    CHAMPION,
    AliasNotFoundError,
    ModelNotFoundError,
    VersionNotFoundError,
)
from tests.conftest import make_config

torch.set_num_threads(1)
SPEC = LSTMSpec(n_features=2, lookback=8, horizon=3, hidden_size=4, num_layers=1)
META = ModelMeta(lookback=8, n_features=2, feature_names=("value", "missing"), horizon=3,
                 quantiles=(0.1, 0.5, 0.9), freq="h", network=SPEC)
X = np.random.default_rng(0).standard_normal((5, 8, 2)).astype(np.float32)


@pytest.fixture(scope="module")
def mlflow_cfg(tmp_path_factory: pytest.TempPathFactory) -> LakecastConfig:
    """One SQLite store for the module (creating one costs seconds); each test uses its own model name."""
    cfg = make_config(tmp_path_factory.mktemp("mlflow_home"))
    registry.use_tracking(cfg)
    return cfg


def log_version(cfg: LakecastConfig, seed: int) -> tuple[registry.ModelRef, bool, Predictor]:
    """Log a tiny (untrained) model in a run and register it; also return it in-process."""
    import mlflow

    from models.pyfunc import log_pyfunc

    module = build_model(SPEC, seed).eval()
    registry.use_tracking(cfg)
    with mlflow.start_run() as run:
        info = log_pyfunc(module, META, X[:2])
    ref, first = registry.register(cfg, info.model_uri, run_id=run.info.run_id, tags={"seed": str(seed)})
    return ref, first, Predictor(module, META)


def named(cfg: LakecastConfig, name: str) -> LakecastConfig:
    return cfg.model_copy(update={"model": cfg.model.model_copy(update={"name": name})})


def test_first_version_is_champion_later_ones_only_challenger(mlflow_cfg) -> None:
    cfg = named(mlflow_cfg, "reg_aliases")
    v1, first1, _ = log_version(cfg, 1)
    v2, first2, _ = log_version(cfg, 2)
    assert (v1.version, first1, v2.version, first2) == ("1", True, "2", False)
    assert registry.aliases(cfg) == {CHAMPION: "1", CHALLENGER: "2"}
    assert v2.tags["seed"] == "2"
    champ = registry.resolve(cfg, alias=CHAMPION)
    assert (champ.version, champ.alias, champ.run_id) == ("1", CHAMPION, v1.run_id)


def test_logged_model_reloads_in_a_fresh_process_with_identical_outputs(mlflow_cfg, tmp_path) -> None:
    cfg = named(mlflow_cfg, "reg_reload")
    ref, _, in_process = log_version(cfg, 3)
    expected = in_process.predict(X)
    local = registry.download_version(cfg, ref, tmp_path / "cache")
    assert np.array_equal(load_predictor(local).predict(X), expected)
    np.save(tmp_path / "x.npy", X)
    script = (
        "import json, sys, mlflow, numpy as np\n"
        "mlflow.set_tracking_uri(sys.argv[1]); mlflow.set_registry_uri(sys.argv[1])\n"
        "m = mlflow.pyfunc.load_model(sys.argv[2])\n"
        "np.save(sys.argv[4], m.predict(np.load(sys.argv[3])))\n"
        "print(json.dumps(m.metadata.get_input_schema().to_dict()))\n"
    )
    out = subprocess.run([sys.executable, "-c", script, cfg.tracking_uri, ref.uri, str(tmp_path / "x.npy"),
                          str(tmp_path / "y.npy")], capture_output=True, text=True, timeout=300,
                         cwd=Path(__file__).resolve().parents[1])
    assert out.returncode == 0, out.stderr[-3000:]
    assert np.array_equal(np.load(tmp_path / "y.npy"), expected)
    schema = json.loads(out.stdout.strip().splitlines()[-1])
    assert schema[0]["tensor-spec"] == {"dtype": "float32", "shape": [-1, 8, 2]}


def test_download_is_reused_without_calling_the_registry(mlflow_cfg, tmp_path) -> None:
    cfg = named(mlflow_cfg, "reg_download")
    ref, _, _ = log_version(cfg, 4)
    first = registry.download_version(cfg, ref, tmp_path)
    assert first == tmp_path / "reg_download" / "1" and (first / "MLmodel").is_file()
    offline = make_config(cfg.home, f"mlflow.tracking_uri=sqlite:///{tmp_path / 'nowhere' / 'x.db'}")
    assert registry.download_version(offline, ref, tmp_path) == first


def test_download_uses_the_configured_store_not_the_process_global_one(mlflow_cfg, tmp_path) -> None:
    import mlflow

    cfg = named(mlflow_cfg, "reg_global")
    log_version(cfg, 6)
    elsewhere = f"sqlite:///{tmp_path / 'other.db'}"
    mlflow.set_tracking_uri(elsewhere)   # as in a fresh CLI process: globals unset or different
    mlflow.set_registry_uri(elsewhere)
    try:
        local = registry.download_version(cfg, registry.resolve(cfg, alias=CHAMPION), tmp_path / "cache")
    finally:
        registry.use_tracking(mlflow_cfg)
    assert (local / "MLmodel").is_file() and load_predictor(local).meta == META
    assert not (tmp_path / "other.db").exists()


def test_missing_model_alias_and_version_are_clear_errors(mlflow_cfg) -> None:
    cfg = named(mlflow_cfg, "reg_errors")
    with pytest.raises(ModelNotFoundError,
                       match=r"registered model 'reg_errors' not found .*run `lakecast train`"):
        registry.resolve(cfg, alias=CHAMPION)
    log_version(cfg, 5)
    with pytest.raises(AliasNotFoundError, match=r"'reg_errors' has no alias 'production' "
                       r"\(aliases: challenger -> v1, champion -> v1\)"):
        registry.resolve(cfg, alias="production")
    with pytest.raises(VersionNotFoundError, match=r"'reg_errors' has no version 7 \(versions: 1\)"):
        registry.resolve(cfg, version="7")


def test_model_meta_mismatch_and_bad_directories(tmp_path) -> None:
    with pytest.raises(ModelMismatchError,
                       match=r"lookback 8 \(configured windows\.lookback=168\); .*horizon 3"):
        META.check_windows(lookback=168, feature_names=["value", "missing"], horizon=24, freq="h")
    META.check_windows(lookback=8, feature_names=["value", "missing"], horizon=3, freq="h")
    with pytest.raises(ModelMismatchError, match=r"expects windows of shape \(N, 8, 2\), got \(5, 8, 3\)"):
        Predictor(build_model(SPEC, 0), META).predict(np.zeros((5, 8, 3), np.float32))
    with pytest.raises(ModelLoadError, match=r"holds no meta.json"):
        load_predictor(tmp_path)
    with pytest.raises(ModelLoadError, match=r"does not exist"):
        load_predictor(tmp_path / "absent")
