"""The audit trail (SECURITY.md REQ-AU1, §1.6): append-only, hash-chained, no PHI values.

Each row maps one-to-one onto a FHIR ``AuditEvent`` (see :mod:`alliance_web.audit.fhir`). Rows are
written in the same transaction as the change they record; the database refuses UPDATE and DELETE
on the table (triggers added in migration 0002), and ``alliance manage verify_audit`` recomputes the
chain.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from django.conf import settings
from django.db import models
from django.utils import timezone


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
