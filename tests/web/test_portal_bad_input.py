"""SECURITY.md 4a, the check-in rows: every bad input is named next to its field, the form keeps what
was typed, nothing is stored, the saved draft is untouched, and the audit trail says "invalid"."""

from __future__ import annotations

import pytest
from django.test import Client

from alliance_web.audit.models import Outcome
from alliance_web.care import services
from alliance_web.care.models import CheckInStatus
from tests.web.portal_helpers import NOTHING, audit_rows, full_answers, stored_counts

pytestmark = pytest.mark.django_db

SAVED = {"values": {"phq9.phq9_1": "2"}, "saved_at": "2026-01-01T00:00:00+00:00"}


@pytest.fixture
def started(episode_of_a):
    """A check-in the client already started: a saved draft that bad input must not touch."""
    checkin, path = services.issue_checkin(episode_of_a)
    services.save_draft(checkin, SAVED)
    checkin.refresh_from_db()
    return checkin, path


def assert_refused(response, checkin, field_id: str, message: str, audit_field: str):
    html = response.content.decode()
    assert response.status_code == 400
    assert 'class="error-summary"' in html
    assert f'id="{field_id}-error"' in html, f"no error next to {field_id}"
    assert message in html
    assert stored_counts(checkin) == NOTHING
    checkin.refresh_from_db()
    assert checkin.draft == SAVED
    assert checkin.status == CheckInStatus.STARTED
    invalid = audit_rows("checkin_submission", outcome=Outcome.INVALID)
    assert len(invalid) == 1
    assert invalid[0].role == "client"
    assert audit_field in invalid[0].detail["fields"]
    return html


@pytest.mark.parametrize(
    "value",
    [
        "4",
        "-1",
        "3.0",
        "null",
        "100000000000000000000",
        "1e20",
        "NaN",
        "inf",
        " 2",
        "２",
        "<script>",
    ],
    ids=[
        "above-scale",
        "negative",
        "float-text",
        "null",
        "1e20-digits",
        "1e20",
        "nan",
        "inf",
        "padded",
        "fullwidth",
        "markup",
    ],
)
def test_an_out_of_scale_answer_is_refused_next_to_its_field(client, started, value):
    checkin, path = started
    response = client.post(path, full_answers(checkin, "1", {"phq9.phq9_1": value}))
    assert_refused(response, checkin, "f-phq9-phq9_1", "Choose one of the answers.", "phq9.phq9_1")


def test_a_missing_item_9_is_refused_and_the_other_answers_are_kept(client, started):
    checkin, path = started
    data = full_answers(checkin, "2", {"note": "typed before the error"})
    del data["phq9.phq9_9"]
    response = client.post(path, data)
    html = assert_refused(
        response, checkin, "f-phq9-phq9_9", "Please answer this question.", "phq9.phq9_9"
    )
    assert 'name="gad7.gad7_1" value="2" checked' in html
    assert "typed before the error</textarea>" in html
    assert '<a href="#f-phq9-phq9_9">' in html


def test_an_unknown_item_key_is_refused(client, started):
    checkin, path = started
    response = client.post(path, full_answers(checkin, "1", {"phq9.phq9_99": "1"}))
    assert_refused(response, checkin, "f-phq9", "a question that does not exist", "phq9")


def test_an_unexpected_extra_key_is_refused(client, started):
    checkin, path = started
    response = client.post(path, full_answers(checkin, "1", {"is_admin": "1"}))
    assert response.status_code == 400
    assert "The form sent something we did not expect" in response.content.decode()
    assert stored_counts(checkin) == NOTHING
    checkin.refresh_from_db()
    assert checkin.draft == SAVED


def test_answers_for_a_questionnaire_not_in_this_check_in_are_refused(client, started):
    checkin, path = started
    response = client.post(path, full_answers(checkin, "1", {"who5.who5_1": "3"}))
    html = response.content.decode()
    assert response.status_code == 400
    assert "This questionnaire is not part of this check-in." in html
    assert stored_counts(checkin) == NOTHING
    checkin.refresh_from_db()
    assert checkin.draft == SAVED
    assert audit_rows("checkin_submission", outcome=Outcome.INVALID)[0].detail["fields"] == ["who5"]


def test_an_oversized_note_is_refused_and_kept_for_editing(client, started):
    checkin, path = started
    note = "x" * (services.NOTE_MAX_CHARS + 1)
    response = client.post(path, full_answers(checkin, "1", {"note": note}))
    html = assert_refused(
        response, checkin, "f-note", "Please keep the note under 5,000 characters", "note"
    )
    assert note in html


@pytest.mark.parametrize("value", ["11", "-1", "7.5", "seven", "1e1"])
def test_an_out_of_range_goal_rating_is_refused(client, started, episode_of_a, value):
    checkin, path = started
    goal = episode_of_a.goals.first()
    key = f"goal.{goal.public_id}"
    response = client.post(path, full_answers(checkin, "1", {key: value}))
    assert_refused(
        response, checkin, f"f-goal-{goal.public_id}", "Choose a number from 0 to 10.", key
    )


def test_a_rating_for_another_episodes_goal_is_refused(client, started, therapist_a):
    other_client = services.create_client(therapist_a, preferred_name="Alex", therapist=therapist_a)
    other = services.open_episode(
        therapist_a, other_client, concerns=["anxiety"], goals=["Take the bus"]
    )
    foreign = other.goals.first()
    checkin, path = started
    response = client.post(path, full_answers(checkin, "1", {f"goal.{foreign.public_id}": "5"}))
    assert response.status_code == 400
    assert stored_counts(checkin) == NOTHING
    assert "Take the bus" not in response.content.decode()


def test_two_answers_to_one_question_are_refused(client, started):
    checkin, path = started
    data = full_answers(checkin, "1")
    data["phq9.phq9_2"] = ["1", "3"]
    response = client.post(path, data)
    assert_refused(response, checkin, "f-phq9-phq9_2", "Choose only one answer.", "phq9.phq9_2")


def test_a_bad_autosave_leaves_the_draft_untouched(client, started):
    checkin, path = started
    response = client.post(path + "draft/", {"phq9.phq9_1": "9"})
    assert response.status_code == 400
    assert response.json()["errors"] == {"phq9.phq9_1": "Choose one of the answers."}
    checkin.refresh_from_db()
    assert checkin.draft == SAVED
    assert audit_rows("checkin_draft", outcome=Outcome.INVALID)


@pytest.mark.parametrize(
    "token", [None, "forged-token-0123456789abcdef0123456789abcdef0123456789abcdef01"]
)
def test_a_missing_or_forged_csrf_token_stores_nothing_and_keeps_the_answers(started, token):
    checkin, path = started
    browser = Client(enforce_csrf_checks=True)
    browser.get(path)  # sets the CSRF cookie, as a real visit does
    data = full_answers(checkin, "2", {"note": "still here"})
    if token:
        data["csrfmiddlewaretoken"] = token
    response = browser.post(path, data)
    html = response.content.decode()
    assert response.status_code == 403
    assert "Your answers were not sent yet" in html
    assert "still here</textarea>" in html
    assert 'name="phq9.phq9_3" value="2" checked' in html
    assert stored_counts(checkin) == NOTHING
    checkin.refresh_from_db()
    assert checkin.draft == SAVED
    denied = audit_rows("checkin_submission", outcome=Outcome.DENY)
    assert len(denied) == 1
    assert denied[0].detail == {"csrf": True}


def test_a_csrf_failure_on_autosave_answers_json_and_saves_nothing(started):
    checkin, path = started
    browser = Client(enforce_csrf_checks=True)
    response = browser.post(path + "draft/", {"phq9.phq9_1": "3"})
    assert response.status_code == 403
    assert response.json()["reload"] is True
    checkin.refresh_from_db()
    assert checkin.draft == SAVED


def test_an_oversized_body_is_refused_without_storing(client, started):
    checkin, path = started
    response = client.post(path, full_answers(checkin, "1", {"note": "x" * 3_000_000}))
    assert response.status_code == 400
    assert stored_counts(checkin) == NOTHING


def test_too_many_fields_are_refused_without_storing(client, started):
    checkin, path = started
    data = full_answers(checkin, "1")
    data.update({f"junk{i}": "1" for i in range(1200)})
    response = client.post(path, data)
    assert response.status_code == 400
    assert stored_counts(checkin) == NOTHING
