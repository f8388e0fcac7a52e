"""The forecaster's own errors: it cannot import `conf.errors`, as it ships without lakecast.

The CLI prints `ForecasterError`s in one line like lakecast's own `LakecastError`s
(`jobs.context` catches both).
"""

from __future__ import annotations


class ForecasterError(RuntimeError):
    """Base class: a model a user can act on (retrain it, download it, match the windows)."""


class ModelLoadError(ForecasterError):
    """A model directory is missing, incomplete or of an unknown format."""


class ModelMismatchError(ForecasterError):
    """The model expects other windows (lookback, features, horizon, frequency) than configured."""
