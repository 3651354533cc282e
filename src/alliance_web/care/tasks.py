"""Background work (SPEC C9): invitations before sessions, reminders, expiry, alert notifications.

Everything here is idempotent, so that a retried task, two workers or a worker killed mid-run never
loses or doubles anything:

* the periodic :func:`sweep` only *creates* rows guarded by unique constraints (one check-in per
  session and kind; one :class:`Delivery` per check-in, channel and kind) and then hands each unsent
  delivery to :func:`send_delivery`;
* :func:`send_delivery` claims the delivery with a conditional UPDATE (a lease), sends, and marks it
  sent. Senders are idempotent by key (the outbox writes ``<delivery id>.eml``; SMTP messages carry a
  deterministic Message-ID), so the one unavoidable window — killed after the message left and before
  ``sent_at`` was stored — repeats the same message id, which receivers and our outbox de-duplicate.

When no worker runs, check-ins still work: links are created on demand by the therapist, safety alerts
are on the dashboard at once, and deliveries wait in the outbox table until a worker comes back.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from alliance_web.care import channels
from alliance_web.care.models import (
    Alert,
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

LEASE = timedelta(minutes=10)
MAX_ATTEMPTS = 5
REMINDER_BEFORE_EXPIRY = timedelta(hours=12)


def enqueue_sweep() -> None:
    sweep.enqueue()


@task()
def sweep() -> dict[str, int]:
    """Create what is due and send what is waiting. Safe to run any number of times."""
    now = timezone.now()
    counts = {
        "invited": _create_invitations(now),
        "reminded": _create_reminders(now),
        "expired": _expire(now),
    }
    due = list(
        Delivery.objects.filter(sent_at__isnull=True, due_at__lte=now, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE))
        .values_list("pk", flat=True)[:500]
    )
    for pk in due:
        send_delivery.enqueue(pk)
    counts["queued"] = len(due)
    return counts


def _create_invitations(now: Any) -> int:
    from alliance_web.care import services

    created = 0
    sessions = (
        Session.objects.filter(
            status=SessionStatus.SCHEDULED,
            episode__status=EpisodeStatus.OPEN,
            scheduled_at__gt=now,
            scheduled_at__lte=now + timedelta(hours=48),
        )
        .filter(invited_at__isnull=True)
        .select_related("episode", "episode__client", "episode__client__practice")
    )
    for session in sessions:
        practice = session.episode.client.practice
        opens = session.scheduled_at - timedelta(hours=practice.invitation_lead_hours)
        if opens > now:
            continue
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
            checkin, _ = services.issue_checkin(
                session.episode,
                kind=CheckInKind.PRE_SESSION,
                session=session,
                opens_at=now,
                hours_valid=max(1, int((session.scheduled_at - now).total_seconds() // 3600) + 1),
            )
            for channel in channels.channels_for(session.episode.client):
                Delivery.objects.create(
                    checkin=checkin, channel=channel, kind=DeliveryKind.INVITATION, due_at=now
                )
            created += 1
    return created


def _create_reminders(now: Any) -> int:
    created = 0
    pending = CheckIn.objects.filter(
        kind=CheckInKind.PRE_SESSION,
        status=CheckInStatus.PENDING,
        expires_at__gt=now,
        expires_at__lte=now + REMINDER_BEFORE_EXPIRY,
        deliveries__kind=DeliveryKind.INVITATION,
        deliveries__sent_at__isnull=False,
    ).distinct()
    for checkin in pending:
        for channel in channels.channels_for(checkin.episode.client):
            _, made = Delivery.objects.get_or_create(
                checkin=checkin,
                channel=channel,
                kind=DeliveryKind.REMINDER,
                defaults={"due_at": now},
            )
            created += int(made)
    return created


def _expire(now: Any) -> int:
    return CheckIn.objects.filter(
        status__in=[CheckInStatus.PENDING, CheckInStatus.STARTED], expires_at__lte=now
    ).update(status=CheckInStatus.EXPIRED)


@task()
def send_delivery(delivery_id: int) -> str:
    """Send one invitation or reminder, at most once."""
    now = timezone.now()
    claimed = (
        Delivery.objects.filter(pk=delivery_id, sent_at__isnull=True, attempts__lt=MAX_ATTEMPTS)
        .filter(Q(claimed_at__isnull=True) | Q(claimed_at__lt=now - LEASE))
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
    ):
        Delivery.objects.filter(pk=delivery_id).update(
            sent_at=now, last_error="check-in no longer open"
        )
        return "not needed"
    try:
        channels.send(delivery)
    except Exception as exc:  # noqa: BLE001 - retried by the next sweep; the error is kept (no PHI)
        Delivery.objects.filter(pk=delivery_id).update(
            claimed_at=None, attempts=delivery.attempts + 1, last_error=type(exc).__name__[:200]
        )
        log.warning("delivery %s failed (%s); will retry", delivery_id, type(exc).__name__)
        return "failed"
    Delivery.objects.filter(pk=delivery_id).update(
        sent_at=timezone.now(), attempts=delivery.attempts + 1
    )
    return "sent"


@task()
def notify_alert(alert_id: int) -> str:
    """Tell the therapist that an alert is waiting (the email says only that; no clinical content)."""
    alert = (
        Alert.objects.select_related("episode__therapist")
        .filter(pk=alert_id, notified_at__isnull=True)
        .first()
    )
    if alert is None:
        return "skipped"
    updated = Alert.objects.filter(pk=alert_id, notified_at__isnull=True).update(
        notified_at=timezone.now()
    )
    if updated:
        channels.notify_staff(alert.episode.therapist, alert)
    return "sent"


__all__ = ["Channel", "enqueue_sweep", "notify_alert", "send_delivery", "sweep"]
