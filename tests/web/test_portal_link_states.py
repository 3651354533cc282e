"""What a link shows when it cannot be answered: never a traceback, always what to do next."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alliance_web.audit.models import Action, Outcome
from alliance_web.care import services
from alliance_web.care.models import CheckInKind, CheckInStatus, Response
from tests.web.portal_helpers import audit_rows, full_answers

pytestmark = pytest.mark.django_db


def test_an_unknown_token_is_a_friendly_404_and_is_audited(client):
    response = client.get("/c/AAAAAAAAAAAAAAAAAAAAAAAA/")
    html = response.content.decode()
    assert response.status_code == 404
    assert "We couldn't find this check-in" in html
    assert "ask your therapist for a new link" in html
    assert response["Referrer-Policy"] == "no-referrer"
    assert audit_rows("checkin_link", outcome=Outcome.DENY)


@pytest.mark.parametrize("path", ["/c/x/", "/c/a/b/c/", "/c/AAAAAAAAAAAA/draft/extra/", "/c/%00/"])
def test_any_other_address_under_c_is_the_same_friendly_404(client, path):
    response = client.get(path)
    assert response.status_code == 404
    assert "We couldn't find this check-in" in response.content.decode()


def test_a_link_that_lost_its_last_slash_still_opens(client, episode_of_a):
    _, path = services.issue_checkin(episode_of_a)
    response = client.get(path.rstrip("/"))
    assert response.status_code == 302
    assert response["Location"] == path


def test_an_expired_link_says_to_ask_for_a_new_one(client, episode_of_a):
    _checkin, path = services.issue_checkin(
        episode_of_a, opens_at=timezone.now() - timedelta(days=5), hours_valid=24
    )
    response = client.get(path)
    html = response.content.decode()
    assert response.status_code == 410
    assert "This check-in link has expired" in html
    assert "ask your therapist for a new link" in html
    assert audit_rows("checkin", action=Action.READ)[0].detail["status"] == "expired"


def test_sending_to_an_expired_link_stores_nothing_and_says_so(client, episode_of_a):
    checkin, path = services.issue_checkin(
        episode_of_a, opens_at=timezone.now() - timedelta(days=5), hours_valid=24
    )
    response = client.post(path, full_answers(checkin))
    assert response.status_code == 410
    assert "This check-in link has expired" in response.content.decode()
    assert not Response.objects.filter(checkin=checkin).exists()


def test_a_cancelled_check_in_says_it_is_no_longer_needed(client, episode_of_a):
    checkin, path = services.issue_checkin(episode_of_a)
    checkin.status = CheckInStatus.CANCELLED
    checkin.save(update_fields=["status"])
    response = client.get(path)
    assert response.status_code == 410
    assert "no longer needed" in response.content.decode()


def test_a_completed_check_in_says_it_was_already_sent(client, episode_of_a):
    checkin, path = services.issue_checkin(episode_of_a)
    client.post(path, full_answers(checkin))
    response = client.get(path)
    html = response.content.decode()
    assert response.status_code == 200
    assert "You've already sent this check-in" in html
    assert "<form" not in html


def test_a_different_invalid_post_to_a_completed_check_in_shows_already_sent(client, episode_of_a):
    checkin, path = services.issue_checkin(episode_of_a)
    client.post(path, full_answers(checkin))
    response = client.post(path, {"phq9.phq9_1": "9"})
    assert "You've already sent this check-in" in response.content.decode()
    assert Response.objects.filter(checkin=checkin).count() == len(checkin.instruments)


def test_a_check_in_that_opens_later_says_when(client, episode_of_a):
    _, path = services.issue_checkin(episode_of_a, opens_at=timezone.now() + timedelta(days=2))
    response = client.get(path)
    assert response.status_code == 200
    assert "isn't open yet" in response.content.decode()


def test_a_therapists_own_rating_never_opens_in_the_portal(client, episode_of_a):
    _, path = services.issue_checkin(episode_of_a, kind=CheckInKind.THERAPIST)
    assert client.get(path).status_code == 404


def test_the_check_in_page_answers_only_get_and_post(client, episode_of_a):
    _, path = services.issue_checkin(episode_of_a)
    assert client.put(path).status_code == 405
    assert client.get(path + "draft/").status_code == 405
