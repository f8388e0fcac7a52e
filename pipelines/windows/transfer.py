"""Move window DataFrames to the model side as Arrow, never row by row.

Two ways, chosen by size:
- `collect_arrow`: the windows as one Arrow table on the driver (`DataFrame.toArrow`), for
  sets known to be small (validation, test, backtest windows);
- `snapshot`: a distributed Parquet write of the windows under the lakecast home, read back
  with pyarrow either whole (small) or as a stream of record batches per epoch (large), so
  training never needs the whole set in the driver's memory.

Tables, not arrays: `models.arrays` turns them into numpy (windows never import models).
"""

from __future__ import annotations

import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from conf.window_contract import SERIES, SKIP, WINDOW_COLUMNS

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

log = logging.getLogger(__name__)


def outcome_counts(table: pa.Table | ds.Dataset) -> dict[str, int]:
    """`usable` plus rows per skip reason, read from the Arrow data (no Spark job)."""
    col = table.to_table(columns=[SKIP]).column(SKIP) if isinstance(table, ds.Dataset) else table.column(SKIP)
    counts: dict[str, int] = {"usable": int(col.null_count)}  # skip_reason NULL = usable
    for item in pc.value_counts(col.drop_null()).to_pylist():
        counts[str(item["values"])] = int(item["counts"])
    return counts


def collect_arrow(windows: DataFrame, columns: tuple[str, ...] = WINDOW_COLUMNS) -> pa.Table:
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

    def usable(self) -> pa.Table:
        """The usable windows (`skip_reason` NULL) in memory; `models.arrays.to_arrays` makes arrays of them."""
        table = self.dataset().to_table()
        return table.filter(pc.is_null(table.column(SKIP)))

    def remove(self) -> None:
        shutil.rmtree(self.path, ignore_errors=True)


def snapshot_root(home: Path, run_id: str) -> Path:
    """Where a training run writes its window snapshots (removed when the run ends)."""
    return home / "tmp" / f"windows-{run_id}"


def snapshot_roots(home: Path) -> list[Path]:
    """Snapshot folders left under the home: runs still training, or killed before their cleanup."""
    return sorted(p for p in (home / "tmp").glob("windows-*") if p.is_dir())


def holds_series(root: Path, ids: set[str]) -> bool:
    """Whether any Parquet file under `root` has a window of one of `ids`.

    A folder that cannot be read (a write cut short) counts as holding them: nothing proves
    it does not.
    """
    try:
        table = ds.dataset(str(root), format="parquet").to_table(columns=[SERIES])
    except (OSError, pa.ArrowException):
        return True
    return bool(pc.any(pc.is_in(table.column(SERIES), value_set=pa.array(sorted(ids)))).as_py())


def snapshot(windows: DataFrame, path: str | Path, *, lookback: int, n_features: int, horizon: int) -> Snapshot:
    """Write the windows (all rows, skipped ones included for counting) as Parquet at `path`."""
    out = Path(path)
    windows.select(*WINDOW_COLUMNS).write.mode("overwrite").parquet(str(out))
    snap = Snapshot(out, {}, row_bytes=4 * (lookback * n_features + horizon) + 16)
    counts = outcome_counts(snap.dataset())
    log.info("windows snapshot %s: %s", out, counts)
    return Snapshot(out, counts, snap.row_bytes)
