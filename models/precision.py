"""Reduced-precision inference (bf16 / fp16) and the accuracy guard that allows it.

Three separate questions, answered in order:

1. Can this hardware run the precision natively? (`available_precisions`: CPU bf16 needs the
   avx512_bf16 or amx_bf16 instructions; a CUDA device runs fp16, and bf16 where supported.
   fp16 on a CPU is not offered: oneDNN has no fp16 LSTM there.)
2. Is the model version still accurate in it? (`precision_check`, run when a version is
   trained or promoted, stored as model-version tags; `guard_allows` reads them back.)
3. Is it faster here, now? (`calibrate`: a short timing at job start.)

`auto` scores in reduced precision only when all three say yes (`choose_precision`);
otherwise fp32, with the reason. No Spark here.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from conf.errors import LakecastError
from models.arrays import WindowArrays
from models.evaluate import MODEL, backtest
from models.lakecast_forecaster.predictor import Predictor

log = logging.getLogger(__name__)

FP32, BF16, FP16 = "fp32", "bf16", "fp16"
REDUCED = (BF16, FP16)
DTYPES = {BF16: torch.bfloat16, FP16: torch.float16}
TAG_PREFIX = "lakecast.precision"
CPU_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


class PrecisionError(LakecastError):
    """A precision was asked for that this model version or hardware cannot use."""


def cpu_flags(cpuinfo: str | Path = "/proc/cpuinfo") -> frozenset[str]:
    """The CPU feature flags of this machine (empty where /proc/cpuinfo is not readable)."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return frozenset()
    for line in text.splitlines():
        if line.startswith(("flags", "Features")):
            return frozenset(line.split(":", 1)[1].split())
    return frozenset()


def available_precisions(device: str, flags: frozenset[str] | None = None) -> tuple[str, ...]:
    """Reduced precisions this device runs natively (fp32 is always available and not listed).

    `flags` defaults to this machine's CPU flags; pass a set to ask about another machine.
    """
    if device.startswith("cuda"):
        return (BF16, FP16) if torch.cuda.is_bf16_supported() else (FP16,)
    flags = cpu_flags() if flags is None else flags
    return (BF16,) if any(f in flags for f in CPU_BF16_FLAGS) else ()


@contextmanager
def precision_context(precision: str, device: str) -> Iterator[None]:
    """Run the enclosed forward passes in `precision` (autocast; weights stay fp32)."""
    if precision == FP32:
        yield
        return
    if precision not in DTYPES:
        raise PrecisionError(f"unknown precision {precision!r}; use fp32, bf16 or fp16")
    with torch.autocast(device_type=torch.device(device).type, dtype=DTYPES[precision]):
        yield


class WindowsPredictFn(Protocol):
    """What `predict_fn` returns: windows (and optionally each window's offset) -> quantiles."""

    def __call__(self, X: np.ndarray, offset: np.ndarray | None = None, /) -> np.ndarray: ...


def predict_fn(predictor: Predictor, precision: str, batch_size: int) -> WindowsPredictFn:
    """`(X (N, lookback, features), offset (N,) or None) -> (N, horizon, 3)` float32 in scaled units,
    in `precision` (offset: each window's scale_loc / scale_scale, see `Predictor.predict`)."""
    device = str(predictor.device)

    def predict(X: np.ndarray, offset: np.ndarray | None = None) -> np.ndarray:
        with precision_context(precision, device):
            return predictor.predict(X, batch_size=batch_size, offset=offset)

    return predict


# --- the accuracy guard -------------------------------------------------------------------


def _rel_diff(reduced: float, full: float) -> float:
    if not (np.isfinite(reduced) and np.isfinite(full)):
        return float("inf")
    return abs(reduced - full) / max(abs(full), 1e-12)


def precision_check(
    predictor: Predictor,
    X: np.ndarray,
    y: np.ndarray,
    loc: np.ndarray,
    scale: np.ndarray,
    season: int,
    tolerance: float,
    *,
    precisions: Sequence[str] | None = None,
    batch_size: int = 1024,
) -> dict[str, str]:
    """Backtest the model in fp32 and in each reduced precision on the same windows.

    X (N, lookback, features), y (N, horizon) scaled; loc/scale (N,). A precision passes
    when both MASE and pinball loss differ from fp32 by less than `tolerance` (relative).
    Returns model-version tags (strings), e.g. `lakecast.precision.bf16.ok = "true"`;
    `guard_allows` reads them back. Precisions the device cannot run are not checked.
    """
    device = str(predictor.device)
    precisions = tuple(precisions) if precisions is not None else available_precisions(device) or (BF16,)
    windows = WindowArrays(np.ascontiguousarray(X, dtype=np.float32), np.asarray(y, dtype=np.float32),
                           np.asarray(loc, dtype=np.float64), np.asarray(scale, dtype=np.float64))
    quantiles = predictor.meta.quantiles
    floor = predictor.meta.floor
    offset = windows.offset
    lookback = predictor.meta.network_lookback   # MASE as the test backtest scales it
    full = backtest(windows, predictor.predict(windows.X, batch_size=batch_size, offset=offset), season=season,
                    quantiles=quantiles, floor=floor, lookback=lookback).overall[MODEL]
    tags = {f"{TAG_PREFIX}.tolerance": f"{tolerance:g}", f"{TAG_PREFIX}.windows": str(len(windows)),
            f"{TAG_PREFIX}.fp32.mase": f"{full['mase']:.6g}",
            f"{TAG_PREFIX}.fp32.pinball": f"{full['pinball']:.6g}"}
    for precision in precisions:
        if device.startswith("cpu") and precision == FP16:
            tags[f"{TAG_PREFIX}.{precision}.ok"] = "false"
            tags[f"{TAG_PREFIX}.{precision}.reason"] = "fp16 LSTM inference needs a CUDA device"
            continue
        pred = predict_fn(predictor, precision, batch_size)(windows.X, offset)
        red = backtest(windows, pred, season=season, quantiles=quantiles, floor=floor,
                       lookback=lookback).overall[MODEL]
        mase_d, pin_d = _rel_diff(red["mase"], full["mase"]), _rel_diff(red["pinball"], full["pinball"])
        ok = mase_d < tolerance and pin_d < tolerance
        tags.update({
            f"{TAG_PREFIX}.{precision}.mase_rel_diff": f"{mase_d:.6g}",
            f"{TAG_PREFIX}.{precision}.pinball_rel_diff": f"{pin_d:.6g}",
            f"{TAG_PREFIX}.{precision}.ok": str(ok).lower(),
        })
        log.info("precision check %s on %d windows: MASE rel diff %.4g, pinball rel diff %.4g "
                 "(tolerance %g): %s",
                 precision, len(windows), mase_d, pin_d, tolerance, "pass" if ok else "FAIL")
    return tags


def guard_allows(tags: Mapping[str, str], precision: str, tolerance: float) -> tuple[bool, str]:
    """Whether a version's stored check lets it be scored in `precision`, and why (not).

    The stored relative differences are compared with the tolerance configured now, so
    tightening `scoring.precision_tolerance` takes effect without re-checking.
    """
    if precision == FP32:
        return True, "fp32 needs no check"
    key = f"{TAG_PREFIX}.{precision}"
    if f"{key}.ok" not in tags:
        return False, (f"the model version has no {precision} accuracy check (tag {key}.ok); it is run "
                       "when a version is trained or promoted")
    if f"{key}.mase_rel_diff" not in tags:
        return False, tags.get(f"{key}.reason", f"the {precision} accuracy check did not run")
    mase_d, pin_d = float(tags[f"{key}.mase_rel_diff"]), float(tags[f"{key}.pinball_rel_diff"])
    if mase_d < tolerance and pin_d < tolerance:
        return True, f"{precision} within tolerance {tolerance:g} (MASE {mase_d:.3g}, pinball {pin_d:.3g})"
    return False, (f"{precision} outputs drift past scoring.precision_tolerance={tolerance:g} on the "
                   f"backtest (MASE rel diff {mase_d:.3g}, pinball rel diff {pin_d:.3g})")


# --- calibration and the decision --------------------------------------------------------


def _windows_per_s(predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, repeats: int) -> float:
    predict(X[: min(len(X), 16)])  # warm-up: oneDNN builds its primitives on first use
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter()
        predict(X)
        best = min(best, time.perf_counter() - t0)
    return len(X) / best


# The windows' offset (loc / scale) in the speed calibration: every value positive, as sales are.
CALIBRATION_OFFSET = 10.0


def calibrate(predictor: Predictor, precision: str, *, n_windows: int, batch_size: int,
              threads: int, repeats: int = 3, seed: int = 0, fp32_batch_size: int | None = None) -> float:
    """Speed of `precision` relative to fp32 on this machine (>1: faster), on random windows.

    Runs with `threads` torch threads, as each scoring worker will; best of `repeats`. Each
    precision runs at its own batch size (`fp32_batch_size`, default `batch_size`), as scoring would.
    """
    m = predictor.meta
    X = np.random.default_rng(seed).standard_normal((n_windows, m.lookback, m.n_features)).astype(np.float32)
    offset = np.full(n_windows, CALIBRATION_OFFSET)  # positive windows: a multiplicative blend's path
    prev = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        fp32_fn = predict_fn(predictor, FP32, fp32_batch_size or batch_size)
        reduced_fn = predict_fn(predictor, precision, batch_size)
        fp32 = _windows_per_s(lambda x: fp32_fn(x, offset[:len(x)]), X, repeats)
        reduced = _windows_per_s(lambda x: reduced_fn(x, offset[:len(x)]), X, repeats)
    finally:
        torch.set_num_threads(prev)
    log.info("calibration on %d windows, %d thread(s): fp32 %.0f windows/s, %s %.0f windows/s (%.2fx)",
             n_windows, threads, fp32, precision, reduced, reduced / fp32)
    return reduced / fp32


@dataclass(frozen=True)
class PrecisionChoice:
    """The precision a run scores in, and why (recorded in job_runs and the summary)."""

    precision: str
    requested: str
    reason: str
    speedup: float | None = None

    def as_details(self) -> dict[str, Any]:
        return {"precision": self.precision, "precision_requested": self.requested,
                "precision_reason": self.reason, "precision_speedup": self.speedup}


def choose_precision(
    requested: str,
    *,
    device: str,
    available: Sequence[str],
    tags: Mapping[str, str],
    tolerance: float,
    calibrate_fn: Callable[[str], float],
    min_speedup: float,
) -> PrecisionChoice:
    """Decide the run's precision; every fallback to fp32 says why.

    `requested` is `scoring.precision`: fp32 is always honoured; bf16/fp16 are used when the
    device runs them and the guard allows; `auto` tries the device's reduced precisions in
    order (bf16 first) and also needs the calibration to show at least `min_speedup`.
    """
    if requested == FP32:
        return PrecisionChoice(FP32, requested, "scoring.precision is fp32")
    candidates = list(available) if requested == "auto" else [requested]
    if not candidates:
        return PrecisionChoice(FP32, requested, f"no reduced precision runs natively on {device} "
                               f"(CPU bf16 needs one of {', '.join(CPU_BF16_FLAGS)}; fp16 needs CUDA)")
    reasons = []
    for precision in candidates:
        if precision not in available:
            reasons.append(f"{precision} does not run natively on {device}")
            continue
        ok, why = guard_allows(tags, precision, tolerance)
        if not ok:
            reasons.append(why)
            continue
        if requested != "auto":
            return PrecisionChoice(precision, requested, why)
        speedup = calibrate_fn(precision)
        if speedup >= min_speedup:
            return PrecisionChoice(precision, requested, f"{why}; {speedup:.2f}x fp32 in calibration",
                                   speedup)
        reasons.append(f"{precision} was only {speedup:.2f}x fp32 in calibration "
                       f"(needs {min_speedup:g}x, scoring.calibration_min_speedup)")
    return PrecisionChoice(FP32, requested, "; ".join(reasons))


def check_version(cfg: Any, predictor: Predictor, windows: WindowArrays) -> dict[str, str]:
    """`precision_check` on a version's backtest windows with the configured tolerance and season.

    What `lakecast train` and `lakecast promote` store as model-version tags. No windows
    with targets: no tags (the version is then scored in fp32, saying why).
    """
    from conf.freq import parse_freq

    if windows.y is None or len(windows) == 0:
        log.warning("no backtest windows: precision check skipped; the version will be scored in fp32")
        return {}
    X = windows.X[:, -predictor.meta.lookback:]  # promote's windows may be wider (a wider champion)
    return precision_check(predictor, X, windows.y, windows.loc, windows.scale,
                           parse_freq(cfg.data.freq).season_length(), cfg.scoring.precision_tolerance)
