"""Property-based fuzzing of the REST API from its own OpenAPI document (schemathesis), once per
role: therapist, supervisor, practice admin and an outsider's token. Every generated request must
get no server error, a documented status code and content type, and a body that matches the
schema. Bounded: a few examples per operation, derandomised (a fixed seed), no example database.
"""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from alliance_web.wsgi import application
from tests.web.api_helpers import bearer

pytestmark = [pytest.mark.django_db(transaction=False), pytest.mark.slow]

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
EXAMPLES = 6


@pytest.fixture
def keep_connection():
    """Schemathesis calls the WSGI application itself, which (unlike Django's test client) fires
    close_old_connections around each request; inside the test's transaction that would close a
    PostgreSQL connection. Keep it, as a server with persistent connections would."""
    from django.core.signals import request_finished, request_started
    from django.db import close_old_connections

    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def world(
    keep_connection, therapist_a, supervisor, practice_admin, outsider, episode_of_a, settings
):
    """A practice with one client, an open episode and its sessions, and an outsider."""
    from alliance_web.care import services
    from alliance_web.care.models import Alert, AlertKind

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    checkin, _ = services.issue_checkin(episode_of_a, session=episode_of_a.sessions.first())
    alert = Alert.objects.create(
        practice_id=episode_of_a.practice_id,
        episode=episode_of_a,
        kind=AlertKind.SAFETY,
        priority=0,
        dedupe_key="fuzz:1",
    )
    return {
        "therapist": therapist_a,
        "supervisor": supervisor,
        "admin": practice_admin,
        "outsider": outsider,
        # Real ids, put into paths and bodies so that the fuzzing reaches past the lookups.
        "ids": {
            "clients": str(episode_of_a.client.public_id),
            "client": str(episode_of_a.client.public_id),
            "episodes": str(episode_of_a.public_id),
            "episode": str(episode_of_a.public_id),
            "sessions": str(episode_of_a.sessions.first().public_id),
            "session": str(episode_of_a.sessions.first().public_id),
            "checkins": str(checkin.public_id),
            "alerts": str(alert.public_id),
            "goals": str(episode_of_a.goals.first().public_id),
        },
    }


@pytest.mark.parametrize("role", ["therapist", "supervisor", "admin", "outsider"])
def test_the_api_survives_fuzzing_for_each_role(world, role):
    headers = {"Authorization": f"Bearer {bearer(world[role])}"}
    schema = schemathesis.openapi.from_wsgi("/api/v1/openapi.json", application)
    failures: list[str] = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert len(operations) > 20

    for operation in operations:
        try:
            _fuzz(operation, headers, world["ids"])()
        except Exception as exc:  # noqa: BLE001 - schemathesis reports failures as exception groups
            failures.append(f"{operation.label}: {str(exc)[:1500]}")
    assert not failures, "\n\n".join(failures)


def _fuzz(operation, headers, ids):
    @given(case=operation.as_strategy())
    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        deadline=None,
        database=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    def exercise(case):
        if case.path_parameters and "public_id" in case.path_parameters:
            resource = case.path.split("/")[3]
            case.path_parameters["public_id"] = ids.get(resource, case.path_parameters["public_id"])
        if isinstance(case.body, dict):
            for key in ("client", "episode", "session"):
                if isinstance(case.body.get(key), str):
                    case.body[key] = ids[key]
        response = case.call(headers=headers)
        case.validate_response(response, checks=CHECKS)

    return exercise
