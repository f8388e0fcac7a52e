"""What a scoring run is fixed to, decided on the driver before any work.

The model is described by its metadata only (duck-typed, `ModelShape`): scoring never
imports `models` or torch; the executors get a ready predict function from a loader
(`pipelines.scoring.worker`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from conf import LakecastConfig
from conf.auto_steps import steps
from conf.errors import LakecastError


class ScoringError(LakecastError):
    """Windows cannot be scored with this model; the message names the series or column."""


class ModelShape(Protocol):
    """What scoring reads from a model's metadata (`models.lakecast_forecaster.predictor.ModelMeta`)."""

    @property
    def lookback(self) -> int: ...
    @property
    def network_lookback(self) -> int: ...
    @property
    def n_features(self) -> int: ...
    @property
    def horizon(self) -> int: ...
    @property
    def freq(self) -> str: ...
    @property
    def floor(self) -> float | None: ...

    def check_windows(self, *, lookback: int, feature_names: Sequence[str], horizon: int, freq: str,
                      context: int = 0) -> None: ...


@dataclass(frozen=True)
class ScoringPlan:
    """Everything a worker needs, fixed on the driver before any work.

    `model_key` names the pinned model version (e.g. `lakecast_lstm/3`): the worker cache
    is keyed by it, so a worker never mixes versions. `precision`, `batch_size` and
    `torch_threads` are what the run's loader must be built with (the plan records them).
    """

    model_key: str
    lookback: int
    n_features: int
    horizon: int
    freq: str
    precision: str = "fp32"
    batch_size: int = 512
    # Fused path: windows gathered per model call, so each output Arrow batch holds about
    # `scoring.arrow_batch_rows` forecast rows (windows x horizon).
    gather_windows: int = 512
    torch_threads: int = 1
    # Lowest forecast in original units (the model's `floor`: 0 for data that never went negative).
    floor: float | None = None
    # The window's last steps the network reads (0: all `lookback`); the MASE denominator stored
    # with each forecast is taken over them, as before windows carried a context for the members.
    network_lookback: int = 0


@dataclass(frozen=True)
class Lineage:
    """Where a run's forecasts come from; written on every forecast row."""

    model_name: str
    model_version: str
    model_run_id: str | None
    source_version: int
    job_run_id: str
    scored_at: datetime
    model_role: str = "other"  # champion | challenger | other: the version's alias when scored


def check_model_matches(meta: ModelShape, cfg: LakecastConfig, feature_names: Sequence[str]) -> None:
    """Refuse a model whose expected windows differ from the configured ones (before any work).

    Raises the model's ModelMismatchError naming each difference (lookback, features,
    horizon, frequency).
    """
    s = steps(cfg)
    meta.check_windows(lookback=s.lookback, feature_names=feature_names, horizon=s.horizon, freq=cfg.data.freq,
                       context=s.context)


def plan_for(meta: ModelShape, cfg: LakecastConfig, *, model_key: str, precision: str) -> ScoringPlan:
    """The scoring plan for a checked model (`meta`) under this configuration."""
    return ScoringPlan(model_key=model_key, lookback=meta.lookback, network_lookback=meta.network_lookback,
                       n_features=meta.n_features,
                       horizon=meta.horizon, freq=meta.freq, precision=precision,
                       batch_size=cfg.scoring.batch_size_for(precision),
                       gather_windows=max(1, cfg.scoring.arrow_batch_rows // meta.horizon),
                       torch_threads=cfg.scoring.torch_threads, floor=meta.floor)
