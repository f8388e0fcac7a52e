"""Only the observations an inference window can see: predict's read bounded by the origin.

An inference window at origin k holds steps k - width + 1 .. k (its context and lookback); a gap fill reaches at most
`windows.max_gap` steps further back, and the stale rule looks `scoring.max_staleness` steps
back. Anything older matters only through the series' first valid observation (the
`windows.min_history` rule, left padding, and `windows.max_missing_frac` count from it), and
then only as "this series started before the bound". Sorting every series' whole history to
use its last lookback is what made predict's shuffle grow with history (a year of hourly data
is 52 times the default lookback of a week). So predict keeps the rows from a bound a few steps
before all of these on, plus, for a series whose history starts earlier, its first valid
observation (its first row when none is valid): every window and every skip reason is the same
as from the whole history (tests/test_windows.py checks both kernels against the reference on
random series), and the older rows cost one scan and a per-series aggregate, not a shuffle.

Observations are on the grid (ingest quarantines off-grid rows), so a later first row gives the
same grid steps as the earliest one.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING

from conf import LakecastConfig
from conf.utc import from_utc_micros, to_utc_micros
from conf.window_contract import OBS_SERIES, OBS_TIME, OBS_VALUE, OBSERVATION_COLUMNS
from pipelines.windows.grid import shift
from pipelines.windows.spec import WindowSpec

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

MARGIN_STEPS = 3  # steps kept beyond what a window can reach: a mid-period as-of, month-end clamping


def history_bound(spec: WindowSpec, as_of: datetime | str) -> datetime | None:
    """The earliest time an inference window at `as_of` can depend on; None when it is before
    any representable date (then the whole history is read)."""
    reach = spec.width + max(spec.grid.max_gap, spec.max_staleness, spec.min_history) + MARGIN_STEPS
    try:
        return shift(spec.grid, from_utc_micros(to_utc_micros(as_of)), -reach)
    except (OverflowError, ValueError):  # a reach of centuries: nothing to bound
        return None


def recent_observations(obs: DataFrame, cfg: LakecastConfig, as_of: datetime | str) -> DataFrame:
    """`obs` (the observations table: OBSERVATION_COLUMNS) reduced to what inference windows at
    `as_of` read: the rows from `history_bound` on, and each older series' first valid row."""
    from pyspark.sql import functions as F

    bound = history_bound(WindowSpec.from_config(cfg), as_of)
    cols = list(OBSERVATION_COLUMNS)
    missing = [c for c in cols if c not in obs.columns]
    if bound is None or missing:  # a missing column is named by the window builder, as without a bound
        return obs
    ts, value = F.col(OBS_TIME).cast("timestamp"), F.col(OBS_VALUE).cast("double")
    recent = F.coalesce(ts >= F.timestamp_micros(F.lit(to_utc_micros(bound))), F.lit(True))
    invalid = value.isNull() | F.isnan(value)
    first = (obs.where(~recent)
             .groupBy(OBS_SERIES)
             .agg(F.min_by(F.struct(*[F.col(c) for c in cols[1:]]), F.struct(invalid, ts)).alias("_first"))
             .select(OBS_SERIES, *[F.col(f"_first.{c}").alias(c) for c in cols[1:]]))
    return obs.where(recent).select(*cols).unionByName(first)
