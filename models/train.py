"""Train the LSTM with pinball loss and early stopping on a time-based validation split.

Data comes in as `WindowArrays` (small data: held in memory, shuffled fully each epoch) or
as a zero-argument callable that returns a fresh iterator of `WindowArrays` blocks per
epoch (large data: Arrow record batches streamed from storage, shuffled within each
block), so memory is bounded by a block rather than by the data set. Same code on GPU or
CPU. No Spark here.

An epoch sees at most `train.max_windows_per_epoch` windows, drawn afresh each epoch: training
time is linear in the windows an epoch sees (about 0.5 ms per window on two cores), so thousands
of long series would otherwise train for hours. The budget is a cap on the worst case, above every
benchmark set: below a set's size it costs a little accuracy (a third of aus_retail's windows per
epoch: MASE +0.9 %) and saves less time than its share, as early stopping runs more epochs
(bench/RESULTS.md, "A window budget per epoch").
"""

from __future__ import annotations

import copy
import logging
import math
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch

from conf import LakecastConfig
from conf.auto_steps import steps
from conf.errors import LakecastError
from models.arrays import WindowArrays
from models.lakecast_forecaster.lstm import LSTMForecaster, LSTMSpec, build_model, pinball_loss

log = logging.getLogger(__name__)

WindowSource = WindowArrays | Callable[[], Iterable[WindowArrays]]


class TrainingError(LakecastError):
    """Training cannot start or produced no usable model; the message says why."""


@dataclass(frozen=True)
class EpochStats:
    epoch: int
    train_loss: float
    val_loss: float
    seconds: float


@dataclass
class TrainResult:
    """The best model (lowest validation loss) and how training went."""

    model: LSTMForecaster
    spec: LSTMSpec
    history: list[EpochStats] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    device: str = "cpu"
    seconds: float = 0.0
    n_train: int = 0
    n_val: int = 0
    windows_per_epoch: int = 0  # the windows one epoch trained on (n_train, or fewer under the budget)

    @property
    def best_val_loss(self) -> float:
        return min(h.val_loss for h in self.history)


def resolve_device(wanted: str) -> torch.device:
    """`auto` picks CUDA when present; asking for `cuda` without one is an error, not a silent CPU run."""
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if wanted == "cuda" and not torch.cuda.is_available():
        raise TrainingError("train.device is 'cuda' but no CUDA GPU is visible; use train.device=auto or cpu")
    return torch.device(wanted)


AUTO_MAX_THREADS = 2  # `train.torch_threads: auto` takes the usable cores up to this (measured on 2)


def training_threads(wanted: int | str) -> int:
    """torch threads for training: `auto` is the usable cores, at most AUTO_MAX_THREADS; 0 leaves
    torch's default. The small LSTM's matrix products gain from a second thread on an idle
    machine (bench/RESULTS.md, "Training threads"), not from many."""
    if wanted == "auto":
        cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
        return max(1, min(cores, AUTO_MAX_THREADS))
    return int(wanted)


def _blocks(source: WindowSource) -> Iterator[WindowArrays]:
    if isinstance(source, WindowArrays):
        yield source
    else:
        yield from source()


def _first_block(source: WindowSource, what: str) -> WindowArrays:
    for block in _blocks(source):
        if len(block):
            if block.y is None:
                raise TrainingError(f"{what} windows have no targets; training needs windows "
                                    "built with targets")
            return block
    raise TrainingError(f"no usable {what} windows; check the split sizes (train.val_periods, "
                        "train.test_periods) against the history length, and the skip reasons")


def spec_for(cfg: LakecastConfig, sample: WindowArrays) -> LSTMSpec:
    """The network shape for this data (lookback, features, horizon) and `model.*` settings; the
    network reads the configured windows.lookback of windows that also carry a context for the
    statistical members (`conf.auto_steps.Steps.width`)."""
    assert sample.y is not None
    _, lookback, n_features = sample.X.shape
    s = steps(cfg)
    if lookback == s.width:
        lookback = s.lookback
    return LSTMSpec(
        n_features=int(n_features), lookback=int(lookback), horizon=int(sample.y.shape[1]),
        hidden_size=cfg.model.hidden_size, num_layers=cfg.model.num_layers,
        dropout=cfg.model.dropout, linear_skip=cfg.model.linear_skip,
    )


def epoch_share(n_windows: int | None, limit: int) -> float:
    """The share of the training windows one epoch draws: all of them (1.0) up to `limit` windows
    (`train.max_windows_per_epoch`; 0: no limit), else `limit / n_windows`. A stream whose size is
    not known (None) is read whole."""
    if not limit or not n_windows or n_windows <= limit:
        return 1.0
    return limit / n_windows


def _count(source: WindowSource, n_windows: int | None) -> int | None:
    return len(source) if isinstance(source, WindowArrays) else n_windows


def _minibatches(block: WindowArrays, batch_size: int, rng: np.random.Generator | None, share: float = 1.0,
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Mini-batches of `block` in a random order (`rng`) or in order; `share` < 1 (needs `rng`):
    a random subset of that share of the block's windows, a new one on each call."""
    assert block.y is not None
    n = len(block)
    order = rng.permutation(n) if rng is not None else np.arange(n)
    if share < 1.0 and rng is not None:
        order = order[:max(1, round(share * n))]
    for start in range(0, len(order), batch_size):
        idx = order[start:start + batch_size]
        yield block.X[idx], block.y[idx]


def _train_epoch(model: LSTMForecaster, source: WindowSource, opt: torch.optim.Optimizer,
                 q: torch.Tensor, batch_size: int, rng: np.random.Generator, device: torch.device,
                 share: float = 1.0) -> tuple[float, int]:
    model.train()
    total, count = 0.0, 0
    for block in _blocks(source):
        for xb, yb in _minibatches(block, batch_size, rng, share):
            x = torch.from_numpy(xb).to(device, non_blocking=True)
            y = torch.from_numpy(yb).to(device, non_blocking=True)
            opt.zero_grad(set_to_none=True)
            loss = pinball_loss(model(x), y, q)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            total += float(loss.detach()) * len(xb)
            count += len(xb)
    return total / max(count, 1), count


@torch.inference_mode()
def evaluate_loss(model: LSTMForecaster, source: WindowSource, q: torch.Tensor, batch_size: int,
                  device: torch.device) -> tuple[float, int]:
    """Mean pinball loss (scaled units) over all windows of `source`, and their count."""
    model.eval()
    total, count = 0.0, 0
    for block in _blocks(source):
        for xb, yb in _minibatches(block, batch_size, None):
            x, y = torch.from_numpy(xb).to(device), torch.from_numpy(yb).to(device)
            total += float(pinball_loss(model(x), y, q)) * len(xb)
            count += len(xb)
    return total / max(count, 1), count


@dataclass
class RefitResult:
    """The network `refit` trained on the training and validation periods together."""

    model: LSTMForecaster
    epochs: int
    seconds: float
    n_train: int
    train_loss: float
    windows_per_epoch: int = 0


def refit(train: WindowSource, cfg: LakecastConfig, first: TrainResult, n_windows: int | None = None) -> RefitResult:
    """A fresh network of `first`'s shape and seed, trained for `first.best_epoch` epochs on
    `train`: windows whose targets run through the validation period (`n_windows` of them where
    `train` is a stream: the epoch budget needs the count).

    Early stopping needs a validation period the network never trains on, so the first network
    has not seen the most recent `val_periods` steps: on monthly data 18 months, on quarterly two
    years. Early stopping has chosen the epoch count; this network learns from the recent data too
    (measured on the accuracy benchmark's internal test split: aus_retail 0.941 -> 0.875 MASE,
    global_gdp 6.18 -> 5.23, tourism unchanged). No validation here: the count is fixed.
    """
    tc = cfg.train
    device = torch.device(first.device)
    q = torch.tensor(cfg.model.quantiles, dtype=torch.float32, device=device)
    started = time.perf_counter()
    epochs = max(1, first.best_epoch)
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(tc.seed)
        model = build_model(first.spec, tc.seed).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=tc.learning_rate)
        rng = np.random.default_rng(tc.seed)
        loss, count = math.nan, 0
        total = _count(train, n_windows)
        share = epoch_share(total, tc.max_windows_per_epoch)
        for epoch in range(1, epochs + 1):
            t0 = time.perf_counter()
            loss, count = _train_epoch(model, train, opt, q, tc.batch_size, rng, device, share)
            if not math.isfinite(loss):
                raise TrainingError(f"the refit diverged at epoch {epoch} (train loss {loss}); lower "
                                    "train.learning_rate or set train.refit=false")
            log.info("refit epoch %d/%d: train loss %.4f (%.1fs)", epoch, epochs, loss, time.perf_counter() - t0)
    model.eval()
    seconds = time.perf_counter() - started
    log.info("refitted on %d windows (training and validation periods%s) in %.1fs", total or count,
             f"; {count} drawn per epoch" if share < 1.0 else "", seconds)
    return RefitResult(model, epochs, seconds, total or count, loss, count)


def fit(train: WindowSource, val: WindowSource, cfg: LakecastConfig, n_windows: int | None = None) -> TrainResult:
    """Train from `train`, stop when `val` loss has not improved for `train.patience` epochs.

    Each epoch draws at most `train.max_windows_per_epoch` of the training windows (`n_windows`:
    their count where `train` is a stream). Returns the weights of the best validation epoch.
    Deterministic for a given thread count and `train.seed` on CPU (global torch RNG state is
    restored afterwards).
    """
    tc = cfg.train
    device = resolve_device(tc.device)
    sample = _first_block(train, "training")
    _first_block(val, "validation")
    spec = spec_for(cfg, sample)
    q = torch.tensor(cfg.model.quantiles, dtype=torch.float32, device=device)
    started = time.perf_counter()
    with torch.random.fork_rng(devices=[device.index or 0] if device.type == "cuda" else []):
        torch.manual_seed(tc.seed)
        model = build_model(spec, tc.seed).to(device)
        opt = torch.optim.Adam(model.parameters(), lr=tc.learning_rate)
        rng = np.random.default_rng(tc.seed)
        result = TrainResult(model=model, spec=spec, device=str(device))
        best_state, best, waited = copy.deepcopy(model.state_dict()), math.inf, 0
        total = _count(train, n_windows)
        share = epoch_share(total, tc.max_windows_per_epoch)
        if share < 1.0:
            log.info("%d training windows: each epoch draws %d of them (train.max_windows_per_epoch)",
                     total, tc.max_windows_per_epoch)
        for epoch in range(1, tc.max_epochs + 1):
            t0 = time.perf_counter()
            train_loss, result.windows_per_epoch = _train_epoch(model, train, opt, q, tc.batch_size, rng, device,
                                                                share)
            result.n_train = total or result.windows_per_epoch
            val_loss, n_val = evaluate_loss(model, val, q, tc.batch_size, device)
            if not math.isfinite(train_loss) or not math.isfinite(val_loss):
                raise TrainingError(f"training diverged at epoch {epoch} (train loss {train_loss}, "
                                    f"validation loss {val_loss}); lower train.learning_rate")
            result.history.append(EpochStats(epoch, train_loss, val_loss, time.perf_counter() - t0))
            result.n_val = n_val
            log.info("epoch %d/%d: train loss %.4f, validation loss %.4f (%.1fs)",
                     epoch, tc.max_epochs, train_loss, val_loss, result.history[-1].seconds)
            if val_loss < best - 1e-6:
                best, waited, result.best_epoch = val_loss, 0, epoch
                best_state = copy.deepcopy(model.state_dict())
            else:
                waited += 1
                if waited >= tc.patience:
                    result.stopped_early = epoch < tc.max_epochs
                    break
    model.load_state_dict(best_state)
    model.eval()
    result.seconds = time.perf_counter() - started
    log.info("trained on %s in %.1fs: best epoch %d of %d, validation loss %.4f", device,
             result.seconds, result.best_epoch, len(result.history), best)
    return result
