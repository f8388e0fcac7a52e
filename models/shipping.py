"""Ship a downloaded model version to scoring workers as bytes, and load it there once.

The driver downloads the pinned version once, packs its directory into one tar blob and
hands it to Spark (a broadcast variable); each worker unpacks the blob it already holds
and loads the predictor, so no task ever calls the tracking server or the artifact store.
`ModelLoader` is the picklable loader factory the scoring UDF receives: it knows bytes,
not registries. No Spark here: the broadcast is passed in as anything with `.value`.
"""

from __future__ import annotations

import io
import logging
import tarfile
import tempfile
from pathlib import Path
from typing import Any, Protocol

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
    """Zero-argument loader factory for one pinned model version, cheap to pickle.

    `source` is the packed bytes, or a holder of them with `.value` (a Spark broadcast
    variable: pickled as a reference, its bytes reach each worker once).
    """

    def __init__(self, source: bytes | _HasValue | Any, *, key: str, device: str = "cpu") -> None:
        self.source = source
        self.key = key
        self.device = device

    def __call__(self) -> Predictor:
        blob = self.source if isinstance(self.source, bytes | bytearray) else self.source.value
        predictor = unpack_and_load(bytes(blob), device=self.device)
        log.info("model %s loaded on this worker (%d bytes shipped)", self.key, len(blob))
        return predictor

    def __repr__(self) -> str:
        return f"ModelLoader({self.key!r}, device={self.device!r})"
