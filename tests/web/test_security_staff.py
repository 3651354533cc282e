"""Staff management by practice admins (ASVS 7.4.2, 7.4.5, 6.4.3; SECURITY.md REQ-AC1).

Admins list, invite, change roles, disable, reset two-factor, reset passwords and sign colleagues
out — in their own practice only, each step audited. Nobody else can.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_web.accounts import backup
from alliance_web.accounts.models import BackupCodeDevice, Invitation, Role, User, UserSession
from alliance_web.audit.models import AuditEvent
from tests.web.conftest import PASSWORD

NEW_PASSWORD = "a long and memorable passphrase for the clinic"


@pytest.fixture
def admin(client, login, practice_admin):
    return login(client, practice_admin)


def _signed_in_elsewhere(user) -> Client:
    c = Client()
    c.force_login(user)
    return c


def test_the_list_shows_this_practices_staff_only(admin, therapist_a, outsider):
    response = admin.get("/accounts/staff/")
    assert response.status_code == 200
    names = [u.username for u in response.context["rows"]]
    assert "therapist_a" in names
    assert "outsider" not in names


@pytest.mark.parametrize("who", ["therapist_a", "supervisor", "outsider"])
def test_nobody_but_an_admin_manages_staff(client, login, request, who, therapist_b):
    user = request.getfixturevalue(who)
    login(client, user)
    for path in ("/accounts/staff/", f"/accounts/staff/{therapist_b.pk}/"):
        assert client.get(path).status_code == 403
    assert client.post(f"/accounts/staff/{therapist_b.pk}/disable/").status_code == 403
    therapist_b.refresh_from_db()
    assert therapist_b.is_active
    assert (
        AuditEvent.objects.filter(entity_type="staff", outcome="deny", user_id=user.pk).count() >= 3
    )


def test_another_practices_account_is_not_found_and_the_attempt_audited(admin, outsider):
    for path in (f"/accounts/staff/{outsider.pk}/", f"/accounts/staff/{outsider.pk}/disable/"):
        response = admin.post(path) if path.endswith("disable/") else admin.get(path)
        assert response.status_code == 404
    outsider.refresh_from_db()
    assert outsider.is_active
    assert (
        AuditEvent.objects.filter(
            entity_type="staff", entity_id=str(outsider.pk), outcome="deny"
        ).count()
        == 2
    )


def test_inviting_a_colleague_shows_a_one_time_code_that_sets_their_password(admin, practice_a):
    response = admin.post(
        "/accounts/staff/new/",
        {
            "username": "dana",
            "display_name": "Dana Li",
            "email": "",
            "role": "therapist",
        },
    )
    assert response.status_code == 200
    code = response.context["code"]
    dana = User.objects.get(username="dana")
    assert dana.practice == practice_a
    assert not dana.has_usable_password()
    assert code.replace("-", "") not in Invitation.objects.get(user=dana).code_hash
    welcome = Client().post(
        "/accounts/welcome/",
        {
            "username": "dana",
            "code": code.lower(),
            "password1": NEW_PASSWORD,
            "password2": NEW_PASSWORD,
        },
    )
    assert welcome.status_code == 302
    dana.refresh_from_db()
    assert dana.check_password(NEW_PASSWORD)
    again = Client().post(
        "/accounts/welcome/",
        {
            "username": "dana",
            "code": code,
            "password1": NEW_PASSWORD + "!",
            "password2": NEW_PASSWORD + "!",
        },
    )
    assert again.status_code == 400  # single use
    # The first sign-in goes on to enrol two-factor.
    c = Client()
    c.post("/accounts/login/", {"username": "dana", "password": NEW_PASSWORD})
    assert c.get("/w/")["Location"].startswith("/accounts/two-factor/")
    assert AuditEvent.objects.filter(
        entity_type="staff", action="C", entity_id=str(dana.pk)
    ).exists()


def test_an_invitation_refuses_a_weak_password_an_expired_code_and_a_wrong_username(admin):
    code = admin.post(
        "/accounts/staff/new/", {"username": "eli", "display_name": "Eli", "role": "therapist"}
    ).context["code"]
    weak = Client().post(
        "/accounts/welcome/",
        {"username": "eli", "code": code, "password1": "password123", "password2": "password123"},
    )
    assert weak.status_code == 400
    wrong = Client().post(
        "/accounts/welcome/",
        {"username": "dana", "code": code, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert wrong.status_code == 400
    Invitation.objects.update(expires_at=timezone.now() - timedelta(minutes=1))
    late = Client().post(
        "/accounts/welcome/",
        {"username": "eli", "code": code, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert late.status_code == 400
    assert not User.objects.get(username="eli").has_usable_password()


def test_changing_a_role_is_audited(admin, therapist_b):
    response = admin.post(
        f"/accounts/staff/{therapist_b.pk}/", {"role": "supervisor", "is_clinician": "on"}
    )
    assert response.status_code == 302
    therapist_b.refresh_from_db()
    assert (therapist_b.role, therapist_b.is_clinician) == (Role.SUPERVISOR, True)
    row = AuditEvent.objects.filter(
        entity_type="staff", action="U", entity_id=str(therapist_b.pk)
    ).last()
    assert row.detail["role"] == ["therapist", "supervisor"]


def test_an_admin_cannot_demote_or_disable_themself(admin, practice_admin):
    assert (
        admin.post(f"/accounts/staff/{practice_admin.pk}/", {"role": "therapist"}).status_code
        == 400
    )
    admin.post(f"/accounts/staff/{practice_admin.pk}/disable/")
    practice_admin.refresh_from_db()
    assert practice_admin.role == Role.ADMIN
    assert practice_admin.is_active


def test_disabling_signs_the_person_out_everywhere_at_once(admin, therapist_b):
    phone, laptop = _signed_in_elsewhere(therapist_b), _signed_in_elsewhere(therapist_b)
    assert admin.post(f"/accounts/staff/{therapist_b.pk}/disable/").status_code == 302
    therapist_b.refresh_from_db()
    assert not therapist_b.is_active
    assert not UserSession.objects.filter(user=therapist_b).exists()
    for c in (phone, laptop):
        assert c.get("/w/").status_code == 302
    assert (
        Client()
        .post("/accounts/login/", {"username": "therapist_b", "password": PASSWORD})
        .status_code
        == 200
    )
    assert admin.post(f"/accounts/staff/{therapist_b.pk}/enable/").status_code == 302


def test_resetting_two_factor_removes_the_devices_and_the_sessions(admin, therapist_b):
    backup.new_codes(therapist_b)
    session = _signed_in_elsewhere(therapist_b)
    assert admin.post(f"/accounts/staff/{therapist_b.pk}/reset-two-factor/").status_code == 302
    assert not TOTPDevice.objects.filter(user=therapist_b).exists()
    assert not BackupCodeDevice.objects.filter(user=therapist_b).exists()
    assert session.get("/w/").status_code == 302
    assert AuditEvent.objects.filter(
        entity_type="second_factor", action="D", entity_id=str(therapist_b.pk)
    ).exists()


def test_resetting_a_password_keeps_two_factor(admin, therapist_b):
    response = admin.post(f"/accounts/staff/{therapist_b.pk}/reset-password/")
    assert response.status_code == 200
    assert response.context["code"]
    therapist_b.refresh_from_db()
    assert not therapist_b.check_password(PASSWORD)
    assert TOTPDevice.objects.filter(user=therapist_b, confirmed=True).exists()  # ASVS 6.4.3


def test_an_admin_can_sign_a_colleague_out_everywhere(admin, therapist_b):
    c = _signed_in_elsewhere(therapist_b)
    assert admin.post(f"/accounts/staff/{therapist_b.pk}/end-sessions/").status_code == 302
    assert c.get("/w/").status_code == 302
    therapist_b.refresh_from_db()
    assert therapist_b.is_active


def test_the_last_admin_stays_an_admin(admin, practice_a, practice_admin, login):
    other = User.objects.create_user(
        "admin2", password=PASSWORD, practice=practice_a, role=Role.ADMIN
    )
    TOTPDevice.objects.create(user=other, name="authenticator", confirmed=True)
    second = login(Client(), other)
    assert (
        second.post(f"/accounts/staff/{practice_admin.pk}/", {"role": "therapist"}).status_code
        == 302
    )
    practice_admin.refresh_from_db()
    assert practice_admin.role == Role.THERAPIST
    # other is now the only admin; nobody else is left to demote them
    assert second.post(f"/accounts/staff/{other.pk}/", {"role": "therapist"}).status_code == 400


def test_the_first_admin_is_invited_from_the_server(db):
    import io

    from django.core.management import call_command

    out = io.StringIO()
    call_command(
        "invite_admin",
        "--practice",
        "lakeside",
        "--practice-name",
        "Lakeside",
        "--username",
        "ada",
        stdout=out,
    )
    code = out.getvalue().strip().splitlines()[-1]
    ada = User.objects.get(username="ada")
    assert ada.role == Role.ADMIN
    assert ada.practice.slug == "lakeside"
    assert not ada.has_usable_password()
    welcome = Client().post(
        "/accounts/welcome/",
        {"username": "ada", "code": code, "password1": NEW_PASSWORD, "password2": NEW_PASSWORD},
    )
    assert welcome.status_code == 302
    assert AuditEvent.objects.filter(
        entity_type="staff", role="system", entity_id=str(ada.pk)
    ).exists()
