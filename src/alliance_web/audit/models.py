"""The audit trail (SECURITY.md REQ-AU1, §1.6): append-only, hash-chained, no PHI values.

Each row maps one-to-one onto a FHIR ``AuditEvent`` (see :mod:`alliance_web.audit.fhir`). Rows are
written in the same transaction as the change they record; the database refuses UPDATE and DELETE
on the table (triggers added in migration 0002), and ``alliance manage verify_audit`` recomputes the
chain.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.utils import timezone

from alliance_web.care.fields import EncryptedTextField


class Action(models.TextChoices):
    CREATE = "C", "Create"
    READ = "R", "Read"
    UPDATE = "U", "Update"
    DELETE = "D", "Delete"
    EXECUTE = "E", "Execute / export"


class Outcome(models.TextChoices):
    SUCCESS = "success", "Success"
    DENY = "deny", "Denied"
    INVALID = "invalid", "Invalid input"
    ERROR = "error", "Error"


GENESIS = "0" * 64

# The fields that enter the hash, in order. Adding one is a format change: bump CHAIN_VERSION.
CHAIN_VERSION = 1
HASHED_FIELDS = (
    "seq",
    "recorded",
    "action",
    "outcome",
    "user_id",
    "username",
    "role",
    "practice_id",
    "ip",
    "user_agent",
    "source",
    "entity_type",
    "entity_id",
    "patient_id",
    "purpose",
    "request_id",
    "detail",
)


class AuditEvent(models.Model):
    seq = models.BigIntegerField(primary_key=True)
    recorded = models.DateTimeField(db_index=True)
    action = models.CharField(max_length=1, choices=Action.choices)
    outcome = models.CharField(max_length=8, choices=Outcome.choices)
    # Who: copied, not a foreign key, so the trail outlives accounts.
    user_id = models.BigIntegerField(null=True)
    username = models.CharField(max_length=150, blank=True)
    role = models.CharField(max_length=16, blank=True)
    practice_id = models.BigIntegerField(null=True, db_index=True)
    # From where
    ip = models.GenericIPAddressField(null=True)
    user_agent = models.CharField(max_length=200, blank=True)
    source = models.CharField(max_length=100, blank=True)
    # What and whose
    entity_type = models.CharField(max_length=40)
    entity_id = models.CharField(max_length=64, blank=True)
    patient_id = models.CharField(max_length=36, blank=True, db_index=True)
    purpose = models.CharField(max_length=60, blank=True)
    request_id = models.CharField(max_length=36, blank=True)
    detail = models.JSONField(default=dict, help_text="Codes and counts only, never PHI values.")
    prev_hash = models.CharField(max_length=64)
    hash = models.CharField(max_length=64, unique=True)

    class Meta:
        ordering = ["seq"]
        # The export limit counts one person's recent exports on every export (audit.ratelimit).
        indexes = [models.Index(fields=["user_id", "recorded"], name="audit_user_recorded")]

    def hashed_payload(self) -> dict[str, Any]:
        payload = {name: getattr(self, name) for name in HASHED_FIELDS}
        payload["recorded"] = self.recorded.isoformat()
        payload["v"] = CHAIN_VERSION
        return payload

    def compute_hash(self) -> str:
        body = json.dumps(self.hashed_payload(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256((self.prev_hash + body).encode("utf-8")).hexdigest()


class ChainHead(models.Model):
    """One row holding the last sequence number and hash; locked while appending."""

    id = models.PositiveSmallIntegerField(primary_key=True, default=1)
    seq = models.BigIntegerField(default=0)
    hash = models.CharField(max_length=64, default=GENESIS)


class MaintenanceWindow(models.Model):
    """While a row exists, the triggers allow deletion (the retention job after 10 years only)."""

    opened_at = models.DateTimeField(auto_now_add=True)
    reason = models.CharField(max_length=120)


class ErasureReason(models.TextChoices):
    CLIENT_REQUEST = "client_request", "The client asked, and no duty to keep the record applies"
    CREATED_IN_ERROR = "created_in_error", "The record was created in error"
    RETENTION_EXPIRED = "retention_expired", "The retention period has ended"


class ErasureStatus(models.TextChoices):
    PENDING = "pending", "Waiting for a practice admin"
    ERASED = "erased", "Erased"
    CANCELLED = "cancelled", "Cancelled"


class ErasureRequest(models.Model):
    """Step one of erasing a client's record; a practice admin other than the requester confirms
    (step two) and the record is destroyed (``care.privacy.erase_client``). The request row keeps
    only ids and codes, so it stays as evidence after the record is gone."""

    practice = models.ForeignKey("care.Practice", on_delete=models.PROTECT, related_name="+")
    client = models.ForeignKey(
        "care.Client", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    client_public_id = models.UUIDField(db_index=True)
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    requested_at = models.DateTimeField(default=timezone.now)
    reason = models.CharField(max_length=20, choices=ErasureReason.choices)
    status = models.CharField(
        max_length=10, choices=ErasureStatus.choices, default=ErasureStatus.PENDING
    )
    decided_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    decided_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-requested_at"]


# --- the privacy breach / incident register (SECURITY.md REQ-BR1) --------------------------------
class IncidentCategory(models.TextChoices):
    """Why the IPC must be told: the seven situations of O. Reg. 329/04 s. 6.3(1), in its order,
    plus incidents that match none of them (still recorded; PIPEDA s. 10.3 keeps every breach)."""

    UNAUTHORIZED_BY_KNOWING = (
        "knowing",
        "Used or disclosed without authority by someone who knew or ought to have known "
        "(s. 6.3(1) 1, e.g. snooping)",
    )
    STOLEN = "stolen", "Stolen (s. 6.3(1) 2)"
    FURTHER_USE = (
        "further",
        "Further used or disclosed without authority after a first breach (s. 6.3(1) 3)",
    )
    PATTERN = "pattern", "Part of a pattern of similar breaches (s. 6.3(1) 4)"
    COLLEGE_MEMBER = (
        "college",
        "A College must be notified under PHIPA s. 17.1 (a member dismissed, suspended or "
        "disciplined over it; s. 6.3(1) 5)",
    )
    COLLEGE_AGENT = (
        "college_agent",
        "Notice to a College would be required if the agent were a member (s. 6.3(1) 6)",
    )
    SIGNIFICANT = "significant", "Significant, considering all circumstances (s. 6.3(1) 7)"
    OTHER = "other", "Other / not notifiable to the IPC"


# The categories that oblige the custodian to notify the IPC (PHIPA s. 12(3), O. Reg. 329/04 s. 6.3).
NOTIFIABLE_CATEGORIES = frozenset(IncidentCategory.values) - {IncidentCategory.OTHER}


class IncidentKind(models.TextChoices):
    """What happened, as the IPC's annual statistics count it (O. Reg. 329/04 s. 6.4)."""

    STOLEN = "stolen", "Stolen"
    LOST = "lost", "Lost"
    USED = "used", "Used without authority"
    DISCLOSED = "disclosed", "Disclosed without authority"


class Regulator(models.TextChoices):
    IPC = "ipc", "Information and Privacy Commissioner of Ontario (IPC)"
    HHS = "hhs", "US Department of Health and Human Services (HHS OCR)"


class IncidentStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLOSED = "closed", "Closed"


# HIPAA: notify individuals "without unreasonable delay and in no case later than 60 calendar days
# after discovery" (45 CFR §164.404(b)).
HIPAA_NOTICE_DAYS = 60


class Incident(models.Model):
    """One privacy breach or incident in the practice's register (SECURITY.md REQ-BR1).

    The custodian notifies affected individuals "at the first reasonable opportunity" of a theft,
    loss or unauthorized use or disclosure (PHIPA s. 12(2)), notifies the IPC in the situations of
    O. Reg. 329/04 s. 6.3 (PHIPA s. 12(3); :class:`IncidentCategory`) and reports the number of
    such events of the previous calendar year to the IPC by March 1 (O. Reg. 329/04 s. 6.4;
    :class:`IncidentKind`). A US practice notifies individuals within 60 days of discovery
    (HIPAA, 45 CFR §164.404(b)) and HHS (§164.408). PIPEDA s. 10.3 asks for a record of every
    breach, which this register is.

    ``description`` may hold details close to PHI and is encrypted at rest
    (:class:`~alliance_web.care.fields.EncryptedTextField`); the audit trail records who changed
    which fields, never the text. :meth:`clean` keeps dates and counts coherent.
    """

    practice = models.ForeignKey("care.Practice", on_delete=models.PROTECT, related_name="+")
    reported_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+"
    )
    reported_at = models.DateTimeField(default=timezone.now)
    discovered_on = models.DateField(help_text="When the practice learned of it.")
    occurred_on = models.DateField(null=True, blank=True, help_text="If known.")
    description = EncryptedTextField(
        help_text="What happened, what was affected, what was done. Stored encrypted."
    )
    category = models.CharField(
        max_length=16,
        choices=IncidentCategory.choices,
        help_text="The O. Reg. 329/04 s. 6.3 situation that makes it notifiable to the IPC.",
    )
    kind = models.CharField(
        max_length=10,
        choices=IncidentKind.choices,
        help_text="How the IPC's annual statistics count it.",
    )
    individuals_affected = models.PositiveIntegerField(default=0)
    individuals_notified_on = models.DateField(
        null=True, blank=True, help_text="Leave empty until the individuals have been notified."
    )
    regulator = models.CharField(
        max_length=3,
        choices=Regulator.choices,
        blank=True,
        help_text="The IPC (Ontario) or HHS (US practices), once notified.",
    )
    regulator_notified_on = models.DateField(null=True, blank=True)
    status = models.CharField(
        max_length=6, choices=IncidentStatus.choices, default=IncidentStatus.OPEN
    )
    closed_on = models.DateField(null=True, blank=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["-discovered_on", "-pk"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(individuals_affected__gte=0), name="incident_count_not_negative"
            )
        ]

    def __str__(self) -> str:
        return f"Incident {self.pk} ({self.discovered_on})"

    def today(self) -> date:
        """Today in the practice's time zone (the dates of the register are local dates)."""
        try:
            zone = ZoneInfo(self.practice.time_zone) if self.practice_id else None
        except (ZoneInfoNotFoundError, ValueError):
            zone = None
        return timezone.localdate(timezone=zone) if zone else timezone.localdate()

    def clean(self) -> None:
        """Dates not in the future, notices and closing not before discovery, counts ≥ 0."""
        super().clean()
        errors: dict[str, str] = {}
        today = self.today()
        for name in (
            "discovered_on",
            "occurred_on",
            "individuals_notified_on",
            "regulator_notified_on",
            "closed_on",
        ):
            value = getattr(self, name)
            if value is not None and value > today:
                errors[name] = "This date is in the future."
        found = self.discovered_on
        if found is not None:
            if self.occurred_on and self.occurred_on > found and "occurred_on" not in errors:
                errors["occurred_on"] = "It cannot have happened after it was discovered."
            for name in ("individuals_notified_on", "regulator_notified_on", "closed_on"):
                value = getattr(self, name)
                if value is not None and value < found and name not in errors:
                    errors[name] = "This date is before the incident was discovered."
        if self.individuals_affected is not None and self.individuals_affected < 0:
            errors["individuals_affected"] = "The number of individuals cannot be negative."
        if self.regulator_notified_on and not self.regulator:
            errors["regulator"] = "Say which regulator was notified."
        if self.regulator and not self.regulator_notified_on:
            errors.setdefault("regulator_notified_on", "Give the date the regulator was notified.")
        if self.status == IncidentStatus.CLOSED and not self.closed_on:
            errors.setdefault("closed_on", "Give the date the incident was closed.")
        if self.status == IncidentStatus.OPEN and self.closed_on:
            errors.setdefault("closed_on", "An open incident has no closing date.")
        if errors:
            raise ValidationError(errors)

    def deadline(self, today: date | None = None) -> NoticeStatus:
        """Where notifying the individuals stands (see :func:`notice_status`)."""
        return notice_status(self, today)


@dataclass(frozen=True)
class NoticeStatus:
    """What the register shows next to an incident about notifying the people affected."""

    pending: bool  # individuals affected, not yet notified
    days_since_discovery: int
    hipaa_overdue: bool  # open, pending, more than 60 days after discovery
    guidance: str
    ipc_notice_needed: bool  # an s. 6.3 situation and the IPC not yet notified


def notice_status(incident: Incident, today: date | None = None) -> NoticeStatus:
    """The notification state of an incident.

    PHIPA sets no number of days: individuals are notified "at the first reasonable opportunity"
    (s. 12(2)). HIPAA's outer limit is 60 calendar days after discovery (45 CFR §164.404(b)); an
    open incident past it with individuals affected and not notified is flagged. No other deadline
    is implied.
    """
    today = today or incident.today()
    days = (today - incident.discovered_on).days
    pending = incident.individuals_affected > 0 and incident.individuals_notified_on is None
    is_open = incident.status == IncidentStatus.OPEN
    overdue = is_open and pending and days > HIPAA_NOTICE_DAYS
    guidance = ""
    if pending:
        guidance = "Notify the individuals at the first reasonable opportunity (PHIPA s. 12(2))."
        if overdue:
            guidance += (
                f" More than {HIPAA_NOTICE_DAYS} days since discovery: past HIPAA's limit for "
                "notifying individuals (45 CFR §164.404(b))."
            )
    ipc = incident.category in NOTIFIABLE_CATEGORIES and not incident.regulator_notified_on
    return NoticeStatus(pending, days, overdue, guidance, ipc)
