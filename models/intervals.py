"""Fit the interval calibration of a trained model on its validation windows (at training time).

The factors themselves (`lakecast_forecaster.calibration`) travel inside the model and are
applied by `Predictor.predict`; this module picks the windows, predicts them once with the
uncalibrated network and reports the validation coverage before and after.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace

import numpy as np

from models.arrays import WindowArrays
from models.lakecast_forecaster.calibration import (
    MAX_WIDENING,
    IntervalCalibration,
    coverage,
    enough_history,
    fit_calibration,
)
from models.lakecast_forecaster.lstm import LSTMForecaster
from models.lakecast_forecaster.predictor import ModelMeta, Predictor
from models.train import TrainingError, WindowSource

log = logging.getLogger(__name__)

MAX_WINDOWS = 100_000  # validation windows used for calibration, sampled deterministically above it
WIDE_FACTOR = 4.0      # a factor above this: the validation period looks unlike training (warned)
HISTORY_WINDOWS = 20_000  # training windows sampled for the blend's member split (Theta: about 8 µs each)
CAP_WINDOWS = 5_000       # of those, predicted for the calibration cap (a 90 % quantile per step needs no more)


@dataclass(frozen=True)
class CalibrationReport:
    """The fitted factors and the validation band before/after (fractions inside, below, above)."""

    calibration: IntervalCalibration
    n_windows: int
    before: tuple[float, float, float]
    after: tuple[float, float, float]
    source: str = "validation"   # the windows whose factors sized the band (`fit_calibration`)

    def params(self) -> dict[str, str]:
        c = self.calibration
        return {"calibration.low_factors": _factors_text(c.low), "calibration.high_factors": _factors_text(c.high),
                "calibration.n_val_windows": str(self.n_windows), "calibration.source": self.source}

    def metrics(self) -> dict[str, float]:
        return {"val_coverage_before_calibration": self.before[0], "val_coverage_after_calibration": self.after[0],
                "val_below_low_after_calibration": self.after[1], "val_above_high_after_calibration": self.after[2]}


Sample = tuple[np.ndarray, np.ndarray, np.ndarray]  # windows X, actuals y, offsets (scale_loc / scale_scale)


def sample_windows(val: WindowSource, max_windows: int, seed: int) -> Sample:
    """Up to `max_windows` validation windows (X, y, offset): a seeded sample when in memory, else
    the first blocks."""
    blocks = [val] if isinstance(val, WindowArrays) else val()
    xs, ys, cs, n = [], [], [], 0
    for block in blocks:
        if block.y is None or not len(block):
            continue
        if len(block) > max_windows - n:
            idx = np.sort(np.random.default_rng(seed).choice(len(block), max_windows - n, replace=False))
            block = block.take(idx)
        assert block.y is not None
        xs.append(block.X)
        ys.append(block.y)
        cs.append(block.offset)
        n += len(block)
        if n >= max_windows:
            break
    if not n:
        raise TrainingError("no validation windows with targets to fit the statistical blend and the interval "
                            "calibration on; check train.val_periods, or set model.statistical_blend=false and "
                            "model.calibrate_intervals=false")
    return np.concatenate(xs), np.concatenate(ys), np.concatenate(cs)


def _factors_text(factors: tuple[float, ...]) -> str:
    return ",".join(f"{v:.4g}" for v in factors)


def sample_history(train: WindowSource, seed: int = 0) -> Sample:
    """A sample of the training windows (X, y, offset) for the blend's member split and the calibration cap:
    taken while the training set is still on disk (a streamed set is deleted after fitting)."""
    return sample_windows(train, HISTORY_WINDOWS, seed)


def calibrate(module: LSTMForecaster, meta: ModelMeta, val: WindowSource, *, device: str = "cpu",
              max_windows: int = MAX_WINDOWS, seed: int = 0,
              history: Sample | None = None,
              shipped: LSTMForecaster | None = None,
              source: str = "validation") -> tuple[ModelMeta, CalibrationReport]:
    """`meta` with the calibration fitted on (a sample of) `val`, and what it changed there;
    `history` (training windows, `sample_history`) bounds how far one unusual
    validation period can widen or narrow the band, or with `source="training"` sizes it
    (see `fit_calibration`).

    `shipped`: the network that ships when it is not `module` (`train.refit` trained it on the
    validation period too). Its band is sized against `module`'s medians there, which are out of
    sample: the refitted network's own would be in-sample errors, too small, and its band is
    narrower than the first network's (measured 8-14 % on the accuracy benchmark)."""
    X, y, offset = sample_windows(val, max_windows, seed)
    predictor = Predictor(module, replace(meta, calibration=None), device=device)
    raw = predictor.predict(X, offset=offset)
    if shipped is not None:
        predictor = Predictor(shipped, replace(meta, calibration=None), device=device)
        band = predictor.predict(X, offset=offset)
        raw = np.stack((raw[..., 1] - (band[..., 1] - band[..., 0]), raw[..., 1],
                        raw[..., 1] + (band[..., 2] - band[..., 1])), axis=-1)
    alone = cal = fit_calibration(raw, y, meta.quantiles)
    also, used = "", "validation"
    if history is not None and len(history[0]):
        hx, hy, hc = history
        if len(hx) > CAP_WINDOWS:  # the sample is in window order: take a seeded subset, not the first
            keep = np.sort(np.random.default_rng(seed).choice(len(hx), CAP_WINDOWS, replace=False))
            hx, hy, hc = hx[keep], hy[keep], hc[keep]
        cal = fit_calibration(raw, y, meta.quantiles, history=(predictor.predict(hx, offset=hc), hy), source=source)
        if source == "training" and enough_history(hy):
            used = "training"
            also = (f", sized by {len(hx)} training windows (model.calibrate_from=training; validation alone: "
                    f"low {_factors_text(alone.low)}, high {_factors_text(alone.high)})")
        else:
            bounded = sum(a != c for a, c in zip((*alone.low, *alone.high), (*cal.low, *cal.high), strict=True))
            also = (f", within 1/{MAX_WIDENING:g}x-{MAX_WIDENING:g}x the factors of {len(hx)} training windows "
                    f"({bounded} of {2 * cal.horizon} bounded)")
    report = CalibrationReport(cal, len(X), coverage(raw, y), coverage(cal.apply(raw), y), used)
    log.info("interval calibration on %d validation windows%s: p10-p90 coverage %.3f -> %.3f "
             "(factors low %s, high %s)", len(X), also, report.before[0], report.after[0],
             report.params()["calibration.low_factors"], report.params()["calibration.high_factors"])
    widest = max((*alone.low, *alone.high), default=1.0)
    if widest > WIDE_FACTOR:
        log.warning("the validation period alone would widen the interval band up to %.1f times what the network "
                    "learned (%.1f times in the factors kept, sized by %s windows): the validation period "
                    "(train.val_periods) holds errors far beyond the training period's (a level shift or an outlier "
                    "period?). Check the series near the end of the history, or set model.calibrate_intervals=false",
                    widest, max((*cal.low, *cal.high), default=1.0), used)
    return replace(meta, calibration=cal), report
