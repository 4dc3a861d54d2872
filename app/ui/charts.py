"""Charts as inline SVG, drawn on the server: no JavaScript, no network, readable by screen readers.

Each function takes plain numbers and returns an ``<svg>`` element (``Markup``)
that scales to its container (``viewBox``), with a ``<title>`` naming what it
shows and a ``<title>`` on each mark for the exact value on hover.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from html import escape

from markupsafe import Markup

PALETTE = ("#2563eb", "#d97706", "#059669", "#db2777", "#7c3aed", "#0891b2", "#65a30d", "#dc2626")
OTHER_COLOUR = "#9ca3af"


def _f(x: float) -> str:
    return f"{x:.1f}".rstrip("0").rstrip(".")


def _svg(width: int, height: int, label: str, body: list[str], css: str = "chart") -> Markup:
    return Markup(
        f'<svg class="{css}" viewBox="0 0 {width} {height}" role="img" '
        f'aria-label="{escape(label)}">'
        f"<title>{escape(label)}</title>{''.join(body)}</svg>"
    )


def _tick(value: float) -> str:
    if value == 0:
        return "0"
    if abs(value) >= 1000:
        return f"{value:,.0f}".replace(",", "\u202f")
    return f"{value:.3g}"


@dataclass(frozen=True)
class Span:
    """A shaded stretch of the x axis (an incident), from index ``start`` to ``end``."""

    start: int
    end: int
    label: str


def drift_line(
    values: Sequence[float | None],
    thresholds: Sequence[float | None],
    drifted: Sequence[bool],
    *,
    labels: Sequence[str],
    spans: Sequence[Span] = (),
    title: str,
    width: int = 320,
    height: int = 90,
) -> Markup:
    """One feature's effect per evaluation against its threshold; drifted points red, incidents shaded."""
    pad_l, pad_r, pad_t, pad_b = 34, 6, 6, 14
    n = len(values)
    finite = [v for v in (*values, *thresholds) if v is not None and math.isfinite(v)]
    top = max(finite, default=1.0) * 1.1 or 1.0
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b

    def x(i: int) -> float:
        return pad_l + (inner_w * (i + 0.5) / max(n, 1))

    def y(v: float) -> float:
        return pad_t + inner_h * (1 - min(v, top) / top)

    body = [
        f'<line class="axis" x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - pad_r}" y2="{pad_t + inner_h}"/>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{_tick(top)}</text>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + inner_h}" text-anchor="end">0</text>',
    ]
    step = inner_w / max(n, 1)
    for s in spans:
        x0 = pad_l + step * s.start
        body.append(
            f'<rect class="incident" x="{_f(x0)}" y="{pad_t}" width="{_f(step * (s.end - s.start + 1))}" '
            f'height="{inner_h}"><title>{escape(s.label)}</title></rect>'
        )
    # the threshold as a stepped dashed line (it may change with the window's rows)
    t_points = [
        f"{_f(x(i))},{_f(y(t))}"
        for i, t in enumerate(thresholds)
        if t is not None and math.isfinite(t)
    ]
    if t_points:
        body.append(f'<polyline class="threshold" points="{" ".join(t_points)}"/>')
    v_points = [(i, v) for i, v in enumerate(values) if v is not None and math.isfinite(v)]
    if v_points:
        body.append(
            '<polyline class="series" points="'
            + " ".join(f"{_f(x(i))},{_f(y(v))}" for i, v in v_points)
            + '"/>'
        )
    body += [
        _effect_point(x(i), y(v), v, thresholds[i], drifted[i], labels[i]) for i, v in v_points
    ]
    return _svg(width, height, title, body)


def _effect_point(
    cx: float, cy: float, v: float, t: float | None, drifted: bool, label: str
) -> str:
    """One evaluation's effect, red and larger when it drifted, its figures on hover."""
    cls = "point drifted" if drifted else "point"
    return (
        f'<circle class="{cls}" cx="{_f(cx)}" cy="{_f(cy)}" r="{2.6 if drifted else 1.8}">'
        f"<title>{escape(label)}: effect {v:.4g}"
        f"{'' if t is None else f' vs threshold {t:.4g}'}{' — drifted' if drifted else ''}"
        "</title></circle>"
    )


def bars(
    values: Sequence[float],
    *,
    labels: Sequence[str],
    title: str,
    unit: str = "",
    width: int = 640,
    height: int = 120,
) -> Markup:
    """A bar per step (ingest volume, tickets per hour)."""
    pad_l, pad_r, pad_t, pad_b = 44, 4, 6, 16
    n = len(values)
    top = max(values, default=0) or 1
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    step = inner_w / max(n, 1)
    body = [
        f'<line class="axis" x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - pad_r}" y2="{pad_t + inner_h}"/>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{_tick(top)}</text>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + inner_h}" text-anchor="end">0</text>',
    ]
    for i, v in enumerate(values):
        h = inner_h * v / top
        body.append(
            f'<rect class="bar" x="{_f(pad_l + i * step + step * 0.1)}" y="{_f(pad_t + inner_h - h)}" '
            f'width="{_f(max(step * 0.8, 0.5))}" height="{_f(h)}">'
            f"<title>{escape(labels[i])}: {_tick(v)}{escape(unit)}</title></rect>"
        )
    if n:
        body.append(
            f'<text class="tick" x="{pad_l}" y="{height - 3}">{escape(labels[0])}</text>'
            f'<text class="tick" x="{width - pad_r}" y="{height - 3}" text-anchor="end">'
            f"{escape(labels[-1])}</text>"
        )
    return _svg(width, height, title, body)


def stacked_shares(
    rows: Sequence[Sequence[float]],
    *,
    categories: Sequence[str],
    labels: Sequence[str],
    title: str,
    width: int = 640,
    height: int = 120,
) -> Markup:
    """Each step's share of each category (the prediction distribution over time)."""
    pad_l, pad_r, pad_t, pad_b = 44, 4, 6, 16
    n = len(rows)
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    step = inner_w / max(n, 1)
    body = [
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">100%</text>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + inner_h}" text-anchor="end">0</text>',
    ]
    for i, row in enumerate(rows):
        total = sum(row) or 1
        y = float(pad_t + inner_h)
        for j, count in enumerate(row):
            h = inner_h * count / total
            if h <= 0:
                continue
            y -= h
            colour = PALETTE[j % len(PALETTE)] if j < len(categories) - 1 else OTHER_COLOUR
            body.append(
                f'<rect x="{_f(pad_l + i * step)}" y="{_f(y)}" width="{_f(step + 0.3)}" '
                f'height="{_f(h)}" fill="{colour}"><title>{escape(labels[i])}: '
                f"{escape(categories[j])} {100 * count / total:.1f}%</title></rect>"
            )
    return _svg(width, height, title, body)


def band(
    low: Sequence[float | None],
    mid: Sequence[float | None],
    high: Sequence[float | None],
    *,
    labels: Sequence[str],
    title: str,
    lower: float = 0.0,
    upper: float = 1.0,
    width: int = 640,
    height: int = 120,
) -> Markup:
    """A median line inside a low–high band per step (confidence over time)."""
    pad_l, pad_r, pad_t, pad_b = 44, 4, 6, 16
    n = len(mid)
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    span = (upper - lower) or 1.0

    def x(i: int) -> float:
        return pad_l + inner_w * (i + 0.5) / max(n, 1)

    def y(v: float) -> float:
        return pad_t + inner_h * (1 - (min(max(v, lower), upper) - lower) / span)

    body = [
        f'<line class="axis" x1="{pad_l}" y1="{pad_t + inner_h}" x2="{width - pad_r}" y2="{pad_t + inner_h}"/>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{_tick(upper)}</text>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + inner_h}" text-anchor="end">{_tick(lower)}</text>',
    ]
    idx = [i for i in range(n) if low[i] is not None and high[i] is not None and mid[i] is not None]
    if idx:
        upper_pts = [f"{_f(x(i))},{_f(y(high[i] or 0.0))}" for i in idx]
        lower_pts = [f"{_f(x(i))},{_f(y(low[i] or 0.0))}" for i in reversed(idx)]
        body.append(f'<polygon class="band" points="{" ".join(upper_pts + lower_pts)}"/>')
        body.append(
            '<polyline class="series" points="'
            + " ".join(f"{_f(x(i))},{_f(y(mid[i] or 0.0))}" for i in idx)
            + '"/>'
        )
        for i in idx:
            body.append(
                f'<circle class="point" cx="{_f(x(i))}" cy="{_f(y(mid[i] or 0.0))}" r="1.6">'
                f"<title>{escape(labels[i])}: median {mid[i]:.3g} "
                f"(p10 {low[i]:.3g}, p90 {high[i]:.3g})</title></circle>"
            )
    return _svg(width, height, title, body)


def histogram_pair(
    reference: Sequence[float],
    window: Sequence[float],
    *,
    labels: Sequence[str],
    title: str,
    x_label: str = "",
    width: int = 300,
    height: int = 132,
) -> Markup:
    """Reference and window shares per bin, side by side (both normalised to 1).

    Labelled to be read without hovering: the y axis in percent of rows (0 and the
    top), each category under its bars (or, for many numeric bins, the first, middle
    and last bin), and the x axis named.
    """
    pad_l, pad_r, pad_t, pad_b = 30, 4, 6, 40
    n = len(reference)
    rt, wt = sum(reference) or 1, sum(window) or 1
    ref = [v / rt for v in reference]
    win = [v / wt for v in window]
    top = max([*ref, *win], default=0) or 1
    inner_w, inner_h = width - pad_l - pad_r, height - pad_t - pad_b
    step = inner_w / max(n, 1)
    base = pad_t + inner_h
    body: list[str] = [
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{_tick(100 * top)}%</text>',
        f'<text class="tick" x="{pad_l - 4}" y="{base}" text-anchor="end">0%</text>',
        f'<text class="axis-label" x="9" y="{_f(pad_t + inner_h / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 9 {_f(pad_t + inner_h / 2)})">rows</text>',
    ]
    for i in range(n):
        for k, (share, cls) in enumerate(((ref[i], "ref"), (win[i], "win"))):
            h = inner_h * share / top
            body.append(
                f'<rect class="{cls}" x="{_f(pad_l + i * step + k * step / 2)}" '
                f'y="{_f(base - h)}" width="{_f(max(step / 2 - 0.3, 0.4))}" '
                f'height="{_f(h)}"><title>{escape(labels[i])}: '
                f"{'reference' if cls == 'ref' else 'window'} {100 * share:.1f}%</title></rect>"
            )
    body.append(f'<line class="axis" x1="{pad_l}" y1="{base}" x2="{width - pad_r}" y2="{base}"/>')
    body += _category_ticks(labels, n, step=step, left=pad_l, right=width - pad_r, y=base + 11)
    if x_label:
        body.append(
            f'<text class="axis-label" x="{_f(pad_l + inner_w / 2)}" y="{height - 4}" '
            f'text-anchor="middle">{escape(x_label)}</text>'
        )
    return _svg(width, height, title, body, css="chart histogram")


def _category_ticks(
    labels: Sequence[str], n: int, *, step: float, left: float, right: float, y: float
) -> list[str]:
    """Category names under their bars when they fit; else the first, middle and last bin."""
    fits = n <= 8
    shown = range(n) if fits else sorted({0, n // 2, n - 1})
    chars = max(int(step / 5.2), 3) if fits else 14
    out = []
    for i in shown:
        text = labels[i] if len(labels[i]) <= chars else labels[i][: chars - 1] + "…"
        x = left + (i + 0.5) * step
        anchor = "middle" if fits else ("start" if i == 0 else "end" if i == n - 1 else "middle")
        if not fits:
            x = left if i == 0 else right if i == n - 1 else x
        out.append(
            f'<text class="tick category" x="{_f(x)}" y="{y}" text-anchor="{anchor}">'
            f"{escape(text)}</text>"
        )
    return out


def position(
    percentile: float | None,
    *,
    outside: bool,
    title: str,
    width: int = 160,
    height: int = 18,
) -> Markup:
    """Where a value falls in its reference distribution: a 0–100 % strip with p5–p95 shaded."""
    pad = 4
    inner = width - 2 * pad

    def x(p: float) -> float:
        return pad + inner * min(max(p, 0.0), 100.0) / 100.0

    body = [
        f'<rect class="strip" x="{pad}" y="7" width="{inner}" height="4"/>',
        f'<rect class="core" x="{_f(x(5))}" y="5" width="{_f(x(95) - x(5))}" height="8"/>',
        f'<line class="median" x1="{_f(x(50))}" y1="3" x2="{_f(x(50))}" y2="15"/>',
    ]
    if percentile is not None:
        cls = "marker outside" if outside else "marker"
        body.append(f'<circle class="{cls}" cx="{_f(x(percentile))}" cy="9" r="4.5"/>')
    return _svg(width, height, title, body, css="chart position")


@dataclass(frozen=True)
class Interval:
    """A point estimate and its interval (either end may be unknown)."""

    value: float
    low: float | None
    high: float | None


@dataclass(frozen=True)
class _Frame:
    """A chart's plotting area: ``n`` slots along x, values ``lower``..``upper`` along y."""

    width: int
    height: int
    pad_l: int
    pad_r: int
    pad_t: int
    pad_b: int
    n: int
    lower: float
    upper: float

    @property
    def inner_w(self) -> int:
        return self.width - self.pad_l - self.pad_r

    @property
    def inner_h(self) -> int:
        return self.height - self.pad_t - self.pad_b

    @property
    def step(self) -> float:
        return self.inner_w / max(self.n, 1)

    def x(self, i: int) -> float:
        return self.pad_l + self.inner_w * (i + 0.5) / max(self.n, 1)

    def y(self, v: float) -> float:
        span = self.upper - self.lower
        clipped = min(max(v, self.lower), self.upper)
        return self.pad_t + self.inner_h * (1 - (clipped - self.lower) / span)


def performance(
    *,
    estimated: Sequence[Interval | None],
    audited: Sequence[Interval | None],
    realized: Sequence[Interval | None],
    reference: float | None,
    bound: float | None,
    spans: Sequence[Span],
    labels: Sequence[str],
    metric: str,
    title: str,
    width: int = 1200,
    height: int = 220,
) -> Markup:
    """A metric per window: the label-free estimate as a line in its band, audited points
    with interval bars, the realized line, the reference and the bound as rules, and
    incidents shaded. Oldest window left."""
    seen = [
        v
        for series in (estimated, audited, realized)
        for e in series
        if e is not None
        for v in (e.value, e.low, e.high)
        if v is not None and math.isfinite(v)
    ]
    seen += [v for v in (reference, bound) if v is not None]
    lower, upper = (min(seen), max(seen)) if seen else (0.0, 1.0)
    pad = (upper - lower) * 0.08 or 0.05
    frame = _Frame(width, height, 52, 8, 8, 30, len(labels), lower - pad, upper + pad)
    body = _performance_axes(frame, labels, metric)
    for s in spans:
        body.append(
            f'<rect class="incident" x="{_f(frame.pad_l + frame.step * s.start)}" '
            f'y="{frame.pad_t}" width="{_f(frame.step * (s.end - s.start + 1))}" '
            f'height="{frame.inner_h}"><title>{escape(s.label)}</title></rect>'
        )
    for cls, value, name in (("reference", reference, "reference"), ("floor", bound, "bound")):
        if value is not None:
            body.append(
                f'<line class="{cls}" x1="{frame.pad_l}" y1="{_f(frame.y(value))}" '
                f'x2="{width - frame.pad_r}" y2="{_f(frame.y(value))}">'
                f"<title>{name} {value:.4g}</title></line>"
            )
    body += _estimated_marks(frame, estimated, labels)
    body += _realized_marks(frame, realized, labels)
    body += _audited_marks(frame, audited, labels)
    return _svg(width, height, title, body, css="chart performance")


def _performance_axes(frame: _Frame, labels: Sequence[str], metric: str) -> list[str]:
    pad_l, pad_t, inner_h, height = frame.pad_l, frame.pad_t, frame.inner_h, frame.height
    body = [
        f'<line class="axis" x1="{pad_l}" y1="{pad_t + inner_h}" '
        f'x2="{frame.width - frame.pad_r}" y2="{pad_t + inner_h}"/>',
        f'<line class="axis" x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + inner_h}"/>',
    ]
    for k in range(5):  # y ticks
        v = frame.lower + (frame.upper - frame.lower) * k / 4
        body.append(
            f'<text class="tick" x="{pad_l - 4}" y="{_f(frame.y(v) + 3)}" text-anchor="end">'
            f"{_tick(v)}</text>"
        )
    body.append(
        f'<text class="axis-label" x="12" y="{_f(pad_t + inner_h / 2)}" '
        f'transform="rotate(-90 12 {_f(pad_t + inner_h / 2)})" text-anchor="middle">'
        f"{escape(metric)}</text>"
    )
    if frame.n:
        body.append(
            f'<text class="tick" x="{pad_l}" y="{height - 14}">{escape(labels[0])}</text>'
            f'<text class="tick" x="{frame.width - frame.pad_r}" y="{height - 14}" '
            f'text-anchor="end">{escape(labels[-1])}</text>'
            f'<text class="axis-label" x="{_f(pad_l + frame.inner_w / 2)}" y="{height - 2}" '
            'text-anchor="middle">window (oldest left, newest right)</text>'
        )
    return body


def _estimated_marks(
    frame: _Frame, estimated: Sequence[Interval | None], labels: Sequence[str]
) -> list[str]:
    """The label-free estimate: its band, its line and a point per window."""
    x, y = frame.x, frame.y
    body: list[str] = []
    est = [(i, e) for i, e in enumerate(estimated) if e is not None]
    banded = [(i, e) for i, e in est if e.low is not None and e.high is not None]
    if banded:
        top = [f"{_f(x(i))},{_f(y(e.high or e.value))}" for i, e in banded]
        bottom = [f"{_f(x(i))},{_f(y(e.low or e.value))}" for i, e in reversed(banded)]
        body.append(f'<polygon class="band estimated" points="{" ".join(top + bottom)}"/>')
    if est:
        body.append(
            '<polyline class="series estimated" points="'
            + " ".join(f"{_f(x(i))},{_f(y(e.value))}" for i, e in est)
            + '"/>'
        )
        for i, e in est:
            body.append(
                f'<circle class="point estimated" cx="{_f(x(i))}" cy="{_f(y(e.value))}" r="1.6">'
                f"<title>{escape(labels[i])}: estimated {e.value:.4g}{_ci(e)}</title></circle>"
            )
    return body


def _realized_marks(
    frame: _Frame, realized: Sequence[Interval | None], labels: Sequence[str]
) -> list[str]:
    """The realized value (ground truth): its line and a square per window."""
    x, y = frame.x, frame.y
    body: list[str] = []
    real = [(i, e) for i, e in enumerate(realized) if e is not None]
    if real:
        body.append(
            '<polyline class="series realized" points="'
            + " ".join(f"{_f(x(i))},{_f(y(e.value))}" for i, e in real)
            + '"/>'
        )
        for i, e in real:
            body.append(
                f'<rect class="point realized" x="{_f(x(i) - 2)}" y="{_f(y(e.value) - 2)}" '
                f'width="4" height="4"><title>{escape(labels[i])}: realized {e.value:.4g}'
                f"{_ci(e)}</title></rect>"
            )
    return body


def _audited_marks(
    frame: _Frame, audited: Sequence[Interval | None], labels: Sequence[str]
) -> list[str]:
    """The audited value (reviewers' labels): a point with its interval's bar per window."""
    x, y = frame.x, frame.y
    body: list[str] = []
    for i, e in enumerate(audited):
        if e is None:
            continue
        if e.low is not None and e.high is not None:
            body.append(
                f'<line class="errorbar audited" x1="{_f(x(i))}" y1="{_f(y(e.low))}" '
                f'x2="{_f(x(i))}" y2="{_f(y(e.high))}"/>'
            )
        body.append(
            f'<circle class="point audited" cx="{_f(x(i))}" cy="{_f(y(e.value))}" r="3">'
            f"<title>{escape(labels[i])}: audited {e.value:.4g}{_ci(e)}</title></circle>"
        )
    return body


def _ci(e: Interval) -> str:
    if e.low is None or e.high is None:
        return ""
    return f" (95% interval {e.low:.4g} to {e.high:.4g})"


def timeline(
    *,
    labels: Sequence[str],
    title: str,
    y_title: str,
    x_title: str,
    bars: Sequence[float | None] = (),
    bar_name: str = "",
    line: Sequence[float | None] = (),
    line_name: str = "",
    low: Sequence[float | None] = (),
    high: Sequence[float | None] = (),
    band_name: str = "",
    now_index: int | None = None,
    width: int = 640,
    height: int = 150,
) -> Markup:
    """Hourly bars, a line and a shaded low–high band on one time axis, with axis titles.

    ``now_index`` draws a dashed divider between the past and the forecast.
    """
    n = len(labels)
    values = [v for v in (*bars, *line, *high) if v is not None and math.isfinite(v)]
    top = max(values, default=0.0) * 1.1 or 1.0
    frame = _Frame(width, height, 52, 6, 8, 30, n, 0.0, top)

    def x(i: float) -> float:
        return frame.pad_l + frame.step * (i + 0.5)

    body = _timeline_axes(frame, y_title, x_title)
    band_idx = [
        i for i in range(min(len(low), len(high), n)) if low[i] is not None and high[i] is not None
    ]
    if band_idx:
        upper_pts = [f"{_f(x(i))},{_f(frame.y(high[i] or 0.0))}" for i in band_idx]
        lower_pts = [f"{_f(x(i))},{_f(frame.y(low[i] or 0.0))}" for i in reversed(band_idx)]
        body.append(
            f'<polygon class="band" points="{" ".join(upper_pts + lower_pts)}">'
            f"<title>{escape(band_name)}</title></polygon>"
        )
    body += _timeline_bars(frame, bars[:n], labels, bar_name)
    points = [(i, v) for i, v in enumerate(line[:n]) if v is not None and math.isfinite(v)]
    bands = {
        i: f" ({escape(band_name)} {_tick(low[i] or 0.0)}–{_tick(high[i] or 0.0)})"
        for i in band_idx
    }
    body += _timeline_line(
        frame, x, points, [f"{escape(lb)}: {escape(line_name)}" for lb in labels], bands
    )
    body += _timeline_ends(frame, labels, now_index)
    return _svg(width, height, title, body)


def _timeline_ends(frame: _Frame, labels: Sequence[str], now_index: int | None) -> list[str]:
    """The divider between past and forecast, and the first and last labels."""
    n, base = len(labels), frame.pad_t + frame.inner_h
    out = []
    if now_index is not None and 0 <= now_index <= n:
        nx = frame.pad_l + frame.step * now_index
        out.append(
            f'<line class="now" x1="{_f(nx)}" y1="{frame.pad_t}" x2="{_f(nx)}" y2="{base}"/>'
            f'<text class="tick" x="{_f(nx + 2)}" y="{frame.pad_t + 8}">now</text>'
        )
    if n:
        out.append(
            f'<text class="tick" x="{frame.pad_l}" y="{base + 11}">{escape(labels[0])}</text>'
            f'<text class="tick" x="{frame.width - frame.pad_r}" y="{base + 11}" '
            f'text-anchor="end">{escape(labels[-1])}</text>'
        )
    return out


def _timeline_axes(frame: _Frame, y_title: str, x_title: str) -> list[str]:
    pad_l, pad_t, inner_h, top = frame.pad_l, frame.pad_t, frame.inner_h, frame.upper
    base = pad_t + inner_h
    return [
        f'<line class="axis" x1="{pad_l}" y1="{base}" x2="{frame.width - frame.pad_r}" y2="{base}"/>',
        f'<line class="axis" x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{base}"/>',
        f'<text class="tick" x="{pad_l - 4}" y="{pad_t + 8}" text-anchor="end">{_tick(top)}</text>',
        f'<text class="tick" x="{pad_l - 4}" y="{_f(frame.y(top / 2) + 3)}" text-anchor="end">{_tick(top / 2)}</text>',
        f'<text class="tick" x="{pad_l - 4}" y="{base}" text-anchor="end">0</text>',
        f'<text class="axis-title" x="10" y="{_f(pad_t + inner_h / 2)}" text-anchor="middle" '
        f'transform="rotate(-90 10 {_f(pad_t + inner_h / 2)})">{escape(y_title)}</text>',
        f'<text class="axis-title" x="{_f(pad_l + frame.inner_w / 2)}" y="{frame.height - 2}" '
        f'text-anchor="middle">{escape(x_title)}</text>',
    ]


def _timeline_bars(
    frame: _Frame, bars: Sequence[float | None], labels: Sequence[str], bar_name: str
) -> list[str]:
    step, top, base = frame.step, frame.upper, frame.pad_t + frame.inner_h
    out = []
    for i, v in enumerate(bars):
        if v is None:
            continue
        h = frame.inner_h * min(v, top) / top
        out.append(
            f'<rect class="bar" x="{_f(frame.pad_l + i * step + step * 0.15)}" y="{_f(base - h)}" '
            f'width="{_f(max(step * 0.7, 0.5))}" height="{_f(h)}">'
            f"<title>{escape(labels[i])}: {escape(bar_name)} {_tick(v)}</title></rect>"
        )
    return out


def _timeline_line(
    frame: _Frame,
    x: Callable[[float], float],
    points: Sequence[tuple[int, float]],
    names: Sequence[str],
    bands: dict[int, str],
) -> list[str]:
    """The line and a point per value, titled with its name, value and band."""
    if not points:
        return []
    out = [
        '<polyline class="series" points="'
        + " ".join(f"{_f(x(i))},{_f(frame.y(v))}" for i, v in points)
        + '"/>'
    ]
    for i, v in points:
        out.append(
            f'<circle class="point" cx="{_f(x(i))}" cy="{_f(frame.y(v))}" r="1.5">'
            f"<title>{names[i]} {_tick(v)}{bands.get(i, '')}</title></circle>"
        )
    return out
