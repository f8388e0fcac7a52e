"""The MLflow model: a thin pyfunc around `Predictor`, separate from the nn.Module.

Logged with a tensor signature ((-1, lookback, features) float32 -> (-1, horizon, 3)
float32) and an input example of real windows, so `mlflow.pyfunc.load_model(uri).predict(X)`
works in any process that can import lakecast's `models` package.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import mlflow
import mlflow.pyfunc
import numpy as np
import torch
from mlflow.models import ModelSignature
from mlflow.models.model import ModelInfo
from mlflow.types.schema import Schema, TensorSpec

from models.lakecast_forecaster.lstm import LSTMForecaster
from models.lakecast_forecaster.predictor import ModelMeta, Predictor, load_predictor, save_predictor

ARTIFACT_KEY = "predictor"
ENTRY_FILE = Path(__file__).with_name("pyfunc_entry.py")


class LakecastPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """Loads the predictor directory shipped as the `predictor` artifact."""

    def load_context(self, context: Any) -> None:
        self._predictor = load_predictor(context.artifacts[ARTIFACT_KEY])

    # No type hints on purpose: MLflow would take them for a schema; the signature is the tensor spec.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        X = model_input if isinstance(model_input, np.ndarray) else np.asarray(model_input, dtype=np.float32)
        return self._predictor.predict(X.astype(np.float32, copy=False))


def signature_for(meta: ModelMeta) -> ModelSignature:
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.float32), (-1, meta.lookback, meta.n_features))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, meta.horizon, 3))]),
    )


def log_pyfunc(module: LSTMForecaster, meta: ModelMeta, input_example: np.ndarray,
               name: str = "model") -> ModelInfo:
    """Log the model into the active MLflow run; returns its ModelInfo (uri for registration)."""
    reqs = [f"torch=={torch.__version__.split('+')[0]}", f"numpy=={np.__version__}",
            f"mlflow=={mlflow.__version__}"]
    with tempfile.TemporaryDirectory() as tmp:
        pdir = save_predictor(module, meta, Path(tmp) / ARTIFACT_KEY)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(ENTRY_FILE),
            artifacts={ARTIFACT_KEY: str(pdir)},
            signature=signature_for(meta),
            input_example=np.ascontiguousarray(input_example, dtype=np.float32),
            pip_requirements=reqs,
            metadata={"lakecast": {k: v for k, v in meta.to_dict().items() if k != "network"}},
        )


def as_predictor(module: LSTMForecaster, meta: ModelMeta) -> Predictor:
    """The in-process predictor for a freshly trained module (same outputs as the logged model)."""
    return Predictor(module, meta, device="cpu")
