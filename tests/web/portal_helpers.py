"""Helpers shared by the portal tests (not a test module)."""

from __future__ import annotations

import alliance as al
from alliance_web.audit.models import AuditEvent
from alliance_web.care.models import Alert, ClientNote, GoalRating, Response, Score


def full_answers(
    checkin, value: str = "1", overrides: dict[str, str] | None = None
) -> dict[str, str]:
    """A complete, valid POST for a check-in: every question answered with ``value`` where allowed."""
    data: dict[str, str] = {}
    for inst_id in checkin.instruments:
        inst = al.instrument(inst_id)
        for item in inst.items:
            if item.kind == "text":
                continue
            allowed = (
                [str(int(v)) if float(v).is_integer() else str(v) for v in item.values]
                if item.kind == "choice"
                else []
            )
            if item.kind == "choice":
                data[f"{inst_id}.{item.id}"] = value if value in allowed else allowed[0]
    data.update(overrides or {})
    return data


def stored_counts(checkin) -> dict[str, int]:
    return {
        "responses": Response.objects.filter(checkin=checkin).count(),
        "scores": Score.objects.filter(response__checkin=checkin).count(),
        "alerts": Alert.objects.filter(episode=checkin.episode).count(),
        "goal_ratings": GoalRating.objects.filter(checkin=checkin).count(),
        "notes": ClientNote.objects.filter(checkin=checkin).count(),
    }


NOTHING = {"responses": 0, "scores": 0, "alerts": 0, "goal_ratings": 0, "notes": 0}


def audit_rows(entity_type: str, **filters):
    return list(AuditEvent.objects.filter(entity_type=entity_type, **filters).order_by("seq"))
