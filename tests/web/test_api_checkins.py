"""Check-ins through the API: issue a link, submit answers (validated, scored, signals, stored,
audited — all or nothing), duplicates stored once, Idempotency-Key replay and misuse."""

from __future__ import annotations

import uuid

import pytest

from alliance_web.api.models import IdempotencyRecord
from alliance_web.care.models import Alert, AlertKind, CheckIn, Response, Score
from tests.web.api_helpers import plan_answers

pytestmark = pytest.mark.django_db


@pytest.fixture
def checkin(api_as, therapist_a, episode_of_a):
    response = api_as(therapist_a).post(
        "/api/v1/checkins/", {"episode": str(episode_of_a.public_id)}, format="json"
    )
    assert response.status_code == 201, response.json()
    return CheckIn.objects.get(public_id=response.json()["id"])


def submit_url(checkin) -> str:
    return f"/api/v1/checkins/{checkin.public_id}/submit/"


def test_issuing_returns_the_link_once(api_as, therapist_a, episode_of_a):
    response = api_as(therapist_a).post(
        "/api/v1/checkins/", {"episode": str(episode_of_a.public_id)}, format="json"
    )
    body = response.json()
    assert "/c/" in body["link"]
    assert body["instruments"] == ["phq9", "gad7"]
    detail = api_as(therapist_a).get(f"/api/v1/checkins/{body['id']}/").json()
    assert "link" not in detail


def test_a_submission_is_scored_and_a_safety_item_raises_an_alert(api_as, therapist_a, checkin):
    body = {"answers": plan_answers(checkin, 1), "note": "hard week"}
    response = api_as(therapist_a).post(submit_url(checkin), body, format="json")
    assert response.status_code == 201, response.json()
    out = response.json()
    totals = {s["instrument"]: s["total"] for s in out["scores"]}
    assert totals == {"phq9": 9.0, "gad7": 7.0}
    assert out["duplicate"] is False
    alert = Alert.objects.get(kind=AlertKind.SAFETY)
    assert str(alert.public_id) in out["alerts"]
    listed = api_as(therapist_a).get("/api/v1/scores/", {"instrument": "phq9"}).json()
    assert [s["total"] for s in listed["results"]] == [9.0]


def test_submitting_twice_stores_once(api_as, therapist_a, checkin):
    body = {"answers": plan_answers(checkin, 0)}
    api = api_as(therapist_a)
    assert api.post(submit_url(checkin), body, format="json").status_code == 201
    again = api.post(submit_url(checkin), body, format="json")
    assert again.status_code == 200
    assert again.json()["duplicate"] is True
    assert Response.objects.count() == 2  # one per instrument, once


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"phq9.phq9_1": 4}, "phq9"),
        ({"phq9.phq9_1": -1}, "phq9"),
        ({"phq9.phq9_9": None}, "phq9.phq9_9"),
        ({"phq9.phq9_99": 1}, "phq9.phq9_99"),
    ],
)
def test_bad_answers_are_a_400_naming_the_field_and_store_nothing(
    api_as, therapist_a, checkin, override, field
):
    body = {"answers": plan_answers(checkin, 1, override)}
    response = api_as(therapist_a).post(submit_url(checkin), body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]
    assert Response.objects.count() == 0
    assert Score.objects.count() == 0
    assert Alert.objects.count() == 0


@pytest.mark.parametrize(
    "body",
    [
        {"answers": "all fine"},
        {"answers": {"phq9": {"phq9_1": "three"}}},
        {"answers": {}, "goal_ratings": {"x": 11}},
        {"answers": {"bdi": {"q": 1}}},
    ],
)
def test_malformed_submissions_are_refused(api_as, therapist_a, checkin, body):
    response = api_as(therapist_a).post(submit_url(checkin), body, format="json")
    assert response.status_code == 400
    assert Response.objects.count() == 0


def test_a_supervisor_may_not_submit_for_a_client(api_as, supervisor, checkin):
    response = api_as(supervisor).post(submit_url(checkin), {"answers": {}}, format="json")
    assert response.status_code == 403


def test_an_idempotency_key_replays_the_first_response(api_as, therapist_a, checkin):
    api = api_as(therapist_a)
    key = str(uuid.uuid4())
    body = {"answers": plan_answers(checkin, 1)}
    first = api.post(submit_url(checkin), body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    second = api.post(submit_url(checkin), body, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert first.status_code == second.status_code == 201
    assert second.json() == first.json()
    assert second["Idempotent-Replayed"] == "true"
    assert IdempotencyRecord.objects.count() == 1


def test_the_same_key_with_another_body_is_a_422(api_as, therapist_a, episode_of_a):
    api = api_as(therapist_a)
    key = "retry-1"
    url = "/api/v1/clients/"
    assert (
        api.post(
            url, {"preferred_name": "Ana"}, format="json", HTTP_IDEMPOTENCY_KEY=key
        ).status_code
        == 201
    )
    again = api.post(url, {"preferred_name": "Ana"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert again.status_code == 201
    other = api.post(url, {"preferred_name": "Bea"}, format="json", HTTP_IDEMPOTENCY_KEY=key)
    assert other.status_code == 422
    assert other.json()["code"] == "idempotency_key_reused"
    from alliance_web.care.models import Client

    assert Client.objects.filter(preferred_name="Ana").count() == 1
    assert not Client.objects.filter(preferred_name="Bea").exists()


def test_a_failed_request_stores_no_key_and_may_be_retried(api_as, therapist_a):
    api = api_as(therapist_a)
    bad = api.post("/api/v1/clients/", {}, format="json", HTTP_IDEMPOTENCY_KEY="k2")
    assert bad.status_code == 400
    assert IdempotencyRecord.objects.count() == 0
    good = api.post(
        "/api/v1/clients/", {"preferred_name": "Cy"}, format="json", HTTP_IDEMPOTENCY_KEY="k2"
    )
    assert good.status_code == 201


@pytest.mark.parametrize("key", ["", "x" * 129, "naïve"])
def test_a_malformed_idempotency_key_is_refused(api_as, therapist_a, key):
    response = api_as(therapist_a).post(
        "/api/v1/clients/", {"preferred_name": "Di"}, format="json", HTTP_IDEMPOTENCY_KEY=key
    )
    assert response.status_code == 400
