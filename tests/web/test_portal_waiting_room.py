"""The waiting-room tablet: a short code opens the same check-in, without the link token ever
reaching the tablet; guessing is throttled and every failure is audited."""

from __future__ import annotations

import pytest

from alliance_web.audit.models import Outcome
from alliance_web.care import services
from alliance_web.care.models import CheckInStatus, Response
from alliance_web.care.tokens import link_token
from alliance_web.portal import views
from tests.web.portal_helpers import audit_rows, full_answers

pytestmark = pytest.mark.django_db


@pytest.fixture
def code(episode_of_a, therapist_a):
    checkin, _ = services.issue_checkin(episode_of_a)
    return checkin, services.start_waiting_room_code(therapist_a, checkin)


def test_the_code_page_asks_for_the_code(client):
    response = client.get("/c/")
    html = response.content.decode()
    assert response.status_code == 200
    assert '<label for="code">Your code</label>' in html


def test_a_code_opens_the_same_check_in_without_the_token(client, code):
    checkin, value = code
    response = client.post(
        "/c/", {"code": value.lower()[:4] + " " + value.lower()[4:]}, follow=True
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert response.redirect_chain[-1][0] == "/c/tablet/"
    assert "Little interest or pleasure in doing things" in html
    assert link_token(checkin) not in html
    assert audit_rows("checkin_code", outcome=Outcome.SUCCESS)
    assert audit_rows("checkin")[-1].detail["via"] == "code"


def test_sending_from_the_tablet_stores_once_and_ends_the_tablet_session(client, code):
    checkin, value = code
    client.post("/c/", {"code": value})
    response = client.post("/c/tablet/", full_answers(checkin, "1"))
    html = response.content.decode()
    assert "Thank you" in html
    assert "hand the tablet back" in html
    assert Response.objects.filter(checkin=checkin).count() == len(checkin.instruments)
    # The next person on the tablet gets the code page, not the check-in.
    again = client.get("/c/tablet/")
    assert again.status_code == 302
    assert again["Location"] == "/c/"


def test_save_and_finish_later_on_the_tablet_ends_the_session(client, code):
    checkin, value = code
    client.post("/c/", {"code": value})
    response = client.post("/c/tablet/", {"action": "save", "phq9.phq9_1": "2"})
    assert "Your answers are saved" in response.content.decode()
    checkin.refresh_from_db()
    assert checkin.draft["values"] == {"phq9.phq9_1": "2"}
    assert client.get("/c/tablet/").status_code == 302


def test_a_wrong_code_is_refused_and_audited(client, code):
    response = client.post("/c/", {"code": "ZZZZ2222"})
    html = response.content.decode()
    assert response.status_code == 400
    assert "That code didn&#x27;t work" in html
    assert 'aria-invalid="true"' in html
    assert len(audit_rows("checkin_code", outcome=Outcome.DENY)) == 1


def test_guessing_is_throttled_per_address(client, code):
    _, value = code
    for _ in range(views.CODE_FAILURE_LIMIT):
        assert client.post("/c/", {"code": "ZZZZ2222"}).status_code == 400
    response = client.post("/c/", {"code": value})  # even the right code waits now
    assert response.status_code == 429
    assert "Too many codes were tried" in response.content.decode()
    other_tablet = client.__class__(REMOTE_ADDR="10.0.0.9")
    assert other_tablet.post("/c/", {"code": value}).status_code == 302


def test_a_code_for_a_completed_check_in_says_it_was_sent(client, code):
    checkin, value = code
    checkin.status = CheckInStatus.COMPLETED
    checkin.save(update_fields=["status"])
    response = client.post("/c/", {"code": value})
    assert "You've already sent this check-in" in response.content.decode()


def test_the_tablet_page_without_a_code_goes_to_the_code_page(client):
    response = client.get("/c/tablet/")
    assert response.status_code == 302
    assert response["Location"] == "/c/"
    assert client.post("/c/tablet/draft/", {}).status_code == 404
