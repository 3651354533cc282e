"""Issuing a check-in link (shown once) and a waiting-room code from the client page."""

from __future__ import annotations

import re

import pytest
from django.test import Client

from alliance_web.care import services
from alliance_web.care.models import CheckIn, CheckInKind, CheckInStatus
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import audit_head, audit_since, denied_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, sam = wh.fast_passwords, wh.sam


def url(episode) -> str:
    return f"/w/episodes/{episode.public_id}/checkins/"


def pending(episode):
    return CheckIn.objects.filter(episode=episode, status=CheckInStatus.PENDING)


def test_a_link_is_shown_once_and_only_its_hash_is_stored(client, login, therapist_a, sam):
    login(client, therapist_a)
    session = sam.sessions.get(number=7)
    response = client.post(
        url(sam), {"kind": CheckInKind.PRE_SESSION, "session": str(session.public_id)}
    )
    assert response.status_code == 200
    html = response.content.decode()
    link = re.search(r'value="(http://testserver/c/[A-Za-z0-9_-]+/)"', html).group(1)
    checkin = pending(sam).get()
    assert checkin.session == session
    token = link.rstrip("/").split("/")[-1]
    assert token not in str(CheckIn.objects.filter(pk=checkin.pk).values().get())
    assert "shown only once" in html
    # The client page does not show the link again.
    assert token not in client.get(f"/w/clients/{sam.client.public_id}/").content.decode()
    # And the link opens the check-in.
    assert services.checkin_for_token(token) == checkin


def test_a_post_session_link_asks_the_alliance_form(client, login, therapist_a, sam):
    login(client, therapist_a)
    client.post(url(sam), {"kind": CheckInKind.POST_SESSION})
    assert pending(sam).get().instruments == [sam.alliance_instrument]


@pytest.mark.parametrize("data", [{"kind": "therapist"}, {"kind": "pre", "session": "nope"}, {}])
def test_bad_input_creates_no_check_in(client, login, therapist_a, sam, data):
    login(client, therapist_a)
    assert client.post(url(sam), data).status_code == 400
    assert not pending(sam).exists()


def test_a_waiting_room_code_is_shown_once(client, login, therapist_a, sam):
    login(client, therapist_a)
    client.post(url(sam), {"kind": CheckInKind.PRE_SESSION})
    checkin = pending(sam).get()
    head = audit_head()
    response = client.post(f"/w/checkins/{checkin.public_id}/code/")
    assert response.status_code == 200
    code = re.search(
        r'class="big-code"[^>]*>([A-Z0-9]{4}) ([A-Z0-9]{4})<', response.content.decode()
    )
    assert code is not None
    assert services.checkin_for_code(code.group(1) + code.group(2)) == checkin
    assert audit_since(head, entity_type="checkin_code").exists()


def test_a_closed_check_in_gets_no_code(client, login, therapist_a, sam):
    login(client, therapist_a)
    client.post(url(sam), {"kind": CheckInKind.PRE_SESSION})
    checkin = pending(sam).get()
    CheckIn.objects.filter(pk=checkin.pk).update(status=CheckInStatus.CANCELLED)
    response = client.post(f"/w/checkins/{checkin.public_id}/code/")
    assert response.status_code == 302
    assert CheckIn.objects.get(pk=checkin.pk).short_code_hash is None


@pytest.mark.parametrize(
    ("persona", "status"),
    [("supervisor", 403), ("therapist_b", 404), ("practice_admin", 404), ("outsider", 404)],
)
def test_only_the_treating_therapist_issues_links_and_codes(
    client, login, request, therapist_a, sam, persona, status
):
    checkin, _ = services.issue_checkin(sam)
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.post(url(sam), {"kind": CheckInKind.PRE_SESSION}).status_code == status
    assert client.post(f"/w/checkins/{checkin.public_id}/code/").status_code == status
    assert pending(sam).count() == 1
    checkin.refresh_from_db()
    assert checkin.short_code_hash is None
    assert denied_since(head)


def test_links_need_a_csrf_token(login, therapist_a, sam):
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    assert browser.post(url(sam), {"kind": CheckInKind.PRE_SESSION}).status_code == 403
    assert not pending(sam).exists()
