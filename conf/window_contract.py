"""The windows contract: the columns every window producer writes and every consumer reads.

One row per window:

| column | Arrow type | meaning |
|---|---|---|
| series_id | string | the series |
| forecast_origin | timestamp[us, UTC] | the last input step; targets start one grid step later |
| inputs | list<float32> | lookback x features, row-major by time step; feature 0 = scaled value |
| targets | list<float32> | horizon scaled values (training); NULL for inference windows |
| scale_loc, scale_scale | float64 | original = scaled * scale_scale + scale_loc |
| skip_reason | string | NULL = usable; else one of SKIP_REASONS (inputs/targets/scales NULL) |

Producers: `pipelines.windows` (both strategies, and the fused scoring path); consumers:
`pipelines.windows.transfer`, `pipelines.scoring`, `models.arrays`. No imports beyond the
standard library at module level (pyarrow only when a schema is asked for).
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

SERIES, ORIGIN = "series_id", "forecast_origin"
INPUTS, TARGETS = "inputs", "targets"
LOC, SCALE = "scale_loc", "scale_scale"
SKIP = "skip_reason"

# Every column, in this order (training windows; what the window builders return).
WINDOW_COLUMNS = (SERIES, ORIGIN, INPUTS, TARGETS, LOC, SCALE, SKIP)
# What scoring reads: inference windows have no targets.
INFERENCE_COLUMNS = (SERIES, ORIGIN, INPUTS, LOC, SCALE, SKIP)

# Why a row is unusable. too_short: not enough history (a series with no full window keeps
# one row); stale: last observation more than scoring.max_staleness steps before as_of;
# too_many_missing: more than windows.max_missing_frac of the inputs missing after fill
# (or all of them); missing_target: a target step still missing after fill.
TOO_SHORT, STALE, TOO_MANY_MISSING, MISSING_TARGET = "too_short", "stale", "too_many_missing", "missing_target"
SKIP_REASONS = (TOO_SHORT, STALE, TOO_MANY_MISSING, MISSING_TARGET)


@cache
def arrow_schema(columns: tuple[str, ...] = WINDOW_COLUMNS) -> pa.Schema:
    """The Arrow schema of `columns` (default: all of them, in contract order)."""
    import pyarrow as pa

    floats = pa.list_(pa.float32())
    types = {SERIES: pa.string(), ORIGIN: pa.timestamp("us", tz="UTC"), INPUTS: floats, TARGETS: floats,
             LOC: pa.float64(), SCALE: pa.float64(), SKIP: pa.string()}
    return pa.schema([(c, types[c]) for c in columns])
