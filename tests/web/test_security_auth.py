"""Authentication and sessions (SECURITY.md REQ-AN1, REQ-SE1; ASVS 5.0 V6 and V7).

Passwords (Argon2id, length and common-password rules), lockout per username+IP with cool-off,
two-factor sign-in for staff (TOTP, single use, ±1 step; hashed single-use backup codes), idle and
absolute timeouts, a new session id at sign-in, and sessions ended when an account is disabled or
its password changes.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest
from axes.models import AccessAttempt
from django.contrib.auth.hashers import identify_hasher, make_password
from django.contrib.auth.password_validation import validate_password
from django.contrib.sessions.models import Session
from django.core.exceptions import ValidationError
from django.test import Client
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.oath import TOTP
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_web.accounts import backup
from alliance_web.accounts.middleware import LAST_SEEN
from alliance_web.accounts.models import BackupCode, BackupCodeDevice, Role, UserSession
from alliance_web.accounts.sessions import LOGIN_AT
from alliance_web.audit.models import AuditEvent
from tests.web.conftest import PASSWORD, make_user

LOGIN = "/accounts/login/"
TWO_FACTOR = "/accounts/two-factor/"


def _code(device: TOTPDevice, offset_steps: int = 0) -> str:
    totp = TOTP(device.bin_key, device.step, device.t0, device.digits, device.drift)
    totp.time = time.time() + offset_steps * device.step
    return f"{totp.token():0{device.digits}d}"


def _sign_in(client: Client, user, password: str = PASSWORD, ip: str = "198.51.100.7"):
    return client.post(LOGIN, {"username": user.username, "password": password}, REMOTE_ADDR=ip)


# --- passwords ---------------------------------------------------------------------------------
def test_passwords_are_stored_with_argon2id(therapist_a):
    assert make_password("x").startswith("argon2$argon2id$")
    assert identify_hasher(therapist_a.password).algorithm == "argon2"
    assert therapist_a.password.startswith("argon2$argon2id$")


@pytest.mark.parametrize(
    "password",
    ["password123", "Kx9!pQz", "12345678901", "therapist_a-2024"],
    ids=["common", "seven-characters", "numeric", "like-the-username"],
)
def test_weak_passwords_are_refused(therapist_a, password):
    with pytest.raises(ValidationError):
        validate_password(password, therapist_a)


def test_a_long_passphrase_is_accepted_and_no_composition_rules_apply(therapist_a):
    passphrase = "the quiet river carries maple leaves past the old mill at dawn!!!"
    assert len(passphrase) == 65
    validate_password(passphrase, therapist_a)
    validate_password("all lowercase words only here", therapist_a)


def test_an_absurdly_long_password_is_refused(therapist_a):
    with pytest.raises(ValidationError):
        validate_password("x" * 129 + " horse battery", therapist_a)


# --- lockout ---------------------------------------------------------------------------------
def test_five_failures_lock_the_username_from_that_address_and_are_audited(client, therapist_a):
    for _ in range(5):
        assert _sign_in(client, therapist_a, "wrong password").status_code in (200, 429)
    locked = _sign_in(client, therapist_a)  # the right password, still locked
    assert locked.status_code == 429
    assert "_auth_user_id" not in client.session
    denials = AuditEvent.objects.filter(entity_type="login", outcome="deny")
    assert denials.filter(username="therapist_a").count() >= 5
    assert any(e.detail.get("locked_out") for e in denials)


def test_the_lockout_is_per_username_and_address(client, therapist_a, therapist_b):
    for _ in range(5):
        _sign_in(client, therapist_a, "wrong password", ip="198.51.100.7")
    assert _sign_in(Client(), therapist_a, ip="203.0.113.50").status_code == 302  # other address
    assert _sign_in(Client(), therapist_b, ip="198.51.100.7").status_code == 302  # other username


def test_the_lockout_lifts_after_the_cool_off(client, therapist_a):
    for _ in range(5):
        _sign_in(client, therapist_a, "wrong password")
    assert _sign_in(Client(), therapist_a).status_code == 429
    AccessAttempt.objects.update(attempt_time=timezone.now() - timedelta(minutes=16))
    assert _sign_in(Client(), therapist_a).status_code == 302


# --- two-factor sign-in ------------------------------------------------------------------------
@pytest.mark.parametrize("path", ["/w/", "/accounts/staff/", "/accounts/password/"])
def test_staff_must_pass_two_factor_before_anything_else(client, practice_admin, path):
    client.force_login(practice_admin)
    response = client.get(path)
    assert response.status_code == 302
    assert response["Location"].startswith(TWO_FACTOR)


def test_the_api_ignores_a_session_without_two_factor(client, therapist_a, client_of_a):
    client.force_login(therapist_a)
    response = client.get("/api/v1/clients/")
    assert response.status_code in (401, 403)
    assert b"Sam" not in response.content


@pytest.mark.parametrize(
    ("demo_mode", "is_demo", "exempt"),
    [(True, True, True), (False, True, False), (True, False, False)],
    ids=["demo-account-in-demo-mode", "demo-account-normally", "real-account-in-demo-mode"],
)
def test_only_demo_accounts_in_insecure_demo_mode_skip_two_factor(
    client, settings, practice_a, demo_mode, is_demo, exempt
):
    settings.ALLIANCE_DEMO_INSECURE_LOGIN = demo_mode
    user = make_user(practice_a, "demo_or_not", Role.THERAPIST, is_demo=is_demo)
    client.force_login(user)
    response = client.get("/w/")
    assert (response.status_code == 200) is exempt


def test_a_totp_code_signs_in_once_and_cannot_be_replayed(therapist_a):
    device = TOTPDevice.objects.get(user=therapist_a)
    first = Client()
    _sign_in(first, therapist_a)
    code = _code(device)
    assert first.post(TWO_FACTOR, {"code": code}).status_code == 302
    assert first.session.get(DEVICE_ID_SESSION_KEY)
    second = Client()
    _sign_in(second, therapist_a)
    replay = second.post(TWO_FACTOR, {"code": code})
    assert replay.status_code == 200  # the form again, with an error
    assert DEVICE_ID_SESSION_KEY not in second.session
    assert AuditEvent.objects.filter(
        entity_type="second_factor", outcome="deny", user_id=therapist_a.pk
    ).exists()


def test_a_code_from_two_steps_ago_is_refused_one_step_is_tolerated(therapist_a):
    device = TOTPDevice.objects.get(user=therapist_a)
    c = Client()
    _sign_in(c, therapist_a)
    assert c.post(TWO_FACTOR, {"code": _code(device, -2)}).status_code == 200
    device.refresh_from_db()
    device.throttling_failure_count, device.throttling_failure_timestamp = 0, None
    device.save()
    assert c.post(TWO_FACTOR, {"code": _code(device, -1)}).status_code == 302


def test_after_a_wrong_code_even_the_right_one_waits(therapist_a):
    device = TOTPDevice.objects.get(user=therapist_a)
    c = Client()
    _sign_in(c, therapist_a)
    c.post(TWO_FACTOR, {"code": "000000" if _code(device) != "000000" else "111111"})
    assert c.post(TWO_FACTOR, {"code": _code(device)}).status_code == 200  # throttled
    device.refresh_from_db()
    assert device.throttling_failure_count == 1


# --- backup codes ---------------------------------------------------------------------------------
@pytest.fixture
def newcomer(practice_a):
    from alliance_web.accounts.models import User

    return User.objects.create_user(
        "newcomer", password=PASSWORD, practice=practice_a, role=Role.THERAPIST
    )


def _enrol(client: Client, user) -> list[str]:
    _sign_in(client, user)
    client.get(TWO_FACTOR)  # creates the unconfirmed authenticator
    device = TOTPDevice.objects.get(user=user, confirmed=False)
    response = client.post(TWO_FACTOR, {"code": _code(device)})
    assert response.status_code == 200
    return response.context["codes"]


def test_enrolment_shows_ten_backup_codes_once_and_stores_only_their_hashes(client, newcomer):
    codes = _enrol(client, newcomer)
    assert len(codes) == 10
    assert len(set(codes)) == 10
    stored = list(BackupCode.objects.filter(device__user=newcomer))
    assert len(stored) == 10
    for code, row in zip(sorted(codes), sorted(stored, key=lambda r: r.lookup), strict=True):
        lookup, secret = backup.split(code)
        assert row.lookup == lookup
        assert row.code_hash.startswith("argon2$argon2id$")
        assert secret not in row.code_hash
        assert code not in row.code_hash
    assert AuditEvent.objects.filter(
        entity_type="second_factor", action="C", user_id=newcomer.pk
    ).exists()


def test_a_backup_code_signs_in_once(client, newcomer):
    code = _enrol(client, newcomer)[3]
    other = Client()
    _sign_in(other, newcomer)
    assert other.post(TWO_FACTOR, {"code": code.upper().replace("-", " ")}).status_code == 302
    again = Client()
    _sign_in(again, newcomer)
    assert again.post(TWO_FACTOR, {"code": code}).status_code == 200
    assert BackupCodeDevice.objects.get(user=newcomer).remaining() == 9


@pytest.mark.parametrize(
    "typed", ["", "abcd", "abcd-efgh-jkm0", "zzzz-zzzz-zzzz", "abcd-efgh-jkmn-pqrs"]
)
def test_a_made_up_backup_code_is_refused(newcomer, typed):
    backup.new_codes(newcomer)
    assert BackupCodeDevice.objects.get(user=newcomer).verify_token(typed) is False


# --- sessions -------------------------------------------------------------------------------------
def _verified(client: Client, user) -> Client:
    _sign_in(client, user)
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    device.last_t = -1
    device.save()
    assert client.post(TWO_FACTOR, {"code": _code(device)}).status_code == 302
    return client


def test_signing_in_gives_a_new_session_id(client, therapist_a):
    session = client.session
    session["before"] = "sign-in"
    session.save()
    before = session.session_key
    client.cookies["sessionid"] = before
    _sign_in(client, therapist_a)
    after = client.session.session_key
    assert after
    assert after != before
    assert not Session.objects.filter(session_key=before).exists()


def test_an_idle_session_ends_after_30_minutes(client, login, therapist_a):
    login(client, therapist_a)
    assert client.get("/w/").status_code == 200
    session = client.session
    session[LAST_SEEN] = time.time() - 31 * 60
    session.save()
    response = client.get("/w/")
    assert response.status_code == 302
    assert "timeout=1" in response["Location"]
    assert "_auth_user_id" not in client.session


def test_an_admin_session_idles_out_after_15_minutes_a_therapists_does_not(
    client, login, practice_admin, therapist_a
):
    for user, out in ((practice_admin, True), (therapist_a, False)):
        c = login(Client(), user)
        session = c.session
        session[LAST_SEEN] = time.time() - 16 * 60
        session.save()
        assert (c.get("/w/").status_code == 302) is out


def test_a_session_ends_12_hours_after_sign_in_however_active(client, login, therapist_a):
    login(client, therapist_a)
    session = client.session
    session[LOGIN_AT] = time.time() - 12 * 3600 - 5
    session[LAST_SEEN] = time.time() - 60
    session.save()
    response = client.get("/w/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)


def test_the_session_cookie_is_not_older_than_12_hours_by_configuration(settings):
    assert settings.SESSION_COOKIE_AGE == 12 * 3600
    assert settings.SESSION_COOKIE_HTTPONLY
    assert settings.CSRF_COOKIE_HTTPONLY
    assert settings.SESSION_COOKIE_SAMESITE == "Lax"


def test_disabling_an_account_ends_all_its_sessions(login, therapist_b):
    phone, laptop = _verified(Client(), therapist_b), _verified(Client(), therapist_b)
    assert UserSession.objects.filter(user=therapist_b).count() == 2
    therapist_b.is_active = False
    therapist_b.save()
    assert UserSession.objects.filter(user=therapist_b).count() == 0
    for c in (phone, laptop):
        assert c.get("/w/").status_code == 302


def test_changing_the_password_ends_the_other_sessions_only(therapist_a):
    here, elsewhere = _verified(Client(), therapist_a), _verified(Client(), therapist_a)
    new = "a completely different passphrase for alliance"
    response = here.post(
        "/accounts/password/",
        {"old_password": PASSWORD, "new_password1": new, "new_password2": new},
    )
    assert response.status_code == 200
    assert here.get("/w/").status_code == 200
    assert elsewhere.get("/w/").status_code == 302
    assert AuditEvent.objects.filter(
        entity_type="password", user_id=therapist_a.pk, outcome="success"
    ).exists()


def test_a_password_change_needs_the_old_password(therapist_a):
    c = _verified(Client(), therapist_a)
    new = "a completely different passphrase for alliance"
    response = c.post(
        "/accounts/password/", {"old_password": "guess", "new_password1": new, "new_password2": new}
    )
    assert response.status_code == 400
    therapist_a.refresh_from_db()
    assert therapist_a.check_password(PASSWORD)


def test_a_tampered_session_cookie_is_nobody(client, login, therapist_a):
    login(client, therapist_a)
    key = client.session.session_key
    client.cookies["sessionid"] = key[:-1] + ("a" if key[-1] != "a" else "b")
    response = client.get("/w/")
    assert response.status_code == 302
    assert response["Location"].startswith(LOGIN)
    client.cookies["sessionid"] = "../../etc/passwd\x00"
    assert client.get("/w/").status_code == 302


def test_signing_out_clears_the_browser_storage(client, login, therapist_a):
    login(client, therapist_a)
    response = client.post("/accounts/logout/")
    assert response.status_code == 302
    assert "storage" in response["Clear-Site-Data"]
    assert "_auth_user_id" not in client.session


def test_after_sign_in_only_local_addresses_are_followed(therapist_a):
    c = Client()
    _sign_in(c, therapist_a)
    device = TOTPDevice.objects.get(user=therapist_a)
    response = c.post(f"{TWO_FACTOR}?next=https://evil.example/", {"code": _code(device)})
    assert response.status_code == 302
    assert response["Location"] == "/"


def test_a_failed_sign_in_with_an_unknown_username_stores_no_username(client, therapist_a):
    """Someone who types their password into the username box must not find it in the trail."""
    client.post(LOGIN, {"username": "correct horse battery staple", "password": "x"})
    row = AuditEvent.objects.filter(entity_type="login", outcome="deny").last()
    assert row.username == ""
    assert row.detail == {"unknown_username": True}
    assert not AuditEvent.objects.filter(username__icontains="horse").exists()
