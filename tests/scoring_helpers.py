"""Tiny models in a real MLflow registry and tiny observations, for the scoring tests.

Models are random-init networks shaped like the configured windows (a few hundred
weights): scoring is about the plumbing, not about forecast quality.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import mlflow
import numpy as np
import torch

from conf import LakecastConfig
from conf.auto_steps import steps
from conf.utc import utc_aware
from models import registry
from models.lakecast_forecaster.lstm import LSTMForecaster, LSTMSpec, build_model
from models.lakecast_forecaster.predictor import ModelMeta, Predictor
from models.pyfunc import log_pyfunc
from pipelines.windows.features import feature_names

T0 = datetime(2024, 1, 1)


def tiny_model(cfg: LakecastConfig, *, seed: int = 0, lookback: int | None = None,
               drift: bool = False) -> tuple[LSTMForecaster, ModelMeta]:
    """A random-init LSTM for the configured windows (or another `lookback`).

    `drift=True` builds a model that is fine in fp32 but not in bf16: its median is the
    difference of two large numbers (+1e4 in the head, -1e4 in the linear skip), which bf16's
    8-bit mantissa rounds to multiples of 64.
    """
    names = tuple(feature_names(cfg))
    lb, hz = lookback or steps(cfg).lookback, steps(cfg).horizon
    spec = LSTMSpec(n_features=len(names), lookback=lb, horizon=hz, hidden_size=8,
                    num_layers=1, dropout=0.0)
    module = build_model(spec, seed).eval()
    if drift:
        with torch.no_grad():
            module.head.bias[1::3] += 1e4          # raw median of every step (view: horizon x 3)
            assert module.skip is not None
            module.skip.bias -= 1e4
    meta = ModelMeta(lb, len(names), names, hz, (0.1, 0.5, 0.9), cfg.data.freq, spec)
    return module, meta


def register_model(cfg: LakecastConfig, module: LSTMForecaster, meta: ModelMeta,
                   tags: dict[str, str] | None = None) -> registry.ModelRef:
    """Log the model to the configured MLflow store and register it as a new version."""
    registry.use_tracking(cfg)
    example = np.zeros((2, meta.lookback, meta.n_features), dtype=np.float32)
    with mlflow.start_run() as run:
        info = log_pyfunc(module, meta, example)
    ref, _ = registry.register(cfg, info.model_uri, run_id=run.info.run_id, tags=tags)
    return ref


def series_rows(n_series: int, length: int, *, start: datetime = T0, step: timedelta = timedelta(hours=1),
                prefix: str = "s") -> list[tuple[str, datetime, float]]:
    """Seasonal series at different levels: (series_id, ts, value)."""
    rows = []
    for s in range(n_series):
        for i in range(length):
            value = 10 * (s + 1) + 3 * np.sin(i / 4) + 0.1 * s * i
            rows.append((f"{prefix}{s}", start + i * step, float(value)))
    return rows


def write_observations(spark: Any, cfg: LakecastConfig, rows: Sequence[tuple[str, datetime, float]]) -> int:
    """Append rows to the observations table; returns its new Delta version."""
    from pyspark.sql import functions as F

    from pipelines.tables.ensure import delta_version

    # Aware datetimes: pyspark would read naive ones in the host's zone.
    df = spark.createDataFrame([(s, utc_aware(t), v) for s, t, v in rows],
                               "series_id string, ts timestamp, value double")
    now = F.current_timestamp()
    (df.select("series_id", "ts", "value", F.lit("test").alias("batch_id"),
               F.lit("inline").alias("source_file"), now.alias("ingested_at"), now.alias("updated_at"))
     .write.format("delta").mode("append").saveAsTable(cfg.table("observations")))
    return delta_version(spark, cfg.table("observations"))


def own_forecasts(spark: Any, cfg: LakecastConfig, predictor: Predictor, as_of: datetime,
                  source_version: int) -> dict[tuple[str, int], np.ndarray]:
    """The model's own outputs (original units) for the same inference windows, by (series, step)."""
    from models.arrays import to_arrays, usable_only
    from pipelines.windows.build import inference_windows

    obs = spark.sql(f"SELECT * FROM {cfg.table('observations')} VERSION AS OF {source_version}")
    table = usable_only(inference_windows(obs, cfg, as_of).toArrow())
    w = to_arrays(table, lookback=predictor.meta.lookback, n_features=predictor.meta.n_features, keys=True)
    q = w.unscale(predictor.predict(w.X).astype(np.float64))
    assert w.series_id is not None
    return {(str(sid), h + 1): q[i, h] for i, sid in enumerate(w.series_id) for h in range(q.shape[1])}
