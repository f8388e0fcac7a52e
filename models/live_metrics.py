"""Live accuracy in MLflow: each evaluate logs what it measured per model version into the run
that trained the version, so the MLflow UI charts live accuracy next to the training curves."""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Sequence
from datetime import date
from typing import Any

from mlflow.exceptions import MlflowException

from conf import LakecastConfig
from models.registry import client

log = logging.getLogger(__name__)

# by_version keys -> MLflow metric names
METRICS = {"n": "live_n", "mae": "live_mae", "mase": "live_mase", "snaive_mase": "live_snaive_mase",
           "coverage": "live_coverage_p10_p90"}


def day_step(day: date) -> int:
    """MLflow's step for an evaluation day: YYYYMMDD, readable on the chart's axis."""
    return day.year * 10_000 + day.month * 100 + day.day


def log_live_metrics(cfg: LakecastConfig, by_version: Sequence[dict[str, Any]], day: date) -> list[str]:
    """Log each version's live metrics (dicts with `model` = "name/version") at step `day`; returns
    the MLflow run ids written. A version the registry does not know is skipped."""
    from mlflow.entities import Metric

    c = client(cfg)
    written = []
    for v in by_version:
        name, version = str(v["model"]).rsplit("/", 1)
        try:
            run_id = c.get_model_version(name, version).run_id
        except MlflowException:
            log.info("model %s/%s is not in the registry: its live metrics are not logged to MLflow", name, version)
            continue
        if not run_id:
            continue
        ts = int(time.time() * 1000)
        metrics = [Metric(key, float(v[k]), ts, day_step(day)) for k, key in METRICS.items()
                   if v.get(k) is not None and math.isfinite(float(v[k]))]
        c.log_batch(run_id, metrics=metrics)
        written.append(run_id)
    return written
