"""Who gets into the REST API: bearer tokens (per user and practice, revocable) and signed-in
sessions that passed two-factor sign-in; everyone else gets a JSON 401."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django.utils import timezone
from rest_framework.test import APIClient

from alliance_web.api.models import ApiToken
from tests.web.api_helpers import bearer, client_with_token

pytestmark = pytest.mark.django_db

URL = "/api/v1/clients/"


def test_no_credentials_get_a_json_401_that_names_the_scheme():
    response = APIClient().get(URL)
    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Bearer"
    assert response.json()["status"] == 401
    assert response.json()["detail"]


@pytest.mark.parametrize("header", ["Bearer nonsense", "Bearer ", "Bearer alli_" + "x" * 43])
def test_an_unknown_or_empty_token_is_refused(header):
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=header)
    response = api.get(URL)
    assert response.status_code == 401
    assert response.json()["code"] in ("authentication_failed", "not_authenticated")


def test_a_valid_token_works_and_records_its_last_use(therapist_a):
    raw = bearer(therapist_a)
    response = client_with_token(raw).get(URL)
    assert response.status_code == 200
    token = ApiToken.objects.get(user=therapist_a)
    assert token.last_used_at is not None
    assert token.key_hash != raw
    assert raw not in token.hint + token.key_hash


def test_a_revoked_token_is_refused(therapist_a):
    raw = bearer(therapist_a)
    ApiToken.objects.update(revoked_at=timezone.now())
    assert client_with_token(raw).get(URL).status_code == 401


def test_a_token_stops_working_when_its_user_moves_to_another_practice(therapist_a, practice_b):
    raw = bearer(therapist_a)
    therapist_a.practice = practice_b
    therapist_a.save()
    assert client_with_token(raw).get(URL).status_code == 401


def test_a_token_of_a_disabled_user_is_refused(therapist_a):
    raw = bearer(therapist_a)
    therapist_a.is_active = False
    therapist_a.save()
    assert client_with_token(raw).get(URL).status_code == 401


def test_a_session_without_two_factor_sign_in_is_refused(therapist_a):
    api = APIClient()
    api.force_login(therapist_a)
    response = api.get(URL)
    assert response.status_code in (401, 403)
    assert "two-factor" in response.json()["detail"]


def test_a_session_that_passed_two_factor_sign_in_works(client, therapist_a, login):
    login(client, therapist_a)
    assert client.get(URL).status_code == 200


def test_the_token_command_issues_lists_and_revokes(therapist_a):
    out, err = StringIO(), StringIO()
    call_command("api_token", "issue", "therapist_a", "--name", "ehr sync", stdout=out, stderr=err)
    raw = out.getvalue().strip()
    assert raw.startswith("alli_")
    assert "shown only now" in err.getvalue()
    assert client_with_token(raw).get(URL).status_code == 200

    listing = StringIO()
    call_command("api_token", "list", stdout=listing)
    assert "ehr sync" in listing.getvalue()
    assert raw not in listing.getvalue()

    call_command("api_token", "revoke", raw[:12], stdout=StringIO())
    assert client_with_token(raw).get(URL).status_code == 401
