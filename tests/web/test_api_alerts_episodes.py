"""Alerts (list, acknowledge, record an action), episodes (open, close), sessions (attendance) and
goals through the API, with who may do what."""

from __future__ import annotations

import pytest

from alliance_web.audit.models import Outcome
from alliance_web.care.models import Alert, AlertKind, AlertStatus, EpisodeStatus, Goal
from tests.web.api_helpers import audit_since, last_seq

pytestmark = pytest.mark.django_db


@pytest.fixture
def alert(episode_of_a):
    return Alert.objects.create(
        practice_id=episode_of_a.practice_id,
        episode=episode_of_a,
        kind=AlertKind.OFF_TRACK,
        priority=1,
        dedupe_key="api:1",
    )


def test_alerts_are_listed_filtered_and_ordered(api_as, therapist_a, alert):
    api = api_as(therapist_a)
    body = api.get("/api/v1/alerts/", {"status": "open", "ordering": "-created"}).json()
    assert [a["id"] for a in body["results"]] == [str(alert.public_id)]
    assert api.get("/api/v1/alerts/", {"kind": "safety"}).json()["count"] == 0
    assert api.get("/api/v1/alerts/", {"kind": "everything"}).status_code == 400


def test_the_treating_therapist_acknowledges_and_records_an_action(api_as, therapist_a, alert):
    api = api_as(therapist_a)
    ack = api.post(f"/api/v1/alerts/{alert.public_id}/acknowledge/")
    assert ack.status_code == 200
    assert ack.json()["status"] == AlertStatus.ACKNOWLEDGED
    done = api.post(
        f"/api/v1/alerts/{alert.public_id}/actions/",
        {"kind": "discussed", "note": "talked it through"},
        format="json",
    )
    assert done.status_code == 201
    assert done.json()["status"] in (AlertStatus.ACTIONED, AlertStatus.RESOLVED)
    assert done.json()["actions"][0]["note"] == "talked it through"
    no_reason = api.post(
        f"/api/v1/alerts/{alert.public_id}/actions/", {"kind": "no_action"}, format="json"
    )
    assert no_reason.status_code == 400
    assert "why" in no_reason.json()["detail"]


def test_a_supervisor_reads_alerts_but_may_not_act_and_is_audited(api_as, supervisor, alert):
    api = api_as(supervisor)
    assert api.get(f"/api/v1/alerts/{alert.public_id}/").status_code == 200
    seq = last_seq()
    assert api.post(f"/api/v1/alerts/{alert.public_id}/acknowledge/").status_code == 403
    assert audit_since(seq, outcome=Outcome.DENY)
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN


def test_another_therapist_gets_404_for_the_alert(api_as, therapist_b, alert):
    assert (
        api_as(therapist_b).post(f"/api/v1/alerts/{alert.public_id}/acknowledge/").status_code
        == 404
    )


def test_an_episode_is_opened_with_goals_and_closed_with_its_outcome(
    api_as, therapist_a, client_of_a
):
    api = api_as(therapist_a)
    opened = api.post(
        "/api/v1/episodes/",
        {
            "client": str(client_of_a.public_id),
            "concerns": ["anxiety"],
            "goals": ["Take the bus"],
            "sessions": 4,
        },
        format="json",
    )
    assert opened.status_code == 201, opened.json()
    episode_id = opened.json()["id"]
    assert opened.json()["measure_plan"][0] == "gad7"
    sessions = api.get("/api/v1/sessions/", {"episode": episode_id}).json()
    assert sessions["count"] == 4
    goals = api.get("/api/v1/goals/", {"episode": episode_id}).json()["results"]
    assert [g["text"] for g in goals] == ["Take the bus"]
    closed = api.post(
        f"/api/v1/episodes/{episode_id}/close/", {"end_reason": "planned"}, format="json"
    )
    assert closed.status_code == 200
    assert closed.json()["status"] == EpisodeStatus.CLOSED
    again = api.post(
        f"/api/v1/episodes/{episode_id}/close/", {"end_reason": "planned"}, format="json"
    )
    assert again.status_code == 400


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"concerns": ["anxiety"]}, "client"),
        ({"concerns": []}, "concerns"),
        ({"concerns": ["grief"]}, "concerns.0"),
        ({"concerns": ["anxiety"], "measure_plan": ["bdi"]}, "measure_plan"),
        ({"concerns": ["anxiety"], "goals": ["a", "b", "c", "d"]}, "goals"),
        ({"concerns": ["anxiety"], "sessions": 0}, "sessions"),
    ],
)
def test_bad_episode_input_names_the_field(api_as, therapist_a, client_of_a, body, field):
    if field != "client":
        body = {**body, "client": str(client_of_a.public_id)}
    response = api_as(therapist_a).post("/api/v1/episodes/", body, format="json")
    assert response.status_code == 400
    assert field in response.json()["fields"]


def test_attendance_and_goals_are_written_by_the_treating_therapist(
    api_as, therapist_a, supervisor, episode_of_a
):
    session = episode_of_a.sessions.get(number=1)
    api = api_as(therapist_a)
    marked = api.post(
        f"/api/v1/sessions/{session.public_id}/attendance/", {"status": "attended"}, format="json"
    )
    assert marked.status_code == 200
    assert marked.json()["status"] == "attended"
    goal = api.post(
        "/api/v1/goals/",
        {"episode": str(episode_of_a.public_id), "position": 3, "text": "Call my sister"},
        format="json",
    )
    assert goal.status_code == 201
    assert Goal.objects.get(public_id=goal.json()["id"]).text == "Call my sister"
    assert (
        api_as(supervisor)
        .post(
            f"/api/v1/sessions/{session.public_id}/attendance/",
            {"status": "no_show"},
            format="json",
        )
        .status_code
        == 403
    )


def test_sessions_filter_by_date_range(api_as, therapist_a, episode_of_a):
    api = api_as(therapist_a)
    first = episode_of_a.sessions.get(number=1).scheduled_at.date().isoformat()
    assert (
        api.get("/api/v1/sessions/", {"episode": str(episode_of_a.public_id), "to": first}).json()[
            "count"
        ]
        == 0
    )
    assert api.get("/api/v1/sessions/", {"from": "2000-01-01"}).json()["count"] == 12
    assert api.get("/api/v1/sessions/", {"from": "soon"}).status_code == 400
