"""Break-glass emergency access (SECURITY.md REQ-AC2; HIPAA §164.312(a)(2)(ii)).

A clinician outside a client's care types the client's code and a reason on /w/emergency-access/
and reads that one record, read-only, for four hours; the grant and every view are audited, the
practice admins are emailed at once and can list and revoke grants. Another practice's code and
an unknown one get the same answer; admin-only accounts cannot break glass.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alliance_web.audit.models import Action, Outcome
from alliance_web.care import emergency, services
from alliance_web.care.access import scope_for
from alliance_web.care.models import ConsentScope, EmergencyAccess
from alliance_web.care.privacy import may_export
from alliance_web.workspace import sample
from tests.web import workspace_helpers as wh
from tests.web.conftest import make_user
from tests.web.workspace_helpers import audit_head, audit_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, foreign, robin, sam = wh.fast_passwords, wh.foreign, wh.robin, wh.sam

URL = "/w/emergency-access/"
GRANTS = "/w/emergency-access/grants/"
REASON = "Covering the on-call line; the client phoned in crisis and their therapist is away."


def client_url(episode) -> str:
    return f"/w/clients/{episode.client.public_id}/"


def break_glass(browser, episode, reason: str = REASON):
    return browser.post(URL, {"code": episode.client.pseudonym, "reason": reason})


@pytest.fixture
def admin_with_email(practice_admin):
    practice_admin.email = "admin@riverside.example"
    practice_admin.save(update_fields=["email"])
    return practice_admin


@pytest.fixture
def clock(monkeypatch):
    """``clock(delta)``: ``timezone.now()`` runs ``delta`` ahead from then on."""
    real_now = timezone.now

    def move(delta: timedelta) -> None:
        monkeypatch.setattr(timezone, "now", lambda: real_now() + delta)

    return move


def test_the_form_needs_a_reason_and_nothing_is_stored_without_one(client, login, therapist_b, sam):
    login(client, therapist_b)
    assert client.get(URL).status_code == 200
    for reason in ("", "   ", "urgent", "too  short"):
        response = break_glass(client, sam, reason)
        assert response.status_code == 400
        assert "field-error" in response.content.decode()
    assert not EmergencyAccess.objects.exists()
    assert client.get(client_url(sam)).status_code == 404


def test_the_service_refuses_a_grant_without_a_reason(therapist_b, sam):
    for reason in ("", "   ", "too short"):
        with pytest.raises(ValueError):
            emergency.grant(therapist_b, sam.client, reason)
    assert not EmergencyAccess.objects.exists()


def test_a_grant_opens_exactly_that_client_read_only(client, login, therapist_b, sam, robin):
    login(client, therapist_b)
    assert client.get(client_url(sam)).status_code == 404
    response = break_glass(client, sam)
    assert response.status_code == 302
    assert response["Location"] == client_url(sam)
    grant = EmergencyAccess.objects.get()
    assert (grant.user, grant.client, grant.practice_id) == (
        therapist_b,
        sam.client,
        sam.practice_id,
    )
    assert grant.reason == REASON
    assert grant.expires_at - grant.granted_at == timedelta(hours=4)
    assert emergency.EMERGENCY_ACCESS_HOURS == 4

    head = audit_head()
    assert client.get(client_url(sam)).status_code == 200
    assert audit_since(
        head, action=Action.READ, patient_id=str(sam.client.public_id), purpose="client_page"
    ).exists()
    assert client.get(client_url(robin)).status_code == 404  # only the one client

    # Read-only: writes need the right to treat, and exports/consent keep to the usual scope.
    head = audit_head()
    refused = client.post(f"/w/episodes/{sam.public_id}/process-notes/", {"text": "x"})
    assert refused.status_code == 403
    assert audit_since(head, outcome=Outcome.DENY).exists()
    s = scope_for(therapist_b)
    assert s.clients().filter(pk=sam.client.pk).exists()
    assert not s.own_clients().filter(pk=sam.client.pk).exists()
    assert not may_export(therapist_b, sam.client)
    assert not s.client_notes().filter(episode=sam).exists()  # "only your therapist will see this"
    assert not s.private_notes().filter(episode=sam).exists()
    assert client.get(f"/privacy/clients/{sam.client.public_id}/").status_code == 404


def test_the_grant_ends_after_four_hours(client, login, therapist_b, sam, clock):
    login(client, therapist_b)
    break_glass(client, sam)
    clock(timedelta(hours=3, minutes=59))
    assert client.get(client_url(sam)).status_code == 200
    clock(timedelta(hours=4, minutes=1))
    head = audit_head()
    assert client.get(client_url(sam)).status_code == 404
    assert audit_since(head, outcome=Outcome.DENY, entity_type="client").exists()
    assert not scope_for(therapist_b).clients().filter(pk=sam.client.pk).exists()


@pytest.mark.parametrize("code", ["foreign", "unknown"])
def test_another_practice_or_an_unknown_code_gets_the_same_neutral_answer(
    client, login, therapist_b, foreign, code
):
    login(client, therapist_b)
    head = audit_head()
    typed = foreign.client.pseudonym if code == "foreign" else "C000000000000"
    response = client.post(URL, {"code": typed, "reason": REASON})
    assert response.status_code == 400
    html = response.content.decode()
    assert "No client of your practice can be opened with that code." in html
    assert foreign.client.preferred_name not in html
    assert not EmergencyAccess.objects.exists()
    assert audit_since(head, outcome=Outcome.DENY, purpose="break_glass").exists()
    assert client.get(client_url(foreign)).status_code == 404


def test_the_service_refuses_a_client_of_another_practice(therapist_b, foreign):
    head = audit_head()
    with pytest.raises(emergency.NotFound):
        emergency.grant(therapist_b, foreign.client, REASON)
    assert not EmergencyAccess.objects.exists()
    assert audit_since(head, outcome=Outcome.DENY).exists()


def test_admin_only_accounts_and_clients_cannot_break_glass(
    client, login, practice_admin, sam, settings
):
    login(client, practice_admin)
    head = audit_head()
    assert client.get(URL).status_code == 403
    assert break_glass(client, sam).status_code == 403
    assert audit_since(head, outcome=Outcome.DENY).count() == 2
    with pytest.raises(emergency.NotPermitted):
        emergency.grant(practice_admin, sam.client, REASON)
    assert not EmergencyAccess.objects.exists()
    anonymous = client.__class__()
    assert anonymous.post(URL, {"code": sam.client.pseudonym, "reason": REASON}).status_code == 302
    assert not EmergencyAccess.objects.exists()


def test_a_clinician_admin_may_break_glass(client, login, practice_a, sam):
    clinician_admin = make_user(practice_a, "clinical_admin", "admin", is_clinician=True)
    login(client, clinician_admin)
    assert break_glass(client, sam).status_code == 302
    assert client.get(client_url(sam)).status_code == 200


def test_the_grant_is_audited_with_its_reason_in_the_same_transaction(
    client, login, therapist_b, sam
):
    login(client, therapist_b)
    head = audit_head()
    break_glass(client, sam)
    grant = EmergencyAccess.objects.get()
    row = audit_since(head, purpose="break_glass", outcome=Outcome.SUCCESS).get()
    assert row.action == Action.CREATE
    assert row.entity_type == "emergency_access"
    assert row.entity_id == str(grant.public_id)
    assert row.patient_id == str(sam.client.public_id)
    assert row.user_id == therapist_b.pk
    assert row.detail["reason"] == REASON
    assert sam.client.preferred_name not in str(row.detail)


def test_a_failed_audit_write_leaves_no_grant(therapist_b, sam, monkeypatch):
    def broken(*args, **kwargs):
        raise RuntimeError("audit store down")

    monkeypatch.setattr(emergency, "record", broken)
    with pytest.raises(RuntimeError):
        emergency.grant(therapist_b, sam.client, REASON)
    assert not EmergencyAccess.objects.exists()


def test_the_practice_admins_are_emailed_at_once(
    client,
    login,
    therapist_b,
    sam,
    admin_with_email,
    outsider,
    django_capture_on_commit_callbacks,
    mailoutbox,
):
    outsider.email = "other@hillside.example"
    outsider.save(update_fields=["email"])
    login(client, therapist_b)
    with django_capture_on_commit_callbacks(execute=True):
        break_glass(client, sam)
    assert len(mailoutbox) == 1
    mail = mailoutbox[0]
    assert mail.to == ["admin@riverside.example"]
    assert sam.client.pseudonym in mail.body
    assert str(therapist_b) in mail.body
    assert REASON not in mail.body
    assert sam.client.preferred_name not in mail.body


def test_the_client_page_shows_the_banner_only_under_emergency_access(
    client, login, therapist_a, therapist_b, sam
):
    login(client, therapist_b)
    break_glass(client, sam)
    until = timezone.localtime(EmergencyAccess.objects.get().expires_at).strftime("%H:%M")
    html = client.get(client_url(sam)).content.decode()
    assert f"Emergency access until {until} — every view is recorded" in html
    login(client, therapist_a)
    assert "Emergency access until" not in client.get(client_url(sam)).content.decode()


def test_a_second_request_reuses_the_running_grant(client, login, therapist_b, sam):
    login(client, therapist_b)
    break_glass(client, sam)
    break_glass(client, sam)
    assert EmergencyAccess.objects.count() == 1


def test_the_treating_therapist_needs_no_grant(client, login, therapist_a, sam):
    login(client, therapist_a)
    assert break_glass(client, sam).status_code == 302
    assert not EmergencyAccess.objects.exists()


def test_a_supervisor_may_open_a_client_who_withdrew_supervision_consent(
    client, login, therapist_a, supervisor
):
    private = sample.add_client(therapist_a, "Lee", seed=5)
    services.set_consent(therapist_a, private.client, ConsentScope.SUPERVISION, False)
    login(client, supervisor)
    assert client.get(client_url(private)).status_code == 404
    assert break_glass(client, private).status_code == 302
    assert client.get(client_url(private)).status_code == 200


def test_admins_list_and_revoke_grants(client, login, therapist_b, practice_admin, sam, practice_b):
    login(client, therapist_b)
    break_glass(client, sam)
    assert client.get(GRANTS).status_code == 403  # the log is for admins
    grant = EmergencyAccess.objects.get()

    login(client, practice_admin)
    html = client.get(GRANTS).content.decode()
    assert sam.client.pseudonym in html
    assert REASON in html
    assert str(therapist_b) in html
    assert sam.client.preferred_name not in html  # no clinical or identifying content

    other_admin = make_user(practice_b, "other_admin", "admin")
    login(client, other_admin)
    assert client.post(GRANTS, {"grant": str(grant.public_id)}).status_code == 404
    assert sam.client.pseudonym not in client.get(GRANTS).content.decode()

    login(client, practice_admin)
    head = audit_head()
    assert client.post(GRANTS, {"grant": str(grant.public_id)}).status_code == 302
    grant.refresh_from_db()
    assert grant.revoked_at is not None
    assert grant.revoked_by == practice_admin
    assert audit_since(head, purpose="break_glass", action=Action.UPDATE).exists()

    login(client, therapist_b)
    assert client.get(client_url(sam)).status_code == 404
