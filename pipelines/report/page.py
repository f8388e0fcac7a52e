"""The accuracy report as one self-contained HTML page: inline CSS and SVG, no script, no network."""

from __future__ import annotations

from datetime import UTC, datetime
from html import escape
from typing import Any

from pipelines.report.data import ReportData
from pipelines.report.svg import PALETTE, Band, Line, chart

CSS = """
body{font-family:system-ui,sans-serif;margin:24px;color:#222;max-width:1200px}
h1{font-size:1.4em} h2{font-size:1.1em;margin-top:28px} .muted{color:#666}
.grid-2{display:flex;flex-wrap:wrap;gap:16px}
svg.chart{background:#fff;border:1px solid #ddd} .title{font-weight:600;font-size:13px}
.tick,.legend{font-size:11px;fill:#444} line.grid{stroke:#eee} line.ref{stroke:#999;stroke-dasharray:2,3}
table{border-collapse:collapse;font-size:13px} td,th{border:1px solid #ddd;padding:3px 8px;text-align:right}
"""


def _day(us: float) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%Y-%m-%d")


def _hour(us: float) -> str:
    return datetime.fromtimestamp(us / 1e6, UTC).strftime("%m-%d %H:%M")


def _by_model(rows: list[dict[str, Any]], x: str, y: str) -> dict[str, list[tuple[float, float]]]:
    out: dict[str, list[tuple[float, float]]] = {}
    for r in rows:
        if r[y] is not None:
            out.setdefault(str(r["model"]), []).append((float(r[x]), float(r[y])))
    return out


def _reference(rows: list[dict[str, Any]], x: str) -> list[tuple[float, float]]:
    """Seasonal naive on the same targets, pooled over versions (weighted by n)."""
    acc: dict[float, list[float]] = {}
    for r in rows:
        if r["snaive_mase"] is not None:
            s = acc.setdefault(float(r[x]), [0.0, 0.0])
            s[0] += float(r["snaive_mase"]) * r["n"]
            s[1] += r["n"]
    return [(k, v[0] / v[1]) for k, v in sorted(acc.items()) if v[1]]


def render(data: ReportData, generated_at: datetime) -> str:
    """The whole page for `data`."""
    colors = {m: PALETTE[i % len(PALETTE)] for i, m in enumerate(sorted({str(r["model"]) for r in data.by_day}))}
    mase_day = [Line(m, pts, colors[m], markers=True) for m, pts in _by_model(data.by_day, "day_us", "mase").items()]
    mase_day.append(Line("seasonal naive", _reference(data.by_day, "day_us"), "#777", dashed=True))
    cov_day = [Line(m, pts, colors[m], markers=True)
               for m, pts in _by_model(data.by_day, "day_us", "coverage").items()]
    mase_step = [Line(m, pts, colors[m]) for m, pts in _by_model(data.by_step, "horizon_step", "mase").items()]
    mase_step.append(Line("seasonal naive", _reference(data.by_step, "horizon_step"), "#777", dashed=True))
    mae_step = [Line(m, pts, colors[m]) for m, pts in _by_model(data.by_step, "horizon_step", "mae").items()]
    step = lambda x: f"step {x:.0f}"  # noqa: E731
    charts = [
        chart("Live MASE by day of origin (lower is better)", mase_day, x_label=_day, y_floor=0.0,
              chart_id="mase-by-day"),
        chart("p10-p90 coverage by day of origin (nominal 0.80)", cov_day, x_label=_day,
              hlines=[(0.8, "nominal 0.80")], chart_id="coverage-by-day"),
        chart("MASE by horizon step", mase_step, x_label=step, y_floor=0.0, chart_id="mase-by-step"),
        chart("Mean absolute error by horizon step", mae_step, x_label=step, y_floor=0.0, chart_id="mae-by-step"),
    ]
    fans = []
    for i, f in enumerate(data.worst):
        mase = "-" if f.mase is None else f"{f.mase:.3g}"
        fans.append(chart(
            f"{f.series_id}: MASE {mase} ({f.model}, origin {_hour(f.origin_us)})",
            [Line("history", [(float(t), v) for t, v in f.history], "#444"),
             Line("p50", [(float(t), p50) for t, _, p50, _, _ in f.forecast], PALETTE[0]),
             Line("actual", [(float(t), a) for t, _, _, _, a in f.forecast], "#d62728", markers=True)],
            bands=[Band("p10-p90", [(float(t), p10, p90) for t, p10, _, p90, _ in f.forecast], PALETTE[0])],
            x_label=_hour, chart_id=f"fan-{i}"))
    t = data.totals
    summary = (f"{t.get('n') or 0} evaluated forecasts of {t.get('series') or 0} series over "
               f"{t.get('origins') or 0} origins; last evaluated {escape(str(t.get('evaluated_at') or '-'))} UTC")
    rows = "".join(
        f"<tr><td style='text-align:left'>{escape(str(r['model']))}</td><td>{_day(r['day_us'])}</td><td>{r['n']}</td>"
        f"<td>{_num(r['mase'])}</td><td>{_num(r['snaive_mase'])}</td><td>{_num(r['coverage'])}</td></tr>"
        for r in data.by_day)
    table = ("<table><tr><th>model</th><th>origin day</th><th>n</th><th>MASE</th><th>seasonal naive MASE</th>"
             f"<th>p10-p90 coverage</th></tr>{rows}</table>") if rows else "<p class='muted'>nothing evaluated yet</p>"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>lakecast accuracy: {escape(data.database)}</title>
<style>{CSS}</style></head><body>
<h1>lakecast live accuracy: <code>{escape(data.database)}</code></h1>
<p class="muted">{summary}. Generated {generated_at:%Y-%m-%d %H:%M} UTC by <code>lakecast report</code>
from <code>forecast_accuracy</code> (run <code>lakecast evaluate</code> to refresh it).</p>
<h2>Live accuracy over time, against seasonal naive on the same targets</h2>
<div class="grid-2">{charts[0]}{charts[1]}</div>
<h2>Error by horizon step</h2>
<div class="grid-2">{charts[2]}{charts[3]}</div>
<h2>Worst series of the champion (MASE over its last {data.window} origins)</h2>
<div class="grid-2">{"".join(fans) or "<p class='muted'>no champion forecast evaluated yet</p>"}</div>
<h2>By version and day</h2>
{table}
</body></html>
"""


def _num(v: float | None) -> str:
    return "-" if v is None else f"{v:.4g}"
