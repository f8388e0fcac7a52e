"""MLflow "model from code" entry: MLflow runs this file when it loads a lakecast model.

Only loaded by MLflow (`mlflow.pyfunc.load_model`), never imported by lakecast itself, so
the `set_model` call happens at load time of a model, not at lakecast import time. Using
code instead of a pickled object keeps arbitrary pickles out of the model artifacts.

Inside a model, `lakecast_forecaster` is a top-level package: MLflow put the model's
`code/` folder on `sys.path`. The one other place this file runs is `log_model` itself,
in the lakecast process that logs the model, before any `code/` folder exists: there the
same package is `models.lakecast_forecaster`.
"""

from mlflow.models import set_model

try:
    from lakecast_forecaster.pyfunc import LakecastPyfunc
except ModuleNotFoundError as e:
    if e.name != "lakecast_forecaster":  # a real failure inside the package, e.g. no torch
        raise
    from models.lakecast_forecaster.pyfunc import LakecastPyfunc

set_model(LakecastPyfunc())
