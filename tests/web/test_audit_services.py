"""Every workflow on client data writes its audit row, in the same transaction (REQ-AU1).

For each service: the rows it adds (action, entity, outcome, whose), and — with the audit write
made to fail — that the service fails and leaves nothing behind (fail closed, SECURITY.md 4b:
"audit write failure ⇒ request fails"). Page reads are covered by the access matrix (each
served page leaves a row naming the client) and by the last tests here.
"""

from __future__ import annotations

import pytest
from django.utils import timezone

from alliance_web.audit import trail
from alliance_web.audit.models import AuditEvent
from alliance_web.care import services
from alliance_web.care.models import (
    Alert,
    AlertKind,
    CheckInKind,
    ConsentScope,
    StageAssessment,
)
from tests.web.portal_helpers import full_answers


@pytest.fixture
def w(therapist_a, client_of_a, episode_of_a):
    class W:
        pass

    x = W()
    x.by, x.client, x.episode = therapist_a, client_of_a, episode_of_a
    x.session = episode_of_a.sessions.first()
    x.checkin, _ = services.issue_checkin(episode_of_a, session=x.session)
    x.alert = Alert.objects.create(
        practice_id=client_of_a.practice_id,
        episode=episode_of_a,
        kind=AlertKind.OFF_TRACK,
        priority=1,
        dedupe_key="t:1",
    )
    x.stage = StageAssessment.objects.create(episode=episode_of_a, suggested_stage=2, method="t")
    return x


def _submission(checkin):
    from alliance_web.portal.forms import CheckInForm

    return CheckInForm(checkin).parse(_QD(full_answers(checkin))).submission


class _QD(dict):
    def getlist(self, key):
        return [self[key]] if key in self else []


SERVICES = {
    "create_client": (
        lambda w: services.create_client(w.by, preferred_name="Ana", therapist=w.by),
        [("C", "client")],
    ),
    "open_episode": (
        lambda w: services.open_episode(
            w.by,
            services.create_client(w.by, preferred_name="Bo", therapist=w.by),
            concerns=["anxiety"],
        ),
        [("C", "client"), ("C", "episode")],
    ),
    "set_goal": (
        lambda w: services.set_goal(w.by, w.episode, 3, "Call my brother"),
        [("U", "goal")],
    ),
    "set_consent": (
        lambda w: services.set_consent(w.by, w.client, ConsentScope.RESEARCH, False),
        [("U", "consent")],
    ),
    "record_attendance": (
        lambda w: services.record_attendance(w.by, w.session, "attended"),
        [("U", "session")],
    ),
    "issue_checkin": (
        lambda w: services.issue_checkin(w.episode, kind=CheckInKind.POST_SESSION),
        [("C", "checkin")],
    ),
    "start_waiting_room_code": (
        lambda w: services.start_waiting_room_code(w.by, w.checkin),
        [("U", "checkin_code")],
    ),
    "save_draft": (
        lambda w: services.save_draft(w.checkin, {"values": {}}),
        [("U", "checkin_draft")],
    ),
    "submit_checkin": (
        lambda w: services.submit_checkin(w.checkin, _submission(w.checkin)),
        [("C", "checkin_submission")],
    ),
    "acknowledge_alert": (lambda w: services.acknowledge_alert(w.by, w.alert), [("U", "alert")]),
    "record_alert_action": (
        lambda w: services.record_alert_action(w.by, w.alert, "discussed", "ok"),
        [("C", "alert_action")],
    ),
    "log_relationship_event": (
        lambda w: services.log_relationship_event(w.by, w.episode, event="rupture", text="x"),
        [("C", "relationship_note")],
    ),
    "confirm_stage": (lambda w: services.confirm_stage(w.by, w.stage, 3), [("U", "stage")]),
    "add_private_note": (
        lambda w: services.add_private_note(w.by, w.episode, "note"),
        [("C", "private_note")],
    ),
    "close_episode": (
        lambda w: services.close_episode(w.by, w.episode, end_reason="planned"),
        [("U", "episode")],
    ),
    "deny": (lambda w: services.deny(w.by, "client", "x", w.client.public_id), [("R", "client")]),
}


def _rows_after(seq):
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq"))


def _last_seq():
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


@pytest.mark.parametrize("name", sorted(SERVICES))
def test_each_service_writes_its_audit_rows(w, name):
    run, expected = SERVICES[name]
    seq = _last_seq()
    run(w)
    rows = _rows_after(seq)
    got = [(r.action, r.entity_type) for r in rows]
    for want in expected:
        assert want in got, f"{name}: {want} not in {got}"
    client_rows = [r for r in rows if r.entity_type == expected[-1][1]]
    assert all(
        r.patient_id for r in client_rows if r.entity_type != "client" or name != "create_client"
    )


def _counts():
    """Rows in every table of the record."""
    from django.apps import apps

    return {m._meta.label: m.objects.count() for m in apps.get_app_config("care").get_models()}


@pytest.mark.parametrize("name", sorted(n for n in SERVICES if n != "deny"))
def test_a_failing_audit_write_fails_the_service_and_stores_nothing(w, name, monkeypatch):
    run, _ = SERVICES[name]
    before_rows, before_seq = _counts(), _last_seq()
    before_state = {
        "checkin": (
            w.checkin.__class__.objects.get(pk=w.checkin.pk).status,
            w.checkin.__class__.objects.get(pk=w.checkin.pk).short_code_hash,
        ),
        "alert": Alert.objects.get(pk=w.alert.pk).status,
        "episode": w.episode.__class__.objects.get(pk=w.episode.pk).status,
        "session": w.session.__class__.objects.get(pk=w.session.pk).status,
        "stage": StageAssessment.objects.get(pk=w.stage.pk).confirmed_stage,
        "last_contact": w.client.__class__.objects.get(pk=w.client.pk).last_contact_at,
    }

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(trail, "_append", broken)
    with pytest.raises(RuntimeError):
        run(w)
    monkeypatch.undo()
    assert _counts() == before_rows
    assert _last_seq() == before_seq
    assert before_state == {
        "checkin": (
            w.checkin.__class__.objects.get(pk=w.checkin.pk).status,
            w.checkin.__class__.objects.get(pk=w.checkin.pk).short_code_hash,
        ),
        "alert": Alert.objects.get(pk=w.alert.pk).status,
        "episode": w.episode.__class__.objects.get(pk=w.episode.pk).status,
        "session": w.session.__class__.objects.get(pk=w.session.pk).status,
        "stage": StageAssessment.objects.get(pk=w.stage.pk).confirmed_stage,
        "last_contact": w.client.__class__.objects.get(pk=w.client.pk).last_contact_at,
    }


def test_a_page_is_not_served_when_its_read_cannot_be_audited(
    client, login, therapist_a, client_of_a, monkeypatch
):
    login(client, therapist_a)
    url = f"/w/clients/{client_of_a.public_id}/"

    def broken(*args, **kwargs):
        raise RuntimeError("audit store unavailable")

    monkeypatch.setattr(trail, "_append", broken)
    client.raise_request_exception = False
    response = client.get(url)
    assert response.status_code == 500
    assert client_of_a.preferred_name.encode() not in response.content


def test_a_portal_page_is_not_served_when_its_read_cannot_be_audited(
    client, episode_of_a, monkeypatch
):
    _, path = services.issue_checkin(episode_of_a)
    monkeypatch.setattr(
        trail, "_append", lambda *a, **k: (_ for _ in ()).throw(RuntimeError("down"))
    )
    client.raise_request_exception = False
    response = client.get(path)
    assert response.status_code == 500
    assert b"Sleep through the night" not in response.content


def test_the_time_of_each_row_is_the_servers(w):
    seq = _last_seq()
    before = timezone.now()
    services.set_goal(w.by, w.episode, 3, "x")
    row = _rows_after(seq)[0]
    assert before <= row.recorded <= timezone.now()
