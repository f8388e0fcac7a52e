"""Windows -> numpy: Arrow batches, tables and pandas (as a pandas UDF sees them), streamed Parquet."""

from __future__ import annotations

import io
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from models.arrays import WindowShapeError, concat, iter_arrays, parquet_source, to_arrays, usable_only
from models.plots import forecast_figure

L, F, H = 3, 2, 2


def batch(n: int = 4, skip: list[str | None] | None = None) -> pa.RecordBatch:
    inputs = [list(np.arange(L * F, dtype=np.float32) + 100 * i) for i in range(n)]
    targets = [[float(i), float(i) + 0.5] for i in range(n)]
    skip = skip or [None] * n
    for i, s in enumerate(skip):
        if s is not None:
            inputs[i] = targets[i] = None  # type: ignore[call-overload]
    return pa.RecordBatch.from_pydict({
        "series_id": [f"s{i % 2}" for i in range(n)],
        "forecast_origin": pa.array([datetime(2024, 1, 1, i) for i in range(n)],
                                    pa.timestamp("us", tz="UTC")),
        "inputs": pa.array(inputs, pa.list_(pa.float32())),
        "targets": pa.array(targets, pa.list_(pa.float32())),
        "scale_loc": [10.0] * n, "scale_scale": [2.0] * n,
        "skip_reason": pa.array(skip, pa.string()),
    })


def test_arrow_batch_to_arrays_is_row_major_and_zero_copy() -> None:
    w = to_arrays(batch(), lookback=L, n_features=F, horizon=H, keys=True)
    assert w.X.shape == (4, L, F) and w.X.dtype == np.float32
    assert w.X[1, 2, 1] == 100 + 2 * F + 1                      # row 1, step 2, feature 1
    assert w.y is not None and w.y.tolist()[3] == [3.0, 3.5]
    assert not w.X.flags.owndata and not w.X.flags.writeable   # a view of the Arrow buffer
    assert w.series_id is not None and list(w.series_id) == ["s0", "s1", "s0", "s1"]
    assert w.unscale(w.y)[0].tolist() == [10.0, 11.0]


def test_sliced_batches_and_tables_keep_their_offsets() -> None:
    b = batch(6)
    w = to_arrays(pa.Table.from_batches([b.slice(0, 2), b.slice(2, 4)]), lookback=L, n_features=F, horizon=H)
    assert w.X[2, 0, 0] == 200
    w = to_arrays(b.slice(3, 2), lookback=L, n_features=F, horizon=H)
    assert w.X[:, 0, 0].tolist() == [300, 400]


def test_pandas_as_a_udf_receives_it_and_arrow_backed_pandas() -> None:
    pdf = batch().to_pandas()                                   # list columns hold numpy arrays
    assert isinstance(pdf["inputs"].iloc[0], np.ndarray)
    w = to_arrays(pdf, lookback=L, n_features=F)               # inference: targets ignored
    assert w.y is None and w.X[3, 0, 1] == 301
    w2 = to_arrays(batch().to_pandas(types_mapper=pd.ArrowDtype), lookback=L, n_features=F, horizon=H)
    assert np.array_equal(w2.X, w.X)


def test_unusable_rows_are_filtered_and_wrong_shapes_named() -> None:
    b = batch(4, skip=[None, "too_short", None, "stale"])
    with pytest.raises(WindowShapeError, match=r"column inputs: 2 of 4 rows are NULL; filter unusable"):
        to_arrays(b, lookback=L, n_features=F, horizon=H)
    w = to_arrays(usable_only(b), lookback=L, n_features=F, horizon=H)
    assert w.X[:, 0, 0].tolist() == [0, 200]
    with pytest.raises(WindowShapeError,
                       match=r"column inputs: expected 8 values per row, found lengths from 6 to 6"):
        to_arrays(batch(), lookback=4, n_features=F, horizon=H)
    with pytest.raises(WindowShapeError, match=r"windows lack column\(s\) targets"):
        to_arrays(batch().drop_columns(["targets"]), lookback=L, n_features=F, horizon=H)


def test_parquet_stream_yields_every_usable_window_once_per_pass(tmp_path) -> None:
    for k in range(3):
        pq.write_table(pa.Table.from_batches([batch(4, skip=[None, None, None, "stale"])]),
                       tmp_path / f"part-{k}.parquet")
    source = parquet_source(str(tmp_path), lookback=L, n_features=F, horizon=H, batch_rows=2, seed=1)
    first, second = concat(source()), concat(source())
    assert len(first) == len(second) == 9
    assert sorted(first.X[:, 0, 0].tolist()) == sorted(second.X[:, 0, 0].tolist()) == [0, 0, 0, 100, 100,
                                                                                         100, 200, 200, 200]
    assert max(len(b) for b in iter_arrays(iter([batch(5)]), lookback=L, n_features=F, horizon=H)) == 5


def test_forecast_figure_renders_a_png() -> None:
    w = to_arrays(batch(), lookback=L, n_features=F, horizon=H, keys=True)
    assert w.y is not None
    pred = np.stack([w.y - 1, w.y, w.y + 1], axis=-1)
    fig = forecast_figure(w, pred, n_series=2)
    assert len(fig.axes) == 2
    assert [ax.get_title().split(" - ")[0] for ax in fig.axes] == ["s0", "s1"]
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    assert buf.getvalue()[:4] == b"\x89PNG"
