"""The bridge from the record to the engine: signals, alerts, stage, outcome.

Services call these inside their transaction. Each function turns rows into plain engine inputs,
calls ``alliance``, and stores typed results. Alerts are deduplicated by a key per cause, so
recomputing never raises the same alert twice.

A check-in submission raises here only what must not wait for a worker — the safety alert and the
off-track alert (:func:`after_submission`); the rest of the episode's snapshot is refreshed after
commit (:func:`queue_refresh`, ``care.tasks.refresh_episode``; see ``care.insight``).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

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
    EpisodeStatus,
    Score,
    Signal,
)

if TYPE_CHECKING:
    from alliance_web.care.insight import Course

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
    """Create an alert unless one with the same cause exists; return it when created.

    No look-up first: the unique ``dedupe_key`` refuses a second one (in a savepoint, so the
    caller's transaction goes on)."""
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


def after_submission(
    checkin: CheckIn, scores: Sequence[Score], *, actor: Actor, course: Course | None = None
) -> list[Alert]:
    """What a new check-in must change before its transaction commits: a safety alert for each
    endorsed critical item, then an off-track alert when the new score of the episode's signal
    instrument is off track (``course`` holds the episode's earlier scores; the scores carry their
    signals). Everything else — ruptures, gap, dropout, stage, the snapshot — follows after commit.
    """
    from alliance_web.care import insight

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
    if course is None or episode.status != EpisodeStatus.OPEN:
        return alerts
    signal = course.episode_signal(scores)
    if signal is None or signal["code"] != Signal.OFF_TRACK:
        return alerts
    waiting = Alert.objects.filter(
        episode=episode, kind=AlertKind.OFF_TRACK, status__in=insight.UNRESOLVED
    ).exists()
    if not waiting:
        # The key the snapshot refresh would use for the same finding (care.insight.refresh).
        alert = raise_alert(
            episode,
            AlertKind.OFF_TRACK,
            f"{AlertKind.OFF_TRACK}:{episode.public_id}:{signal['session']}:"
            f"{course.count_with(scores)}",
            session_number=signal["session"],
            detail=insight.off_track_detail(signal),
            actor=actor,
        )
        if alert:
            alerts.append(alert)
    return alerts


def refresh_episode(episode: Episode, *, actor: Actor) -> list[Alert]:
    """Recompute recovery signals and relationship flags for an episode; raise new alerts."""
    from alliance_web.care import insight  # the engine-facing computations

    return insight.refresh(episode, actor=actor)


def queue_refresh(episode_id: int) -> None:
    """Ask the worker to refresh an episode's snapshot (call after commit). A lost request only
    delays it: pages refresh a stale snapshot themselves, and the sweep finds any left over."""
    try:
        from alliance_web.care.tasks import refresh_episode as task
    except ImportError:  # background tasks not installed in this build
        return
    try:
        task.enqueue(episode_id)
    except Exception:
        log.exception("could not enqueue the snapshot refresh of episode %s", episode_id)


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
    "queue_refresh",
    "raise_alert",
    "refresh_episode",
]
