"""Audit events as FHIR R4 ``AuditEvent`` resources (SECURITY.md §1.6; IHE ATNA / BALP).

One row of :class:`~alliance_web.audit.models.AuditEvent` becomes one resource:

=====================  ==========================================================================
row                    AuditEvent (R4 / R4B)
=====================  ==========================================================================
seq                    ``id``; with ``prev_hash`` and ``hash`` in the ``audit-chain`` extension
recorded (UTC)         ``recorded``
action C/R/U/D/E       ``action``
outcome                ``outcome``: success 0, invalid and deny 4 (minor failure, an HTTP 4xx),
                       error 8 (serious failure); ``outcomeDesc`` says which
entity_type + action   ``type`` (DICOM: 110110 Patient Record, 110106 Export, 110114 User
                       Authentication, 110100 Application Activity) and ``subtype`` (DICOM
                       110122 Login / 110123 Logout, then the Alliance entity code)
user/role/username     ``agent[0]``: ``who`` (staff identifier, or ``Patient/<id>`` for a client
                       using their link), ``altId`` username, ``role`` text, ``requestor``
ip                     ``agent[0].network`` (type 2 = IP address)
source                 ``source.observer.display`` (app version @ host), type 4 Application Server
patient_id             ``entity[]`` with ``what = Patient/<public id>``, type 1 Person, role 1 Patient
entity_type/entity_id  ``entity[]`` type 2 System Object, ``what.identifier``; ``detail`` carries
                       the request id and the row's detail (codes and counts, never PHI)
purpose                ``purposeOfEvent`` (text; break-glass as v3-ActReason ETREAT)
=====================  ==========================================================================

Codes: DICOM PS3.16 CID 400-404 (audit event ids and types), HL7 terminology
``audit-entity-type``, ``object-role`` and ``security-source-type`` (FHIR R4 AuditEvent page).
The API serves these at ``/fhir/r4/AuditEvent`` (see :func:`bundle`).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC
from typing import Any

from alliance_web.audit.models import Action, AuditEvent, Outcome

DCM = "http://dicom.nema.org/resources/ontology/DCM"
ENTITY_TYPE = "http://terminology.hl7.org/CodeSystem/audit-entity-type"
OBJECT_ROLE = "http://terminology.hl7.org/CodeSystem/object-role"
SOURCE_TYPE = "http://terminology.hl7.org/CodeSystem/security-source-type"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
NS = "https://alliance-mbc.org/fhir"
CHAIN_EXTENSION = f"{NS}/StructureDefinition/audit-chain"
ENTITY_SYSTEM = f"{NS}/CodeSystem/audit-entity"
STAFF_SYSTEM = f"{NS}/sid/staff"
REQUEST_ID = "request-id"

OUTCOME = {Outcome.SUCCESS: "0", Outcome.INVALID: "4", Outcome.DENY: "4", Outcome.ERROR: "8"}
AUTH_ENTITIES = {"login": ("110122", "Login"), "logout": ("110123", "Logout")}
AUTH_TYPES = {"login", "logout", "second_factor", "password", "session"}
PURPOSE_CODES = {
    "break_glass": ("ETREAT", "Emergency Treatment"),
    "research": ("HRESCH", "healthcare research"),
}


def _type(event: AuditEvent) -> dict[str, str]:
    if event.entity_type in AUTH_TYPES:
        return {"system": DCM, "code": "110114", "display": "User Authentication"}
    if event.action == Action.EXECUTE and (
        event.purpose == "export" or "export" in event.entity_type
    ):
        return {"system": DCM, "code": "110106", "display": "Export"}
    if event.patient_id:
        return {"system": DCM, "code": "110110", "display": "Patient Record"}
    return {"system": DCM, "code": "110100", "display": "Application Activity"}


def _agent(event: AuditEvent) -> dict[str, Any]:
    agent: dict[str, Any] = {"requestor": event.role != "system"}
    if event.role == "client" and event.patient_id:
        agent["who"] = {"reference": f"Patient/{event.patient_id}"}
    elif event.user_id is not None:
        agent["who"] = {"identifier": {"system": STAFF_SYSTEM, "value": str(event.user_id)}}
    elif event.username:
        agent["who"] = {"display": event.username}
    if event.username and event.role != "client":
        agent["altId"] = event.username
    if event.role:
        agent["role"] = [{"text": event.role}]
    if event.ip:
        agent["network"] = {"address": event.ip, "type": "2"}
    return agent


def _entities(event: AuditEvent) -> list[dict[str, Any]]:
    entities: list[dict[str, Any]] = []
    if event.patient_id:
        entities.append(
            {
                "what": {"reference": f"Patient/{event.patient_id}"},
                "type": {"system": ENTITY_TYPE, "code": "1", "display": "Person"},
                "role": {"system": OBJECT_ROLE, "code": "1", "display": "Patient"},
            }
        )
    detail = [{"type": REQUEST_ID, "valueString": event.request_id}] if event.request_id else []
    if event.detail:
        detail.append(
            {"type": "detail", "valueString": json.dumps(event.detail, sort_keys=True, default=str)}
        )
    obj: dict[str, Any] = {
        "type": {"system": ENTITY_TYPE, "code": "2", "display": "System Object"},
        "role": {"system": OBJECT_ROLE, "code": "4", "display": "Domain Resource"},
        "name": event.entity_type,
    }
    if event.entity_id:
        obj["what"] = {
            "identifier": {
                "system": f"{ENTITY_SYSTEM}/{event.entity_type}",
                "value": event.entity_id,
            }
        }
    if detail:
        obj["detail"] = detail
    entities.append(obj)
    return entities


def to_fhir(event: AuditEvent) -> dict[str, Any]:
    """One audit row as a FHIR R4 ``AuditEvent`` (a plain dict, valid under R4 and R4B)."""
    subtype = []
    if event.entity_type in AUTH_ENTITIES:
        code, display = AUTH_ENTITIES[event.entity_type]
        subtype.append({"system": DCM, "code": code, "display": display})
    subtype.append({"system": ENTITY_SYSTEM, "code": event.entity_type})
    resource: dict[str, Any] = {
        "resourceType": "AuditEvent",
        "id": str(event.seq),
        "extension": [
            {
                "url": CHAIN_EXTENSION,
                "extension": [
                    {"url": "seq", "valueInteger": event.seq},
                    {"url": "prevHash", "valueString": event.prev_hash},
                    {"url": "hash", "valueString": event.hash},
                ],
            }
        ],
        "type": _type(event),
        "subtype": subtype,
        "action": event.action,
        "recorded": event.recorded.astimezone(UTC).isoformat().replace("+00:00", "Z"),
        "outcome": OUTCOME.get(event.outcome, "8"),
        "outcomeDesc": event.outcome,
        "agent": [_agent(event)],
        "source": {
            "observer": {"display": event.source or "alliance"},
            "type": [{"system": SOURCE_TYPE, "code": "4", "display": "Application Server"}],
        },
        "entity": _entities(event),
    }
    if event.purpose:
        purpose: dict[str, Any] = {"text": event.purpose}
        if event.purpose in PURPOSE_CODES:
            code, display = PURPOSE_CODES[event.purpose]
            purpose["coding"] = [{"system": ACT_REASON, "code": code, "display": display}]
        resource["purposeOfEvent"] = [purpose]
    return resource


def bundle(events: Iterable[AuditEvent], *, total: int | None = None) -> dict[str, Any]:
    """A FHIR ``searchset`` Bundle of audit events, for ``GET /fhir/r4/AuditEvent``."""
    entries = [
        {"fullUrl": f"AuditEvent/{e.seq}", "resource": to_fhir(e), "search": {"mode": "match"}}
        for e in events
    ]
    out: dict[str, Any] = {"resourceType": "Bundle", "type": "searchset", "entry": entries}
    out["total"] = total if total is not None else len(entries)
    return out


__all__ = ["CHAIN_EXTENSION", "bundle", "to_fhir"]
