"""The therapist's private process notes: kept apart, shared with supervisors only by choice."""

from __future__ import annotations

import pytest
from django.test import Client

from alliance_web.care.models import PrivateNote
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import (
    PROBES,
    assert_escaped,
    audit_head,
    audit_since,
    denied_since,
)

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, sam = wh.fast_passwords, wh.sam


def url(episode) -> str:
    return f"/w/episodes/{episode.public_id}/process-notes/"


def page(episode) -> str:
    return f"/w/clients/{episode.client.public_id}/"


def test_a_note_is_saved_encrypted_and_audited_without_its_text(client, login, therapist_a, sam):
    login(client, therapist_a)
    head = audit_head()
    response = client.post(url(sam), {"text": "Noticed my own impatience today."})
    assert response.status_code == 302
    note = PrivateNote.objects.get(episode=sam)
    assert note.text == "Noticed my own impatience today."
    assert not note.shared_with_supervisors
    events = audit_since(head, entity_type="private_note")
    assert events.exists()
    assert all("impatience" not in str(e.detail) for e in events)
    assert "Noticed my own impatience today." in client.get(page(sam)).content.decode()


def test_the_supervisor_sees_a_note_only_when_it_is_shared(
    client, login, therapist_a, supervisor, sam
):
    login(client, therapist_a)
    client.post(url(sam), {"text": "Kept to myself"})
    client.post(url(sam), {"text": "Please look at this one", "share": "on"})
    login(client, supervisor)
    html = client.get(page(sam)).content.decode()
    assert "Please look at this one" in html
    assert "Kept to myself" not in html
    assert "Process notes shared with you" in html


@pytest.mark.parametrize(
    ("text", "message"),
    [("", "The note is empty."), ("   ", "The note is empty."), ("x" * 5001, "at most 5000")],
)
def test_an_empty_or_overlong_note_is_refused_and_nothing_stored(
    client, login, therapist_a, sam, text, message
):
    login(client, therapist_a)
    response = client.post(url(sam), {"text": text})
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not PrivateNote.objects.exists()


def test_what_was_typed_is_kept_when_the_note_is_refused(client, login, therapist_a, sam):
    login(client, therapist_a)
    response = client.post(url(sam), {"text": "y" * 5001})
    assert "y" * 5001 in response.content.decode()


@pytest.mark.parametrize(
    ("persona", "status"),
    [("supervisor", 403), ("therapist_b", 404), ("practice_admin", 404), ("outsider", 404)],
)
def test_only_the_treating_therapist_writes_process_notes(
    client, login, request, sam, persona, status
):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.post(url(sam), {"text": "Not mine to write"}).status_code == status
    assert not PrivateNote.objects.exists()
    assert denied_since(head)


def test_process_notes_need_a_csrf_token(login, therapist_a, sam):
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    assert browser.post(url(sam), {"text": "x"}).status_code == 403
    assert not PrivateNote.objects.exists()


@pytest.mark.parametrize("probe", PROBES)
def test_process_notes_are_escaped(client, login, therapist_a, sam, probe):
    login(client, therapist_a)
    client.post(url(sam), {"text": probe, "share": "on"})
    assert_escaped(client.get(page(sam)).content.decode(), probe)
