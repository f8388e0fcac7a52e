"""The registered model loads where lakecast is not installed: its code travels inside it.

`log_pyfunc` copies `models/lakecast_forecaster` into the model's `code/` folder; MLflow puts
that on `sys.path` at load time. The check runs `mlflow.pyfunc.load_model` in a child Python
that cannot import lakecast: `-S` skips the site-packages `.pth` files (among them the editable
install's finder, which is what makes `models`, `pipelines`, `jobs` and `conf` importable), `-I`
ignores PYTHONPATH and the working directory, and the child adds the venv's site-packages
itself, so torch, numpy and mlflow are there and lakecast is not.
"""

from __future__ import annotations

import json
import subprocess
import sys
import sysconfig
from pathlib import Path

import numpy as np
import pytest
import torch

from conf import LakecastConfig
from models import registry
from models.lakecast_forecaster.blend import StatisticalBlend
from models.lakecast_forecaster.calibration import IntervalCalibration
from models.lakecast_forecaster.lstm import LSTMSpec, build_model
from models.lakecast_forecaster.predictor import ModelMeta, Predictor
from tests.conftest import make_config

torch.set_num_threads(1)
SPEC = LSTMSpec(n_features=2, lookback=8, horizon=3, hidden_size=4, num_layers=1)
# Calibrated and blended with a multiplicative season: both must travel too, and the blend needs
# each window's offset (scale_loc / scale_scale), given as the `offset` predict param.
META = ModelMeta(lookback=8, n_features=2, feature_names=("value", "missing"), horizon=3,
                 quantiles=(0.1, 0.5, 0.9), freq="QS", network=SPEC,
                 calibration=IntervalCalibration(low=(2.0, 0.5, 1.0), high=(1.5, 3.0, 0.7), floor=(1e-3,) * 3),
                 blend=StatisticalBlend(2, (0.5,) * 3, {"theta_multiplicative": (0.5,) * 3}))
X = np.random.default_rng(1).standard_normal((7, 8, 2)).astype(np.float32)
X[:, :, 0] += np.tile([1.5, -1.5], 4)   # a season of 2 that Theta finds
OFFSET = np.linspace(2.0, 8.0, 7)       # every original value positive: the season is taken out by ratios
FORECASTER_FILES = ["__init__.py", "blend.py", "calibration.py", "errors.py", "lstm.py", "padding.py", "predictor.py",
                    "pyfunc.py", "statistical.py"]

CHILD = """
import importlib.util, json, sys
sys.path.extend(json.loads(sys.argv[1]))
missing = {n: importlib.util.find_spec(n) for n in ("models", "pipelines", "jobs", "conf")}
assert all(spec is None for spec in missing.values()), f"lakecast is importable here: {missing}"
import mlflow, numpy as np
mlflow.set_tracking_uri(sys.argv[2]); mlflow.set_registry_uri(sys.argv[2])
model = mlflow.pyfunc.load_model(sys.argv[3])
np.save(sys.argv[5], model.predict(np.load(sys.argv[4]), params={"offset": json.loads(sys.argv[6])}))
import lakecast_forecaster
print(json.dumps({"package": lakecast_forecaster.__file__, "lakecast_imported": "models" in sys.modules}))
"""


@pytest.fixture(scope="module")
def registered(tmp_path_factory: pytest.TempPathFactory) -> tuple[LakecastConfig, registry.ModelRef, Predictor]:
    """A tiny (untrained) model logged with `log_pyfunc` and registered; also its in-process predictor."""
    import mlflow

    from models.pyfunc import log_pyfunc

    cfg = make_config(tmp_path_factory.mktemp("portable_home"))
    registry.use_tracking(cfg)
    module = build_model(SPEC, 7).eval()
    path_before, modules_before = list(sys.path), set(sys.modules)
    with mlflow.start_run() as run:
        info = log_pyfunc(module, META, X[:2], offset=OFFSET[:2])
    # logging loads the model once to check the input example; that leaves nothing behind
    assert sys.path == path_before
    assert not {m for m in set(sys.modules) - modules_before if m.split(".")[0] == "lakecast_forecaster"}
    ref, _ = registry.register(cfg, info.model_uri, run_id=run.info.run_id)
    return cfg, ref, Predictor(module, META)


def test_model_code_travels_in_the_model(registered, tmp_path) -> None:
    cfg, ref, _ = registered
    local = registry.download_version(cfg, ref, tmp_path)
    code = local / "code" / "lakecast_forecaster"
    assert sorted(p.name for p in code.iterdir()) == FORECASTER_FILES   # no __pycache__, nothing else
    assert (local / "pyfunc_entry.py").is_file()
    for f in FORECASTER_FILES:   # only relative imports: nothing of lakecast rides along by name
        text = (code / f).read_text()
        assert not any(f"{kw} {pkg}" in text for kw in ("import", "from") for pkg in ("models", "pipelines",
                                                                                     "jobs", "conf")), f


def test_registered_model_loads_and_predicts_without_lakecast(registered, tmp_path) -> None:
    cfg, ref, in_process = registered
    expected = in_process.predict(X, offset=OFFSET)
    assert np.abs(expected - in_process.predict(X)).max() > 1e-3   # the offsets count
    np.save(tmp_path / "x.npy", X)
    site = json.dumps(sorted({sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]}))
    out = subprocess.run([sys.executable, "-S", "-I", "-c", CHILD, site, cfg.tracking_uri, ref.uri,
                          str(tmp_path / "x.npy"), str(tmp_path / "y.npy"), json.dumps(OFFSET.tolist())],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path,
                         env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-3000:]
    report = json.loads(out.stdout.strip().splitlines()[-1])
    assert Path(report["package"]).parent.parent.name == "code" and not report["lakecast_imported"]
    np.testing.assert_allclose(np.load(tmp_path / "y.npy"), expected, rtol=0, atol=1e-5)


def test_registered_model_also_loads_in_the_lakecast_process(registered, monkeypatch) -> None:
    """Here `models.lakecast_forecaster` is imported already; the model brings its own copy anyway."""
    import mlflow

    cfg, ref, in_process = registered
    registry.use_tracking(cfg)   # `models:/` URIs resolve against the process-global registry
    monkeypatch.setattr(sys, "path", list(sys.path))   # load_model prepends the model's code/ for good
    before = set(sys.modules)
    try:
        model = mlflow.pyfunc.load_model(ref.uri)
        np.testing.assert_allclose(model.predict(X, params={"offset": OFFSET.tolist()}),
                                   in_process.predict(X, offset=OFFSET), rtol=0, atol=1e-5)
        np.testing.assert_allclose(model.predict(X), in_process.predict(X), rtol=0, atol=1e-5)  # none: additive
    finally:
        for m in set(sys.modules) - before:
            if m.split(".")[0] == "lakecast_forecaster":
                del sys.modules[m]
