"""Steps of history per series in `observations`, and the step settings resolved from it.

`auto` settings (conf/auto_steps.py) depend on the frequency and on how much history the
series hold: one aggregate query measures it, and the flows run on a config of plain ints.
The typical history is the median series: the auto lookback is fitted so that at least half of
the series give a training window (the longest would let one long series set a lookback most
cannot fill; the shortest would let one short series shrink every window).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.auto_steps import History, apply_steps, auto_keys, check_fits, describe, given_steps, resolve_steps, steps
from conf.errors import HistoryTooShortError
from conf.freq import parse_freq
from conf.utc import to_utc_micros
from pipelines.windows.grid import GridSpec
from pipelines.windows.grid_spark import select_observations, step_span_col

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AutoSettings:
    """What `auto` became in one run: the value of each key that was auto, and the printed line."""

    values: dict[str, int] = field(default_factory=dict)
    line: str = ""
    history: History | None = None

    def details(self) -> dict[str, object]:
        """For job_runs.details."""
        out: dict[str, object] = dict(self.values)
        if self.history is not None:
            out.update(history_steps_median=self.history.typical, history_steps_longest=self.history.longest)
        return out


def measure_history(obs: DataFrame, cfg: LakecastConfig, end: datetime | str | None = None) -> History:
    """Median and longest grid steps per series (first to last valid value, up to `end`), and the
    smallest valid value."""
    from pyspark.sql import functions as F

    df = select_observations(obs)
    valid = F.col("value").isNotNull() & ~F.isnan("value")
    if end is not None:
        valid = valid & (F.unix_micros("ts") <= F.lit(to_utc_micros(end)))
    spans = (df.where(valid).groupBy("series_id")
             .agg(F.min("ts").alias("a"), F.max("ts").alias("b"), F.min("value").alias("lo"))
             .select(step_span_col(GridSpec.from_config(cfg), F.col("a"), F.col("b")).alias("n"), "lo"))
    row = spans.agg(F.percentile_approx("n", 0.5).alias("typical"), F.max("n").alias("longest"),
                    F.count(F.lit(1)).alias("series"), F.min("lo").alias("lowest")).head()
    if row is None or not row["series"]:
        raise HistoryTooShortError(
            f"{cfg.table('observations')} holds no values" + (f" at or before {end}" if end else "")
            + "; run `lakecast ingest` first")
    return History(typical=int(row["typical"]), longest=int(row["longest"]), series=int(row["series"]),
                   lowest=float(row["lowest"]))


def _settings(cfg: LakecastConfig, keys: tuple[str, ...], history: History | None, source: str = "",
              ) -> AutoSettings:
    freq = parse_freq(cfg.data.freq)
    values = {k: v for k, v in given_steps(cfg).items() if k in keys}
    line = describe(freq, steps(cfg), keys, history, source) if keys else ""
    return AutoSettings({k: int(v) for k, v in values.items()}, line, history)


def resolve_for_training(obs: DataFrame, cfg: LakecastConfig, end: datetime | str | None = None,
                         ) -> tuple[LakecastConfig, AutoSettings]:
    """`cfg` with every `auto` resolved against the measured history; raises
    HistoryTooShortError (keys and workable values) when no series holds a training window."""
    keys = auto_keys(cfg)
    freq = parse_freq(cfg.data.freq)
    history = measure_history(obs, cfg, end)
    s = resolve_steps(freq, given_steps(cfg), history, blend=cfg.model.statistical_blend)
    check_fits(freq, s, history)
    if s.training_need > history.typical:
        log.warning("series shorter than %d steps (more than half of the %d) give no training window",
                    s.training_need, history.series)
    resolved = apply_steps(cfg, s)
    auto = _settings(resolved, keys, history)
    if auto.line:
        log.info(auto.line)
    return resolved, auto


# The step settings scoring a model reads; the training split (validation, test) was the model's
# training run's business, so predict does not report what their `auto` would be now.
SCORING_KEYS = ("windows.lookback", "windows.horizon", "windows.stride", "windows.min_history",
                "scoring.max_staleness", "model.statistical_lookback")


def resolve_for_model(cfg: LakecastConfig, lookback: int, horizon: int, history: History | None = None,
                      also: tuple[str, ...] = (), statistical_lookback: int | None = None,
                      ) -> tuple[LakecastConfig, AutoSettings]:
    """`cfg` for scoring or backtesting a model: an `auto` lookback/horizon/statistical lookback is
    the model's own (what it was trained with), the other auto settings resolve for the frequency
    and `history`; the reported ones are those of SCORING_KEYS and `also`."""
    keys = tuple(k for k in auto_keys(cfg) if k in SCORING_KEYS or k in also)
    given = given_steps(cfg)
    for key, value in (("windows.lookback", lookback), ("windows.horizon", horizon),
                       ("model.statistical_lookback", statistical_lookback or lookback)):
        if given[key] == "auto":
            given[key] = value
    resolved = apply_steps(cfg, resolve_steps(parse_freq(cfg.data.freq), given, history,
                                              blend=cfg.model.statistical_blend))
    return resolved, _settings(resolved, keys, history, "lookback and horizon of the model")
