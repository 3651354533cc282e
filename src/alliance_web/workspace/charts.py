"""Server-rendered inline SVG charts: no JavaScript, no network, no inline styles (the CSP forbids
them) — colours come from classes in ``workspace.css`` and every signal also has a shape and a
label (DESIGN.md). Every string that reaches the markup goes through ``format_html``, so names and
labels are escaped; nothing here calls ``mark_safe``.

Each chart takes plain data (the snapshot shapes documented in :mod:`alliance_web.care.insight`)
and returns a ``SafeString``. Pages pair every chart with a table in ``<details>`` as its text
alternative.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

__all__ = [
    "SIGNAL_SHAPES",
    "alliance_chart",
    "alliance_sparkline",
    "goal_chart",
    "interval_chart",
    "outcome_chart",
    "outcome_sparkline",
    "range_bars",
    "stacked_bars",
]

# DESIGN.md: one meaning per colour, and never colour alone.
SIGNAL_SHAPES = {
    "safety": "⚠",
    "off_track": "▼",
    "at_risk": "◆",
    "on_track": "●",
    "improved": "▲",
    "recovered": "★",
    "not_enough_data": "○",
    "": "○",
}


# --- markup helpers -----------------------------------------------------------------------------
def _num(v: float) -> str:
    text = f"{v:.1f}"
    return text[:-2] if text.endswith(".0") else text


def _attrs(attrs: Mapping[str, Any]) -> SafeString:
    return format_html_join(
        "",
        ' {}="{}"',
        ((k, _num(v) if isinstance(v, float) else v) for k, v in attrs.items() if v is not None),
    )


def _join(parts: Iterable[Any]) -> SafeString:
    return format_html_join("", "{}", ((p,) for p in parts if p))


def el(tag: str, attrs: Mapping[str, Any] | None = None, *children: Any) -> SafeString:
    """One SVG element; ``children`` may be markup (safe) or text (escaped)."""
    a = _attrs(attrs or {})
    if not children:
        return format_html("<{}{}/>", tag, a)
    return format_html("<{}{}>{}</{}>", tag, a, _join(children), tag)


def _points(xy: Iterable[tuple[float, float]]) -> str:
    return " ".join(f"{_num(x)},{_num(y)}" for x, y in xy)


def _svg(
    width: int, height: int, label: str, *body: Any, cls: str = "chart", role: str = "img"
) -> SafeString:
    return el(
        "svg",
        {
            "class": cls,
            "viewBox": f"0 0 {width} {height}",
            "width": str(width),
            "height": str(height),
            "role": role,
            "aria-label": label,
            "xmlns": "http://www.w3.org/2000/svg",
            "focusable": "false",
            "preserveAspectRatio": "xMinYMin meet",
        },
        *body,
    )


@dataclass(frozen=True)
class Scale:
    d0: float
    d1: float
    r0: float
    r1: float

    def __call__(self, v: float) -> float:
        if self.d1 == self.d0:
            return (self.r0 + self.r1) / 2
        return self.r0 + (v - self.d0) * (self.r1 - self.r0) / (self.d1 - self.d0)


def nice_ticks(lo: float, hi: float, target: int = 5) -> list[float]:
    """Round tick values (1, 2, 2.5 or 5 × a power of ten) giving about ``target`` ticks."""
    if hi <= lo:
        return [lo]
    raw = (hi - lo) / target
    mag = 10 ** math.floor(math.log10(raw))
    step = min((m * mag for m in (1, 2, 2.5, 5, 10)), key=lambda st: abs((hi - lo) / st - target))
    first = math.ceil(lo / step) * step
    ticks = []
    v = first
    while v <= hi + 1e-9:
        ticks.append(round(v, 6))
        v += step
    return ticks


def shape(signal: str, x: float, y: float, size: float = 5.0, cls: str = "") -> SafeString:
    """The marker for a signal: ▼ off track, ◆ at risk, ● on track, ▲ improved, ★ recovered."""
    klass = f"mark sig-{signal or 'none'} {cls}".strip()
    s = size
    if signal == "off_track":
        pts = [(x - s, y - s * 0.8), (x + s, y - s * 0.8), (x, y + s)]
    elif signal == "improved":
        pts = [(x - s, y + s * 0.8), (x + s, y + s * 0.8), (x, y - s)]
    elif signal == "at_risk":
        pts = [(x, y - s * 1.2), (x + s, y), (x, y + s * 1.2), (x - s, y)]
    elif signal == "recovered":
        pts = []
        for i in range(10):
            r = s * 1.3 if i % 2 == 0 else s * 0.55
            a = -math.pi / 2 + i * math.pi / 5
            pts.append((x + r * math.cos(a), y + r * math.sin(a)))
    elif signal == "on_track":
        return format_html(
            '<circle class="{}" cx="{}" cy="{}" r="{}"/>', klass, _num(x), _num(y), _num(s)
        )
    else:
        return format_html(
            '<circle class="{} hollow" cx="{}" cy="{}" r="{}"/>',
            klass,
            _num(x),
            _num(y),
            _num(s * 0.85),
        )
    return format_html('<polygon class="{}" points="{}"/>', klass, _points(pts))


MAX_TIPS = 120  # workspace.css has a rule for each index below this


def _tip(
    x: float,
    y: float,
    lines: Sequence[str],
    bounds: tuple[float, float, float, float],
    index: int = 0,
) -> SafeString:
    """A tooltip for point ``index``. Tooltips are drawn in a layer after every mark (SVG paints in
    document order), and CSS shows tooltip ``t<i>`` while point ``p<i>`` is hovered or focused."""
    left, top, right, _bottom = bounds
    w = max(len(line) for line in lines) * 6.6 + 16
    h = 16 * len(lines) + 8
    tx = min(max(x - w / 2, left), right - w)
    ty = y - h - 12 if y - h - 12 > top else y + 12
    texts = [
        el(
            "text",
            {
                "x": float(tx + 8),
                "y": float(ty + 17 + 16 * i),
                "class": "tip-text" + (" strong" if i == 0 else ""),
            },
            line,
        )
        for i, line in enumerate(lines)
    ]
    return el(
        "g",
        {"class": f"tip t{index}", "aria-hidden": "true"},
        el(
            "rect",
            {
                "x": float(tx),
                "y": float(ty),
                "width": float(w),
                "height": float(h),
                "rx": "6",
                "class": "tip-box",
            },
        ),
        *texts,
    )


def _x_positions(items: Sequence[Mapping[str, Any]]) -> list[float]:
    if items and all(p.get("session") is not None for p in items):
        return [float(p["session"]) for p in items]
    return [float(i + 1) for i in range(len(items))]


def _x_axis(sx: Scale, lo: int, hi: int, y: float, label: str) -> SafeString:
    span = hi - lo
    step = 1 if span <= 14 else 2 if span <= 28 else 5
    ticks = [t for t in range(lo, hi + 1) if (t - lo) % step == 0]
    parts = [
        el(
            "line",
            {
                "x1": float(sx(lo)),
                "x2": float(sx(hi)),
                "y1": float(y),
                "y2": float(y),
                "class": "axis",
            },
        )
    ]
    for t in ticks:
        parts.append(
            el(
                "text",
                {"x": float(sx(t)), "y": float(y + 16), "class": "tick", "text-anchor": "middle"},
                str(t),
            )
        )
    parts.append(
        el(
            "text",
            {"x": float(sx(hi)), "y": float(y + 32), "class": "axis-label", "text-anchor": "end"},
            label,
        )
    )
    return _join(parts)


def _y_grid(
    sy: Scale, ticks: Sequence[float], x0: float, x1: float, fmt: str = "{:g}"
) -> SafeString:
    parts = []
    for t in ticks:
        y = sy(t)
        parts.append(
            el(
                "line",
                {"x1": float(x0), "x2": float(x1), "y1": float(y), "y2": float(y), "class": "grid"},
            )
        )
        parts.append(
            el(
                "text",
                {"x": float(x0 - 6), "y": float(y + 4), "class": "tick", "text-anchor": "end"},
                fmt.format(t),
            )
        )
    return _join(parts)


def _spread_labels(
    labels: list[tuple[float, str, str]], min_gap: float = 14.0
) -> list[tuple[float, str, str]]:
    """Nudge in-place labels (y, text, class) apart so that they never overlap."""
    out = sorted(labels)
    for i in range(1, len(out)):
        if out[i][0] - out[i - 1][0] < min_gap:
            out[i] = (out[i - 1][0] + min_gap, out[i][1], out[i][2])
    return out


def _fmt_total(v: float) -> str:
    return f"{v:g}" if float(v).is_integer() else f"{v:.1f}"


# --- the outcome chart ---------------------------------------------------------------------------
def outcome_chart(
    outcome: Mapping[str, Any],
    *,
    points: Sequence[Mapping[str, Any]] | None = None,
    instrument_label: str | None = None,
    expected: Sequence[Mapping[str, Any]] | None = None,
    width: int = 1080,
    height: int = 340,
    min_sessions: int = 6,
) -> SafeString:
    """Scores by session against the expected band, each point in its signal's colour and shape.

    ``outcome`` is the snapshot's ``outcome`` (or the same shape for another instrument of the
    plan). Points are focusable and show the exact score, severity and change since intake.
    """
    pts = list(points if points is not None else outcome.get("points") or [])
    band = list(expected if expected is not None else outcome.get("expected") or [])
    name = instrument_label or outcome.get("short_name") or outcome.get("instrument", "")
    lo, hi = (outcome.get("range") or [0, 1])[:2]
    worse_up = outcome.get("direction", "higher_is_worse") == "higher_is_worse"
    cutoff = outcome.get("cutoff")
    left, right, top, bottom = 52, width - 132, 18, height - 44
    xs = _x_positions(pts)
    last_session = int(
        max(
            [
                *xs,
                *(float(b["session"]) for b in band if b.get("session") is not None),
                float(min_sessions),
            ]
        )
    )
    sx = Scale(1, last_session, left + 10, right - 10)
    sy = Scale(lo, hi, bottom, top)
    tips: list[SafeString] = []
    body: list[Any] = [
        el("title", {}, f"{name}: scores by session"),
        _y_grid(sy, nice_ticks(lo, hi), left, right),
        _x_axis(sx, 1, last_session, bottom, "Session"),
        el(
            "text",
            {"x": float(left - 44), "y": float(top - 4), "class": "axis-label"},
            f"{name} score",
        ),
        el(
            "text",
            {
                "x": float(left - 44),
                "y": float(bottom + 32 if worse_up else top + 14),
                "class": "better",
            },
            "↓ better" if worse_up else "↑ better",
        ),
    ]
    labels: list[tuple[float, str, str]] = []
    if band:
        bxs = [sx(float(b["session"])) for b in band]
        upper = [(x, sy(float(b["high"]))) for x, b in zip(bxs, band, strict=True)]
        lower = [(x, sy(float(b["low"]))) for x, b in zip(bxs, band, strict=True)]
        body.append(el("polygon", {"class": "band", "points": _points(upper + lower[::-1])}))
        body.append(
            el(
                "polyline",
                {
                    "class": "median",
                    "points": _points(
                        (x, sy(float(b["median"]))) for x, b in zip(bxs, band, strict=True)
                    ),
                },
            )
        )
        labels.append((sy(float(band[-1]["median"])), "expected", "label-band"))
    if cutoff is not None and lo <= cutoff <= hi:
        y = sy(float(cutoff))
        body.append(
            el(
                "line",
                {
                    "x1": float(left),
                    "x2": float(right),
                    "y1": float(y),
                    "y2": float(y),
                    "class": "cutoff",
                },
            )
        )
        labels.append((y, f"clinical cutoff {_fmt_total(cutoff)}", "label-cutoff"))
    if pts:
        coords = [(sx(x), sy(float(p["total"]))) for x, p in zip(xs, pts, strict=True)]
        body.append(el("polyline", {"class": "score-line", "points": _points(coords)}))
        labels.append((coords[-1][1], "client", "label-score"))
        intake = float(pts[0]["total"])
        marks: list[SafeString] = []
        for (cx, cy), x, p in zip(coords, xs, pts, strict=True):
            total = float(p["total"])
            change = total - intake
            signal = p.get("signal") or ""
            safety = any("safety" in f for f in p.get("flags") or [])
            lines = [
                f"Session {int(x)} · {name} {_fmt_total(total)}",
                (p.get("severity") or "—").capitalize(),
                "Intake" if p is pts[0] else f"{change:+g} since intake",
            ]
            if signal:
                lines.append(
                    f"{SIGNAL_SHAPES.get(signal, '')} {signal.replace('_', ' ').capitalize()}"
                )
            if safety:
                lines.append("⚠ Safety item endorsed")
            mark = [shape(signal, cx, cy, 6.0)]
            if safety:
                mark.insert(
                    0,
                    el(
                        "circle",
                        {"class": "safety-ring", "cx": float(cx), "cy": float(cy), "r": "11"},
                    ),
                )
            i = len(marks)
            marks.append(
                el(
                    "g",
                    {
                        "class": f"pt p{i}",
                        "tabindex": "0",
                        "role": "img",
                        "aria-label": ". ".join(lines),
                    },
                    *mark,
                )
            )
            tips.append(_tip(cx, cy, lines, (left, top, right + 120, bottom), i))
        body.extend(marks)
    else:
        body.append(
            el(
                "text",
                {
                    "x": float((left + right) / 2),
                    "y": float((top + bottom) / 2),
                    "class": "empty-note",
                    "text-anchor": "middle",
                },
                "No scores yet — the chart fills in after the first check-in.",
            )
        )
    for y, text, cls in _spread_labels(labels):
        body.append(
            el(
                "text",
                {"x": float(right + 8), "y": float(y + 4), "class": f"inline-label {cls}"},
                text,
            )
        )
    # Tooltips are painted last so that they sit above every other mark.
    body.append(el("g", {"class": "tips"}, *tips) if tips else "")
    return _svg(
        width, height, f"{name} scores by session", *body, cls="chart outcome-chart", role="group"
    )


# --- the alliance chart --------------------------------------------------------------------------
def alliance_chart(
    alliance: Mapping[str, Any], *, width: int = 1080, height: int = 320, min_sessions: int = 6
) -> SafeString:
    """Client (solid) and therapist (dashed) ratings, labelled in place; ruptures, repair arcs and
    the perspective gap shaded when it is flagged."""
    client = list(alliance.get("client") or [])
    therapist = list(alliance.get("therapist") or [])
    same_scale = list(alliance.get("range") or []) == list(alliance.get("therapist_range") or [])
    lo, hi = (alliance.get("range") or [0, 1])[:2] if same_scale else (0, 100)

    def value(p: Mapping[str, Any]) -> float:
        if same_scale:
            return float(p["total"])
        return float(p.get("normalised") or 0) * 100

    left, right, top, bottom = 52, width - 110, 30, height - 44
    all_x = _x_positions(client) + _x_positions(therapist)
    last_session = int(max([*all_x, float(min_sessions)]))
    sx = Scale(1, last_session, left + 10, right - 10)
    sy = Scale(lo, hi, bottom, top)
    unit = "score" if same_scale else "% of scale"
    tips: list[SafeString] = []
    body: list[Any] = [
        el("title", {}, "The working alliance by session, from both perspectives"),
        _y_grid(sy, nice_ticks(lo, hi), left, right),
        _x_axis(sx, 1, last_session, bottom, "Session"),
        el(
            "text",
            {"x": float(left - 44), "y": float(top - 16), "class": "axis-label"},
            f"Alliance {unit}  ",
            el("tspan", {"class": "better"}, "↑ stronger"),
        ),
    ]
    c_xy = {x: (sx(x), sy(value(p))) for x, p in zip(_x_positions(client), client, strict=True)}
    t_xy = {
        x: (sx(x), sy(value(p))) for x, p in zip(_x_positions(therapist), therapist, strict=True)
    }
    gap = alliance.get("gap") or {}
    shared = sorted(set(c_xy) & set(t_xy))
    if gap.get("flag") and len(shared) >= 2:
        poly = [c_xy[s] for s in shared] + [t_xy[s] for s in reversed(shared)]
        body.append(el("polygon", {"class": "gap-fill", "points": _points(poly)}))
        mid = shared[len(shared) // 2]
        gx, gy = c_xy[mid][0], (c_xy[mid][1] + t_xy[mid][1]) / 2
        body.append(
            el(
                "text",
                {"x": float(gx), "y": float(gy + 4), "class": "gap-label", "text-anchor": "middle"},
                "perspective gap",
            )
        )
    labels: list[tuple[float, str, str]] = []
    for series, xy, cls, who in (
        (client, c_xy, "al-client", "Client"),
        (therapist, t_xy, "al-ther", "Therapist"),
    ):
        if not series:
            continue
        coords = [xy[x] for x in sorted(xy)]
        body.append(el("polyline", {"class": cls, "points": _points(coords)}))
        for x, p in zip(_x_positions(series), series, strict=True):
            px, py = xy[x]
            text = f"Session {int(x)} · {who} {_fmt_total(float(p['total']))}"
            i = len(tips)
            body.append(
                el(
                    "g",
                    {"class": f"pt p{i}", "tabindex": "0", "role": "img", "aria-label": text},
                    el(
                        "circle",
                        {"class": f"dot {cls}-dot", "cx": float(px), "cy": float(py), "r": "4.5"},
                    ),
                )
            )
            tips.append(_tip(px, py, [text], (left, top, right + 100, bottom), i))
        labels.append((coords[-1][1], who, f"label-{cls}"))
    for rupture in alliance.get("ruptures") or []:
        low = rupture.get("low_session") or rupture.get("start_session")
        if low is None or float(low) not in c_xy:
            continue
        rx, ry = c_xy[float(low)]
        repaired = (
            rupture.get("repair_session") is not None and float(rupture["repair_session"]) in c_xy
        )
        cls = "rupture repaired" if repaired else "rupture"
        marker = el(
            "polygon",
            {
                "class": f"rupture-mark {cls}",
                "points": _points([(rx - 7, ry + 9), (rx + 7, ry + 9), (rx, ry + 19)]),
            },
        )
        text = "Repaired" if repaired else "Rupture"
        body.append(
            el(
                "g",
                {
                    "class": "pt",
                    "tabindex": "0",
                    "role": "img",
                    "aria-label": f"{text}: alliance dropped at session {low}"
                    + (
                        f", repaired by session {rupture['repair_session']}"
                        if repaired
                        else ", not yet repaired"
                    ),
                },
                marker,
                el(
                    "text",
                    {
                        "x": float(rx),
                        "y": float(ry + 33),
                        "class": f"rupture-label {cls}",
                        "text-anchor": "middle",
                    },
                    "Rupture",
                ),
            )
        )
        if repaired:
            ex, ey = c_xy[float(rupture["repair_session"])]
            peak = min(ry, ey) - 34
            body.append(
                el(
                    "path",
                    {
                        "class": "repair-arc",
                        "d": f"M{_num(rx)},{_num(ry - 8)} Q{_num((rx + ex) / 2)},{_num(peak)} {_num(ex)},{_num(ey - 8)}",
                    },
                )
            )
            body.append(
                el(
                    "text",
                    {
                        "x": float((rx + ex) / 2),
                        "y": float(peak + 12),
                        "class": "repair-label",
                        "text-anchor": "middle",
                    },
                    "repaired",
                )
            )
    if not client and not therapist:
        body.append(
            el(
                "text",
                {
                    "x": float((left + right) / 2),
                    "y": float((top + bottom) / 2),
                    "class": "empty-note",
                    "text-anchor": "middle",
                },
                "No alliance ratings yet — they arrive after the first session.",
            )
        )
    for y, text, cls in _spread_labels(labels):
        body.append(
            el(
                "text",
                {"x": float(right + 8), "y": float(y + 4), "class": f"inline-label {cls}"},
                text,
            )
        )
    body.append(el("g", {"class": "tips"}, *tips) if tips else "")
    return _svg(
        width, height, "Alliance by session", *body, cls="chart alliance-chart", role="group"
    )


# --- goals -----------------------------------------------------------------------------------------
def goal_chart(
    ratings: Sequence[tuple[int, int]], *, width: int = 400, height: int = 100, label: str = "Goal"
) -> SafeString:
    """One goal's 0–10 ratings by check-in: (check-in number or session, value)."""
    left, right, top, bottom = 26, width - 34, 10, height - 20
    last = max([r[0] for r in ratings] + [4])
    sx = Scale(1, last, left + 6, right - 6)
    sy = Scale(0, 10, bottom, top)
    tips: list[SafeString] = []
    body: list[Any] = [el("title", {}, f"{label}: ratings from 0 to 10")]
    for t in (0, 5, 10):
        body.append(
            el(
                "line",
                {
                    "x1": float(left),
                    "x2": float(right),
                    "y1": float(sy(t)),
                    "y2": float(sy(t)),
                    "class": "grid",
                },
            )
        )
        body.append(
            el(
                "text",
                {
                    "x": float(left - 5),
                    "y": float(sy(t) + 4),
                    "class": "tick",
                    "text-anchor": "end",
                },
                str(t),
            )
        )
    if ratings:
        coords = [(sx(s), sy(v)) for s, v in ratings]
        body.append(el("polyline", {"class": "goal-line", "points": _points(coords)}))
        for (x, y), (s, v) in zip(coords, ratings, strict=True):
            text = f"Session {s}: {v} of 10"
            i = len(tips)
            body.append(
                el(
                    "g",
                    {"class": f"pt p{i}", "tabindex": "0", "role": "img", "aria-label": text},
                    el(
                        "circle",
                        {"class": "dot goal-dot", "cx": float(x), "cy": float(y), "r": "4"},
                    ),
                )
            )
            tips.append(_tip(x, y, [text], (0, top, width, bottom), i))
        _lx, ly = coords[-1]
        body.append(
            el(
                "text",
                {"x": float(right + 6), "y": float(ly + 4), "class": "inline-label strong"},
                f"{ratings[-1][1]}/10",
            )
        )
    else:
        body.append(
            el(
                "text",
                {
                    "x": float((left + right) / 2),
                    "y": float((top + bottom) / 2 + 4),
                    "class": "empty-note",
                    "text-anchor": "middle",
                },
                "Not rated yet",
            )
        )
    body.append(el("g", {"class": "tips"}, *tips) if tips else "")
    return _svg(width, height, f"{label}: ratings", *body, cls="chart goal-chart", role="group")


# --- sparklines (caseload) ------------------------------------------------------------------------
# The caseload draws 2 × 200 of these: each is a handful of format_html calls, not one per element.
SPARK_SVG = (
    '<svg class="spark" viewBox="0 0 {} {}" width="{}" height="{}" role="img" aria-label="{}" '
    'xmlns="http://www.w3.org/2000/svg" focusable="false">{}</svg>'
)


def outcome_sparkline(
    outcome: Mapping[str, Any], signal: str = "", *, width: int = 112, height: int = 30
) -> SafeString:
    pts = [p for p in outcome.get("points") or [] if p.get("total") is not None]
    name = outcome.get("short_name") or outcome.get("instrument") or "Outcome"
    if not pts:
        return format_html('<span class="spark-empty">{}</span>', "no scores yet")
    lo, hi = (outcome.get("range") or [0, 1])[:2]
    sx = Scale(0, max(len(pts) - 1, 1), 4, width - 10)
    sy = Scale(lo, hi, height - 4, 4)
    coords = [(sx(i), sy(float(p["total"]))) for i, p in enumerate(pts)]
    worse_up = outcome.get("direction", "higher_is_worse") == "higher_is_worse"
    first, last = float(pts[0]["total"]), float(pts[-1]["total"])
    label = (
        f"{name} from {_fmt_total(first)} to {_fmt_total(last)} over {len(pts)} check-ins "
        f"({'lower' if worse_up else 'higher'} is better)"
    )
    cutoff = outcome.get("cutoff")
    line = ""
    if cutoff is not None and lo <= cutoff <= hi:
        y = _num(sy(cutoff))
        line = format_html(
            '<line class="spark-cutoff" x1="2" x2="{}" y1="{}" y2="{}"/>', width - 2, y, y
        )
    body = format_html(
        '{}<polyline class="spark-line" points="{}"/>{}',
        line,
        _points(coords),
        shape(signal or pts[-1].get("signal") or "", coords[-1][0], coords[-1][1], 4.0),
    )
    return format_html(SPARK_SVG, width, height, width, height, label, body)


def alliance_sparkline(
    alliance: Mapping[str, Any], *, width: int = 112, height: int = 30
) -> SafeString:
    client = [p for p in alliance.get("client") or [] if p.get("normalised") is not None]
    therapist = [p for p in alliance.get("therapist") or [] if p.get("normalised") is not None]
    if not client and not therapist:
        return format_html('<span class="spark-empty">{}</span>', "no ratings yet")
    n = max(len(client), len(therapist), 2)
    sx = Scale(0, n - 1, 4, width - 8)
    sy = Scale(0, 1, height - 4, 4)
    parts: list[SafeString] = []
    for series, cls in ((client, "spark-client"), (therapist, "spark-ther")):
        if len(series) == 1:
            parts.append(
                format_html(
                    '<circle class="{}-dot" cx="{}" cy="{}" r="3"/>',
                    cls,
                    _num(sx(0)),
                    _num(sy(float(series[0]["normalised"]))),
                )
            )
        elif series:
            xy = ((sx(i), sy(float(p["normalised"]))) for i, p in enumerate(series))
            parts.append(format_html('<polyline class="{}" points="{}"/>', cls, _points(xy)))
    unrepaired = [r for r in alliance.get("ruptures") or [] if r.get("repair_session") is None]
    if unrepaired and client:
        parts.append(
            format_html(
                '<circle class="spark-rupture" cx="{}" cy="{}" r="3.5"/>',
                _num(sx(len(client) - 1)),
                _num(sy(float(client[-1]["normalised"]))),
            )
        )
    said = []
    if client:
        said.append(f"client {round(float(client[-1]['normalised']) * 100)}%")
    if therapist:
        said.append(f"therapist {round(float(therapist[-1]['normalised']) * 100)}%")
    label = "Alliance, latest: " + ", ".join(said) + " of the scale"
    return format_html(SPARK_SVG, width, height, width, height, label, _join(parts))


# --- practice charts (supervisor) ------------------------------------------------------------------
def stacked_bars(
    rows: Sequence[tuple[str, Sequence[tuple[str, int]]]],
    labels: Mapping[str, str],
    *,
    symbols: Mapping[str, str] | None = None,
    width: int = 720,
    row_height: int = 30,
    title: str = "",
) -> SafeString:
    """One horizontal bar per row (e.g. a therapist), split into categories (e.g. triage),
    with the count and the category's symbol in each segment."""
    left, right = 150, width - 50
    max_total = max([sum(c for _, c in segs) for _, segs in rows] + [1])
    sx = Scale(0, max_total, left, right)
    height = row_height * len(rows) + 16
    body: list[Any] = [el("title", {}, title)] if title else []
    for i, (name, segs) in enumerate(rows):
        y = 8 + i * row_height
        body.append(
            el(
                "text",
                {
                    "x": float(left - 8),
                    "y": float(y + row_height / 2 + 1),
                    "class": "row-label",
                    "text-anchor": "end",
                },
                name,
            )
        )
        x = float(left)
        for cat, count in segs:
            if not count:
                continue
            w = sx(count) - left
            text = f"{name}: {count} {labels.get(cat, cat)}"
            seg = [
                el(
                    "rect",
                    {
                        "class": f"seg seg-{cat}",
                        "x": x,
                        "y": float(y + 3),
                        "width": float(max(w - 1.5, 1)),
                        "height": float(row_height - 8),
                        "rx": "3",
                    },
                ),
                el("title", {}, text),
            ]
            if w >= 26:
                seg.append(
                    el(
                        "text",
                        {
                            "x": float(x + w / 2),
                            "y": float(y + row_height / 2 + 2),
                            "class": f"seg-text seg-text-{cat}",
                            "text-anchor": "middle",
                        },
                        f"{(symbols or SIGNAL_SHAPES).get(cat, '')}{count}",
                    )
                )
            body.append(el("g", {"role": "img", "aria-label": text}, *seg))
            x += w
        total = sum(c for _, c in segs)
        body.append(
            el(
                "text",
                {"x": float(x + 6), "y": float(y + row_height / 2 + 2), "class": "tick"},
                str(total),
            )
        )
    return _svg(width, height, title or "Stacked bars", *body, cls="chart bars-chart bars-wide")


def interval_chart(
    rows: Sequence[tuple[str, float | None, float | None, float | None, str]],
    *,
    domain: tuple[float, float] = (0.0, 1.0),
    percent: bool = True,
    reference: float | None = None,
    reference_label: str = "",
    width: int = 720,
    row_height: int = 34,
    title: str = "",
) -> SafeString:
    """A forest plot: one estimate with its 95 % interval per row (label, est, low, high, note)."""
    left, right = 170, width - 150
    lo, hi = domain
    finite = [v for _, e, a, b, _ in rows for v in (e, a, b) if v is not None]
    if finite:
        lo, hi = min(lo, *finite), max(hi, *finite)
    sx = Scale(lo, hi, left, right)
    height = row_height * len(rows) + 40
    fmt = (lambda v: f"{v * 100:.0f}%") if percent else (lambda v: f"{v:.2f}")
    body: list[Any] = [el("title", {}, title)] if title else []
    for t in nice_ticks(lo, hi, 4):
        x = sx(t)
        body.append(
            el(
                "line",
                {
                    "x1": float(x),
                    "x2": float(x),
                    "y1": "4",
                    "y2": float(height - 26),
                    "class": "grid",
                },
            )
        )
        body.append(
            el(
                "text",
                {"x": float(x), "y": float(height - 10), "class": "tick", "text-anchor": "middle"},
                fmt(t),
            )
        )
    if reference is not None and lo <= reference <= hi:
        x = sx(reference)
        body.append(
            el(
                "line",
                {
                    "x1": float(x),
                    "x2": float(x),
                    "y1": "4",
                    "y2": float(height - 26),
                    "class": "reference",
                },
            )
        )
        if reference_label:
            body.append(
                el("text", {"x": float(x + 4), "y": "14", "class": "tick"}, reference_label)
            )
    for i, (name, est, low, high, note) in enumerate(rows):
        y = 18 + i * row_height
        body.append(
            el(
                "text",
                {
                    "x": float(left - 8),
                    "y": float(y + 4),
                    "class": "row-label",
                    "text-anchor": "end",
                },
                name,
            )
        )
        if est is None:
            body.append(
                el(
                    "text",
                    {"x": float(left), "y": float(y + 4), "class": "muted-text"},
                    note or "not enough data",
                )
            )
            continue
        text = (
            f"{name}: {fmt(est)}"
            + (
                f" (95% CI {fmt(low)} to {fmt(high)})"
                if low is not None and high is not None
                else ""
            )
            + (f", {note}" if note else "")
        )
        parts = []
        if low is not None and high is not None:
            parts += [
                el(
                    "line",
                    {
                        "x1": float(sx(low)),
                        "x2": float(sx(high)),
                        "y1": float(y),
                        "y2": float(y),
                        "class": "whisker",
                    },
                ),
                el(
                    "line",
                    {
                        "x1": float(sx(low)),
                        "x2": float(sx(low)),
                        "y1": float(y - 5),
                        "y2": float(y + 5),
                        "class": "whisker",
                    },
                ),
                el(
                    "line",
                    {
                        "x1": float(sx(high)),
                        "x2": float(sx(high)),
                        "y1": float(y - 5),
                        "y2": float(y + 5),
                        "class": "whisker",
                    },
                ),
            ]
        parts.append(
            el("circle", {"cx": float(sx(est)), "cy": float(y), "r": "5", "class": "estimate"})
        )
        parts.append(
            el(
                "text",
                {"x": float(right + 10), "y": float(y + 4), "class": "value-text"},
                fmt(est)
                + (f"  [{fmt(low)}–{fmt(high)}]" if low is not None and high is not None else ""),
            )
        )
        if note:
            parts.append(
                el(
                    "text",
                    {"x": float(right + 10), "y": float(y + 16), "class": "muted-text small-text"},
                    note,
                )
            )
        body.append(el("g", {"role": "img", "aria-label": text}, *parts))
    return _svg(
        width, height, title or "Estimates with 95% intervals", *body, cls="chart interval-chart"
    )


def range_bars(
    rows: Sequence[tuple[str, float | None, float | None, str]],
    *,
    unit: str = "h",
    formatter: Callable[[float], str] | None = None,
    classes: Sequence[str] = (),
    width: int = 720,
    row_height: int = 28,
    title: str = "",
    higher_is_better: bool = False,
    domain_max: float | None = None,
) -> SafeString:
    """A bar per row for a main value (e.g. the median) with a tick for a second value (e.g. the
    90th percentile): (label, value, second, note)."""
    left, right = 170, width - 150
    vmax = domain_max or max([v for _, a, b, _ in rows for v in (a, b) if v is not None] + [1])
    sx = Scale(0, vmax, left, right)
    height = row_height * len(rows) + 12
    if formatter is not None:
        fmt = formatter
    elif unit == "%":
        fmt = lambda v: f"{v * 100:.0f}%"  # noqa: E731
    else:
        fmt = lambda v: f"{v:.1f} {unit}"  # noqa: E731
    body: list[Any] = [el("title", {}, title)] if title else []
    for i, (name, value, second, note) in enumerate(rows):
        extra = f" {classes[i]}" if i < len(classes) and classes[i] else ""
        y = 6 + i * row_height
        body.append(
            el(
                "text",
                {
                    "x": float(left - 8),
                    "y": float(y + row_height / 2 + 1),
                    "class": "row-label",
                    "text-anchor": "end",
                },
                name,
            )
        )
        if value is None:
            body.append(
                el(
                    "text",
                    {"x": float(left), "y": float(y + row_height / 2 + 1), "class": "muted-text"},
                    note or "no data",
                )
            )
            continue
        parts = [
            el(
                "rect",
                {
                    "class": "bar" + (" bar-good" if higher_is_better else "") + extra,
                    "x": float(left),
                    "y": float(y + 5),
                    "width": float(max(sx(value) - left, 1)),
                    "height": float(row_height - 12),
                    "rx": "3",
                },
            )
        ]
        label = fmt(value)
        if second is not None:
            x2 = sx(second)
            parts.append(
                el(
                    "line",
                    {
                        "x1": float(x2),
                        "x2": float(x2),
                        "y1": float(y + 2),
                        "y2": float(y + row_height - 4),
                        "class": "bar-tick",
                    },
                )
            )
            label += f" · 90th pct {fmt(second)}"
        parts.append(
            el(
                "text",
                {"x": float(right + 10), "y": float(y + row_height / 2 + 2), "class": "value-text"},
                label + (f" · {note}" if note else ""),
            )
        )
        body.append(el("g", {"role": "img", "aria-label": f"{name}: {label}"}, *parts))
    return _svg(width, height, title or "Bars", *body, cls="chart bars-chart")
