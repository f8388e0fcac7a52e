"""A trained forecaster as a plain `predict(np.ndarray) -> np.ndarray` with its metadata.

This is what scoring loads on each Spark worker (once, from a local directory) and what the
MLflow pyfunc wraps. The directory holds `meta.json` (shapes, feature names, frequency,
network spec, statistical blend, interval calibration, forecast floor) and `weights.pt` (a torch state dict,
loaded with `weights_only=True`). The blend with statistical forecasts of each window and then
the calibration (both fitted on the validation windows at training time) are applied to the
network's output here, so every path that scores through a Predictor gets them. The forecast
floor (`floor`) is in original units, so it is applied where forecasts are unscaled (scoring's
kernel, the backtests), not here.
"""

from __future__ import annotations

import json
import logging
import math
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .blend import StatisticalBlend
from .calibration import IntervalCalibration, apply_calibration
from .errors import ModelLoadError, ModelMismatchError  # raised here; callers may import them from here
from .lstm import LSTMForecaster, LSTMSpec
from .padding import leading_padding
from .statistical import MULTIPLICATIVE_MEMBERS, RECENT_SUFFIX

log = logging.getLogger(__name__)

META_FILE, WEIGHTS_FILE = "meta.json", "weights.pt"
# 2: meta.json may carry a statistical blend. A model without one is still written as 1, so older
# lakecast keeps reading it; one with a blend is refused there ("retrain") instead of silently
# scored by the network alone under a calibration fitted on the blend.
# 3: the blend splits the members' share per window (`StatisticalBlend.splits_locally`); written only then.
# 4: that split weighs the members' backtests by a power other than 1 (`StatisticalBlend.power`).
# 5: the blend has the airline member (`statistical.airline_forecast`), which format 4 readers do not know.
# 6: forecasts have a floor (`ModelMeta.floor`), which format 5 readers would not apply.
# 7: the blend has the damped-trend member (`statistical.damped_forecast`), which format 6 readers do not know.
# 8: the blend has the members that take a multiplicative season out (`statistical.MULTIPLICATIVE_MEMBERS`),
#    which format 7 readers do not know.
# 9: windows are longer than the network's lookback (a context the statistical members read), which
#    format 8 readers would feed to the network whole.
# 10: the blend has members refitted on each window's recent steps (`statistical.RECENT_MEMBERS`),
#    which format 9 readers do not know.
# 11: the blend has the naive member (`statistical.naive_forecast`), which format 10 readers do not know.
# 12: the blend has the Holt-Winters member (`statistical.holt_winters_forecast`), which format 11 readers
#    do not know.
FORMAT_VERSION = 12
READABLE_FORMATS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)


def _format_of(blend: StatisticalBlend | None, floor: float | None = None, context: bool = False) -> int:
    """The oldest format that scores the model as written, so older lakecast reads what it can."""
    if blend is not None and {"holt_winters", "holt_winters" + RECENT_SUFFIX} & set(blend.members):
        return 12
    if blend is not None and "naive" in blend.members:
        return 11
    if blend is not None and blend.has_recent:
        return 10
    if context:
        return 9
    if blend is not None and set(blend.members) & set(MULTIPLICATIVE_MEMBERS):
        return 8
    if blend is not None and "damped" in blend.members:
        return 7
    if floor is not None:
        return 6
    if blend is None:
        return 1
    if "airline" in blend.members:
        return 5
    if not blend.splits_locally:
        return 2
    return 3 if blend.power == 1.0 else 4


@dataclass(frozen=True)
class ModelMeta:
    """What a model expects and produces; checked against the configured windows before scoring."""

    lookback: int  # steps per window: the network reads the last `network.lookback`, the members all
    n_features: int
    feature_names: tuple[str, ...]
    horizon: int
    quantiles: tuple[float, float, float]
    freq: str
    network: LSTMSpec
    # Scale factors of the p10/p90 distances per horizon step; None (models saved before it): as trained.
    calibration: IntervalCalibration | None = None
    # Shares of the median per step: the network's and statistical members'; None (older models): network only.
    blend: StatisticalBlend | None = None
    # Lowest forecast in original units (0.0 for data that never went negative); None: no floor.
    # Applied where forecasts are unscaled: scoring (`pipelines.scoring.kernel`) and backtests.
    floor: float | None = None

    def __post_init__(self) -> None:
        if self.network.lookback > self.lookback:
            raise ModelLoadError(f"the model's network reads {self.network.lookback} steps of windows of "
                                 f"{self.lookback}; retrain the model")
        if self.floor is not None and not math.isfinite(self.floor):
            raise ModelLoadError(f"the model's forecast floor is {self.floor}; retrain the model")
        for what, part in (("interval calibration", self.calibration), ("statistical blend", self.blend)):
            if part is not None and part.horizon != self.horizon:
                raise ModelLoadError(f"{what} has {part.horizon} steps but the model's "
                                     f"horizon is {self.horizon}; retrain the model")

    @property
    def network_lookback(self) -> int:
        """The steps of each window the network reads: its last ones (`lookback` is the window's width)."""
        return self.network.lookback

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["calibration"] = None if self.calibration is None else self.calibration.to_dict()
        d["blend"] = None if self.blend is None else self.blend.to_dict()
        d["format_version"] = _format_of(self.blend, self.floor, self.lookback > self.network.lookback)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ModelMeta:
        if d.get("format_version") not in READABLE_FORMATS:
            raise ModelLoadError(f"model format_version {d.get('format_version')!r} is not supported "
                                 f"(this lakecast reads {', '.join(map(str, READABLE_FORMATS))}); retrain the model")
        return cls(lookback=int(d["lookback"]), n_features=int(d["n_features"]),
                   feature_names=tuple(d["feature_names"]), horizon=int(d["horizon"]),
                   quantiles=tuple(float(q) for q in d["quantiles"]),  # type: ignore[arg-type]
                   freq=str(d["freq"]), network=LSTMSpec(**d["network"]),
                   calibration=IntervalCalibration.from_dict(cal) if (cal := d.get("calibration")) else None,
                   blend=StatisticalBlend.from_dict(b) if (b := d.get("blend")) else None,
                   floor=None if (f := d.get("floor")) is None else float(f))

    def check_windows(self, *, lookback: int, feature_names: Sequence[str], horizon: int, freq: str,
                      context: int = 0) -> None:
        """Raise ModelMismatchError naming every difference from the configured windows (`lookback`
        the network's, `context` the steps before it that the statistical members also read)."""
        problems = []
        if lookback != self.network.lookback:
            problems.append(f"lookback {self.network.lookback} (configured windows.lookback={lookback})")
        elif lookback + context != self.lookback:
            problems.append(f"statistical lookback {self.lookback} (configured "
                            f"model.statistical_lookback={lookback + context})")
        if tuple(feature_names) != self.feature_names:
            problems.append(f"features {list(self.feature_names)} "
                            f"(configured windows give {list(feature_names)})")
        if horizon != self.horizon:
            problems.append(f"horizon {self.horizon} (configured windows.horizon={horizon})")
        if freq != self.freq:
            problems.append(f"frequency {self.freq} (configured data.freq={freq})")
        if problems:
            raise ModelMismatchError(
                "the model was trained for " + "; ".join(problems)
                + ". Score with a matching configuration or train a model for this one"
            )


class Predictor:
    """A loaded forecaster: `predict(X (N, lookback, features) float32) -> (N, horizon, 3)` scaled."""

    def __init__(self, module: LSTMForecaster, meta: ModelMeta, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.module = module.to(self.device).eval()
        self.meta = meta
        self._calibration = meta.calibration.arrays() if meta.calibration is not None else None
        self._blend = meta.blend if meta.blend is not None and meta.blend.active else None
        self._warned = False

    @property
    def needs_offset(self) -> bool:
        """Whether `predict` needs each window's offset (scale_loc / scale_scale) to forecast as scoring does."""
        return self._blend is not None and self._blend.needs_offset

    def predict(self, X: np.ndarray, batch_size: int = 4096, offset: np.ndarray | None = None) -> np.ndarray:
        """Quantile forecasts (low, median, high) in scaled units, float32 (N, horizon, 3), blended
        with the statistical members and calibrated. `offset` (N,): each window's scale_loc /
        scale_scale (`window_offsets`); a model whose blend has members that take a multiplicative
        season out (`needs_offset`) forecasts without it as if the season were additive, and warns."""
        m = self.meta
        if X.ndim != 3 or X.shape[1:] != (m.lookback, m.n_features):
            raise ModelMismatchError(f"model expects windows of shape (N, {m.lookback}, {m.n_features}), "
                                     f"got {X.shape}")
        out = np.empty((X.shape[0], m.horizon, 3), dtype=np.float32)
        x_all = np.ascontiguousarray(X, dtype=np.float32)
        with torch.inference_mode(), warnings.catch_warnings():
            # Arrow-backed arrays are read-only; inference never writes to its input tensor.
            warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
            for start in range(0, X.shape[0], batch_size):
                x = torch.from_numpy(x_all[start:start + batch_size]).to(self.device)
                out[start:start + batch_size] = self.module(x).float().cpu().numpy()
        if self._blend is not None:
            if offset is None and self._blend.needs_offset and not self._warned:
                log.warning("this model's statistical blend has members that take a multiplicative season "
                            "out of positive windows, which needs each window's scale_loc / scale_scale; "
                            "without them those members forecast with an additive season (pass "
                            "offset=scale_loc / scale_scale)")
                self._warned = True
            if offset is not None and len(offset) != len(X):
                raise ModelMismatchError(f"{len(offset)} offsets for {len(X)} windows")
            self._blend.apply(out, x_all[:, :, 0], leading_padding(x_all), offset)  # feature 0: the scaled value
        if self._calibration is not None:
            apply_calibration(out, *self._calibration, out=out)  # one elementwise pass, in place
        return out


def window_offsets(loc: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """(N,) each window's offset, ``scale_loc / scale_scale``: its original values over its scale are
    ``scaled + offset``, all a multiplicative season needs (`Predictor.predict`)."""
    return np.asarray(loc, dtype=np.float64) / np.asarray(scale, dtype=np.float64)


def save_predictor(module: LSTMForecaster, meta: ModelMeta, directory: str | Path) -> Path:
    """Write `meta.json` and `weights.pt` (CPU tensors) into `directory`."""
    path = Path(directory)
    path.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    torch.save(state, path / WEIGHTS_FILE)
    (path / META_FILE).write_text(json.dumps(meta.to_dict(), indent=1, sort_keys=True))
    return path


def find_predictor_dir(local_dir: str | Path) -> Path:
    """The folder holding meta.json: `local_dir` itself or inside a downloaded MLflow model."""
    root = Path(local_dir)
    if (root / META_FILE).is_file():
        return root
    found = sorted(p.parent for p in root.rglob(META_FILE)) if root.is_dir() else []
    if len(found) == 1:
        return found[0]
    what = "does not exist" if not root.exists() else (
        f"holds no {META_FILE}" if not found else f"holds several models: {', '.join(map(str, found))}")
    raise ModelLoadError(f"model directory {root} {what}; download a registered version first "
                         "(models.registry.download_version)")


def load_predictor(local_dir: str | Path, *, device: str = "cpu") -> Predictor:
    """Load a model from a local directory (a predictor dir or a downloaded MLflow model)."""
    path = find_predictor_dir(local_dir)
    try:
        meta = ModelMeta.from_dict(json.loads((path / META_FILE).read_text()))
        state = torch.load(path / WEIGHTS_FILE, map_location="cpu", weights_only=True)
    except (OSError, KeyError, TypeError, ValueError) as e:
        raise ModelLoadError(f"model directory {path} is incomplete or corrupt: {e}") from e
    module = LSTMForecaster(meta.network)
    module.load_state_dict(state)
    log.info("loaded model from %s (lookback %d%s, %d features, horizon %d)", path, meta.network.lookback,
             f", windows of {meta.lookback} for the statistical members" if meta.lookback > meta.network.lookback
             else "", meta.n_features, meta.horizon)
    return Predictor(module, meta, device)
