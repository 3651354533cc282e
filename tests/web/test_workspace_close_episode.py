"""Closing an episode with its end reason; the outcome classification comes from the service."""

from __future__ import annotations

import pytest
from django.test import Client

from alliance_web.care import services
from alliance_web.care.models import CheckIn, CheckInStatus, Episode, EpisodeStatus
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import audit_head, audit_since, denied_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, robin, sam = wh.fast_passwords, wh.robin, wh.sam


def url(episode) -> str:
    return f"/w/episodes/{episode.public_id}/close/"


def test_the_form_explains_what_closing_does(client, login, therapist_a, robin):
    login(client, therapist_a)
    html = client.get(url(robin)).content.decode()
    assert "outcome classification" in html
    assert 'name="end_reason"' in html


def test_closing_stores_the_end_reason_and_the_services_classification(
    client, login, therapist_a, robin, monkeypatch
):
    from alliance_web.care import analysis

    monkeypatch.setattr(
        analysis,
        "episode_outcome",
        lambda e: {
            "category": "recovered",
            "pre": 17,
            "post": 6,
            "instrument": "phq9",
            "method": "jacobson_truax",
        },
    )
    checkin, _ = services.issue_checkin(robin)
    login(client, therapist_a)
    head = audit_head()
    response = client.post(url(robin), {"end_reason": "planned"})
    assert response.status_code == 302
    robin.refresh_from_db()
    assert robin.status == EpisodeStatus.CLOSED
    assert robin.end_reason == "planned"
    assert robin.outcome["category"] == "recovered"
    assert CheckIn.objects.get(pk=checkin.pk).status == CheckInStatus.CANCELLED
    assert audit_since(head, entity_type="episode", patient_id=str(robin.client.public_id)).exists()
    html = client.get(response["Location"]).content.decode()
    assert "Episode closed" in html
    assert "Recovered" in html
    assert "Outcome: Recovered." in html


def test_an_episode_without_a_classification_says_why(
    client, login, therapist_a, robin, monkeypatch
):
    from alliance_web.care import analysis

    monkeypatch.setattr(analysis, "episode_outcome", lambda e: None)
    login(client, therapist_a)
    response = client.post(url(robin), {"end_reason": "dropout"}, follow=True)
    assert "No outcome classification" in response.content.decode()


@pytest.mark.parametrize("value", ["", "vanished", "planned' OR 1=1"])
def test_an_unknown_end_reason_is_refused(client, login, therapist_a, robin, value):
    login(client, therapist_a)
    response = client.post(url(robin), {"end_reason": value})
    assert response.status_code == 400
    assert Episode.objects.get(pk=robin.pk).status == EpisodeStatus.OPEN


def test_a_closed_episode_cannot_be_closed_again(client, login, therapist_a, robin):
    login(client, therapist_a)
    client.post(url(robin), {"end_reason": "planned"})
    closed_at = Episode.objects.get(pk=robin.pk).closed_at
    response = client.post(url(robin), {"end_reason": "dropout"})
    assert response.status_code == 302
    assert Episode.objects.get(pk=robin.pk).end_reason == "planned"
    assert Episode.objects.get(pk=robin.pk).closed_at == closed_at


@pytest.mark.parametrize(
    ("persona", "status"),
    [("supervisor", 403), ("therapist_b", 404), ("practice_admin", 404), ("outsider", 404)],
)
def test_only_the_treating_therapist_closes_an_episode(
    client, login, request, robin, persona, status
):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.post(url(robin), {"end_reason": "planned"}).status_code == status
    assert Episode.objects.get(pk=robin.pk).status == EpisodeStatus.OPEN
    assert denied_since(head)


def test_closing_needs_a_csrf_token(login, therapist_a, robin):
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    assert browser.post(url(robin), {"end_reason": "planned"}).status_code == 403
    assert Episode.objects.get(pk=robin.pk).status == EpisodeStatus.OPEN
