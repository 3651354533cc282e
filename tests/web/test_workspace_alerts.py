"""The alerts inbox (/w/alerts/) and the closed loop: acknowledge → record what you did →
follow-up shows whether the client got back on track."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from alliance_web.audit.models import Action
from alliance_web.care import services
from alliance_web.care.models import (
    ActionKind,
    Alert,
    AlertAction,
    AlertKind,
    AlertStatus,
    CheckIn,
    Response,
    Score,
)
from alliance_web.workspace import sample
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
fast_passwords, foreign, priya, robin, sam = (
    wh.fast_passwords,
    wh.foreign,
    wh.priya,
    wh.robin,
    wh.sam,
)

INBOX = "/w/alerts/"


def safety_alert(episode) -> Alert:
    return Alert.objects.get(episode=episode, kind=AlertKind.SAFETY)


def ack_url(alert) -> str:
    return f"/w/alerts/{alert.public_id}/acknowledge/"


def action_url(alert) -> str:
    return f"/w/alerts/{alert.public_id}/action/"


def later_score(episode, signal: str, *, flags=(), minutes: int = 5) -> Score:
    """A check-in scored after the action, with the given signal."""
    when = timezone.now() + timedelta(minutes=minutes)
    checkin = CheckIn.objects.create(
        practice_id=episode.practice_id,
        episode=episode,
        kind="pre",
        instruments=["phq9"],
        status="completed",
        expires_at=when + timedelta(days=1),
        completed_at=when,
    )
    response = Response.objects.create(
        checkin=checkin, instrument="phq9", instrument_version="1", answers={}, content_hash="x"
    )
    return Score.objects.create(
        response=response,
        episode=episode,
        instrument="phq9",
        administered_at=when,
        total=9,
        signal=signal,
        flags=list(flags),
        method="test",
        engine_version="test",
    )


def test_the_inbox_lists_open_alerts_first_with_safety_on_top(
    client, login, therapist_a, sam, robin
):
    Alert.objects.create(
        practice_id=robin.practice_id,
        episode=robin,
        kind=AlertKind.GAP,
        priority=4,
        dedupe_key="t:gap",
    )
    login(client, therapist_a)
    response = client.get(INBOX)
    assert response.status_code == 200
    html = response.content.decode()
    titles = [
        "A safety item was endorsed",
        "Not on track",
        "The alliance dropped",
        "see the relationship differently",
    ]
    positions = [html.find(t) for t in titles]
    assert -1 not in positions
    assert positions == sorted(positions)


def test_the_inbox_shows_only_the_persons_own_clients(
    client, login, therapist_a, therapist_b, sam, priya, foreign
):
    Alert.objects.create(
        practice_id=priya.practice_id,
        episode=priya,
        kind=AlertKind.OFF_TRACK,
        priority=1,
        dedupe_key="t:p",
    )
    login(client, therapist_b)
    html = client.get(INBOX).content.decode()
    assert ">Priya</a>" in html
    assert ">Sam</a>" not in html
    assert ">Kim</a>" not in html


def test_the_supervisor_sees_the_practices_alerts_but_cannot_act_on_them(
    client, login, supervisor, sam
):
    login(client, supervisor)
    html = client.get(INBOX).content.decode()
    assert ">Sam</a>" in html
    assert "Acknowledge</button>" not in html


def test_the_practice_admin_sees_no_alerts(client, login, practice_admin, sam):
    login(client, practice_admin)
    html = client.get(INBOX).content.decode()
    assert "Sam" not in html


def test_the_inbox_audits_one_read_per_alert_shown(client, login, therapist_a, sam):
    login(client, therapist_a)
    head = audit_head()
    client.get(INBOX)
    reads = audit_since(head, action=Action.READ, entity_type="alert")
    assert reads.count() == Alert.objects.filter(episode=sam).count()
    assert {e.patient_id for e in reads} == {str(sam.client.public_id)}


@pytest.mark.parametrize(
    "params", [{"status": "all"}, {"kind": "safety"}, {"kind": "drop table"}, {"status": "<x>"}]
)
def test_inbox_filters_come_from_allow_lists(client, login, therapist_a, sam, params):
    login(client, therapist_a)
    response = client.get(INBOX, params)
    assert response.status_code == 200
    assert "A safety item was endorsed" in response.content.decode()


def test_acknowledging_moves_the_alert_on_and_is_audited(client, login, therapist_a, sam):
    alert = safety_alert(sam)
    login(client, therapist_a)
    head = audit_head()
    response = client.post(ack_url(alert), {"next": INBOX})
    assert response.status_code == 302
    assert response["Location"] == INBOX
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED
    assert alert.acknowledged_by == therapist_a
    assert audit_since(
        head, action=Action.UPDATE, entity_type="alert", patient_id=str(sam.client.public_id)
    ).exists()


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"]
)
def test_acknowledging_never_redirects_off_site(client, login, therapist_a, sam, target):
    alert = safety_alert(sam)
    login(client, therapist_a)
    response = client.post(ack_url(alert), {"next": target})
    assert response["Location"] == f"/w/alerts/{alert.public_id}/"


def test_acknowledging_needs_post(client, login, therapist_a, sam):
    login(client, therapist_a)
    assert client.get(ack_url(safety_alert(sam))).status_code == 405
    assert safety_alert(sam).status == AlertStatus.OPEN


@pytest.mark.parametrize(
    ("persona", "status"),
    [("therapist_b", 404), ("practice_admin", 404), ("outsider", 404), ("supervisor", 403)],
)
def test_only_the_treating_therapist_can_acknowledge(client, login, request, sam, persona, status):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.post(ack_url(safety_alert(sam))).status_code == status
    assert safety_alert(sam).status == AlertStatus.OPEN
    assert denied_since(head)


def test_recording_an_action_closes_the_loop(client, login, therapist_a, sam):
    alert = safety_alert(sam)
    login(client, therapist_a)
    response = client.post(
        action_url(alert), {"kind": ActionKind.SAFETY_PLAN, "note": "Reviewed the plan by phone."}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACTIONED
    action = AlertAction.objects.get(alert=alert)
    assert action.kind == ActionKind.SAFETY_PLAN
    assert action.note == "Reviewed the plan by phone."
    html = client.get(f"/w/alerts/{alert.public_id}/").content.decode()
    assert "Reviewed or made a safety plan" in html
    assert "No check-in since the action yet." in html


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({}, "Choose what you did."),
        ({"kind": "hacked"}, "Choose what you did from the list."),
        ({"kind": ActionKind.NO_ACTION, "note": "   "}, "Say briefly why no action was needed."),
        ({"kind": ActionKind.DISCUSSED, "note": "x" * 5001}, "at most 5000 characters"),
    ],
    ids=["nothing chosen", "unknown kind", "no action without a reason", "note too long"],
)
def test_a_bad_action_is_refused_with_a_reason_and_nothing_is_stored(
    client, login, therapist_a, sam, data, message
):
    alert = safety_alert(sam)
    login(client, therapist_a)
    head = audit_head()
    response = client.post(action_url(alert), data)
    assert response.status_code == 400
    assert message in response.content.decode()
    assert not AlertAction.objects.filter(alert=alert).exists()
    assert safety_alert(sam).status == AlertStatus.OPEN
    assert audit_since(head, outcome="invalid").exists()


@pytest.mark.parametrize(
    ("persona", "status"), [("therapist_b", 404), ("outsider", 404), ("supervisor", 403)]
)
def test_only_the_treating_therapist_can_record_an_action(
    client, login, request, sam, persona, status
):
    login(client, request.getfixturevalue(persona))
    response = client.post(action_url(safety_alert(sam)), {"kind": ActionKind.DISCUSSED})
    assert response.status_code == status
    assert not AlertAction.objects.exists()


@pytest.mark.parametrize(
    ("kind", "signal", "flags", "expected"),
    [
        (AlertKind.OFF_TRACK, "on_track", (), "Back on track"),
        (AlertKind.OFF_TRACK, "off_track", (), "Still off track"),
        (AlertKind.OFF_TRACK, "at_risk", (), "Better than when the alert was raised"),
        (AlertKind.SAFETY, "off_track", (), "No safety item endorsed"),
        (AlertKind.SAFETY, "off_track", ("safety",), "The safety item was endorsed again"),
    ],
)
def test_the_follow_up_compares_the_next_check_in_with_what_raised_the_alert(
    client, login, therapist_a, sam, kind, signal, flags, expected
):
    alert = Alert.objects.get(episode=sam, kind=kind)
    services.record_alert_action(therapist_a, alert, ActionKind.DISCUSSED)
    later_score(sam, signal, flags=flags)
    login(client, therapist_a)
    html = client.get(f"/w/alerts/{alert.public_id}/").content.decode()
    assert expected in html


def test_the_follow_up_of_a_rupture_says_when_it_was_repaired(client, login, therapist_a):
    episode = sample.add_client(
        therapist_a, "Robin", course="recovered", sessions=8, rupture=True, seed=2
    )
    alert = Alert.objects.create(
        practice_id=episode.practice_id,
        episode=episode,
        kind=AlertKind.RUPTURE,
        priority=2,
        dedupe_key="t:r",
        session_number=4,
    )
    services.record_alert_action(therapist_a, alert, ActionKind.RELATIONSHIP)
    login(client, therapist_a)
    assert "Repaired" in client.get(f"/w/alerts/{alert.public_id}/").content.decode()


def test_csrf_protects_acknowledging_and_recording(therapist_a, sam, login):
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    alert = safety_alert(sam)
    assert browser.post(ack_url(alert)).status_code == 403
    assert browser.post(action_url(alert), {"kind": ActionKind.DISCUSSED}).status_code == 403
    alert.refresh_from_db()
    assert alert.status == AlertStatus.OPEN
    assert not AlertAction.objects.exists()


@pytest.mark.parametrize("probe", PROBES)
def test_action_notes_are_escaped(client, login, therapist_a, sam, probe):
    alert = safety_alert(sam)
    services.record_alert_action(therapist_a, alert, ActionKind.DISCUSSED, probe)
    login(client, therapist_a)
    assert_escaped(client.get(f"/w/alerts/{alert.public_id}/").content.decode(), probe)
    assert_escaped(client.get(f"/w/clients/{sam.client.public_id}/").content.decode(), probe)
