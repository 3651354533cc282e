"""Logging a rupture or a repair in the session log (log_relationship_event)."""

from __future__ import annotations

import pytest
from django.test import Client

from alliance_web.care.models import RelationshipNote
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import PROBES, assert_escaped, audit_head, denied_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, robin = wh.fast_passwords, wh.robin


def url(episode) -> str:
    return f"/w/episodes/{episode.public_id}/relationship/"


def data(episode, **extra) -> dict[str, str]:
    return {
        "event": "rupture",
        "marker": "confrontation",
        "session": str(episode.sessions.get(number=5).public_id),
        "text": "Disagreed about the homework.",
        **extra,
    }


def test_a_rupture_is_logged_against_its_session(client, login, therapist_a, robin):
    before = RelationshipNote.objects.filter(episode=robin).count()
    login(client, therapist_a)
    response = client.post(url(robin), data(robin))
    assert response.status_code == 302
    note = RelationshipNote.objects.filter(episode=robin).latest("created_at")
    assert RelationshipNote.objects.filter(episode=robin).count() == before + 1
    assert (note.event, note.marker, note.session.number) == ("rupture", "confrontation", 5)
    html = client.get(f"/w/clients/{robin.client.public_id}/").content.decode()
    assert "Disagreed about the homework." in html
    assert "Rupture · confrontation" in html


def test_a_repair_carries_no_rupture_marker(client, login, therapist_a, robin):
    login(client, therapist_a)
    client.post(url(robin), data(robin, event="repair"))
    note = RelationshipNote.objects.filter(episode=robin).latest("created_at")
    assert (note.event, note.marker) == ("repair", "")


@pytest.mark.parametrize(
    "change",
    [
        {"event": "fight"},
        {"event": ""},
        {"marker": "sulking"},
        {"session": "123"},
        {"text": "z" * 5001},
    ],
    ids=["unknown event", "no event", "unknown marker", "unknown session", "note too long"],
)
def test_bad_input_is_refused_and_nothing_is_stored(client, login, therapist_a, robin, change):
    before = RelationshipNote.objects.count()
    login(client, therapist_a)
    assert client.post(url(robin), data(robin, **change)).status_code == 400
    assert RelationshipNote.objects.count() == before


@pytest.mark.parametrize(
    ("persona", "status"), [("supervisor", 403), ("therapist_b", 404), ("outsider", 404)]
)
def test_only_the_treating_therapist_logs_the_relationship(
    client, login, request, robin, persona, status
):
    before = RelationshipNote.objects.count()
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.post(url(robin), data(robin)).status_code == status
    assert RelationshipNote.objects.count() == before
    assert denied_since(head)


def test_logging_needs_a_csrf_token(login, therapist_a, robin):
    before = RelationshipNote.objects.count()
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    assert browser.post(url(robin), data(robin)).status_code == 403
    assert RelationshipNote.objects.count() == before


@pytest.mark.parametrize("probe", PROBES)
def test_relationship_notes_are_escaped(client, login, therapist_a, robin, probe):
    login(client, therapist_a)
    client.post(url(robin), data(robin, text=probe))
    assert_escaped(client.get(f"/w/clients/{robin.client.public_id}/").content.decode(), probe)
