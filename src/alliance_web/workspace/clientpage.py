"""Everything the client page shows, in DESIGN.md's order, read through the person's scope.

Charts come from the episode's :class:`EpisodeInsight` snapshot (refreshed first when a score is
newer than it); rows that the snapshot does not hold (alerts, goals, notes, the session log) are
read here, each through ``scope``.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from django.db.models import Min, Prefetch, QuerySet
from django.utils import timezone

import alliance as al
from alliance_web.care import insight as care_insight
from alliance_web.care.access import Scope
from alliance_web.care.models import (
    Alert,
    AlertStatus,
    CheckInKind,
    CheckInStatus,
    Client,
    Episode,
    EpisodeStatus,
    GoalRating,
    RelationshipNote,
    SessionStatus,
)
from alliance_web.workspace import caseload, charts, followup

SIGNAL_LABELS = {
    "off_track": "Off track",
    "at_risk": "At risk",
    "on_track": "On track",
    "improved": "Improved",
    "recovered": "Recovered",
    "not_enough_data": "Needs more sessions",
}
STAGES = {
    1: "Engagement and trust",
    2: "Shared goals and tasks",
    3: "Working and challenge",
    4: "Consolidation and ending",
}
OUTCOME_LABELS = {
    "recovered": ("★", "Recovered", "recovered"),
    "improved": ("▲", "Reliably improved", "improved"),
    "unchanged": ("●", "No reliable change", "not_enough_data"),
    "deteriorated": ("▼", "Reliably deteriorated", "off_track"),
}


def annotate_alerts(qs: QuerySet[Alert]) -> QuerySet[Alert]:
    return qs.annotate(first_action_at=Min("actions__at"))


def instrument_or_none(instrument_id: str) -> al.Instrument | None:
    try:
        return al.instrument(instrument_id)
    except al.UnknownInstrument:
        return None


@dataclass
class OutcomeView:
    instrument: str
    label: str
    chart: Any
    rows: list[dict[str, Any]]
    direction: str
    cutoff: float | None
    has_band: bool
    choices: list[tuple[str, str, bool]] = field(default_factory=list)


def _change_rows(
    points: list[dict[str, Any]], expected: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    band = {b.get("session"): b for b in expected}
    intake = points[0]["total"] if points else None
    rows = []
    for p in points:
        b = band.get(p.get("session")) or {}
        rows.append(
            {
                **p,
                "change": None if intake is None or p is points[0] else p["total"] - intake,
                "median": b.get("median"),
                "low": b.get("low"),
                "high": b.get("high"),
                "signal_label": SIGNAL_LABELS.get(p.get("signal") or "", ""),
                "safety": any("safety" in f for f in p.get("flags") or []),
            }
        )
    return rows


def outcome_view(
    episode: Episode, insight: Any, chosen: str, scope: Scope, planned_sessions: int = 6
) -> OutcomeView | None:
    outcome = (insight.outcome if insight else None) or {}
    plan = list(episode.measure_plan or [])
    if not plan:
        return None
    primary = outcome.get("instrument") or plan[0]
    instrument = chosen if chosen in plan else primary
    choices = []
    for inst_id in plan:
        inst = instrument_or_none(inst_id)
        choices.append((inst_id, inst.short_name if inst else inst_id, inst_id == instrument))
    inst = instrument_or_none(instrument)
    if instrument == primary and outcome:
        data = dict(outcome)
        points = list(outcome.get("points") or [])
        expected = list(outcome.get("expected") or [])
    else:
        others = (outcome.get("others") or {}).get(instrument)
        if others is None:
            # Not in the snapshot: read the stored scores (an instrument added later).
            others = [
                {
                    "session": s.session_number,
                    "total": s.total,
                    "severity": s.severity,
                    "signal": s.signal,
                    "flags": s.flags,
                    "date": s.administered_at.date().isoformat(),
                }
                for s in scope.scores()
                .filter(episode=episode, instrument=instrument, rater="client", total__isnull=False)
                .order_by("administered_at")
            ]
        points = [dict(p) for p in others if p.get("total") is not None]
        expected = []
        data = {
            "instrument": instrument,
            "short_name": inst.short_name if inst else instrument,
            "direction": inst.direction if inst else "higher_is_worse",
            "range": list(inst.scoring.range)
            if inst
            else [0, max([p["total"] for p in points] + [1])],
            "cutoff": inst.clinical_cutoff.value if inst and inst.clinical_cutoff else None,
        }
    label = data.get("short_name") or instrument
    return OutcomeView(
        instrument=instrument,
        label=label,
        chart=charts.outcome_chart(
            data,
            points=points,
            expected=expected,
            min_sessions=planned_sessions,
        ),
        rows=_change_rows(points, expected),
        direction=data.get("direction", "higher_is_worse"),
        cutoff=data.get("cutoff"),
        has_band=bool(expected),
        choices=choices,
    )


def alliance_rows(alliance: dict[str, Any]) -> list[dict[str, Any]]:
    by_session: dict[Any, dict[str, Any]] = defaultdict(dict)
    for p in alliance.get("client") or []:
        by_session[p.get("session")]["client"] = p.get("total")
    for p in alliance.get("therapist") or []:
        by_session[p.get("session")]["therapist"] = p.get("total")
    for r in alliance.get("ruptures") or []:
        by_session[r.get("low_session")]["rupture"] = True
        if r.get("repair_session") is not None:
            by_session[r.get("repair_session")]["repair"] = True
    return [
        {"session": k, **v}
        for k, v in sorted(by_session.items(), key=lambda kv: (kv[0] is None, kv[0] or 0))
    ]


def goals_view(scope: Scope, episode: Episode) -> list[dict[str, Any]]:
    goals = (
        scope.goals()
        .filter(episode=episode)
        .prefetch_related(
            Prefetch(
                "ratings",
                queryset=GoalRating.objects.select_related("checkin__session").order_by("rated_at"),
            )
        )
    )
    out = []
    for goal in goals:
        ratings = []
        for i, r in enumerate(goal.ratings.all(), start=1):
            session = r.checkin.session.number if r.checkin.session_id else i
            ratings.append((session, r.value))
        out.append(
            {
                "goal": goal,
                "ratings": ratings,
                "chart": charts.goal_chart(ratings, label=f"Goal {goal.position}"),
                "latest": ratings[-1][1] if ratings else None,
                "first": ratings[0][1] if ratings else None,
            }
        )
    return out


def session_log(
    scope: Scope, episode: Episode
) -> tuple[list[dict[str, Any]], list[RelationshipNote]]:
    sessions = list(scope.sessions().filter(episode=episode).order_by("number"))
    notes: dict[Any, list[RelationshipNote]] = defaultdict(list)
    for note in (
        scope.relationship_notes()
        .filter(episode=episode)
        .select_related("session")
        .order_by("created_at")
    ):
        notes[note.session_id].append(note)
    checkins: dict[Any, dict[str, str]] = defaultdict(dict)
    for session_id, kind, status in (
        scope.checkins()
        .filter(episode=episode, session__isnull=False)
        .values_list("session_id", "kind", "status")
    ):
        current = checkins[session_id].get(kind)
        if current != CheckInStatus.COMPLETED:
            checkins[session_id][kind] = status
    now = timezone.now()
    log = []
    for s in sessions:
        c = checkins.get(s.pk, {})
        log.append(
            {
                "session": s,
                "notes": notes.get(s.pk, []),
                "pre": c.get(CheckInKind.PRE_SESSION),
                "post": c.get(CheckInKind.POST_SESSION),
                "therapist": c.get(CheckInKind.THERAPIST),
                "past": s.scheduled_at <= now,
            }
        )
    return log, notes.get(None, [])


@dataclass
class Header:
    session_number: int
    planned: int
    next_session: Any
    stage_chip: str


def build(
    scope: Scope, client: Client, episode: Episode | None, *, instrument: str = ""
) -> dict[str, Any]:
    episodes = list(scope.episodes().filter(client=client).order_by("-opened_at"))
    ctx: dict[str, Any] = {
        "client": client,
        "episode": episode,
        "episodes": episodes,
        "may_treat": False,
    }
    if episode is None:
        return ctx
    # A check-in newer than the snapshot (its refresh still queued, or no worker running) is
    # computed now, so the page always shows it.
    insight = care_insight.fresh_insight(episode)
    may_treat = scope.may_treat(episode)
    alerts = list(
        annotate_alerts(scope.alerts().filter(episode=episode))
        .prefetch_related("actions")
        .order_by("-created_at")
    )
    later = followup.later_scores(scope, alerts)
    for alert in alerts:
        alert.follow = followup.follow_up(alert, later.get(alert.episode_id, []), insight)
    log, unattached_notes = session_log(scope, episode)
    attended = [e["session"] for e in log if e["session"].status == SessionStatus.ATTENDED]
    planned = max(6, len(log), episode.planned_end_session or 0)
    upcoming = [
        e["session"]
        for e in log
        if e["session"].status == SessionStatus.SCHEDULED and not e["past"]
    ]
    stage = (insight.stage if insight else None) or {}
    assessment = (
        scope.stage_assessments().filter(episode=episode).order_by("-created_at", "-pk").first()
    )
    if assessment is not None and assessment.confirmed_stage and not stage.get("confirmed"):
        stage = {**stage, "confirmed": assessment.confirmed_stage}
    signal = (insight.signal if insight else None) or {}
    alliance = (insight.alliance if insight else None) or {}
    ther_inst = instrument_or_none(episode.therapist_alliance_instrument)
    ctx.update(
        {
            "insight": insight,
            "may_treat": may_treat,
            "concerns": caseload.concern_text(episode.concerns),
            "attendance_choices": SessionStatus.choices,
            "is_open": episode.status == EpisodeStatus.OPEN,
            "header": Header(
                session_number=max([s.number for s in attended] or [0]),
                planned=len(log),
                next_session=upcoming[0] if upcoming else None,
                stage_chip=caseload.stage_chip(stage),
            ),
            "alerts": [a for a in alerts if a.status != AlertStatus.RESOLVED],
            "signal": signal,
            "signal_code": signal.get("code") or "not_enough_data",
            "signal_label": SIGNAL_LABELS.get(
                signal.get("code") or "not_enough_data", signal.get("label", "")
            ),
            "flags": caseload.flags_for(
                insight, caseload.kinds_of((a.kind, a.status) for a in alerts)
            ),
            "outcome": outcome_view(episode, insight, instrument, scope, planned),
            "alliance": alliance,
            "alliance_chart": charts.alliance_chart(alliance, min_sessions=planned)
            if alliance
            else None,
            "alliance_rows": alliance_rows(alliance),
            "unrepaired": [
                r for r in alliance.get("ruptures") or [] if r.get("repair_session") is None
            ],
            "goals": goals_view(scope, episode),
            "checklist": (insight.checklist if insight else None) or [],
            "show_checklist": signal.get("code") in ("off_track", "at_risk")
            and bool(insight and insight.checklist),
            "client_notes": list(
                scope.client_notes().filter(episode=episode).order_by("-written_at")
            ),
            "session_log": log,
            "unattached_notes": unattached_notes,
            "attended_sessions": attended,
            "stage": stage,
            "stage_name": STAGES.get(
                int(stage.get("confirmed") or stage.get("suggested") or 0), ""
            ),
            "assessment": assessment,
            "private_notes": list(
                scope.private_notes().filter(episode=episode).order_by("-created_at")
            ),
            "therapist_instrument": ther_inst,
            "dropout": (insight.dropout if insight else None) or {},
            "outcome_label": OUTCOME_LABELS.get((episode.outcome or {}).get("category") or ""),
        }
    )
    return ctx
