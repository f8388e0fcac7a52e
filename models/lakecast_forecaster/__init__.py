"""lakecast_forecaster: the code that travels inside the logged MLflow model.

`mlflow.pyfunc.log_model(code_paths=[this folder])` copies it into the model's `code/`
folder and MLflow puts that on `sys.path` at load time, where it is the top-level package
`lakecast_forecaster`. So it imports only itself (relative imports), torch, numpy, mlflow
and the standard library: never `conf`, `pipelines`, `jobs` or the rest of `models`.
"""
