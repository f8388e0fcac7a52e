"""MLflow "model from code" entry: MLflow runs this file when it loads a lakecast model.

Only loaded by MLflow (`mlflow.pyfunc.load_model`), never imported by lakecast itself, so
the `set_model` call happens at load time of a model, not at lakecast import time. Using
code instead of a pickled object keeps arbitrary pickles out of the model artifacts.
"""

from mlflow.models import set_model

from models.pyfunc import LakecastPyfunc

set_model(LakecastPyfunc())
