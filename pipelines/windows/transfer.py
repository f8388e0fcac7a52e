"""Move window DataFrames to the model side as Arrow, never row by row.

Two ways, chosen by size:
- `collect_arrow`: the windows as one Arrow table on the driver (`DataFrame.toArrow`), for
  sets known to be small (validation, test, backtest windows);
- `snapshot`: a distributed Parquet write of the windows under the lakecast home, read back
  with pyarrow either whole (small) or as a stream of record batches per epoch (large), so
  training never needs the whole set in the driver's memory.
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from models.arrays import SKIP, WindowArrays, to_arrays, usable_only

log = logging.getLogger(__name__)

TRAIN_COLUMNS = ("series_id", "forecast_origin", "inputs", "targets", "scale_loc", "scale_scale",
                 "skip_reason")


def outcome_counts(table: pa.Table | ds.Dataset) -> dict[str, int]:
    """`usable` plus rows per skip reason, read from the Arrow data (no Spark job)."""
    col = table.to_table(columns=[SKIP]).column(SKIP) if isinstance(table, ds.Dataset) else table.column(SKIP)
    counts: dict[str, int] = {"usable": int(col.null_count)}  # skip_reason NULL = usable
    for item in pc.value_counts(col.drop_null()).to_pylist():
        counts[str(item["values"])] = int(item["counts"])
    return counts


def collect_arrow(windows: Any, columns: tuple[str, ...] = TRAIN_COLUMNS) -> pa.Table:
    """All rows of a (small) windows DataFrame as one Arrow table on the driver."""
    return windows.select(*columns).toArrow()


@dataclass(frozen=True)
class Snapshot:
    """Windows written as Parquet files; `counts` by outcome, `usable_mb` their in-memory size."""

    path: Path
    counts: dict[str, int]
    row_bytes: int

    @property
    def usable_mb(self) -> float:
        return self.counts.get("usable", 0) * self.row_bytes / 1e6

    def dataset(self) -> ds.Dataset:
        return ds.dataset(str(self.path), format="parquet")

    def load(self, *, lookback: int, n_features: int, horizon: int, keys: bool = False) -> WindowArrays:
        """The usable windows as arrays in memory."""
        table = usable_only(self.dataset().to_table())
        return to_arrays(table, lookback=lookback, n_features=n_features, horizon=horizon, keys=keys)

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def snapshot(windows: Any, path: str | Path, *, lookback: int, n_features: int, horizon: int) -> Snapshot:
    """Write the windows (all rows, skipped ones included for counting) as Parquet at `path`."""
    out = Path(path)
    windows.select(*TRAIN_COLUMNS).write.mode("overwrite").parquet(str(out))
    snap = Snapshot(out, {}, row_bytes=4 * (lookback * n_features + horizon) + 16)
    counts = outcome_counts(snap.dataset())
    log.info("windows snapshot %s: %s", out, counts)
    return Snapshot(out, counts, snap.row_bytes)
