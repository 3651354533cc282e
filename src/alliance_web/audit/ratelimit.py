"""Anti-automation on exports of client data (OWASP ASVS 5.0 2.4.1).

A stolen session or a rogue insider should not be able to pull the whole practice's records in a
few minutes. Every export of client data already leaves a successful ``EXECUTE`` row in the audit
trail; :func:`check_export_limit` counts the caller's rows of the last hour straight from that
table (so the count holds across processes and restarts, on SQLite and PostgreSQL) and refuses
once ``ALLIANCE_EXPORT_LIMIT_PER_HOUR`` is reached. The refusal is itself audited (outcome deny,
reason ``rate_limited``) and nothing is exported.

The default of 60 an hour is a heuristic, not a standard's number: a clinician printing reports
for a day's sessions stays far below it, a script walking the caseload does not. ``0`` switches
the limit off.

What counts as one export (:data:`EXPORT_ENTITIES`): the progress report PDF, the client's record
(FHIR Bundle or PDF) and the research and practice CSV exports. The CSV exports write one row per
client included plus one row for the export itself; only the latter counts.

Two requests that arrive together when one export is left may both pass (the check and the audit
row are not one atomic step); the limit is a brake on bulk pulling, not an exact quota.
"""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from typing import Any

from django.conf import settings
from django.db.models import Q, QuerySet
from django.utils import timezone

from alliance_web.audit.models import Action, AuditEvent, Outcome
from alliance_web.audit.trail import Actor, record

WINDOW = timedelta(hours=1)
DEFAULT_LIMIT_PER_HOUR = 60

# The audit entity types of exports of client data, each written once per export.
SINGLE_ROW_EXPORTS = ("progress_report", "client_export")
# Exports audited with one row per client plus a summary row without a client (the one counted).
PER_CLIENT_EXPORTS = ("research_export", "practice_export")
EXPORT_ENTITIES = SINGLE_ROW_EXPORTS + PER_CLIENT_EXPORTS

__all__ = [
    "EXPORT_ENTITIES",
    "WINDOW",
    "ExportLimitExceeded",
    "check_export_limit",
    "export_limit",
    "recent_exports",
]


def export_limit() -> int:
    """Exports allowed per user per hour; ``0`` (or less) means no limit."""
    return int(getattr(settings, "ALLIANCE_EXPORT_LIMIT_PER_HOUR", DEFAULT_LIMIT_PER_HOUR))


def recent_exports(user_id: int, now: datetime | None = None) -> QuerySet[AuditEvent]:
    """The user's successful exports of client data in the window ending ``now``."""
    now = now or timezone.now()
    return AuditEvent.objects.filter(
        Q(entity_type__in=SINGLE_ROW_EXPORTS)
        | Q(entity_type__in=PER_CLIENT_EXPORTS, patient_id=""),
        user_id=user_id,
        action=Action.EXECUTE,
        outcome=Outcome.SUCCESS,
        recorded__gt=now - WINDOW,
        recorded__lte=now,
    )


class ExportLimitExceeded(Exception):
    """The user reached the limit; :attr:`message` says when to try again and what else to do."""

    def __init__(self, count: int, limit: int, retry_at: datetime, now: datetime) -> None:
        self.count = count
        self.limit = limit
        self.retry_at = retry_at
        self.now = now
        super().__init__(self.message)

    @property
    def retry_after(self) -> int:
        """Whole seconds until one more export is allowed (for the ``Retry-After`` header)."""
        return max(1, math.ceil((self.retry_at - self.now).total_seconds()))

    @property
    def message(self) -> str:
        at = timezone.localtime(self.retry_at).strftime("%H:%M")
        return (
            f"You have made {self.count} exports in the last hour; the limit is {self.limit}. "
            f"Try again after {at}, or ask your practice admin to raise "
            "ALLIANCE_EXPORT_LIMIT_PER_HOUR."
        )


def check_export_limit(
    user: Any, entity_type: str, entity_id: Any = "", patient_id: Any = ""
) -> None:
    """Refuse an export over the limit: record a deny and raise :class:`ExportLimitExceeded`.

    Call it after the permission checks and before anything is built, outside any transaction
    that the refusal would roll back (the deny row must stay). Returns quietly when the export
    may go ahead.
    """
    limit = export_limit()
    if limit <= 0 or user is None or not getattr(user, "is_authenticated", False):
        return
    now = timezone.now()
    times = list(
        recent_exports(user.pk, now).order_by("recorded").values_list("recorded", flat=True)
    )
    if len(times) < limit:
        return
    # One more export is allowed once all but limit - 1 of these have left the window.
    retry_at = times[len(times) - limit] + WINDOW
    record(
        Actor.of(user),
        Action.EXECUTE,
        entity_type,
        entity_id,
        patient_id,
        outcome=Outcome.DENY,
        detail={"reason": "rate_limited", "count": len(times), "limit": limit},
    )
    raise ExportLimitExceeded(count=len(times), limit=limit, retry_at=retry_at, now=now)
