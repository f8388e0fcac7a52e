"""`lakecast report`: the self-contained accuracy page, opened in a real headless browser."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from pipelines.report.data import FanChart, ReportData
from pipelines.report.page import render
from tests.browser import ensure_chromium, headless, load_page
from tests.demo_runs import DemoRun

CHARTS = ("mase-by-day", "coverage-by-day", "mase-by-step", "mae-by-step")


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    found = ensure_chromium()
    if isinstance(found, str):
        pytest.skip(found)
    with headless(*found) as session:
        yield session


def test_the_demos_report_renders_every_chart_offline(browser: Any, zone_demos: dict[str, DemoRun]) -> None:
    """The page `lakecast demo` wrote after evaluating its held-back day (3 series, 12 steps)."""
    run = zone_demos["America/New_York"]
    assert run.returncode == 0, run.output[-3000:]
    page = load_page(browser, run.home / "report.html")
    assert page["errors"] == [] and page["requests"] == 0  # nothing fetched: it opens without network
    assert page["title"] == "lakecast accuracy: lakecast"
    charts = {c["id"]: c for c in page["charts"]}
    assert set(charts) == {*CHARTS, "fan-0", "fan-1", "fan-2"}  # the three series, worst first
    for c in charts.values():
        assert not c["empty"] and c["width"] > 100 and c["height"] > 100, c
        assert c["drawn"] == c["marks"] > 0, c  # every line, band and point has a size on screen
    assert charts["fan-0"]["marks"] >= 1 + 1 + 1 + 1 + 12  # history, p50, actual, band, 12 actual points


def test_a_page_with_nothing_evaluated_says_so(browser: Any, tmp_path: Path) -> None:
    empty = tmp_path / "empty.html"
    empty.write_text(render(ReportData("db", 7), datetime(2025, 1, 1, tzinfo=UTC)))
    page = load_page(browser, empty)
    assert page["errors"] == [] and {c["id"] for c in page["charts"]} == set(CHARTS)
    assert all(c["empty"] for c in page["charts"])
    assert "no champion forecast evaluated yet" in empty.read_text()


def test_fan_chart_draws_band_median_actuals_and_history(browser: Any, tmp_path: Path) -> None:
    hour = 3_600_000_000
    fan = FanChart("s'<1>", "m/3", 10 * hour, 1.5, [(k * hour, float(k)) for k in range(11)],
                   [((10 + h) * hour, 8.0 + h, 10.0 + h, 12.0 + h, 10.5 + h) for h in (1, 2, 3)])
    data = ReportData("db", 7, by_day=[{"model": "m/3", "day_us": 0, "n": 3, "mase": 1.5, "snaive_mase": 2.0,
                                        "coverage": 1.0}],
                      by_step=[{"model": "m/3", "horizon_step": h, "n": 1, "mae": 0.5, "mase": 0.2,
                                "snaive_mase": None} for h in (1, 2, 3)], worst=[fan])
    out = tmp_path / "one.html"
    out.write_text(render(data, datetime(2025, 1, 1, tzinfo=UTC)))
    page = load_page(browser, out)
    assert page["errors"] == []
    fans = [c for c in page["charts"] if c["id"] == "fan-0"]
    assert len(fans) == 1 and fans[0]["drawn"] == fans[0]["marks"] == 4 + 3  # 3 lines, 1 band, 3 actual points
    assert "s&#x27;&lt;1&gt;: MASE 1.5" in out.read_text()  # the series id is escaped, not markup
