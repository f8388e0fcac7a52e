"""Line and band charts as inline SVG: the report draws itself, with no script and no network."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#17becf")
W, H, LEFT, RIGHT, TOP, BOTTOM = 560, 260, 56, 16, 28, 40


@dataclass(frozen=True)
class Line:
    label: str
    points: Sequence[tuple[float, float]]
    color: str
    dashed: bool = False
    markers: bool = False


@dataclass(frozen=True)
class Band:
    label: str
    points: Sequence[tuple[float, float, float]]  # (x, low, high)
    color: str


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    if hi <= lo:
        return [lo]
    step = 10 ** math.floor(math.log10((hi - lo) / n))
    for m in (1, 2, 5, 10):
        if (hi - lo) / (step * m) <= n:
            step *= m
            break
    first = math.ceil(lo / step) * step
    return [first + i * step for i in range(int((hi - first) / step) + 1)]


def _fmt(v: float) -> str:
    return f"{v:.3g}" if abs(v) < 1e4 else f"{v:.2e}"


def chart(title: str, lines: Sequence[Line], *, bands: Sequence[Band] = (),
          x_label: Callable[[float], str] = _fmt, y_floor: float | None = None,
          hlines: Sequence[tuple[float, str]] = (), chart_id: str = "") -> str:
    """One chart: `bands` under `lines`, y-axis ticks, first/last x labels, a legend, <title> tooltips."""
    xs = [p[0] for ln in lines for p in ln.points] + [p[0] for b in bands for p in b.points]
    ys = ([p[1] for ln in lines for p in ln.points] + [v for b in bands for p in b.points for v in p[1:]]
          + [h for h, _ in hlines])
    ys = [y for y in ys if math.isfinite(y)]
    if not xs or not ys:
        return (f'<svg class="chart empty" id="{escape(chart_id)}" viewBox="0 0 {W} 60" width="{W}" height="60">'
                f'<text x="8" y="34">{escape(title)}: nothing evaluated yet</text></svg>')
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(ys), max(ys)
    if y_floor is not None:
        y0 = min(y0, y_floor)
    if x1 == x0:
        x0, x1 = x0 - 1, x1 + 1
    pad = (y1 - y0) * 0.05 or abs(y1) * 0.1 or 1.0
    y0, y1 = y0 - pad, y1 + pad

    def sx(x: float) -> float:
        return LEFT + (x - x0) / (x1 - x0) * (W - LEFT - RIGHT)

    def sy(y: float) -> float:
        return TOP + (y1 - y) / (y1 - y0) * (H - TOP - BOTTOM)

    out = [f'<svg class="chart" id="{escape(chart_id)}" viewBox="0 0 {W} {H}" width="{W}" height="{H}" '
           f'role="img" aria-label="{escape(title)}">',
           f'<text class="title" x="{LEFT}" y="16">{escape(title)}</text>']
    for t in _ticks(y0, y1):
        out.append(f'<line class="grid" x1="{LEFT}" x2="{W - RIGHT}" y1="{sy(t):.1f}" y2="{sy(t):.1f}"/>'
                   f'<text class="tick" x="{LEFT - 4}" y="{sy(t) + 4:.1f}" text-anchor="end">{_fmt(t)}</text>')
    for x, anchor in ((x0, "start"), (x1, "end")):
        out.append(f'<text class="tick" x="{sx(x):.1f}" y="{H - BOTTOM + 16}" text-anchor="{anchor}">'
                   f'{escape(x_label(x))}</text>')
    for value, label in hlines:
        out.append(f'<line class="ref" x1="{LEFT}" x2="{W - RIGHT}" y1="{sy(value):.1f}" y2="{sy(value):.1f}">'
                   f'<title>{escape(label)}</title></line>')
    for b in bands:
        upper = " ".join(f"{sx(x):.1f},{sy(hi):.1f}" for x, _, hi in b.points)
        lower = " ".join(f"{sx(x):.1f},{sy(lo):.1f}" for x, lo, _ in reversed(b.points))
        out.append(f'<polygon class="band" points="{upper} {lower}" fill="{b.color}" fill-opacity="0.2">'
                   f'<title>{escape(b.label)}</title></polygon>')
    out += _lines(lines, sx, sy, x_label)
    out += _legend(bands, lines)
    out.append("</svg>")
    return "".join(out)


def _lines(lines: Sequence[Line], sx: Callable[[float], float], sy: Callable[[float], float],
           x_label: Callable[[float], str]) -> list[str]:
    out = []
    for ln in lines:
        pts = [(x, y) for x, y in ln.points if math.isfinite(y)]
        if not pts:
            continue
        dash = ' stroke-dasharray="5,4"' if ln.dashed else ""
        path = " ".join(f"{sx(x):.1f},{sy(y):.1f}" for x, y in pts)
        if len(pts) > 1:  # one point is drawn as its marker alone
            out.append(f'<polyline class="line" points="{path}" fill="none" stroke="{ln.color}" '
                       f'stroke-width="2"{dash}><title>{escape(ln.label)}</title></polyline>')
        if ln.markers or len(pts) == 1:
            out += [f'<circle cx="{sx(x):.1f}" cy="{sy(y):.1f}" r="3" fill="{ln.color}">'
                    f'<title>{escape(ln.label)}: {x_label(x)} {_fmt(y)}</title></circle>' for x, y in pts]
    return out


def _legend(bands: Sequence[Band], lines: Sequence[Line]) -> list[str]:
    out = []
    legend = [*((b.label, b.color, False) for b in bands), *((ln.label, ln.color, ln.dashed) for ln in lines)]
    lx = LEFT
    for label, color, dashed in legend:
        dash = ' stroke-dasharray="5,4"' if dashed else ""
        out.append(f'<line x1="{lx}" x2="{lx + 18}" y1="{H - 10}" y2="{H - 10}" stroke="{color}" '
                   f'stroke-width="3"{dash}/><text class="legend" x="{lx + 22}" y="{H - 6}">{escape(label)}</text>')
        lx += 30 + 7 * len(label)
    return out
