"""Background work (SPEC C9): invitations before sessions, reminders, expiry and missed check-ins,
alert notifications, episode snapshots after check-ins, nightly recalibration of the recovery model.

Everything here is idempotent, so that a retried task, two workers or a worker killed mid-run never
loses or doubles anything. The database tables are the source of truth; the task queue only says
"look now":

* the periodic :func:`sweep` only *creates* rows guarded by markers and unique constraints (a
  session's ``invited_at`` claim, one :class:`Delivery` per check-in, channel and kind, one alert
  per cause) and then queues every delivery and notification that is due and unsent — including
  those a killed worker left half-done, once their lease has run out;
* :func:`send_delivery` and :func:`notify_alert` **claim** their row with a conditional UPDATE (a
  lease: ``claimed_at`` older than the lease is free again), send, and mark it sent. Senders are
  idempotent by key (the outbox writes ``delivery-<id>.eml``/``.txt``; SMTP messages carry a
  deterministic Message-ID, ``<delivery-<id>@host>``), so the one unavoidable window — killed after
  the message left and before ``sent_at`` was stored — repeats the *same* message, which the outbox
  overwrites and mail systems de-duplicate by Message-ID;
* a failed send is retried by later sweeps with exponential back-off (``2**attempts`` minutes) up to
  :data:`MAX_ATTEMPTS`; the error's class name (never its text, which may hold an address) is kept.

When no worker runs, check-ins still work: links are made on demand by the therapist, safety alerts
are on the dashboard at once (the web request raises them), and deliveries wait in their table until
a worker comes back; nothing is sent late twice because each row is sent at most once. Snapshots are
refreshed by the pages that show them (``care.insight``): :func:`refresh_episode` only saves the
pages that work.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alliance_web.audit.trail import Actor
from alliance_web.care import channels
from alliance_web.care.models import (
    Alert,
    AlertKind,
    Channel,
    CheckIn,
    CheckInKind,
    CheckInStatus,
    Delivery,
    DeliveryKind,
    EpisodeStatus,
    Session,
    SessionStatus,
)
from alliance_web.compat import task

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 5
REMINDER_BEFORE_EXPIRY = timedelta(hours=12)
# A reminder never follows its invitation within this gap (a short-notice session gets one message).
REMINDER_MIN_GAP = timedelta(hours=6)
# Sessions are looked at this far ahead; a practice's invitation lead time may not exceed it.
LOOKAHEAD = timedelta(days=14)
# Alerts older than this and still not notified are not emailed any more (they are on the dashboard).
NOTIFY_WITHIN = timedelta(days=3)
# "Missed check-ins": this many pre-session check-ins in a row expired unanswered. A product
# heuristic (no published cut-off exists for check-in non-completion); configurable per install.
MISSED_IN_A_ROW_DEFAULT = 2
SWEEP_BATCH = 500


def _lease() -> timedelta:
    return timedelta(seconds=getattr(settings, "ALLIANCE_DELIVERY_LEASE_SECONDS", 600))


def _missed_in_a_row() -> int:
    return int(getattr(settings, "ALLIANCE_MISSED_CHECKINS_IN_A_ROW", MISSED_IN_A_ROW_DEFAULT))


def enqueue_sweep() -> None:
    sweep.enqueue()


# --------------------------------------------------------------------------------------------
# The sweep
# --------------------------------------------------------------------------------------------
@task()
def sweep() -> dict[str, int]:
    """Create what is due and queue what is waiting. Safe to run any number of times."""
    now = timezone.now()
    counts = {
        "invited": _create_invitations(now),
        "reminded": _create_reminders(now),
        "expired": _expire(now),
        "refreshed": _refresh_stale(),
    }
    free = Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - _lease())
    due = list(
        Delivery.objects.filter(sent_at__isnull=True, due_at__lte=now, attempts__lt=MAX_ATTEMPTS)
        .filter(free)
        .order_by("due_at", "pk")
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for pk in due:
        send_delivery.enqueue(pk)
    counts["queued"] = len(due)
    # Notifications whose enqueue after the web request was lost (a crash between commit and
    # enqueue) or whose worker died: picked up once their lease is over.
    waiting = list(
        Alert.objects.filter(
            notified_at__isnull=True,
            notify_attempts__lt=MAX_ATTEMPTS,
            created_at__gte=now - NOTIFY_WITHIN,
            created_at__lte=now - timedelta(seconds=30),
        )
        .filter(Q(notify_claimed_at__isnull=True) | Q(notify_claimed_at__lt=now - _lease()))
        .values_list("pk", flat=True)[:SWEEP_BATCH]
    )
    for pk in waiting:
        notify_alert.enqueue(pk)
    counts["notifications"] = len(waiting)
    return counts


def _create_invitations(now: datetime) -> int:
    from alliance_web.care import services

    created = 0
    sessions = (
        Session.objects.filter(
            status=SessionStatus.SCHEDULED,
            episode__status=EpisodeStatus.OPEN,
            scheduled_at__gt=now,
            scheduled_at__lte=now + LOOKAHEAD,
            invited_at__isnull=True,
        )
        .select_related("episode", "episode__client", "episode__client__practice")
        .order_by("scheduled_at")
    )
    for session in sessions[:SWEEP_BATCH]:
        practice = session.episode.client.practice
        if session.scheduled_at - timedelta(hours=practice.invitation_lead_hours) > now:
            continue  # not yet: the invitation goes out lead_hours before the session
        with transaction.atomic():
            # Claim the session: a second worker's identical UPDATE finds invited_at set.
            if not Session.objects.filter(pk=session.pk, invited_at__isnull=True).update(
                invited_at=now
            ):
                continue
            if session.checkins.filter(
                kind=CheckInKind.PRE_SESSION,
                status__in=[CheckInStatus.PENDING, CheckInStatus.STARTED],
            ).exists():
                continue  # the therapist already issued a link by hand
            hours = int((session.scheduled_at - now).total_seconds() // 3600) + 1
            checkin, _ = services.issue_checkin(
                session.episode,
                kind=CheckInKind.PRE_SESSION,
                session=session,
                opens_at=now,
                hours_valid=max(1, hours),
            )
            for channel in channels.channels_for(session.episode.client):
                Delivery.objects.create(
                    checkin=checkin, channel=channel, kind=DeliveryKind.INVITATION, due_at=now
                )
            created += 1
    return created


def _create_reminders(now: datetime) -> int:
    created = 0
    pending = (
        CheckIn.objects.filter(
            kind=CheckInKind.PRE_SESSION,
            status=CheckInStatus.PENDING,
            expires_at__gt=now,
            expires_at__lte=now + REMINDER_BEFORE_EXPIRY,
            deliveries__kind=DeliveryKind.INVITATION,
            deliveries__sent_at__lte=now - REMINDER_MIN_GAP,
        )
        .exclude(deliveries__kind=DeliveryKind.REMINDER)
        .select_related("episode__client")
        .distinct()
    )
    for checkin in pending[:SWEEP_BATCH]:
        for channel in channels.channels_for(checkin.episode.client):
            _, made = Delivery.objects.get_or_create(
                checkin=checkin,
                channel=channel,
                kind=DeliveryKind.REMINDER,
                defaults={"due_at": now},
            )
            created += int(made)
    return created


def _expire(now: datetime) -> int:
    """Expire overdue check-ins, raise missed-check-in alerts, refresh the episodes' snapshots."""
    from alliance_web.care import analysis

    overdue = list(
        CheckIn.objects.filter(
            status__in=[CheckInStatus.PENDING, CheckInStatus.STARTED], expires_at__lte=now
        )
        .values_list("episode_id", flat=True)
        .distinct()[:SWEEP_BATCH]
    )
    expired = 0
    for episode_id in overdue:
        with transaction.atomic():
            expired += CheckIn.objects.filter(
                episode_id=episode_id,
                status__in=[CheckInStatus.PENDING, CheckInStatus.STARTED],
                expires_at__lte=now,
            ).update(status=CheckInStatus.EXPIRED)
            from alliance_web.care.models import Episode

            episode = Episode.objects.select_related("client").get(pk=episode_id)
            actor = Actor.system("scheduler", episode.practice_id)
            alerts = _missed_checkins(episode, actor)
            if episode.status == EpisodeStatus.OPEN:
                alerts += analysis.refresh_episode(episode, actor=actor)
            if alerts:
                ids = [a.pk for a in alerts]
                transaction.on_commit(lambda ids=ids: analysis.notify_alerts(ids))
    return expired


def _refresh_stale() -> int:
    """Snapshots older than their episode's latest score (a refresh task lost, failed or still
    queued behind others): refreshed here, a batch per sweep."""
    from alliance_web.care import insight

    stale = list(insight.stale_episodes().order_by("pk").values_list("pk", flat=True)[:SWEEP_BATCH])
    return sum(_refresh_one(pk) == "refreshed" for pk in stale)


def _refresh_one(episode_id: int) -> str:
    from alliance_web.care import insight

    episode = insight.stale_episodes().filter(pk=episode_id).first()
    if episode is None:
        return "fresh"  # an earlier task of the same burst (or a page) did it already
    insight.refresh_and_notify(episode)
    return "refreshed"


@task()
def refresh_episode(episode_id: int) -> str:
    """Bring one episode's snapshot up to date after a check-in (``care.insight``). Idempotent
    and coalescing: a snapshot that is already fresh is left alone, so a burst of check-ins for
    one episode is computed once by whichever of its tasks runs first."""
    return _refresh_one(episode_id)


def _missed_checkins(episode: Any, actor: Actor) -> list[Alert]:
    """One 'missed check-ins' alert per run of unanswered pre-session check-ins."""
    from alliance_web.care import analysis

    if episode.status != EpisodeStatus.OPEN:
        return []
    recent = list(
        CheckIn.objects.filter(episode=episode, kind=CheckInKind.PRE_SESSION)
        .exclude(status__in=[CheckInStatus.PENDING, CheckInStatus.STARTED])
        .exclude(status=CheckInStatus.CANCELLED)
        .order_by("-expires_at", "-pk")
        .values_list("public_id", "status")[:50]
    )
    run = []
    for public_id, status in recent:
        if status != CheckInStatus.EXPIRED:
            break
        run.append(public_id)
    if len(run) < _missed_in_a_row():
        return []
    first_of_run = run[-1]
    alert = analysis.raise_alert(
        episode,
        AlertKind.MISSED,
        f"missed:{first_of_run}",
        detail={"in_a_row": len(run), "rule": f"{_missed_in_a_row()} or more expired in a row"},
        actor=actor,
    )
    return [alert] if alert else []


# --------------------------------------------------------------------------------------------
# Sending
# --------------------------------------------------------------------------------------------
@task()
def send_delivery(delivery_id: int) -> str:
    """Send one invitation or reminder, at most once per lease, exactly once in the end."""
    now = timezone.now()
    claimed = (
        Delivery.objects.filter(
            pk=delivery_id, sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS, due_at__lte=now
        )
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - _lease()))
        .update(claimed_at=now)
    )
    if not claimed:
        return "skipped"
    delivery = Delivery.objects.select_related("checkin", "checkin__episode__client__practice").get(
        pk=delivery_id
    )
    checkin = delivery.checkin
    if (
        checkin.status not in (CheckInStatus.PENDING, CheckInStatus.STARTED)
        or checkin.expires_at <= now
        or (delivery.kind == DeliveryKind.REMINDER and checkin.status != CheckInStatus.PENDING)
    ):
        Delivery.objects.filter(pk=delivery_id).update(
            sent_at=now, last_error="check-in no longer open"
        )
        return "not needed"
    try:
        channels.send(delivery)
    except Exception as exc:  # noqa: BLE001 - retried by a later sweep; the error class is kept
        attempts = delivery.attempts + 1
        Delivery.objects.filter(pk=delivery_id, claimed_at=now).update(
            claimed_at=None,
            attempts=attempts,
            due_at=now + timedelta(minutes=2**attempts),
            last_error=type(exc).__name__[:200],
        )
        log.warning("delivery %s failed (%s); will retry", delivery_id, type(exc).__name__)
        return "failed"
    Delivery.objects.filter(pk=delivery_id).update(
        sent_at=timezone.now(), attempts=delivery.attempts + 1, last_error=""
    )
    return "sent"


@task()
def notify_alert(alert_id: int) -> str:
    """Tell the therapist that an alert is waiting (the email says only that; no clinical content)."""
    now = timezone.now()
    claimed = (
        Alert.objects.filter(
            pk=alert_id, notified_at__isnull=True, notify_attempts__lt=MAX_ATTEMPTS
        )
        .filter(Q(notify_claimed_at__isnull=True) | Q(notify_claimed_at__lt=now - _lease()))
        .update(notify_claimed_at=now)
    )
    if not claimed:
        return "skipped"
    alert = Alert.objects.select_related("episode__therapist").get(pk=alert_id)
    try:
        channels.notify_staff(alert.episode.therapist, alert)
    except Exception as exc:  # noqa: BLE001 - retried by a later sweep
        Alert.objects.filter(pk=alert_id).update(
            notify_claimed_at=None, notify_attempts=alert.notify_attempts + 1
        )
        log.warning("notification of alert %s failed (%s)", alert_id, type(exc).__name__)
        return "failed"
    Alert.objects.filter(pk=alert_id).update(
        notified_at=timezone.now(), notify_attempts=alert.notify_attempts + 1
    )
    return "sent"


# --------------------------------------------------------------------------------------------
# Nightly recalibration
# --------------------------------------------------------------------------------------------
@task()
def recalibrate_all() -> dict[str, str]:
    """Refit each practice's recovery model on its own data (:mod:`alliance_web.care.calibration`:
    fitted, cross-validated and stored as the active :class:`PracticeModel` once the practice has
    enough clients; ``ALLIANCE_RECALIBRATION_MIN_CLIENTS``)."""
    from alliance_web.care import calibration

    minimum = int(getattr(settings, "ALLIANCE_RECALIBRATION_MIN_CLIENTS", calibration.MIN_CLIENTS))
    return {
        f"{c.practice_id}:{c.instrument}": c.reason
        for c in calibration.recalibrate_all(min_clients=minimum)
    }


__all__ = [
    "Channel",
    "enqueue_sweep",
    "notify_alert",
    "recalibrate_all",
    "refresh_episode",
    "send_delivery",
    "sweep",
]
