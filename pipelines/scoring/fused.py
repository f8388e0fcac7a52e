"""The fused path: observations -> inference windows -> forecasts inside one Python stage.

Observations arrive sorted by series (`series_runs` joins a series split across batches);
each series is cut with the numpy window kernel (`series_windows`, the same code as the
two-stage path), and windows are gathered (`_WindowBuffer`) until about
`ScoringPlan.gather_windows` are ready for one model call.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from conf.window_contract import INFERENCE_COLUMNS, arrow_schema
from pipelines.scoring.kernel import PredictFn, forecast_batch
from pipelines.scoring.plan import ScoringPlan
from pipelines.scoring.worker import Loader, worker_predict
from pipelines.windows.numpy_kernel import SeriesRows, series_windows
from pipelines.windows.spec import WindowSpec

_TS = pa.timestamp("us", tz="UTC")


def series_runs(batches: Iterator[pa.RecordBatch]) -> Iterator[tuple[str, np.ndarray, np.ndarray]]:
    """(series_id, ts_us, values) per series from batches sorted by series_id.

    A series may span batches (its rows are joined when the next id appears); values are
    float64 with NaN for NULL.
    """
    pending_id: str | None = None
    ts_parts: list[np.ndarray] = []
    val_parts: list[np.ndarray] = []
    for batch in batches:
        n = len(batch)
        if n == 0:
            continue
        sid = batch.column("series_id")
        ts = batch.column("ts").cast(_TS).cast(pa.int64()).to_numpy(zero_copy_only=False)
        values = batch.column("value").cast(pa.float64()).to_numpy(zero_copy_only=False)
        change = pc.not_equal(sid.slice(1), sid.slice(0, n - 1)).to_numpy(zero_copy_only=False)
        cuts = [0, *(np.flatnonzero(change) + 1).tolist(), n]
        for start, end in itertools.pairwise(cuts):
            run_id = sid[start].as_py()
            if ts_parts and run_id != pending_id:
                assert pending_id is not None
                yield pending_id, np.concatenate(ts_parts), np.concatenate(val_parts)
                ts_parts, val_parts = [], []
            pending_id = run_id
            ts_parts.append(ts[start:end])
            val_parts.append(values[start:end])
    if ts_parts:
        assert pending_id is not None
        yield pending_id, np.concatenate(ts_parts), np.concatenate(val_parts)


class _WindowBuffer:
    """Inference windows of many series, collected until there are enough for a model batch."""

    def __init__(self) -> None:
        self.sids: list[str] = []
        self.origin: list[np.ndarray] = []
        self.inputs: list[np.ndarray] = []
        self.loc: list[np.ndarray] = []
        self.scale: list[np.ndarray] = []
        self.reason: list[str | None] = []

    def add(self, sid: str, rows: SeriesRows) -> None:
        """`rows`: what `series_windows` returns for one series."""
        self.sids += [sid] * len(rows.reason)
        self.origin += rows.origin
        self.inputs += rows.inputs
        self.loc += rows.loc
        self.scale += rows.scale
        self.reason += rows.reason

    def __len__(self) -> int:
        return len(self.sids)

    def batch(self) -> pa.RecordBatch:
        """The buffered windows in the contract's inference columns (usable inputs as one flat buffer)."""
        usable = np.array([r is None for r in self.reason], dtype=bool)
        origin = np.concatenate(self.origin)
        inputs = np.concatenate(self.inputs)
        width = inputs.shape[1]
        offsets = np.zeros(len(usable) + 1, dtype=np.int32)
        np.cumsum(np.where(usable, width, 0), out=offsets[1:])
        flat = np.ascontiguousarray(inputs[usable], dtype=np.float32).reshape(-1)
        return pa.RecordBatch.from_arrays([
            pa.array(self.sids, pa.string()),
            pa.array(origin, _TS, mask=origin == np.iinfo(np.int64).min),
            pa.ListArray.from_arrays(pa.array(offsets), pa.array(flat, pa.float32()), mask=pa.array(~usable)),
            pa.array(np.concatenate(self.loc), pa.float64()),
            pa.array(np.concatenate(self.scale), pa.float64()),
            pa.array(self.reason, pa.string()),
        ], schema=arrow_schema(INFERENCE_COLUMNS))


def score_observations_partition(batches: Iterator[pa.RecordBatch], plan: ScoringPlan, loader: Loader,
                                 spec: WindowSpec, as_of_us: int) -> Iterator[pa.RecordBatch]:
    """mapInArrow body: (series_id, ts, value) sorted by series and time -> scored rows."""
    predict: PredictFn | None = None
    buf = _WindowBuffer()
    for sid, ts, values in series_runs(batches):
        buf.add(sid, series_windows(spec, ts, values, "inference", as_of_us))
        if len(buf) >= plan.gather_windows:
            predict = predict or worker_predict(plan, loader)
            yield from forecast_batch(buf.batch(), predict, plan)
            buf = _WindowBuffer()
    if len(buf):
        yield from forecast_batch(buf.batch(), predict or worker_predict(plan, loader), plan)
