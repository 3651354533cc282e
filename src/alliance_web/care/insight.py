"""The engine's view of one episode, stored as an :class:`EpisodeInsight` snapshot.

:func:`refresh` runs inside the transaction of every change to an episode's data (a check-in, a
therapist rating, attendance); it reads the episode's rows once, calls the engine, stores the
snapshot, and raises alerts for new findings (deduplicated by cause). Pages only read snapshots.

Shapes of the snapshot's JSON fields (all plain JSON; sessions are session numbers):

``signal``   {"code": "off_track"|"at_risk"|"on_track"|"improved"|"recovered"|"not_enough_data",
              "label": str, "reason": str, "method": str, "session": int|None, "instrument": str}
``outcome``  {"instrument": str, "short_name": str, "direction": str, "range": [lo, hi],
              "cutoff": float|None, "method": str,
              "points": [{"session", "total", "severity", "signal", "date", "flags"}],
              "expected": [{"session", "median", "low", "high"}],   # empty without a model
              "others": {instrument: [{"session", "total", "severity"}]}}
``alliance`` {"instrument": str, "therapist_instrument": str, "range": [lo, hi],
              "therapist_range": [lo, hi],
              "client": [{"session", "total", "normalised", "subscales"}],
              "therapist": [{"session", "total", "normalised"}],
              "ruptures": [{"start_session", "low_session", "repair_session"|None, "method", "depth"}],
              "gap": {"flag": bool, "value": float|None, "reason": str} }
``dropout``  {"level": "low"|"moderate"|"high", "flag": bool, "reasons": [str], "method": str}
``stage``    {"suggested": 1..4, "name": str, "reasons": [str], "guidance": [str], "method": str,
              "confirmed": int|None}
``checklist`` [{"area": str, "text": str, "evidence": str}]  # ordered, most relevant first
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.models import Prefetch
from django.utils import timezone

import alliance as al
from alliance_web.audit.trail import Actor
from alliance_web.care.models import (
    Alert,
    AlertKind,
    AlertStatus,
    CheckIn,
    CheckInKind,
    CheckInStatus,
    Episode,
    EpisodeInsight,
    Score,
    Session,
    SessionStatus,
    Signal,
)

# Caseload order (DESIGN.md): safety → off track → rupture → dropout risk → gap → overdue → on track.
TRIAGE = {
    "safety": 0,
    "off_track": 1,
    "rupture": 2,
    "dropout": 3,
    "gap": 4,
    "overdue": 5,
    "at_risk": 6,
    "on_track": 7,
    "improved": 8,
    "recovered": 8,
    "not_enough_data": 9,
}


def _points(scores: Sequence[Score]) -> list[dict[str, Any]]:
    return [
        {
            "session": s.session_number,
            "total": s.total,
            "severity": s.severity,
            "signal": s.signal,
            "date": s.administered_at.date().isoformat(),
            "flags": list(s.flags or []),
        }
        for s in scores
        if s.total is not None
    ]


def _normalise(value: float | None, lo: float, hi: float) -> float | None:
    return None if value is None else round((value - lo) / (hi - lo), 4)


def outcome_series(episode: Episode, scores: Sequence[Score]) -> dict[str, Any]:
    primary = episode.primary_instrument
    if primary is None:
        return {}
    inst = al.instrument(primary)
    mine = [s for s in scores if s.instrument == primary and s.rater == "client"]
    others: dict[str, list[dict[str, Any]]] = {}
    for other in episode.measure_plan[1:]:
        others[other] = [
            {"session": s.session_number, "total": s.total, "severity": s.severity}
            for s in scores
            if s.instrument == other and s.total is not None
        ]
    return {
        "instrument": primary,
        "short_name": inst.short_name,
        "direction": inst.direction,
        "range": list(inst.scoring.range),
        "cutoff": inst.clinical_cutoff.value if inst.clinical_cutoff else None,
        "method": "",
        "points": _points(mine),
        "expected": [],
        "others": others,
    }


def alliance_series(episode: Episode, scores: Sequence[Score]) -> dict[str, Any]:
    client_inst = al.instrument(episode.alliance_instrument)
    ther_inst = al.instrument(episode.therapist_alliance_instrument)
    lo, hi = client_inst.scoring.range
    tlo, thi = ther_inst.scoring.range
    client = [
        {
            "session": s.session_number,
            "total": s.total,
            "normalised": _normalise(s.total, lo, hi),
            "subscales": s.subscales,
        }
        for s in scores
        if s.instrument == episode.alliance_instrument
        and s.rater == "client"
        and s.total is not None
    ]
    therapist = [
        {"session": s.session_number, "total": s.total, "normalised": _normalise(s.total, tlo, thi)}
        for s in scores
        if s.instrument == episode.therapist_alliance_instrument
        and s.rater == "therapist"
        and s.total is not None
    ]
    return {
        "instrument": episode.alliance_instrument,
        "therapist_instrument": episode.therapist_alliance_instrument,
        "range": [lo, hi],
        "therapist_range": [tlo, thi],
        "client": client,
        "therapist": therapist,
        "ruptures": [],
        "gap": {"flag": False, "value": None, "reason": ""},
    }


def load_episode(episode_id: int) -> Episode:
    return (
        Episode.objects.select_related("client", "client__practice", "therapist")
        .prefetch_related(
            Prefetch("scores", queryset=Score.objects.order_by("administered_at", "pk")),
            Prefetch("sessions", queryset=Session.objects.order_by("number")),
        )
        .get(pk=episode_id)
    )


def refresh(episode: Episode, *, actor: Actor, new_scores: Sequence[Score] = ()) -> list[Alert]:
    """Recompute the snapshot; return alerts raised for new findings."""
    episode = load_episode(episode.pk)
    scores = list(episode.scores.all())
    sessions = list(episode.sessions.all())
    now = timezone.now()
    outcome = outcome_series(episode, scores)
    alliance = alliance_series(episode, scores)
    last = max((s.administered_at for s in scores if s.rater == "client"), default=None)
    overdue = CheckIn.objects.filter(
        episode=episode,
        kind=CheckInKind.PRE_SESSION,
        status__in=[CheckInStatus.PENDING, CheckInStatus.STARTED, CheckInStatus.EXPIRED],
        expires_at__lt=now,
    ).count()
    missed = sum(1 for s in sessions if s.status == SessionStatus.NO_SHOW)
    signal = {
        "code": Signal.NOT_ENOUGH_DATA,
        "label": Signal.NOT_ENOUGH_DATA.label,
        "reason": "Needs a first check-in."
        if not outcome.get("points")
        else "Needs more sessions.",
        "method": "",
        "session": None,
        "instrument": outcome.get("instrument", ""),
    }
    alerts: list[Alert] = []
    open_kinds = set(
        Alert.objects.filter(episode=episode)
        .exclude(status=AlertStatus.RESOLVED)
        .values_list("kind", flat=True)
    )
    triage = TRIAGE["not_enough_data"]
    if AlertKind.SAFETY in open_kinds:
        triage = TRIAGE["safety"]
    elif overdue:
        triage = min(triage, TRIAGE["overdue"])
    EpisodeInsight.objects.update_or_create(
        episode=episode,
        defaults={
            "computed_at": now,
            "engine_version": al.__version__,
            "triage": triage,
            "signal": signal,
            "outcome": outcome,
            "alliance": alliance,
            "dropout": {
                "level": "low",
                "flag": False,
                "reasons": [],
                "method": "",
                "missed": missed,
            },
            "stage": {},
            "checklist": [],
            "last_checkin_at": last,
            "overdue_checkins": overdue,
        },
    )
    return alerts


def outcome(episode: Episode) -> dict[str, Any] | None:
    """The outcome classification when an episode closes (filled in with the change engine)."""
    return None
