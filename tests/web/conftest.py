"""Personas for the web tests. Each comment says what the persona may do.

practice_a                     the practice most tests happen in
  therapist_a                  treats client_of_a; sees only their own caseload
  therapist_b                  same practice, other caseload: must not see client_of_a
  supervisor                   sees practice_a's clients (unless a client withdrew consent);
                               therapists' private notes only when shared; never clients' private notes
  practice_admin               configures practice_a; sees no clinical content
practice_b
  outsider                     a therapist in another practice: sees nothing of practice_a
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_otp import DEVICE_ID_SESSION_KEY
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_web.accounts.models import Role, User
from alliance_web.care import services
from alliance_web.care.models import Practice

PASSWORD = "correct horse battery staple"


def make_user(practice, username, role, **extra):
    user = User.objects.create_user(
        username=username,
        password=PASSWORD,
        practice=practice,
        role=role,
        display_name=username.replace("_", " ").title(),
        **extra,
    )
    TOTPDevice.objects.create(user=user, name="authenticator", confirmed=True)
    return user


@pytest.fixture
def practice_a(db):
    return Practice.objects.create(name="Riverside Counselling", slug="riverside")


@pytest.fixture
def practice_b(db):
    return Practice.objects.create(name="Hillside Therapy", slug="hillside")


@pytest.fixture
def therapist_a(practice_a):
    return make_user(practice_a, "therapist_a", Role.THERAPIST)


@pytest.fixture
def therapist_b(practice_a):
    return make_user(practice_a, "therapist_b", Role.THERAPIST)


@pytest.fixture
def supervisor(practice_a):
    return make_user(practice_a, "supervisor", Role.SUPERVISOR)


@pytest.fixture
def practice_admin(practice_a):
    return make_user(practice_a, "practice_admin", Role.ADMIN)


@pytest.fixture
def outsider(practice_b):
    return make_user(practice_b, "outsider", Role.THERAPIST)


@pytest.fixture
def client_of_a(therapist_a):
    return services.create_client(
        therapist_a, preferred_name="Sam", therapist=therapist_a, email="sam@example.org"
    )


@pytest.fixture
def episode_of_a(therapist_a, client_of_a):
    return services.open_episode(
        therapist_a,
        client_of_a,
        concerns=["depression"],
        goals=["Get back to running twice a week", "Sleep through the night"],
        first_session_at=timezone.now() - timedelta(days=1),
    )


@pytest.fixture
def login():
    """``login(client, user)``: a signed-in session that has passed two-factor sign-in."""

    def _login(django_client, user):
        django_client.force_login(user)
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        session = django_client.session
        session[DEVICE_ID_SESSION_KEY] = device.persistent_id
        session.save()
        return django_client

    return _login


@pytest.fixture
def api_as(db):
    """``api_as(user)``: a REST/FHIR API client sending a fresh bearer token of ``user``."""
    from tests.web.api_helpers import bearer, client_with_token

    return lambda user: client_with_token(bearer(user))
