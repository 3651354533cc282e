"""The FHIR facade end to end: export a Questionnaire, post a QuestionnaireResponse for a client,
read back the scored Observations (SPEC C8 acceptance). Every resource it serves validates
against the fhir.resources R4B models."""

from __future__ import annotations

import pytest
from fhir.resources.R4B.bundle import Bundle
from fhir.resources.R4B.capabilitystatement import CapabilityStatement
from fhir.resources.R4B.observation import Observation
from fhir.resources.R4B.operationoutcome import OperationOutcome
from fhir.resources.R4B.patient import Patient
from fhir.resources.R4B.questionnaire import Questionnaire
from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
from rest_framework.test import APIClient

from alliance_web.audit.models import Action
from alliance_web.care.models import Alert, AlertKind, Response, Score
from tests.web.api_helpers import audit_since, last_seq

pytestmark = pytest.mark.django_db
FHIR = "application/fhir+json"
BASE = "/fhir/r4"


def answer_all(questionnaire: dict, option_index: int) -> list[dict]:
    """Answer every choice question with its n-th option, as a FHIR client would."""
    return [
        {
            "linkId": item["linkId"],
            "answer": [{"valueCoding": item["answerOption"][option_index]["valueCoding"]}],
        }
        for item in questionnaire["item"]
        if item.get("type") == "choice"
    ]


def post(api, resource, **headers):
    return api.post(f"{BASE}/QuestionnaireResponse", resource, format="json", **headers)


def test_metadata_is_a_public_capability_statement():
    response = APIClient().get(f"{BASE}/metadata")
    assert response.status_code == 200
    assert response["Content-Type"].startswith(FHIR)
    statement = CapabilityStatement.model_validate(response.json())
    assert statement.fhirVersion == "4.0.1"
    types = {r.type for r in statement.rest[0].resource}
    assert types == {
        "Patient",
        "Questionnaire",
        "QuestionnaireResponse",
        "Observation",
        "AuditEvent",
    }


def test_round_trip_questionnaire_to_response_to_scored_observations(
    api_as, therapist_a, episode_of_a
):
    api = api_as(therapist_a)
    # 1. Export: the PHQ-9 Questionnaire from the library.
    found = api.get(f"{BASE}/Questionnaire", {"code": "http://loinc.org|44249-1"})
    assert found.status_code == 200
    bundle = Bundle.model_validate(found.json())
    assert bundle.total == 1
    questionnaire = found.json()["entry"][0]["resource"]
    Questionnaire.model_validate(questionnaire)
    assert api.get(f"{BASE}/Questionnaire/{questionnaire['id']}").json() == questionnaire

    # 2. Post answers ("More than half the days" = 2 on all nine questions) for the client.
    client_id = episode_of_a.client.public_id
    qr = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": questionnaire["url"],
        "status": "completed",
        "subject": {"reference": f"Patient/{client_id}"},
        "authored": "2026-11-20T09:00:00Z",
        "item": answer_all(questionnaire, 2),
    }
    seq = last_seq()
    created = post(api, qr)
    assert created.status_code == 201, created.json()
    assert created["Content-Type"].startswith(FHIR)
    stored = QuestionnaireResponse.model_validate(created.json())
    assert created["Location"].endswith(f"/QuestionnaireResponse/{stored.id}")
    assert Response.objects.count() == 1
    assert {e.entity_type for e in audit_since(seq, action=Action.CREATE)} >= {
        "checkin",
        "checkin_submission",
    }

    # The item-9 answer is a safety finding: the alert exists at once.
    assert Alert.objects.filter(kind=AlertKind.SAFETY, episode=episode_of_a).count() == 1

    # 3. Read back: the response, and the Observation derived from it, LOINC-coded.
    again = api.get(f"{BASE}/QuestionnaireResponse/{stored.id}")
    assert again.status_code == 200
    assert again.json()["item"] == created.json()["item"]
    observations = api.get(
        f"{BASE}/Observation",
        {"patient": f"Patient/{client_id}", "code": "http://loinc.org|44261-6"},
    )
    assert observations.status_code == 200
    (entry,) = observations.json()["entry"]
    obs = Observation.model_validate(entry["resource"])
    assert obs.valueQuantity.value == 18
    assert obs.interpretation[0].text == "moderately severe"
    assert {c.code for c in obs.code.coding} == {"44261-6", "phq9"}
    assert obs.derivedFrom[0].reference == f"QuestionnaireResponse/{stored.id}"
    flags = [e.valueCode for e in obs.extension if e.url.endswith("score-flag")]
    assert "safety" in flags
    assert Score.objects.get().total == 18

    # 4. The stored response reads back through the engine to the same total.
    import alliance as al

    (rescored,) = al.score_fhir_response(again.json())
    assert rescored.total == 18


def test_observation_search_by_date_and_derived_from(api_as, therapist_a, episode_of_a):
    api = api_as(therapist_a)
    q = api.get(f"{BASE}/Questionnaire/gad7").json()
    qr = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": q["url"],
        "status": "completed",
        "subject": {"reference": f"Patient/{episode_of_a.client.public_id}"},
        "item": answer_all(q, 1),
    }
    rid = post(api, qr).json()["id"]
    by_ref = api.get(f"{BASE}/Observation", {"derived-from": f"QuestionnaireResponse/{rid}"}).json()
    assert by_ref["total"] == 1
    assert by_ref["entry"][0]["resource"]["valueQuantity"]["value"] == 7
    assert api.get(f"{BASE}/Observation", {"date": "ge2000-01-01"}).json()["total"] == 1
    assert api.get(f"{BASE}/Observation", {"date": "lt2000-01-01"}).json()["total"] == 0
    assert api.get(f"{BASE}/Observation", {"code": "phq9"}).json()["total"] == 0
    bad = api.get(f"{BASE}/Observation", {"date": "yesterday"})
    assert bad.status_code == 400
    OperationOutcome.model_validate(bad.json())


def test_patient_read_and_search_stay_within_scope(
    api_as, therapist_a, therapist_b, outsider, client_of_a
):
    mine = api_as(therapist_a).get(f"{BASE}/Patient/{client_of_a.public_id}")
    assert mine.status_code == 200
    patient = Patient.model_validate(mine.json())
    assert patient.name[0].text == "Sam"
    assert api_as(therapist_a).get(f"{BASE}/Patient", {"name": "sa"}).json()["total"] == 1
    for other in (therapist_b, outsider):
        assert api_as(other).get(f"{BASE}/Patient/{client_of_a.public_id}").status_code == 404
        assert api_as(other).get(f"{BASE}/Patient").json()["total"] == 0


def test_reads_are_audited_per_client(api_as, therapist_a, client_of_a):
    seq = last_seq()
    api_as(therapist_a).get(f"{BASE}/Patient")
    (event,) = audit_since(seq, action=Action.READ)
    assert event.patient_id == str(client_of_a.public_id)


def test_unknown_search_parameters_are_refused_not_ignored(api_as, therapist_a):
    response = api_as(therapist_a).get(f"{BASE}/Observation", {"value-quantity": "gt10"})
    assert response.status_code == 400
    outcome = OperationOutcome.model_validate(response.json())
    assert "value-quantity" in outcome.issue[0].diagnostics


def test_errors_are_operation_outcomes_with_a_diagnostic(api_as, therapist_a):
    api = api_as(therapist_a)
    cases = [
        (APIClient().get(f"{BASE}/Patient"), 401),
        (api.get(f"{BASE}/Questionnaire/nope"), 404),
        (api.get(f"{BASE}/Observation/nope"), 404),
        (api.post(f"{BASE}/Questionnaire", {}, format="json"), 405),
        (api.post(f"{BASE}/QuestionnaireResponse", "not json", content_type=FHIR), 400),
        (api.post(f"{BASE}/QuestionnaireResponse", "<xml/>", content_type="application/xml"), 415),
    ]
    for response, status in cases:
        assert response.status_code == status, response.content
        outcome = OperationOutcome.model_validate(response.json())
        assert outcome.issue[0].diagnostics


def test_a_practice_admin_searches_the_audit_trail_and_others_may_not(
    api_as, practice_admin, therapist_a, client_of_a
):
    api_as(therapist_a).get(f"{BASE}/Patient/{client_of_a.public_id}")
    response = api_as(practice_admin).get(
        f"{BASE}/AuditEvent", {"patient": str(client_of_a.public_id)}
    )
    assert response.status_code == 200
    bundle = Bundle.model_validate(response.json())
    assert bundle.total >= 2  # created, then read
    assert all(e["resource"]["resourceType"] == "AuditEvent" for e in response.json()["entry"])
    assert api_as(therapist_a).get(f"{BASE}/AuditEvent").status_code == 403
    assert api_as(practice_admin).get(f"{BASE}/Patient").status_code == 403
