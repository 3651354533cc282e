"""Save and resume: without JavaScript ("Save and finish later") and as the client goes (autosave)."""

from __future__ import annotations

import re

import pytest

from alliance_web.care import services
from alliance_web.care.models import CheckInStatus
from tests.web.portal_helpers import NOTHING, audit_rows, stored_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(episode_of_a):
    return services.issue_checkin(episode_of_a)


def test_save_and_finish_later_keeps_partial_answers_and_sends_nothing(client, link, episode_of_a):
    checkin, path = link
    goal = episode_of_a.goals.first()
    response = client.post(
        path, {"action": "save", "phq9.phq9_1": "3", f"goal.{goal.public_id}": "4", "note": "later"}
    )
    html = response.content.decode()
    assert response.status_code == 200
    assert "Your answers are saved" in html
    assert "open the same link again" in html
    assert stored_counts(checkin) == NOTHING
    checkin.refresh_from_db()
    assert checkin.status == CheckInStatus.STARTED
    assert checkin.draft["values"] == {
        "phq9.phq9_1": "3",
        f"goal.{goal.public_id}": "4",
        "note": "later",
    }
    assert audit_rows("checkin_draft")[0].role == "client"


def test_coming_back_shows_the_saved_answers(client, link, episode_of_a):
    _checkin, path = link
    goal = episode_of_a.goals.first()
    client.post(
        path, {"action": "save", "phq9.phq9_1": "3", f"goal.{goal.public_id}": "4", "note": "later"}
    )
    html = client.get(path).content.decode()
    assert 'name="phq9.phq9_1" value="3" checked' in html
    assert f'name="goal.{goal.public_id}" value="4" checked' in html
    assert ">later</textarea>" in html
    assert "We kept the answers you saved before." in html


def test_saving_with_item_9_endorsed_shows_the_crisis_resources(client, link):
    _, path = link
    html = client.post(path, {"action": "save", "phq9.phq9_9": "2"}).content.decode()
    assert "9-8-8" in html
    assert "once you send the check-in" in html


def test_autosave_answers_json(client, link):
    checkin, path = link
    response = client.post(path + "draft/", {"phq9.phq9_2": "1", "csrfmiddlewaretoken": "x"})
    assert response.status_code == 200
    assert response.json() == {"saved": True}
    checkin.refresh_from_db()
    assert checkin.draft["values"] == {"phq9.phq9_2": "1"}


def test_autosave_on_a_sent_check_in_says_it_is_closed(client, link):
    checkin, path = link
    checkin.status = CheckInStatus.COMPLETED
    checkin.save(update_fields=["status"])
    response = client.post(path + "draft/", {"phq9.phq9_2": "1"})
    assert response.status_code == 409
    assert response.json()["closed"] is True


def test_a_stored_draft_that_no_longer_fits_is_ignored_not_shown(client, link):
    checkin, path = link
    checkin.draft = {"values": {"phq9.phq9_1": "7", "gone.item": "1", "note": 5}}
    checkin.save(update_fields=["draft"])
    response = client.get(path)
    assert response.status_code == 200
    assert re.search(r'value="[^"]*" checked', response.content.decode()) is None
