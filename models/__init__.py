"""Model side of lakecast: the LSTM, training, evaluation, MLflow model and registry.

Nothing here imports Spark: functions take numpy arrays or Arrow batches and return arrays.
"""
