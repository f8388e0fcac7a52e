"""Windows (Arrow record batches, tables or pandas) -> numpy arrays for torch.

The `inputs`/`targets` list columns are flattened once and reshaped, which for Arrow is
a view of the batch's buffer (no copy, no per-row Python). The scoring pandas UDF uses
the same functions on each batch it receives.

Window columns: `conf.window_contract` (`inputs` list<float> of lookback × features,
row-major by time step; `targets` list<float> of horizon, NULL for inference windows;
`scale_loc`, `scale_scale`: original = scaled * scale + loc; `skip_reason` NULL when usable).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from conf.errors import LakecastError
from conf.window_contract import INPUTS, LOC, ORIGIN, SCALE, SERIES, SKIP, TARGETS
from models.lakecast_forecaster.predictor import window_offsets

log = logging.getLogger(__name__)


class WindowShapeError(LakecastError):
    """Window arrays do not have the lengths the model or configuration expects."""


@dataclass(frozen=True)
class WindowArrays:
    """A block of windows as arrays; `y` is None for inference windows."""

    X: np.ndarray                      # (N, lookback, features) float32, scaled
    y: np.ndarray | None               # (N, horizon) float32, scaled
    loc: np.ndarray                    # (N,) float64
    scale: np.ndarray                  # (N,) float64
    series_id: np.ndarray | None = None        # (N,) object, when keys were asked for
    forecast_origin: np.ndarray | None = None  # (N,) datetime64[us], when keys were asked for

    def __len__(self) -> int:
        return int(self.X.shape[0])

    @property
    def offset(self) -> np.ndarray:
        """(N,) each window's ``loc / scale``: its original values over its scale are ``scaled + offset``,
        which the blend's multiplicative members need (`Predictor.predict`'s `offset`)."""
        return window_offsets(self.loc, self.scale)

    def unscale(self, scaled: np.ndarray) -> np.ndarray:
        """Scaled values (N, ...) back to original units, per window."""
        shape = (-1,) + (1,) * (scaled.ndim - 1)
        return scaled * self.scale.reshape(shape) + self.loc.reshape(shape)

    def take(self, idx: np.ndarray) -> WindowArrays:
        """The windows at `idx` (a row subset, e.g. a time split or a plot sample)."""
        def pick(a: np.ndarray | None) -> np.ndarray | None:
            return None if a is None else a[idx]

        return WindowArrays(self.X[idx], pick(self.y), self.loc[idx], self.scale[idx],
                            pick(self.series_id), pick(self.forecast_origin))


def _as_table(data: pa.RecordBatch | pa.Table | pd.DataFrame) -> pa.Table:
    if isinstance(data, pa.Table):
        return data
    if isinstance(data, pa.RecordBatch):
        return pa.Table.from_batches([data])
    if isinstance(data, pd.DataFrame):
        return _pandas_to_table(data)
    raise TypeError("windows must be a pyarrow RecordBatch/Table or a pandas DataFrame, "
                    f"got {type(data).__name__}")


def _pandas_to_table(df: pd.DataFrame) -> pa.Table:
    """pandas (as a pandas UDF receives it: list columns hold numpy arrays) -> Arrow.

    ArrowDtype columns pass through without a copy; object columns of arrays are joined
    by one `np.concatenate` and wrapped as a list array with fixed offsets.
    """
    cols: dict[str, pa.Array | pa.ChunkedArray] = {}
    for name in df.columns:
        s = df[name]
        if isinstance(s.dtype, pd.ArrowDtype):
            cols[name] = pa.array(s.array)
        elif name in (INPUTS, TARGETS) and s.dtype == object:
            cols[name] = _object_lists_to_arrow(s, name)
        else:
            cols[name] = pa.array(s.to_numpy(), from_pandas=True)
    return pa.table(cols)


def _object_lists_to_arrow(s: pd.Series, name: str) -> pa.Array:
    values = s.to_numpy()
    nulls = pd.isna(s).to_numpy()
    if nulls.all():
        return pa.nulls(len(s), pa.list_(pa.float32()))
    if nulls.any():
        raise WindowShapeError(f"column {name}: {int(nulls.sum())} of {len(s)} rows are NULL; "
                               "filter unusable windows (skip_reason) before converting")
    lengths = np.fromiter((len(v) for v in values), dtype=np.int64, count=len(values))
    flat = np.concatenate(values).astype(np.float32, copy=False) if len(values) else np.zeros(0, np.float32)
    offsets = np.zeros(len(values) + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    return pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat))


def _fixed_matrix(col: pa.ChunkedArray | pa.Array, width: int, name: str) -> np.ndarray:
    """A list column whose rows all have `width` floats -> float32 (N, width), zero-copy when possible."""
    arr = col.combine_chunks() if isinstance(col, pa.ChunkedArray) else col
    n = len(arr)
    if arr.null_count:
        raise WindowShapeError(f"column {name}: {arr.null_count} of {n} rows are NULL; filter unusable "
                               "windows (skip_reason) before converting")
    lengths = pc.list_value_length(arr)
    lo, hi = pc.min_max(lengths).values() if n else (pa.scalar(width), pa.scalar(width))
    if n and (lo.as_py() != width or hi.as_py() != width):
        raise WindowShapeError(
            f"column {name}: expected {width} values per row, found lengths from {lo.as_py()} to "
            f"{hi.as_py()}; the windows were built with another lookback/horizon/feature set than "
            "the one configured (check windows.lookback, windows.horizon, windows.calendar_features)"
        )
    flat = arr.flatten()  # respects slicing offsets; a view of the values buffer
    try:
        values = flat.to_numpy(zero_copy_only=True)
    except pa.ArrowInvalid:  # nulls inside the lists
        raise WindowShapeError(f"column {name}: NaN/NULL inside window values; windows must be "
                               "filled before they reach the model") from None
    if values.dtype != np.float32:
        values = values.astype(np.float32)
    return values.reshape(n, width)


def to_arrays(
    data: pa.RecordBatch | pa.Table | pd.DataFrame,
    *,
    lookback: int,
    n_features: int,
    horizon: int | None = None,
    keys: bool = False,
) -> WindowArrays:
    """Windows -> (X (N, lookback, n_features), y (N, horizon) or None, loc, scale).

    `horizon=None` ignores `targets` (inference). Rows must be usable windows; filter on
    `skip_reason` first (`usable_only`). `keys=True` also returns series ids and origins.
    """
    table = _as_table(data)
    missing = [c for c in (INPUTS, LOC, SCALE) if c not in table.column_names]
    if horizon is not None and TARGETS not in table.column_names:
        missing.append(TARGETS)
    if missing:
        raise WindowShapeError(f"windows lack column(s) {', '.join(missing)}; "
                               f"have {', '.join(table.column_names)}")
    X = _fixed_matrix(table.column(INPUTS), lookback * n_features, INPUTS).reshape(-1, lookback, n_features)
    y = None if horizon is None else _fixed_matrix(table.column(TARGETS), horizon, TARGETS)
    loc = table.column(LOC).to_numpy().astype(np.float64, copy=False)
    scale = table.column(SCALE).to_numpy().astype(np.float64, copy=False)
    sid = origin = None
    if keys:
        sid = table.column(SERIES).to_numpy() if SERIES in table.column_names else None
        origin = table.column(ORIGIN).to_numpy() if ORIGIN in table.column_names else None
    return WindowArrays(X, y, loc, scale, sid, origin)


def usable_only(data: pa.Table | pa.RecordBatch) -> pa.Table:
    """Drop windows with a `skip_reason` (they were counted when the windows were built)."""
    table = _as_table(data)
    if SKIP not in table.column_names:
        return table
    return table.filter(pc.is_null(table.column(SKIP)))


def iter_arrays(
    batches: Iterable[pa.RecordBatch | pa.Table],
    *,
    lookback: int,
    n_features: int,
    horizon: int | None = None,
    keys: bool = False,
) -> Iterator[WindowArrays]:
    """Convert a stream of record batches one at a time (bounded memory), skipping unusable rows."""
    for batch in batches:
        table = usable_only(batch)
        if table.num_rows:
            yield to_arrays(table, lookback=lookback, n_features=n_features, horizon=horizon, keys=keys)


def concat(parts: Iterable[WindowArrays]) -> WindowArrays:
    """Join blocks of windows (e.g. every batch of a small data set) into one."""
    items = list(parts)
    if not items:
        raise WindowShapeError("no usable windows to concatenate")

    def cat(get: str) -> np.ndarray | None:
        vals = [getattr(p, get) for p in items]
        return None if any(v is None for v in vals) else np.concatenate(vals)

    X, loc, scale = cat("X"), cat("loc"), cat("scale")
    assert X is not None and loc is not None and scale is not None
    return WindowArrays(X, cat("y"), loc, scale, cat("series_id"), cat("forecast_origin"))


def parquet_source(
    path: str,
    *,
    lookback: int,
    n_features: int,
    horizon: int,
    batch_rows: int = 65_536,
    seed: int = 0,
) -> Callable[[], Iterator[WindowArrays]]:
    """A re-iterable stream of window blocks from a Parquet snapshot of windows (for training).

    Each call returns a fresh pass: file fragments in a new seeded order, record batches of
    at most `batch_rows` rows; memory stays bounded by a batch whatever the data size.
    """
    import pyarrow.dataset as ds

    dataset = ds.dataset(path, format="parquet")
    fragments = list(dataset.get_fragments())
    cols = [c for c in (INPUTS, TARGETS, LOC, SCALE, SKIP) if c in dataset.schema.names]
    rng = np.random.default_rng(seed)

    def one_pass() -> Iterator[WindowArrays]:
        for k in rng.permutation(len(fragments)):
            batches = fragments[int(k)].to_batches(columns=cols, batch_size=batch_rows)
            yield from iter_arrays(batches, lookback=lookback, n_features=n_features, horizon=horizon)

    return one_pass
