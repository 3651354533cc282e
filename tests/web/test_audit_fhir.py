"""Audit rows as FHIR R4 AuditEvent resources, valid under ``fhir.resources.R4B`` (SECURITY.md §1.6)."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from fhir.resources.R4B.bundle import Bundle

from alliance_web.audit import fhir
from alliance_web.audit.context import RequestMeta, reset_meta, set_meta
from alliance_web.audit.models import Action, AuditEvent, Outcome
from alliance_web.audit.trail import Actor, record

STAFF = Actor(role="therapist", user_id=7, username="therapist_a", practice_id=1)
PATIENT = "7d3c1f0e-8a54-4a63-9d1e-2b1f0c9e6a11"


def _event(actor, action, entity, entity_id="", patient="", **kw):
    token = set_meta(
        RequestMeta(request_id="r" * 32, ip="203.0.113.9", user_agent="UA", host="clinic.example")
    )
    try:
        record(actor, action, entity, entity_id, patient, **kw)
    finally:
        reset_meta(token)
    return AuditEvent.objects.order_by("-seq").first()


CASES = [
    (
        "read of a record",
        lambda: _event(STAFF, Action.READ, "client", PATIENT, PATIENT, purpose="client_page"),
        "110110",
        "0",
    ),
    (
        "denied lookup",
        lambda: _event(
            STAFF,
            Action.READ,
            "episode",
            "abc",
            outcome=Outcome.DENY,
            detail={"reason": "out_of_scope_or_missing"},
        ),
        "110100",
        "4",
    ),
    (
        "failed sign-in",
        lambda: _event(
            Actor(role="anonymous", username="sam"), Action.EXECUTE, "login", outcome=Outcome.DENY
        ),
        "110114",
        "4",
    ),
    (
        "export",
        lambda: _event(
            STAFF,
            Action.EXECUTE,
            "client_export",
            PATIENT,
            PATIENT,
            purpose="export",
            detail={"format": "fhir"},
        ),
        "110106",
        "0",
    ),
    (
        "client by link",
        lambda: _event(
            Actor(role="client", username=f"client:{PATIENT}", practice_id=1),
            Action.CREATE,
            "checkin_submission",
            "k",
            PATIENT,
        ),
        "110110",
        "0",
    ),
    (
        "system job",
        lambda: _event(Actor.system("retention", 1), Action.DELETE, "client", PATIENT, PATIENT),
        "110110",
        "0",
    ),
    (
        "invalid input",
        lambda: _event(
            STAFF,
            Action.UPDATE,
            "goal",
            "g",
            PATIENT,
            outcome=Outcome.INVALID,
            detail={"fields": ["text"]},
        ),
        "110110",
        "4",
    ),
    (
        "break-glass",
        lambda: _event(STAFF, Action.READ, "client", PATIENT, PATIENT, purpose="break_glass"),
        "110110",
        "0",
    ),
]


@pytest.mark.parametrize(("case", "make", "type_code", "outcome"), CASES, ids=[c[0] for c in CASES])
def test_each_kind_of_event_is_a_valid_r4_audit_event(db, case, make, type_code, outcome):
    event = make()
    resource = fhir.to_fhir(event)
    FhirAuditEvent.model_validate(resource)  # raises on anything R4B does not allow
    assert resource["type"]["code"] == type_code
    assert resource["outcome"] == outcome
    assert resource["action"] == event.action
    assert resource["recorded"].endswith("Z")
    assert resource["id"] == str(event.seq)


def test_the_mapping_carries_who_what_whose_where_and_the_chain(db):
    event = _event(STAFF, Action.READ, "client", PATIENT, PATIENT, purpose="client_page")
    r = fhir.to_fhir(event)
    agent = r["agent"][0]
    assert agent["who"]["identifier"]["value"] == "7"
    assert agent["altId"] == "therapist_a"
    assert agent["role"][0]["text"] == "therapist"
    assert agent["requestor"] is True
    assert agent["network"] == {"address": "203.0.113.9", "type": "2"}
    patient = next(e for e in r["entity"] if e["role"]["code"] == "1")
    assert patient["what"]["reference"] == f"Patient/{PATIENT}"
    obj = next(e for e in r["entity"] if e["role"]["code"] == "4")
    assert obj["name"] == "client"
    assert {"type": "request-id", "valueString": "r" * 32} in obj["detail"]
    chain = {
        x["url"]: next(v for k, v in x.items() if k.startswith("value"))
        for x in r["extension"][0]["extension"]
    }
    assert chain == {"seq": event.seq, "prevHash": event.prev_hash, "hash": event.hash}
    assert "clinic.example" in r["source"]["observer"]["display"]
    assert r["purposeOfEvent"][0]["text"] == "client_page"


def test_a_client_using_their_link_is_the_patient_as_agent(db):
    event = _event(
        Actor(role="client", username=f"client:{PATIENT}"), Action.READ, "checkin", "k", PATIENT
    )
    assert fhir.to_fhir(event)["agent"][0]["who"] == {"reference": f"Patient/{PATIENT}"}


def test_break_glass_is_coded_as_emergency_treatment(db):
    event = _event(STAFF, Action.READ, "client", PATIENT, PATIENT, purpose="break_glass")
    coding = fhir.to_fhir(event)["purposeOfEvent"][0]["coding"][0]
    assert (coding["code"], coding["system"]) == ("ETREAT", fhir.ACT_REASON)


def test_a_bundle_of_events_is_a_valid_searchset(db):
    events = [make() for _, make, _, _ in CASES]
    bundle = fhir.bundle(events)
    Bundle.model_validate(bundle)
    assert bundle["total"] == len(CASES)
    assert [e["resource"]["id"] for e in bundle["entry"]] == [str(e.seq) for e in events]


def test_the_validator_would_notice_a_broken_resource(db):
    """The check above is not vacuous: R4B rejects an agent without ``requestor``."""
    resource = fhir.to_fhir(_event(STAFF, Action.READ, "client", PATIENT, PATIENT))
    del resource["agent"][0]["requestor"]
    with pytest.raises(ValueError):
        FhirAuditEvent.model_validate(resource)


def test_the_export_command_ships_ndjson_after_a_sequence_number(db):
    import io
    import json

    from django.core.management import call_command

    events = [make() for _, make, _, _ in CASES]
    out, err = io.StringIO(), io.StringIO()
    call_command("export_audit", "--after", str(events[2].seq), stdout=out, stderr=err)
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [r["id"] for r in lines] == [str(e.seq) for e in events[3:]]
    for resource in lines:
        FhirAuditEvent.model_validate(resource)
    assert f"last seq {events[-1].seq}" in err.getvalue()
    out = io.StringIO()
    call_command("export_audit", "--bundle", "--limit", "2", stdout=out, stderr=io.StringIO())
    Bundle.model_validate(json.loads(out.getvalue()))
    assert json.loads(out.getvalue())["total"] == 2
