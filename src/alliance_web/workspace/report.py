"""The progress report (SPEC C11): a PDF for the client's file with the outcome and alliance
charts drawn by ``reportlab.graphics``. It holds the record only — never the client's private
notes nor the therapist's process notes (REQ-PN1). Every string from the record is escaped
before it reaches reportlab's paragraph markup.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from typing import Any
from xml.sax.saxutils import escape

from django.utils import timezone
from reportlab.graphics.shapes import Circle, Drawing, Line, Polygon, PolyLine, String
from reportlab.lib import colors
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle, getSampleStyleSheet
from reportlab.lib.units import mm
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

from alliance import __version__
from alliance_web.workspace.charts import Scale, nice_ticks

# DESIGN.md colours (the same as alliance.css).
INK = colors.HexColor("#1f2933")
MUTED = colors.HexColor("#5b6672")
LINE = colors.HexColor("#d9dee4")
BAND = colors.HexColor("#e3ecf6")
BRAND = colors.HexColor("#2f5d8a")
SIGNAL_COLOURS = {
    "off_track": colors.HexColor("#c22121"),
    "at_risk": colors.HexColor("#a75a00"),
    "on_track": colors.HexColor("#23703a"),
    "improved": colors.HexColor("#1d4ed8"),
    "recovered": colors.HexColor("#1d4ed8"),
}
SAFETY = colors.HexColor("#8b1111")
RUPTURE = colors.HexColor("#6b21a8")
SIGNAL_WORDS = {
    "off_track": "off track",
    "at_risk": "at risk",
    "on_track": "on track",
    "improved": "improved",
    "recovered": "recovered",
    "not_enough_data": "needs more sessions",
}
# A Unicode font when the system has one (names in any script); else the built-in Helvetica.
FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


def _fonts() -> tuple[str, str]:
    for path in FONT_PATHS:
        bold = path.replace("DejaVuSans.ttf", "DejaVuSans-Bold.ttf")
        if os.path.exists(path) and os.path.exists(bold):
            if "AllianceSans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("AllianceSans", path))
                pdfmetrics.registerFont(TTFont("AllianceSans-Bold", bold))
            return "AllianceSans", "AllianceSans-Bold"
    return "Helvetica", "Helvetica-Bold"


def _p(text: Any, style: ParagraphStyle) -> Paragraph:
    return Paragraph(escape(str(text)), style)


def _marker(signal: str, x: float, y: float, s: float = 3.6) -> Any:
    colour = SIGNAL_COLOURS.get(signal, MUTED)
    if signal == "off_track":
        return Polygon(
            [x - s, y + s * 0.8, x + s, y + s * 0.8, x, y - s], fillColor=colour, strokeColor=colour
        )
    if signal in ("improved", "recovered"):
        return Polygon(
            [x - s, y - s * 0.8, x + s, y - s * 0.8, x, y + s], fillColor=colour, strokeColor=colour
        )
    if signal == "at_risk":
        return Polygon(
            [x, y + s * 1.2, x + s, y, x, y - s * 1.2, x - s, y],
            fillColor=colour,
            strokeColor=colour,
        )
    if signal == "on_track":
        return Circle(x, y, s, fillColor=colour, strokeColor=colour)
    return Circle(x, y, s * 0.85, fillColor=colors.white, strokeColor=MUTED)


def _frame(
    d: Drawing,
    sx: Scale,
    sy: Scale,
    lo: float,
    hi: float,
    last: int,
    left: float,
    right: float,
    bottom: float,
    label: str,
) -> None:
    for t in nice_ticks(lo, hi):
        d.add(Line(left, sy(t), right, sy(t), strokeColor=LINE, strokeWidth=0.5))
        d.add(String(left - 4, sy(t) - 3, f"{t:g}", fontSize=7, fillColor=MUTED, textAnchor="end"))
    step = 1 if last <= 14 else 2
    for s in range(1, last + 1, step):
        d.add(String(sx(s), bottom - 11, str(s), fontSize=7, fillColor=MUTED, textAnchor="middle"))
    d.add(String(right, bottom - 22, "Session", fontSize=7, fillColor=MUTED, textAnchor="end"))
    d.add(String(left - 30, sy(hi) + 8, label, fontSize=7.5, fillColor=INK))


def outcome_drawing(
    outcome: dict[str, Any], width: float = 170 * mm, height: float = 62 * mm
) -> Drawing:
    d = Drawing(width, height)
    pts = [p for p in outcome.get("points") or [] if p.get("total") is not None]
    band = outcome.get("expected") or []
    lo, hi = (outcome.get("range") or [0, 1])[:2]
    left, right, bottom, top = 34.0, width - 70, 26.0, height - 14
    last = int(
        max(
            [p.get("session") or i + 1 for i, p in enumerate(pts)]
            + [b["session"] for b in band]
            + [6]
        )
    )
    sx, sy = Scale(1, last, left + 6, right - 6), Scale(lo, hi, bottom, top)
    worse_up = outcome.get("direction", "higher_is_worse") == "higher_is_worse"
    _frame(
        d,
        sx,
        sy,
        lo,
        hi,
        last,
        left,
        right,
        bottom,
        f"{outcome.get('short_name', '')} score ({'lower' if worse_up else 'higher'} is better)",
    )
    if band:
        upper = [v for b in band for v in (sx(b["session"]), sy(b["high"]))]
        lower = [v for b in reversed(band) for v in (sx(b["session"]), sy(b["low"]))]
        d.add(Polygon(upper + lower, fillColor=BAND, strokeColor=None))
        d.add(
            PolyLine(
                [v for b in band for v in (sx(b["session"]), sy(b["median"]))],
                strokeColor=BRAND,
                strokeWidth=0.8,
                strokeDashArray=[2, 2],
            )
        )
        d.add(
            String(right + 4, sy(band[-1]["median"]) - 3, "expected", fontSize=7, fillColor=BRAND)
        )
    cutoff = outcome.get("cutoff")
    if cutoff is not None and lo <= cutoff <= hi:
        d.add(
            Line(
                left,
                sy(cutoff),
                right,
                sy(cutoff),
                strokeColor=MUTED,
                strokeDashArray=[4, 3],
                strokeWidth=0.8,
            )
        )
        d.add(
            String(
                right + 4,
                sy(cutoff) - 3,
                f"clinical cutoff {cutoff:g}",
                fontSize=7,
                fillColor=MUTED,
            )
        )
    if pts:
        coords = [(sx(p.get("session") or i + 1), sy(p["total"])) for i, p in enumerate(pts)]
        d.add(PolyLine([v for c in coords for v in c], strokeColor=INK, strokeWidth=1.4))
        for (x, y), p in zip(coords, pts, strict=True):
            if any("safety" in f for f in p.get("flags") or []):
                d.add(Circle(x, y, 6.5, fillColor=None, strokeColor=SAFETY, strokeWidth=1.2))
            d.add(_marker(p.get("signal") or "", x, y))
    return d


def alliance_drawing(
    alliance: dict[str, Any], width: float = 170 * mm, height: float = 55 * mm
) -> Drawing:
    d = Drawing(width, height)
    client = alliance.get("client") or []
    therapist = alliance.get("therapist") or []
    lo, hi = (alliance.get("range") or [0, 1])[:2]
    same = list(alliance.get("range") or []) == list(alliance.get("therapist_range") or [])
    if not same:
        lo, hi = 0, 100
    left, right, bottom, top = 34.0, width - 60, 26.0, height - 14
    last = int(max([p.get("session") or 1 for p in client + therapist] + [6]))
    sx, sy = Scale(1, last, left + 6, right - 6), Scale(lo, hi, bottom, top)
    _frame(d, sx, sy, lo, hi, last, left, right, bottom, "Alliance (higher is stronger)")

    def val(p: dict[str, Any]) -> float:
        return float(p["total"]) if same else float(p.get("normalised") or 0) * 100

    for series, dash, name in ((client, None, "Client"), (therapist, [4, 3], "Therapist")):
        if not series:
            continue
        coords = [(sx(p.get("session") or i + 1), sy(val(p))) for i, p in enumerate(series)]
        d.add(
            PolyLine(
                [v for c in coords for v in c],
                strokeColor=BRAND if name == "Client" else INK,
                strokeWidth=1.3,
                strokeDashArray=dash,
            )
        )
        d.add(String(coords[-1][0] + 6, coords[-1][1] - 3, name, fontSize=7.5, fillColor=INK))
    by_session = {p.get("session"): p for p in client}
    for r in alliance.get("ruptures") or []:
        p = by_session.get(r.get("low_session"))
        if p is None:
            continue
        x, y = sx(r["low_session"]), sy(val(p))
        repaired = r.get("repair_session") is not None
        d.add(
            Polygon(
                [x - 4, y - 6, x + 4, y - 6, x, y - 12],
                fillColor=None if repaired else RUPTURE,
                strokeColor=RUPTURE,
            )
        )
        d.add(
            String(
                x,
                y - 21,
                "repaired rupture" if repaired else "rupture",
                fontSize=6.5,
                fillColor=RUPTURE,
                textAnchor="middle",
            )
        )
    return d


def _table(rows: Sequence[Sequence[Any]], widths: Sequence[float], style: ParagraphStyle) -> Table:
    data = [[_p(c, style) if not isinstance(c, Paragraph) else c for c in row] for row in rows]
    t = Table(data, colWidths=widths, repeatRows=1)
    t.setStyle(
        TableStyle(
            [
                ("LINEBELOW", (0, 0), (-1, 0), 0.6, INK),
                ("LINEBELOW", (0, 1), (-1, -1), 0.25, LINE),
                ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ("TOPPADDING", (0, 0), (-1, -1), 2),
                ("BOTTOMPADDING", (0, 0), (-1, -1), 2),
            ]
        )
    )
    return t


def build(
    *,
    practice: str,
    client: Any,
    episode: Any,
    insight: Any,
    goals: Sequence[dict[str, Any]],
    therapist: str,
) -> bytes:
    """The PDF bytes. ``goals`` are the client page's goal views (goal + ratings)."""
    buf = io.BytesIO()
    doc = SimpleDocTemplate(
        buf,
        pagesize=A4,
        leftMargin=18 * mm,
        rightMargin=18 * mm,
        topMargin=16 * mm,
        bottomMargin=16 * mm,
        title="Progress report",
        author=practice,
        subject="Alliance progress report",
    )
    styles = getSampleStyleSheet()
    font, bold = _fonts()
    body = ParagraphStyle(
        "body", parent=styles["BodyText"], fontName=font, fontSize=9.5, leading=13, textColor=INK
    )
    small = ParagraphStyle("small", parent=body, fontSize=8, leading=10.5, textColor=MUTED)
    h1 = ParagraphStyle(
        "h1", parent=styles["Heading1"], fontName=bold, fontSize=17, textColor=INK, spaceAfter=2
    )
    h2 = ParagraphStyle(
        "h2",
        parent=styles["Heading2"],
        fontName=bold,
        fontSize=12,
        textColor=INK,
        spaceBefore=10,
        spaceAfter=4,
    )
    cell = ParagraphStyle("cell", parent=body, fontSize=8.5, leading=11)
    story: list[Any] = [
        _p("Progress report", h1),
        _p(f"{practice} · generated {timezone.localtime():%d %B %Y, %H:%M}", small),
        Spacer(1, 6),
    ]
    concerns = ", ".join(str(c).replace("_", " ") for c in episode.concerns or []) or "—"
    facts = [
        ["Client", client.preferred_name],
        ["Therapist", therapist],
        [
            "Episode",
            f"opened {timezone.localtime(episode.opened_at):%d %b %Y}"
            + (
                f", closed {timezone.localtime(episode.closed_at):%d %b %Y}"
                if episode.closed_at
                else ", open"
            ),
        ],
        ["Concerns", concerns],
        ["Measures", ", ".join(episode.measure_plan or []) or "—"],
    ]
    outcome = episode.outcome or {}
    if episode.closed_at:
        facts.append(["Ending", episode.get_end_reason_display() or "—"])
        facts.append(
            [
                "Outcome",
                str(outcome.get("category") or "not classified").replace("_", " ").capitalize()
                + (f" ({outcome.get('method')})" if outcome.get("method") else ""),
            ]
        )
    signal = (insight.signal if insight else None) or {}
    if signal.get("code"):
        facts.append(
            [
                "Latest signal",
                SIGNAL_WORDS.get(signal["code"], signal["code"])
                + (f" — {signal.get('reason')}" if signal.get("reason") else ""),
            ]
        )
    t = Table([[_p(a, small), _p(b, body)] for a, b in facts], colWidths=[32 * mm, 142 * mm])
    t.setStyle(
        TableStyle([("VALIGN", (0, 0), (-1, -1), "TOP"), ("BOTTOMPADDING", (0, 0), (-1, -1), 1.5)])
    )
    story.append(t)

    out = (insight.outcome if insight else None) or {}
    story.append(_p(f"Outcome: {out.get('short_name') or (episode.measure_plan or ['—'])[0]}", h2))
    points = [p for p in out.get("points") or [] if p.get("total") is not None]
    if points:
        story.append(outcome_drawing(out))
        story.append(
            _p(
                "Line: the client's scores. Shaded band: the expected range for clients who started at this severity "
                "(dashed line: its median), when the practice has a recovery model. Markers: triangle down = off track, "
                "diamond = at risk, dot = on track, triangle up = improved; a ring marks an endorsed safety item.",
                small,
            )
        )
        intake = points[0]["total"]
        rows = [["Session", "Date", "Score", "Severity", "Change", "Signal"]]
        for p in points:
            rows.append(
                [
                    p.get("session") or "—",
                    p.get("date") or "",
                    f"{p['total']:g}",
                    p.get("severity") or "—",
                    "intake" if p is points[0] else f"{p['total'] - intake:+g}",
                    SIGNAL_WORDS.get(p.get("signal") or "", ""),
                ]
            )
        story.append(Spacer(1, 4))
        story.append(_table(rows, [18 * mm, 26 * mm, 18 * mm, 40 * mm, 20 * mm, 40 * mm], cell))
    else:
        story.append(_p("No outcome scores yet.", body))

    alliance = (insight.alliance if insight else None) or {}
    story.append(_p("The working relationship (alliance)", h2))
    if alliance.get("client") or alliance.get("therapist"):
        story.append(alliance_drawing(alliance))
        story.append(
            _p(
                "Solid line: the client's rating; dashed line: the therapist's rating. Triangles mark ruptures "
                "(filled: not yet repaired).",
                small,
            )
        )
    else:
        story.append(_p("No alliance ratings yet.", body))

    story.append(_p("Goals", h2))
    if goals:
        rows = [["Goal (in the client's words)", "First rating", "Latest rating"]]
        for g in goals:
            rows.append(
                [
                    g["goal"].text,
                    "—" if g["first"] is None else f"{g['first']}/10",
                    "—" if g["latest"] is None else f"{g['latest']}/10",
                ]
            )
        story.append(_table(rows, [120 * mm, 27 * mm, 27 * mm], cell))
    else:
        story.append(_p("No goals recorded.", body))
    story.append(Spacer(1, 10))
    story.append(
        _p(
            f"Produced by Alliance {__version__}. This report contains the clinical record only: private notes written by the "
            "client and the therapist's process notes are never included.",
            small,
        )
    )
    doc.build(story)
    return buf.getvalue()
