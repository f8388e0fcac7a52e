"""Sequence windows in Spark (columns: `conf.window_contract`); never imports `models`.

build (public entry points, picks a kernel), spec (WindowSpec), numpy_kernel / sql_kernel
(the two strategies), grid (numpy grid steps and fill) / grid_spark (the same as Spark
columns), features (covariates, scaling), transfer (windows to Arrow for training).
"""
