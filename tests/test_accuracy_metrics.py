"""The accuracy benchmark's metrics against numbers worked out by hand on a tiny example, and its
RESULTS.md section, which a run updates for the datasets it ran only."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from bench._accuracy_metrics import coverage, mase, pinball, scaled_pinball, seasonal_naive_scale, smape
from bench._accuracy_report import Row, recorded_rows, update_results
from bench.accuracy_bench import result_lines

# Three series, season 2. A: steady +1 steps (seasonal diffs all 2 -> scale 2); B: constant
# (no scale: left out of MASE and scaled pinball); C: shorter than a season plus one, so lag 1.
TRAIN = [np.array([1.0, 2, 3, 4, 5, 6]), np.array([10.0, 10, 10]), np.array([1.0, 3])]
Y = np.array([[7.0, 8], [10, 10], [0, 4]])
P50 = np.array([[8.0, 8], [11, 10], [0, 2]])
P10, P90 = P50 - 1, P50 + 1


def test_seasonal_naive_scale() -> None:
    scale = seasonal_naive_scale(TRAIN, 2)
    assert scale[0] == 2.0 and np.isnan(scale[1]) and scale[2] == 2.0
    # Season 4: C still falls back to lag 1; A now has lag-4 diffs |5-1|, |6-2|.
    assert seasonal_naive_scale(TRAIN, 4)[[0, 2]].tolist() == [4.0, 2.0]


def test_mase_is_the_mean_over_scaled_series() -> None:
    # A: MAE 0.5 / 2 = 0.25; B left out; C: MAE 1 / 2 = 0.5.
    assert mase(Y, P50, seasonal_naive_scale(TRAIN, 2)) == pytest.approx(0.375)


def test_smape_counts_zero_over_zero_as_zero() -> None:
    # A: 100 * (1/15 + 0); B: 100 * (1/21 + 0); C: 100 * (0 (0/0) + 2/6).
    assert smape(Y, P50) == pytest.approx((100 / 15 + 100 / 21 + 100 / 3) / 3)


def test_pinball_is_asymmetric() -> None:
    y = np.array([10.0, 10.0])
    assert pinball(y, np.array([8.0, 12.0]), 0.9).tolist() == pytest.approx([1.8, 0.2])
    assert pinball(y, np.array([8.0, 12.0]), 0.1).tolist() == pytest.approx([0.2, 1.8])


def test_scaled_pinball() -> None:
    # A: points (0 + .5 + .2)/3 and (.1 + 0 + .1)/3 -> series mean .15 / scale 2 = .075;
    # C: (.1 + 0 + .1)/3 and (.3 + 1 + .9)/3 -> .4 / 2 = .2; B left out.
    got = scaled_pinball(Y, [P10, P50, P90], seasonal_naive_scale(TRAIN, 2))
    assert got == pytest.approx((0.075 + 0.2) / 2)


def test_coverage_and_missing_actuals() -> None:
    assert coverage(Y, P10, P90) == pytest.approx(5 / 6)  # only C's 4 lies outside [1, 3]
    y = Y.copy()
    y[2, 1] = np.nan  # a gap in the held-out data: left out everywhere
    assert coverage(y, P10, P90) == 1.0
    assert mase(y, P50, seasonal_naive_scale(TRAIN, 2)) == pytest.approx((0.25 + 0.0) / 2)
    assert smape(y, P50) == pytest.approx((100 / 15 + 100 / 21 + 0) / 3)


def test_results_section_keeps_other_datasets_and_sections(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n\n## Windows\n\nfigures\n")

    def row(ds: str, method: str, m: float) -> Row:
        return Row(ds, "MS, h=18, 3 series", method, m, 10.0, 0.2, 0.8, 1.0)

    update_results(path, [row("a", "lakecast", 0.9)], ["RESULT accuracy_a_coverage=0.800"], "2026-01-01")
    update_results(path, [row("b", "lakecast", 1.1)], ["RESULT accuracy_b_coverage=0.700"], "2026-01-02")
    update_results(path, [row("a", "AutoETS", 0.8)], ["RESULT accuracy_a_coverage=0.750"], "2026-01-03")
    text = path.read_text()
    assert text.startswith("# Benchmark results\n\n## Windows\n\nfigures\n\n## Accuracy against statistical methods")
    assert text.count("## Accuracy against statistical methods") == 1
    table = [ln for ln in text.splitlines() if ln.startswith(("| a ", "| b "))]
    assert [ln.split(" | ")[2] for ln in table] == ["**lakecast**", "AutoETS"]  # b's row, then a's new one
    assert table[0].startswith("| b ") and "| 0.800 |" in table[1]
    assert [ln for ln in text.splitlines() if ln.startswith("RESULT")] == [
        "RESULT accuracy_b_coverage=0.700", "RESULT accuracy_a_coverage=0.750"]


def test_lakecast_only_runs_are_compared_with_the_recorded_statistical_rows(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """`--lakecast-only` reads back what a full run recorded: the rows of one dataset, with their
    date, and the MASE ratio against the best recorded Auto* method (never SeasonalNaive)."""
    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n")
    full = [Row("m", "MS, h=18, 3 series", "lakecast", 0.9, 12.0, 0.3, 0.8, 300.0, "ingest 30 s"),
            Row("m", "MS, h=18, 3 series", "AutoETS", 0.85, 11.0, 0.28, 0.75, 50.0),
            Row("m", "MS, h=18, 3 series", "AutoARIMA", 0.82, 11.5, 0.3, 0.72, 200.0),
            Row("m", "MS, h=18, 3 series", "AutoTheta", 0.8, 10.5, 0.29, 0.7, 9.0),
            Row("m", "MS, h=18, 3 series", "SeasonalNaive", 0.5, 20.0, 0.4, 0.8, 0.7)]
    update_results(path, full, [], "2026-12-06")
    update_results(path, [Row("other", "QS, h=8, 1 series", "AutoETS", 0.1, 1.0, 0.1, 0.8, 1.0)], [], "2026-12-07")
    got = recorded_rows(path, "m")
    assert got == [(r, "2026-12-06") for r in full]
    assert recorded_rows(path, "missing") == [] and recorded_rows(tmp_path / "none.md", "m") == []
    new = [Row("m", "MS, h=18, 3 series", "lakecast", 0.84, 11.0, 0.3, 0.8, 200.0),
           Row("m", "MS, h=18, 3 series", "SeasonalNaive", 0.5, 20.0, 0.4, 0.8, 0.7)]
    assert result_lines(new, {"m": [r for r, _ in got]}) == [
        "RESULT accuracy_m_mase_vs_best_stat=1.050", "RESULT accuracy_m_coverage=0.800"]
    # nothing recorded, or not all three Auto* methods: no ratio (SeasonalNaive is not a standard
    # here, and the best of two is not the best of three); coverage still
    assert result_lines(new, {}) == ["RESULT accuracy_m_coverage=0.800"]
    assert result_lines(new, {"m": [r for r, _ in got if r.method != "AutoARIMA"]}) == [
        "RESULT accuracy_m_coverage=0.800"]
    # a row edited by hand into something unreadable is left out, and said
    path.write_text(path.read_text().replace("| AutoARIMA | 0.820 |", "| AutoARIMA | n/a |"))
    assert [r.method for r, _ in recorded_rows(path, "m")] == ["lakecast", "AutoETS", "AutoTheta", "SeasonalNaive"]
    assert "a row of m left out" in capsys.readouterr().err


def test_lakecast_only_never_records_and_compares_only_rows_of_the_same_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """The flag's wiring in `main`: only SeasonalNaive is fitted, RESULTS.md is not written, and the
    ratio uses recorded rows only for the default split and the same data (series count, horizon)."""
    import bench.accuracy_bench as ab

    path = tmp_path / "RESULTS.md"
    path.write_text("# Benchmark results\n")
    data = "YS, h=6, 181 series"
    recorded = [Row("m1_yearly", data, m, v, 10.0, 1.0, 0.5, 1.0)
                for m, v in (("lakecast", 4.0), ("AutoETS", 3.9), ("AutoARIMA", 3.5), ("AutoTheta", 3.6),
                             ("SeasonalNaive", 4.9))]
    update_results(path, recorded, [], "2026-12-06")
    calls: list[tuple[str, ...]] = []

    def fake(bs, work, max_series, short, extra, earlier, methods=ab.METHODS):  # type: ignore[no-untyped-def]
        calls.append(methods)
        return [Row(bs.name, data, "lakecast", 3.85, 18.0, 1.2, 0.8, 100.0),
                *(Row(bs.name, data, m, 4.9, 22.0, 1.9, 0.46, 0.2) for m in methods)]

    monkeypatch.setattr(ab, "RESULTS", path)
    monkeypatch.setattr(ab, "bench_dataset", fake)
    before = path.read_text()
    assert ab.main(["--datasets", "m1_yearly", "--lakecast-only", "--set", "windows.lookback=12"]) == 0
    out = capsys.readouterr().out
    assert calls == [("SeasonalNaive",)] and path.read_text() == before
    assert "RESULT accuracy_m1_yearly_mase_vs_best_stat=1.100" in out and "measured 2026-12-06" in out
    # another split: nothing to compare with
    assert ab.main(["--datasets", "m1_yearly", "--lakecast-only", "--max-series", "5"]) == 0
    out = capsys.readouterr().out
    assert "mase_vs_best_stat" not in out and "another split" in out and path.read_text() == before
    # rows recorded for other data (a different series count) are not compared with
    update_results(path, [Row("m1_yearly", "YS, h=6, 180 series", r.method, r.mase, 1.0, 1.0, 0.5, 1.0)
                          for r in recorded], [], "2026-12-07")
    before = path.read_text()
    assert ab.main(["--datasets", "m1_yearly", "--lakecast-only"]) == 0
    out = capsys.readouterr().out
    assert "mase_vs_best_stat" not in out and "not comparable" in out and path.read_text() == before
    # without the flag the same run records, with all four methods fitted
    assert ab.main(["--datasets", "m1_yearly"]) == 0
    assert calls[-1] == ab.METHODS and "| m1_yearly | YS, h=6, 181 series | **lakecast** | 3.850 |" in path.read_text()


def test_split_holds_out_the_last_horizon_or_an_earlier_one(tmp_path: Path) -> None:
    """`--earlier K` moves the holdout K horizons back: the series that reach that end are kept (one
    ending before the data's last step too), and nothing after the holdout is seen."""
    import pandas as pd

    from bench._accuracy_data import BenchSet, split

    months = pd.date_range("2000-01-01", periods=30, freq="MS", tz="UTC")
    rows = [("a", t, float(i)) for i, t in enumerate(months)] + [("b", t, 100.0 + i) for i, t in enumerate(months[:27])]
    path = tmp_path / "d.csv"
    pd.DataFrame(rows, columns=["series_id", "ts", "value"]).to_csv(path, index=False)
    bs = BenchSet("d", "MS", 3)
    last = split(path, bs)
    assert last.series == ["a"] and last.actuals.tolist() == [[27.0, 28.0, 29.0]]
    assert last.origin == pd.Timestamp("2002-03-01", tz="UTC")
    before = split(path, bs, earlier=1)
    assert before.series == ["a", "b"] and before.actuals.tolist() == [[24.0, 25.0, 26.0], [124.0, 125.0, 126.0]]
    assert before.origin == pd.Timestamp("2001-12-01", tz="UTC") and before.train["ts"].max() == before.origin
    assert [len(h) for h in before.history] == [24, 24]


def _lc(name: str, mase_: float, pinball_: float, cover: float = 0.8) -> Row:
    return Row(name, "MS, h=18, 1 series", "lakecast", mase_, 5.0, pinball_, cover, 60.0)


def test_compare_summary_is_the_geometric_mean_over_set_and_origin_pairs() -> None:
    """`--compare` decides on the geometric mean of the candidate's ratios over every pair: one set
    4 % better at the holdout and 21 % worse an origin earlier nets out worse, as on 2026-12-07."""
    from bench._accuracy_compare import Pair, summarise, table
    from bench._accuracy_compare import result_lines as compare_lines

    pairs = [Pair("a", 0, _lc("a", 1.0, 0.5), _lc("a", 0.96, 0.4)),       # MASE 0.96, pinball 0.8
             Pair("a", 1, _lc("a", 2.0, 1.0), _lc("a", 2.42, 1.25)),      # MASE 1.21, pinball 1.25
             Pair("b", 0, _lc("b", 0.5, 0.2), _lc("b", 0.5, 0.2))]        # the same
    s = summarise(pairs)
    assert s.pairs == 3 and (s.better, s.worse) == (1, 1)
    assert s.mase_change == pytest.approx((0.96 * 1.21) ** (1 / 3) - 1)
    assert s.pinball_change == pytest.approx((0.8 * 1.25) ** (1 / 3) - 1) == pytest.approx(0.0)
    assert (s.worst.dataset, s.worst.earlier) == ("a", 1)
    lines = compare_lines(s)
    assert "RESULT compare_pairs=3" in lines and "RESULT compare_better=1" in lines
    assert f"RESULT compare_mase_gmean_change={s.mase_change:+.4f}" in lines
    assert "RESULT compare_worst=a@-1h:+0.2100" in lines
    rows = table(pairs).splitlines()
    assert rows[2] == "| a | holdout | 1.000 → 0.960 (-4.0 %) | 0.500 → 0.400 | 0.800 → 0.800 |"
    assert rows[3].startswith("| a | -1 h | 2.000 → 2.420 (+21.0 %) |")
    with pytest.raises(ValueError, match="no set-and-origin pair"):
        summarise([Pair("c", 0, _lc("c", 0.0, 0.0), _lc("c", 0.0, 0.0))])


def test_compare_options_are_checked_before_anything_runs(capsys: pytest.CaptureFixture[str]) -> None:
    from bench.accuracy_bench import main

    for argv, said in ((["--origins", "3"], "--origins N takes N >= 1, with --compare"),
                       (["--compare", "model.statistical_blend_local"], "--set and --compare take KEY=VALUE"),
                       (["--compare", "a=b", "--origins", "0"], "--origins N takes N >= 1")):
        with pytest.raises(SystemExit) as e:
            main(["--datasets", "air_passengers", *argv])
        assert e.value.code == 2 and said in capsys.readouterr().err


def test_compare_runs_both_sides_apart_and_leaves_out_origins_a_set_cannot_reach(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    """Each side of each pair works in its own folder with its own settings, the candidate first; a set
    that cannot run at an origin is reported, its earlier origins skipped, and the other pairs still
    summarised."""
    import bench.accuracy_bench as ab

    calls: list[tuple[str, int, dict[str, str]]] = []
    mases = {("air_passengers", 0): (1.0, 0.9), ("air_passengers", 1): (2.0, 2.2), ("air_passengers", 2): (1.0, 1.0),
             ("hsales", 0): (0.5, 0.45)}

    def fake(bs, work, max_series, short, extra, earlier, methods):  # type: ignore[no-untyped-def]
        calls.append((str(work.relative_to(tmp_path)), earlier, dict(extra)))
        if bs.name == "hsales" and earlier == 1:
            raise ab.NoHoldout("hsales: no series has a row before the origin")
        cand = extra.get("model.statistical_blend_local") == "0"
        return [_lc(bs.name, mases[bs.name, earlier][cand], 0.3)]

    monkeypatch.setattr(ab, "bench_dataset", fake)
    rc = ab.main(["--datasets", "air_passengers,hsales", "--compare", "model.statistical_blend_local=0",
                  "--set", "train.seed=7", "--origins", "3", "--keep", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 1  # a pair could not run
    both = {"train.seed": "7"}
    cand = {**both, "model.statistical_blend_local": "0"}
    assert calls == [(f"air_passengers/earlier{k}/{side}", k, cand if side == "candidate" else both)
                     for k in range(3) for side in ("candidate", "base")] + [
        ("hsales/earlier0/candidate", 0, cand), ("hsales/earlier0/base", 0, both),
        ("hsales/earlier1/candidate", 1, cand)]  # no baseline after the candidate failed, no -2 h
    assert "hsales, -1 h: hsales: no series" in out and "lakecast failed on hsales (-1 h)" in out
    assert "| air_passengers | holdout | 1.000 → 0.900 (-10.0 %) |" in out
    assert "| hsales | holdout | 0.500 → 0.450 (-10.0 %) |" in out
    assert "RESULT compare_pairs=4" in out and "RESULT compare_better=2" in out and "RESULT compare_worse=1" in out
    assert f"RESULT compare_mase_gmean_change={(0.9 * 1.1 * 1.0 * 0.9) ** 0.25 - 1:+.4f}" in out


def test_compare_refuses_a_setting_lakecast_would_refuse_before_running(
        monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    import bench.accuracy_bench as ab

    def never(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise AssertionError("no dataset may run")

    monkeypatch.setattr(ab, "bench_dataset", never)
    with pytest.raises(SystemExit) as e:
        ab.main(["--datasets", "air_passengers", "--compare", "model.statistical_blend_lokal=0"])
    assert e.value.code == 2 and "model.statistical_blend_lokal: unknown key" in capsys.readouterr().err
