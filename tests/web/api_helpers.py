"""Helpers shared by the REST and FHIR API tests (not a test module).

``api_as(user)`` is a DRF test client that sends ``Authorization: Bearer <token>`` with a token
issued to ``user`` for their practice.
"""

from __future__ import annotations

from rest_framework.test import APIClient

import alliance as al
from alliance_web.api.models import ApiToken
from alliance_web.audit.models import AuditEvent


def bearer(user) -> str:
    _, raw = ApiToken.issue(user, "tests")
    return raw


def client_with_token(raw: str) -> APIClient:
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return api


def answers_for(instrument_id: str, value: float = 1) -> dict[str, float]:
    """Every scored, non-text item of an instrument answered with ``value`` (or its lowest)."""
    inst = al.instrument(instrument_id)
    out: dict[str, float] = {}
    for item in inst.items:
        if item.kind == "text":
            continue
        values = [float(v) for v in item.values] if item.kind == "choice" else []
        out[item.id] = value if not values or value in values else values[0]
    return out


def plan_answers(checkin, value: float = 1, overrides: dict | None = None) -> dict:
    answers = {inst: answers_for(inst, value) for inst in checkin.instruments}
    for key, v in (overrides or {}).items():
        inst, item = key.split(".", 1)
        answers[inst][item] = v
    return answers


def audit_since(seq: int, **filters) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=seq, **filters).order_by("seq"))


def last_seq() -> int:
    last = AuditEvent.objects.order_by("-seq").first()
    return last.seq if last else 0
