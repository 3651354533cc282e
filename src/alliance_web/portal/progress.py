"""The client's own progress, in simple words and a simple chart (shown when the therapist enabled it).

The chart is server-rendered SVG (no JavaScript, nothing from the internet; attributes only, so the
page's ``style-src 'self'`` policy holds). Up always means better for the client, whichever way the
instrument is scored, and the words say so.

"Clearly better/harder" uses the instrument's published reliable-change threshold in points
(``norms.reliable_change_points``, e.g. 6 for PHQ-9 from the IAPT manual, cited in the instrument
definition); without one the words only say "better"/"harder" or "about the same" — never a claim
the data cannot carry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from zoneinfo import ZoneInfo

from django.utils import timezone

import alliance as al
from alliance_web.care.models import Episode, GoalRating, Score

WIDTH, HEIGHT = 320, 170
LEFT, RIGHT, TOP, BOTTOM = 62, 26, 14, 34


@dataclass
class Point:
    x: float
    y: float
    label: str
    value: str
    last: bool = False
    show_label: bool = True


@dataclass
class Chart:
    title: str
    description: str
    points: list[Point]
    polyline: str
    top_label: str = "Better"
    bottom_label: str = "Harder"
    width: int = WIDTH
    height: int = HEIGHT
    plot_left: int = LEFT
    plot_right: int = WIDTH - RIGHT
    plot_top: int = TOP
    plot_bottom: int = HEIGHT - BOTTOM

    @property
    def plot_width(self) -> int:
        return self.plot_right - self.plot_left

    @property
    def plot_height(self) -> int:
        return self.plot_bottom - self.plot_top

    @property
    def label_x(self) -> int:
        return self.plot_left - 8

    @property
    def x_label_y(self) -> int:
        return self.plot_bottom + 20


@dataclass
class GoalProgress:
    text: str
    latest: int
    first: int | None
    bar_width: float
    first_x: float | None


@dataclass
class Progress:
    headline: str
    detail: str
    chart: Chart | None
    rows: list[tuple[str, str]] = field(default_factory=list)
    goals: list[GoalProgress] = field(default_factory=list)


def _local(dt: timezone.datetime, tz: str) -> str:
    try:
        zone = ZoneInfo(tz)
    except Exception:  # noqa: BLE001 - an unknown zone name falls back to the server's
        zone = timezone.get_current_timezone()
    local = timezone.localtime(dt, zone)
    return f"{local.day} {local:%b}"


def _words(inst: al.Instrument, first: float, latest: float, count: int) -> tuple[str, str]:
    lo, hi = inst.scoring.range
    lower_better = inst.direction == "higher_is_worse"
    scale = f"The scale goes from {lo:g} to {hi:g}; {'lower' if lower_better else 'higher'} means better."
    if count < 2:
        return (
            "This is your first check-in.",
            "After your next check-ins you will see here how things change over time. " + scale,
        )
    delta = latest - first
    better = delta < 0 if lower_better else delta > 0
    threshold = inst.norms.reliable_change_points
    numbers = f"Your answers went from {first:g} to {latest:g}. {scale}"
    if delta == 0 or (threshold is not None and abs(delta) < threshold):
        return (
            "Things look about the same as when you started.",
            numbers + " Change often takes a few weeks.",
        )
    clearly = "clearly " if threshold is not None else ""
    if better:
        return (f"Things look {clearly}better than when you started.", numbers)
    return (
        f"Things look {clearly}harder than when you started.",
        numbers + " Your therapist sees this too, and you can talk about it together.",
    )


def _chart(inst: al.Instrument, scores: list[Score], tz: str, headline: str) -> Chart:
    lo, hi = inst.scoring.range
    lower_better = inst.direction == "higher_is_worse"
    left, right, top, bottom = LEFT, WIDTH - RIGHT, TOP, HEIGHT - BOTTOM
    n = len(scores)
    points = []
    for i, s in enumerate(scores):
        x = (left + right) / 2 if n == 1 else left + (right - left) * i / (n - 1)
        total = float(s.total or 0.0)
        frac = (total - lo) / (hi - lo)
        # up is better: for "higher is worse" a low total sits near the top
        y = top + (bottom - top) * (frac if lower_better else 1 - frac)
        # Label the first and last check-in, and enough in between to stay readable on a phone.
        every = max(1, (n + 4) // 5)
        show = i in (0, n - 1) or (i % every == 0 and n - 1 - i >= every)
        points.append(
            Point(
                round(x, 1),
                round(y, 1),
                _local(s.administered_at, tz),
                f"{total:g}",
                i == n - 1,
                show,
            )
        )
    polyline = " ".join(f"{p.x},{p.y}" for p in points)
    listing = "; ".join(f"{p.label}: {p.value}" for p in points)
    return Chart(
        title="How things have been, check-in by check-in",
        description=f"{headline} Up means better. {listing}.",
        points=points,
        polyline=polyline,
    )


def for_episode(episode: Episode) -> Progress | None:
    """The progress view of an episode's primary measure and goals, or ``None`` without data."""
    primary = episode.primary_instrument
    if not primary:
        return None
    inst = al.instrument(primary)
    tz = episode.client.practice.time_zone
    scores = list(
        Score.objects.filter(
            episode=episode, instrument=primary, rater="client", total__isnull=False
        ).order_by("administered_at", "pk")
    )
    if not scores:
        return None
    first, latest = float(scores[0].total or 0), float(scores[-1].total or 0)
    headline, detail = _words(inst, first, latest, len(scores))
    progress = Progress(
        headline=headline,
        detail=detail,
        chart=_chart(inst, scores, tz, headline),
        rows=[(_local(s.administered_at, tz), f"{float(s.total or 0):g}") for s in scores],
    )
    ratings: dict[int, list[GoalRating]] = {}
    for r in GoalRating.objects.filter(
        goal__episode=episode, goal__closed_at__isnull=True
    ).order_by("rated_at", "pk"):
        ratings.setdefault(r.goal_id, []).append(r)
    for goal in episode.goals.filter(closed_at__isnull=True).order_by("position"):
        mine = ratings.get(goal.pk)
        if not mine:
            continue
        latest_r, first_r = mine[-1].value, mine[0].value
        progress.goals.append(
            GoalProgress(
                text=goal.text,
                latest=latest_r,
                first=first_r if len(mine) > 1 else None,
                bar_width=round(200 * latest_r / 10, 1),
                first_x=round(3 + 200 * first_r / 10, 1) if len(mine) > 1 else None,
            )
        )
    return progress
