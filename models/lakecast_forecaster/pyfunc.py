"""The MLflow PythonModel: a thin pyfunc around `Predictor`, separate from the nn.Module.

It lives in the package that ships with the model, so a process with torch and mlflow but
no lakecast can `mlflow.pyfunc.load_model(uri).predict(X)`. Logging is lakecast's side
(`models.pyfunc.log_pyfunc`). A model whose blend takes a multiplicative season out
(`Predictor.needs_offset`) forecasts as lakecast scores only given each window's
``scale_loc / scale_scale``: `predict(X, params={"offset": [...]})`.
"""

from __future__ import annotations

from typing import Any

import mlflow.pyfunc
import numpy as np

from .predictor import load_predictor

ARTIFACT_KEY = "predictor"  # the artifact holding the predictor directory (meta.json, weights.pt)
OFFSET_PARAM = "offset"     # the predict param: each window's scale_loc / scale_scale


class LakecastPyfunc(mlflow.pyfunc.PythonModel):  # type: ignore[name-defined,misc]
    """Loads the predictor directory shipped as the `predictor` artifact."""

    def load_context(self, context: Any) -> None:
        self._predictor = load_predictor(context.artifacts[ARTIFACT_KEY])

    # No type hints on purpose: MLflow would take them for a schema; the signature is the tensor spec.
    def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
        X = model_input if isinstance(model_input, np.ndarray) else np.asarray(model_input, dtype=np.float32)
        given = (params or {}).get(OFFSET_PARAM)
        offset = None if given is None or not len(given) else np.asarray(given, dtype=np.float64)
        return self._predictor.predict(X.astype(np.float32, copy=False), offset=offset)
