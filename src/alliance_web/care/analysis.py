"""The bridge from the record to the engine: signals, alerts, stage, outcome.

Services call these inside their transaction. Each function turns rows into plain engine inputs,
calls ``alliance``, and stores typed results. Alerts are deduplicated by a key per cause, so
recomputing never raises the same alert twice.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from django.db import IntegrityError, transaction

import alliance as al
from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.care.models import (
    ALERT_PRIORITY,
    Alert,
    AlertKind,
    CheckIn,
    Episode,
    Score,
)

log = logging.getLogger(__name__)


def raise_alert(
    episode: Episode,
    kind: str,
    dedupe_key: str,
    *,
    session_number: int | None = None,
    detail: dict[str, Any] | None = None,
    actor: Actor | None = None,
) -> Alert | None:
    """Create an alert unless one with the same cause exists; return it when created."""
    if Alert.objects.filter(dedupe_key=dedupe_key).exists():
        return None
    try:
        with transaction.atomic():
            alert = Alert.objects.create(
                practice_id=episode.practice_id,
                episode=episode,
                kind=kind,
                priority=ALERT_PRIORITY[AlertKind(kind)],
                dedupe_key=dedupe_key,
                session_number=session_number,
                detail=detail or {},
            )
    except IntegrityError:
        return None
    record(
        actor or Actor.system("analysis", episode.practice_id),
        Action.CREATE,
        "alert",
        alert.public_id,
        episode.client.public_id,
        detail={"kind": kind},
    )
    return alert


def after_submission(checkin: CheckIn, scores: Sequence[Score], *, actor: Actor) -> list[Alert]:
    """Everything a new check-in changes: safety alerts first, then signals and relationship flags."""
    episode = checkin.episode
    alerts: list[Alert] = []
    for score in scores:
        safety = [flag for flag in score.flags or [] if "safety" in flag]
        if safety:
            alert = raise_alert(
                episode,
                AlertKind.SAFETY,
                f"safety:{checkin.public_id}:{score.instrument}",
                session_number=score.session_number,
                detail={
                    "instrument": score.instrument,
                    "flags": safety,
                    "rule": "critical item endorsed",
                },
                actor=actor,
            )
            if alert:
                alerts.append(alert)
    alerts.extend(refresh_episode(episode, actor=actor, new_scores=scores))
    return alerts


def refresh_episode(
    episode: Episode, *, actor: Actor, new_scores: Sequence[Score] = ()
) -> list[Alert]:
    """Recompute recovery signals and relationship flags for an episode; raise new alerts."""
    from alliance_web.care import insight  # the engine-facing computations

    return insight.refresh(episode, actor=actor, new_scores=new_scores)


def episode_outcome(episode: Episode) -> dict[str, Any] | None:
    from alliance_web.care import insight

    return insight.outcome(episode)


def notify_alerts(alert_ids: Sequence[int]) -> None:
    """Hand new alerts to the background worker (email to the therapist). Safety alerts are on the
    dashboard already; a missing worker delays only the email."""
    try:
        from alliance_web.care.tasks import notify_alert
    except ImportError:  # background tasks not installed in this build
        return
    for pk in alert_ids:
        try:
            notify_alert.enqueue(pk)
        except Exception:
            log.exception("could not enqueue the notification for alert %s", pk)


__all__ = [
    "after_submission",
    "al",
    "episode_outcome",
    "notify_alerts",
    "raise_alert",
    "refresh_episode",
]
