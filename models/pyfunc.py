"""Log a trained forecaster as an MLflow model that loads without lakecast.

The model is "from code": `pyfunc_entry.py` builds the `LakecastPyfunc`, and the whole
`models/lakecast_forecaster` package travels in the model's `code/` folder (`code_paths`),
which MLflow puts on `sys.path` at load time. So `mlflow.pyfunc.load_model(uri).predict(X)`
works in any process with torch, numpy and mlflow, lakecast installed or not. Logged with a
tensor signature ((-1, lookback, features) float32 -> (-1, horizon, 3) float32) and an input
example of real windows.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import mlflow
import mlflow.pyfunc
import numpy as np
import torch
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import ParamSchema, ParamSpec, Schema, TensorSpec

from models.lakecast_forecaster.lstm import LSTMForecaster
from models.lakecast_forecaster.predictor import ModelMeta, save_predictor
from models.lakecast_forecaster.pyfunc import ARTIFACT_KEY, OFFSET_PARAM

ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")
FORECASTER_DIR = Path(__file__).with_name("lakecast_forecaster")
CODE_PACKAGE = FORECASTER_DIR.name  # its top-level name inside the model


def signature_for(meta: ModelMeta) -> ModelSignature:
    """Windows in, quantiles out; the optional `offset` param (one per window, scale_loc / scale_scale)
    is what a multiplicative blend needs to forecast as lakecast scores."""
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, meta.lookback, meta.n_features))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, meta.horizon, 3))]),
        params=ParamSchema([ParamSpec(OFFSET_PARAM, "double", [], (-1,))]),
    )


def log_pyfunc(module: LSTMForecaster, meta: ModelMeta, input_example: np.ndarray,
               name: str = "model", offset: np.ndarray | None = None) -> ModelInfo:
    """Log the model into the active MLflow run; returns its ModelInfo (uri for registration).
    `offset`: the example windows' scale_loc / scale_scale, logged with them as the param."""
    example = np.ascontiguousarray(input_example, dtype=np.float32)
    reqs = [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}",
            f"mlflow=={mlflow.__version__}"]
    saved_path, had_package = list(sys.path), CODE_PACKAGE in sys.modules
    with tempfile.TemporaryDirectory() as tmp:
        pdir = save_predictor(module, meta, Path(tmp) / ARTIFACT_KEY)
        try:
            return mlflow.pyfunc.log_model(
                name=name,
                python_model=str(ENTRY_FILE),
                code_paths=[str(FORECASTER_DIR)],
                artifacts={ARTIFACT_KEY: str(pdir)},
                signature=signature_for(meta),
                input_example=example if offset is None else (example, {OFFSET_PARAM: [float(c) for c in offset]}),
                pip_requirements=reqs,
                metadata={"lakecast": {k: v for k, v in meta.to_dict().items() if k != "network"}},
            )
        finally:
            # log_model checks the input example by loading the model from a temporary copy: that
            # prepends the copy's code/ to sys.path for good and imports `lakecast_forecaster` from it.
            # Undo both, so a later load in this process imports the package from its own model.
            sys.path[:] = saved_path
            if not had_package:
                for mod in [m for m in sys.modules if m == CODE_PACKAGE or m.startswith(CODE_PACKAGE + ".")]:
                    del sys.modules[mod]
