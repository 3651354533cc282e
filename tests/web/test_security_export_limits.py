"""Anti-automation on exports of client data (ASVS 5.0 2.4.1, ``alliance_web.audit.ratelimit``):
each person may make ``ALLIANCE_EXPORT_LIMIT_PER_HOUR`` exports in any hour, counted from the
audit trail; the next one is a 429 with ``Retry-After``, an audit deny and no file."""

from __future__ import annotations

from datetime import timedelta
from unittest import mock

import pytest
from django.test import override_settings
from django.utils import timezone

from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.ratelimit import recent_exports
from alliance_web.audit.trail import Actor, record
from alliance_web.workspace import report
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import audit_head, audit_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, sam, priya = wh.fast_passwords, wh.sam, wh.priya


@pytest.fixture(autouse=True)
def limit_of_three():
    """A small limit, so that reaching it takes three exports."""
    with override_settings(ALLIANCE_EXPORT_LIMIT_PER_HOUR=3):
        yield


@pytest.fixture(autouse=True)
def quick_pdf(monkeypatch):
    """The built-in font: no font files to load for each report."""
    monkeypatch.setattr(report, "FONT_PATHS", ())


def report_url(episode) -> str:
    return f"/w/clients/{episode.client.public_id}/report.pdf"


def record_url(episode, suffix: str = "json") -> str:
    return f"/privacy/clients/{episode.client.public_id}/record.{suffix}"


def exports_at(user, episode, when, n: int) -> None:
    """``n`` successful progress-report exports by ``user``, audited at ``when``."""
    with mock.patch("django.utils.timezone.now", return_value=when):
        for _ in range(n):
            record(
                Actor.of(user),
                Action.EXECUTE,
                "progress_report",
                episode.public_id,
                episode.client.public_id,
                purpose="export",
                detail={"format": "pdf", "bytes": 1},
            )


def assert_refused(response, count: int = 3, limit: int = 3) -> None:
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert "Content-Disposition" not in response
    assert not response.content.startswith(b"%PDF")
    text = response.content.decode()
    assert f"You have made {count} exports in the last hour; the limit is {limit}." in text
    assert "ask your practice admin to raise ALLIANCE_EXPORT_LIMIT_PER_HOUR" in text


def test_exports_under_the_limit_work(client, login, therapist_a, sam):
    login(client, therapist_a)
    for _ in range(3):
        response = client.get(report_url(sam))
        assert response.status_code == 200
        assert response.content.startswith(b"%PDF")
    assert recent_exports(therapist_a.pk).count() == 3


def test_the_export_over_the_limit_is_a_429_with_retry_after_an_audit_deny_and_no_file(
    client, login, therapist_a, sam
):
    login(client, therapist_a)
    for _ in range(3):
        assert client.get(report_url(sam)).status_code == 200
    head = audit_head()
    response = client.get(report_url(sam))
    assert_refused(response)
    assert "Too many exports" in response.content.decode()  # the workspace's HTML page
    assert response["Content-Type"].startswith("text/html")
    deny = audit_since(head, outcome=Outcome.DENY).get()
    assert (deny.action, deny.entity_type, deny.user_id) == ("E", "progress_report", therapist_a.pk)
    assert deny.patient_id == str(sam.client.public_id)
    assert deny.detail == {"reason": "rate_limited", "count": 3, "limit": 3}
    assert not audit_since(head, outcome=Outcome.SUCCESS, action=Action.EXECUTE).exists()


def test_all_kinds_of_export_count_together_and_the_record_export_is_refused_too(
    client, login, therapist_a, sam
):
    login(client, therapist_a)
    assert client.get(report_url(sam)).status_code == 200
    assert client.get(record_url(sam, "json")).status_code == 200
    assert client.get(record_url(sam, "pdf")).status_code == 200
    head = audit_head()
    for suffix in ("json", "pdf"):
        response = client.get(record_url(sam, suffix))
        assert_refused(response)
        assert response["Content-Type"].startswith("text/html")
    denies = audit_since(head, outcome=Outcome.DENY, entity_type="client_export")
    assert [d.detail["reason"] for d in denies] == ["rate_limited", "rate_limited"]
    assert not audit_since(head, entity_type="client_export", outcome=Outcome.SUCCESS).exists()


def test_exports_older_than_an_hour_do_not_count(client, login, therapist_a, sam):
    exports_at(therapist_a, sam, timezone.now() - timedelta(hours=1, minutes=1), 10)
    login(client, therapist_a)
    assert client.get(report_url(sam)).status_code == 200


def test_retry_after_is_when_the_oldest_export_in_the_window_leaves_it(
    client, login, therapist_a, sam
):
    exports_at(therapist_a, sam, timezone.now() - timedelta(minutes=50), 1)
    exports_at(therapist_a, sam, timezone.now() - timedelta(minutes=5), 2)
    login(client, therapist_a)
    response = client.get(report_url(sam))
    assert_refused(response)
    assert 9 * 60 <= int(response["Retry-After"]) <= 10 * 60
    at = timezone.localtime(timezone.now() + timedelta(seconds=int(response["Retry-After"])))
    assert f"Try again after {at:%H:%M}" in response.content.decode()


def test_the_limit_is_per_person(client, login, therapist_a, therapist_b, sam, priya):
    exports_at(therapist_a, sam, timezone.now() - timedelta(minutes=1), 3)
    login(client, therapist_a)
    assert client.get(report_url(sam)).status_code == 429
    client.logout()
    login(client, therapist_b)
    assert client.get(report_url(priya)).status_code == 200


def test_refusals_and_per_client_audit_rows_do_not_count_as_exports(
    api_as, practice_admin, therapist_a, sam, priya
):
    api = api_as(practice_admin)
    head = audit_head()
    assert api.get("/api/v1/exports/practice.csv").status_code == 200
    # One row per client included, plus the export itself: one export.
    assert audit_since(head, entity_type="practice_export").count() == 3
    assert recent_exports(practice_admin.pk).count() == 1
    # A role refusal stays a 403 and is no export.
    assert api.get("/api/v1/exports/research.csv").status_code == 403
    assert recent_exports(practice_admin.pk).count() == 1


def test_the_api_refuses_with_a_json_429_and_retry_after(api_as, practice_admin, sam):
    api = api_as(practice_admin)
    for _ in range(3):
        assert api.get("/api/v1/exports/practice.csv").status_code == 200
    head = audit_head()
    response = api.get("/api/v1/exports/practice.csv")
    assert response.status_code == 429
    assert 1 <= int(response["Retry-After"]) <= 3600
    assert "Content-Disposition" not in response
    body = response.json()
    assert (body["status"], body["code"]) == (429, "too_many_exports")
    assert body["detail"].startswith("You have made 3 exports in the last hour; the limit is 3.")
    deny = audit_since(head).get()
    assert (deny.outcome, deny.entity_type, deny.detail["reason"]) == (
        "deny",
        "practice_export",
        "rate_limited",
    )


def test_the_research_export_is_limited_and_a_wrong_role_still_gets_403(
    api_as, supervisor, therapist_a, sam
):
    exports_at(supervisor, sam, timezone.now() - timedelta(minutes=1), 3)
    assert api_as(supervisor).get("/api/v1/exports/research.csv").status_code == 429
    exports_at(therapist_a, sam, timezone.now() - timedelta(minutes=1), 3)
    assert api_as(therapist_a).get("/api/v1/exports/research.csv").status_code == 403


def test_a_limit_of_zero_switches_it_off(client, login, therapist_a, sam):
    exports_at(therapist_a, sam, timezone.now() - timedelta(minutes=1), 5)
    login(client, therapist_a)
    with override_settings(ALLIANCE_EXPORT_LIMIT_PER_HOUR=0):
        assert client.get(report_url(sam)).status_code == 200
