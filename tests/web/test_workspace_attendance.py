"""Recording attendance in the session log (record_attendance)."""

from __future__ import annotations

import pytest
from django.test import Client

from alliance_web.care.models import Session, SessionStatus
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import audit_head, audit_since, denied_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, sam = wh.fast_passwords, wh.sam


def session(episode, number: int = 6) -> Session:
    return episode.sessions.get(number=number)


def url(s: Session) -> str:
    return f"/w/sessions/{s.public_id}/attendance/"


def test_a_no_show_is_recorded_and_audited(client, login, therapist_a, sam):
    s = session(sam)
    login(client, therapist_a)
    head = audit_head()
    response = client.post(url(s), {"status": SessionStatus.NO_SHOW})
    assert response.status_code == 302
    assert response["Location"].endswith("#sessions")
    s.refresh_from_db()
    assert s.status == SessionStatus.NO_SHOW
    assert audit_since(head, entity_type="session", patient_id=str(sam.client.public_id)).exists()


@pytest.mark.parametrize("value", ["", "gone", "attended; DROP"])
def test_an_unknown_status_is_refused(client, login, therapist_a, sam, value):
    login(client, therapist_a)
    response = client.post(url(session(sam)), {"status": value})
    assert response.status_code == 400
    assert session(sam).status == SessionStatus.ATTENDED


@pytest.mark.parametrize(
    ("persona", "status"),
    [("supervisor", 403), ("therapist_b", 404), ("practice_admin", 404), ("outsider", 404)],
)
def test_only_the_treating_therapist_records_attendance(
    client, login, request, sam, persona, status
):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.post(url(session(sam)), {"status": SessionStatus.CANCELLED}).status_code == status
    assert session(sam).status == SessionStatus.ATTENDED
    assert denied_since(head)


def test_attendance_needs_a_csrf_token(login, therapist_a, sam):
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    assert browser.post(url(session(sam)), {"status": SessionStatus.NO_SHOW}).status_code == 403
    assert session(sam).status == SessionStatus.ATTENDED
