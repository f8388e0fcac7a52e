"""The sample generator: deterministic, chunking-independent, realistic, with bad rows ingest catches."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from conf.freq import parse_freq
from pipelines.ingest.account import count_outcomes
from pipelines.ingest.read import ColumnNames, read_source
from pipelines.ingest.validate import IngestRules, validate
from pipelines.tooling.sample_data import ARRIVING, SampleError, generate_sample, hold_back, sample_table

TEXT = pacsv.ConvertOptions(column_types={"series_id": pa.string(), "ts": pa.string(), "value": pa.string()})


def _read_csv_folder(folder: Path) -> pa.Table:
    parts = sorted(folder.glob("*.csv"))
    return pa.concat_tables([pacsv.read_csv(p, convert_options=TEXT) for p in parts])


def test_same_seed_same_rows_whatever_the_chunking(tmp_path: Path) -> None:
    a = generate_sample(None, tmp_path / "a", series=6, days=10, seed=3, rows_per_file=240)
    b = generate_sample(None, tmp_path / "b", series=6, days=10, seed=3, rows_per_file=100_000)
    assert len(list(a.glob("part-*.csv"))) == 6 and len(list(b.glob("part-*.csv"))) == 1
    assert _read_csv_folder(a).equals(_read_csv_folder(b))
    c = generate_sample(None, tmp_path / "c", series=6, days=10, seed=4)
    assert not _read_csv_folder(c).equals(_read_csv_folder(b))


def test_series_have_daily_seasonality_and_gaps() -> None:
    t = sample_table(0, 40, series=40, days=28, seed=0, fmt="parquet", bad_frac=0.0)
    df = t.to_pandas()
    assert df["series_id"].nunique() == 40
    assert len(df) < 40 * 28 * 24  # some series have a missing stretch
    one = df[df["series_id"] == "s00000"].set_index("ts")["value"]
    lag24 = one.autocorr(24)
    assert lag24 > 0.5, f"hourly series should repeat daily (lag-24 autocorrelation {lag24:.2f})"
    assert df["ts"].max() < datetime(2025, 1, 1, tzinfo=UTC)


def test_refuses_a_folder_with_other_files(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(SampleError, match=r"is not empty \(holds keep\.txt\)"):
        generate_sample(None, tmp_path, series=1, days=1)


def test_regenerates_over_an_earlier_sample_and_its_held_back_day(tmp_path: Path) -> None:
    """`lakecast demo` twice in one home: the sample and its `arriving` folder are replaced."""
    first = generate_sample(None, tmp_path / "demo", series=2, days=3, seed=1)
    arriving = hold_back(first, 24)
    assert any(arriving.iterdir())
    again = generate_sample(None, tmp_path / "demo", series=2, days=3, seed=2)
    assert not (again / ARRIVING).exists() and len(list(again.glob("part-*.csv"))) == 1
    (again / ARRIVING).mkdir()
    (again / ARRIVING / "notes.txt").write_text("mine")  # not ours: refused, nothing deleted
    with pytest.raises(SampleError, match=r"is not empty \(holds arriving\)"):
        generate_sample(None, again, series=2, days=3)
    assert (again / ARRIVING / "notes.txt").exists()


def test_ingest_catches_every_bad_row(spark: Any, cfg: Any, tmp_path: Path) -> None:
    """Bad rows of each kind appear at a high bad fraction, and validation routes all of them."""
    out = generate_sample(None, tmp_path / "s", series=8, days=10, seed=1, bad_frac=0.02)
    raw = read_source(spark, str(out), ColumnNames("series_id", "ts", "value"), cfg)
    rules = IngestRules(freq=parse_freq("h"))
    counts = count_outcomes(validate(raw, rules), str(out), rules)
    assert counts.read == _read_csv_folder(out).num_rows
    assert set(counts.quarantined_by_reason) == {
        "missing_series_id", "bad_timestamp", "missing_value", "bad_value", "non_finite_value", "off_grid",
        "future_timestamp", "conflicting_duplicate"}
    assert counts.duplicates > 0 and counts.valid > 0.9 * counts.read


def test_spark_writes_the_same_rows_as_pyarrow(spark: Any, tmp_path: Path) -> None:
    a = generate_sample(None, tmp_path / "a", series=3, days=5, seed=2, fmt="parquet")
    b = generate_sample(spark, tmp_path / "b", series=3, days=5, seed=2, fmt="parquet", rows_per_file=200)
    ta, tb = pq.read_table(a), pq.read_table(b)
    key = [("series_id", "ascending"), ("ts", "ascending"), ("value", "ascending")]
    va = ta.sort_by(key)["value"].to_numpy(zero_copy_only=False)
    vb = tb.sort_by(key)["value"].to_numpy(zero_copy_only=False)
    assert ta.num_rows == tb.num_rows
    np.testing.assert_array_equal(va, vb)
