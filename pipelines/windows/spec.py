"""The window settings of a configuration as plain values a Python worker can carry.

Both window kernels (`numpy_kernel`, `sql_kernel`) and the fused scoring path take a
`WindowSpec`; `build` makes one from the configuration and picks the kernel. Kernels import
this module, never `build`.
"""

from __future__ import annotations

from dataclasses import dataclass

from conf import LakecastConfig
from conf.auto_steps import steps
from conf.freq import parse_freq
from pipelines.windows.features import calendar_kinds
from pipelines.windows.grid import GridSpec


def min_history(cfg: LakecastConfig) -> int:
    """`windows.min_history` in steps: auto is one horizon (less for a history too short to train
    on otherwise, `conf.auto_steps.short_history_min`); never more than the lookback."""
    return steps(cfg).min_history


@dataclass(frozen=True)
class WindowSpec:
    """The window settings of `cfg` as plain values a Python worker can carry."""

    grid: GridSpec
    lookback: int
    horizon: int
    stride: int
    max_missing_frac: float
    calendar: tuple[str, ...]  # calendar cycles, see pipelines.windows.features
    max_staleness: int
    strategy: str
    min_history: int  # steps of history a (left-padded) window needs, 1..lookback
    # Steps before the lookback each window also carries, for the statistical members alone
    # (`model.statistical_lookback`): padded where the series is shorter, never scaled by, never
    # counted against max_missing_frac, never a reason to skip a window.
    context: int = 0

    @classmethod
    def from_config(cls, cfg: LakecastConfig) -> WindowSpec:
        w, s = cfg.windows, steps(cfg)  # flows pass resolved ints; a bare `auto` takes the freq's value
        kinds = calendar_kinds(parse_freq(cfg.data.freq)) if w.calendar_features else ()
        return cls(GridSpec.from_config(cfg), s.lookback, s.horizon, s.stride, w.max_missing_frac,
                   kinds, s.max_staleness, w.strategy, min_history(cfg), s.context)

    @property
    def width(self) -> int:
        """Steps per window: the context, then the lookback (the network reads the lookback)."""
        return self.context + self.lookback

    @property
    def n_features(self) -> int:
        return 2 + 2 * len(self.calendar)
