"""Ship a downloaded model version to scoring workers as bytes, and load it there once.

The driver downloads the pinned version once, packs its directory into one tar blob and
hands it to Spark (a broadcast variable); each worker unpacks the blob it already holds
and loads the predictor, so no task ever calls the tracking server or the artifact store.
`ModelLoader` is the picklable loader the scoring UDF receives: called with no arguments it
returns a ready `predict(X) -> quantiles` function (torch, precision and threads set up
here), which is all `pipelines.scoring` ever sees. No Spark here: the broadcast is passed in
as anything with `.value`.
"""

from __future__ import annotations

import io
import logging
import tarfile
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from models.lakecast_forecaster.errors import ModelMismatchError

if TYPE_CHECKING:
    from models.precision import WindowsPredictFn
from models.lakecast_forecaster.predictor import Predictor, find_predictor_dir, load_predictor

log = logging.getLogger(__name__)


class _HasValue(Protocol):
    @property
    def value(self) -> bytes: ...


def pack_model_dir(local_dir: str | Path) -> bytes:
    """The predictor folder inside a downloaded model (meta.json, weights.pt) as a tar blob."""
    path = find_predictor_dir(local_dir)
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for f in sorted(path.iterdir()):
            if f.is_file():
                tar.add(f, arcname=f.name)
    return buf.getvalue()


def unpack_and_load(blob: bytes, *, device: str = "cpu") -> Predictor:
    """Load a predictor from `pack_model_dir` bytes (unpacked into a temporary folder)."""
    with tempfile.TemporaryDirectory(prefix="lakecast-model-") as tmp:
        with tarfile.open(fileobj=io.BytesIO(blob), mode="r") as tar:
            tar.extractall(tmp, filter="data")
        return load_predictor(tmp, device=device)


class ModelLoader:
    """Zero-argument loader of one pinned model version's predict function, cheap to pickle.

    `source` is the packed bytes, or a holder of them with `.value` (a Spark broadcast
    variable: pickled as a reference, its bytes reach each worker once). Calling it loads
    the predictor and returns `predict(X (N, lookback, features)) -> (N, horizon, 3)` in
    `precision`, `batch_size` windows per forward pass, on `threads` torch threads (workers x
    threads <= cores). `windows` = (lookback, n_features, horizon) the caller's plan expects,
    checked after loading. Scoring calls it once per worker (`pipelines.scoring.worker`).
    """

    def __init__(self, source: bytes | _HasValue | Any, *, key: str, device: str = "cpu",
                 precision: str = "fp32", batch_size: int = 512, threads: int = 1,
                 windows: tuple[int, int, int] | None = None) -> None:
        self.source = source
        self.key = key
        self.device = device
        self.precision = precision
        self.batch_size = batch_size
        self.threads = threads
        self.windows = windows

    def predictor(self) -> Predictor:
        """The shipped predictor itself (unpacked and loaded on each call)."""
        blob = self.source if isinstance(self.source, bytes | bytearray) else self.source.value
        predictor = unpack_and_load(bytes(blob), device=self.device)
        log.info("model %s loaded on this worker (%d bytes shipped)", self.key, len(blob))
        return predictor

    def __call__(self) -> WindowsPredictFn:
        import warnings

        import torch

        from models.precision import predict_fn

        torch.set_num_threads(self.threads)  # workers x threads <= cores: no oversubscription
        # Arrow buffers are read-only; the model only reads its input.
        warnings.filterwarnings("ignore", message="The given NumPy array is not writable")
        predictor = self.predictor()
        m = predictor.meta
        if self.windows is not None and (m.lookback, m.n_features, m.horizon) != self.windows:
            raise ModelMismatchError(
                f"model {self.key} expects lookback {m.lookback}, {m.n_features} features, horizon "
                f"{m.horizon}; the scoring plan says (lookback, features, horizon) = {self.windows}")
        return predict_fn(predictor, self.precision, self.batch_size)

    def __repr__(self) -> str:
        return (f"ModelLoader({self.key!r}, device={self.device!r}, precision={self.precision!r}, "
                f"batch_size={self.batch_size})")
