"""Break-glass emergency access (SECURITY.md REQ-AC2; HIPAA §164.312(a)(2)(ii), as OpenEMR does it).

A therapist or supervisor who has no business with a client of their practice may, in an
emergency, open that one client's record for :data:`EMERGENCY_ACCESS_HOURS` hours by writing why.
The rules:

* the practice is the tenant boundary: a client of another practice, an erased client and a code
  that matches nobody all look the same (:class:`NotFound`, with an audit "deny" row);
* only clinical roles break glass: a practice admin without a caseload, and clients, cannot;
* the grant row and its audit row (purpose ``break_glass``, the reason in the detail) are written
  in one transaction; the practice admins are emailed when it commits (the email names the
  clinician and the client's pseudonym, never the reason or anything clinical);
* the grant is **read-only**: :meth:`alliance_web.care.access.Scope.clients` includes the client,
  but ``may_treat`` does not, and exports, consent and erasure keep to the usual scope
  (:meth:`~alliance_web.care.access.Scope.own_clients`). The client's private notes and the
  treating therapist's process notes stay closed (they need the client's or the author's say);
* every view of the record is still audited as usual; an admin may revoke a grant early.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage
from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record
from alliance_web.care.models import Client, EmergencyAccess

log = logging.getLogger(__name__)

# REQ-AC2: a break-glass grant lasts four hours from the moment it is made.
EMERGENCY_ACCESS_HOURS = 4
EMERGENCY_ACCESS_DURATION = timedelta(hours=EMERGENCY_ACCESS_HOURS)
REASON_MIN_CHARS = 10
REASON_MAX_CHARS = 1000
PURPOSE = "break_glass"


class NotFound(Exception):
    """No client of the clinician's practice has that code (or it is another practice's)."""


class NotPermitted(Exception):
    """This account may not break glass (no clinical role)."""


def may_break_glass(user: Any) -> bool:
    """Therapists, supervisors and clinician admins of a practice; never admin-only accounts."""
    from alliance_web.care.access import scope_for

    return scope_for(user).sees_clinical


def active_grants(now: Any = None) -> QuerySet[EmergencyAccess]:
    """Grants that open a record at ``now`` (default: this instant)."""
    now = now or timezone.now()
    return EmergencyAccess.objects.filter(
        revoked_at__isnull=True, granted_at__lte=now, expires_at__gt=now
    )


def find_client(user: Any, code: str) -> Client:
    """The client of ``user``'s own practice whose pseudonym is ``code`` (any case, spaces
    ignored), or :class:`NotFound` — the same for a client of another practice."""
    wanted = "".join(code.split()).upper()
    practice_id = getattr(user, "practice_id", None)
    client = (
        Client.objects.filter(practice_id=practice_id, erased_at__isnull=True, pseudonym=wanted)
        .select_related("practice")
        .first()
        if practice_id is not None and wanted
        else None
    )
    if client is None:
        record(
            Actor.of(user),
            Action.CREATE,
            "emergency_access",
            outcome=Outcome.DENY,
            purpose=PURPOSE,
            detail={"reason": "out_of_scope_or_missing"},
        )
        raise NotFound("No client of your practice has that code.")
    return client


def grant(user: Any, client: Client, reason: str) -> EmergencyAccess:
    """Open ``client``'s record to ``user`` for :data:`EMERGENCY_ACCESS_HOURS` hours.

    The form explains a reason that is too short; this checks it again (``ValueError``), and the
    role and the practice, so that no other path can skip them.
    """
    if not may_break_glass(user):
        record(
            Actor.of(user),
            Action.CREATE,
            "emergency_access",
            "",
            client.public_id,
            outcome=Outcome.DENY,
            purpose=PURPOSE,
            detail={"reason": "not_permitted"},
        )
        raise NotPermitted("Only clinicians can use emergency access.")
    if client.practice_id != user.practice_id or client.erased_at is not None:
        record(
            Actor.of(user),
            Action.CREATE,
            "emergency_access",
            outcome=Outcome.DENY,
            purpose=PURPOSE,
            detail={"reason": "out_of_scope_or_missing"},
        )
        raise NotFound("No client of your practice has that code.")
    reason = " ".join(reason.split())
    if not REASON_MIN_CHARS <= len(reason) <= REASON_MAX_CHARS:
        raise ValueError(f"a reason of {REASON_MIN_CHARS} to {REASON_MAX_CHARS} characters")
    now = timezone.now()
    with transaction.atomic():
        row = EmergencyAccess.objects.create(
            practice_id=client.practice_id,
            user=user,
            client=client,
            reason=reason,
            granted_at=now,
            expires_at=now + EMERGENCY_ACCESS_DURATION,
        )
        record(
            Actor.of(user),
            Action.CREATE,
            "emergency_access",
            row.public_id,
            client.public_id,
            purpose=PURPOSE,
            detail={"reason": reason, "expires_at": row.expires_at.isoformat()},
        )
        transaction.on_commit(lambda: notify_admins(row.pk))
    return row


def revoke(admin: Any, row: EmergencyAccess) -> bool:
    """End a grant early (a practice admin of its practice). False if it had ended already."""
    with transaction.atomic():
        locked = EmergencyAccess.objects.select_for_update().get(pk=row.pk)
        if locked.revoked_at is not None or locked.expires_at <= timezone.now():
            return False
        locked.revoked_at = timezone.now()
        locked.revoked_by = admin
        locked.save(update_fields=["revoked_at", "revoked_by"])
        record(
            Actor.of(admin),
            Action.UPDATE,
            "emergency_access",
            locked.public_id,
            locked.client.public_id,
            purpose=PURPOSE,
            detail={"status": "revoked"},
        )
    row.revoked_at, row.revoked_by = locked.revoked_at, locked.revoked_by
    return True


def practice_admins(practice_id: int) -> QuerySet[Any]:
    """Active admin accounts of the practice (clinician admins included)."""
    return get_user_model().objects.filter(practice_id=practice_id, role="admin", is_active=True)


def notify_admins(grant_id: int) -> None:
    """Email every admin of the practice at once: who opened which pseudonym, until when. No
    reason and nothing clinical leaves by email; the grants page shows the rest."""
    row = (
        EmergencyAccess.objects.select_related("user", "client", "practice")
        .filter(pk=grant_id)
        .first()
    )
    if row is None:
        return
    to = [a.email for a in practice_admins(row.practice_id) if a.email]
    if not to:
        log.warning("emergency access %s: the practice has no admin with an email", row.public_id)
        return
    until = timezone.localtime(row.expires_at).strftime("%Y-%m-%d %H:%M %Z")
    body = (
        f"{row.user} ({row.user.get_username()}) used emergency access to the record of client "
        f"{row.client.pseudonym} at {row.practice.name}. The access ends at {until} unless you "
        f"revoke it sooner.\n\nReview the reason and revoke it here: "
        f"{settings.ALLIANCE_BASE_URL}/w/emergency-access/grants/\n\n"
        "(For privacy, this email does not include the reason or anything from the record.)"
    )
    try:
        EmailMessage("Alliance: emergency access to a client record was used", body, to=to).send()
    except Exception:  # the grant stands; the grants page still lists it
        log.exception("could not email the admins about emergency access %s", row.public_id)
