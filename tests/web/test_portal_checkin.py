"""The check-in page behind a link: what the client sees, sending, safety, privacy."""

from __future__ import annotations

import pytest

from alliance_web.audit.models import Action, Outcome
from alliance_web.care import services
from alliance_web.care.models import Alert, AlertKind, CheckInStatus, Response, Score
from tests.web.portal_helpers import audit_rows, full_answers, stored_counts

pytestmark = pytest.mark.django_db


@pytest.fixture
def link(episode_of_a):
    checkin, path = services.issue_checkin(episode_of_a)
    return checkin, path


def test_an_open_link_shows_the_warm_intro_items_verbatim_goals_and_the_note(client, link):
    _, path = link
    response = client.get(path)
    assert response.status_code == 200
    html = response.content.decode()
    assert (
        "These questions help you and your therapist see how things are going. There are no right answers."
        in html
    )
    assert "Little interest or pleasure in doing things" in html
    assert "Thoughts that you would be better off dead or of hurting yourself in some way" in html
    assert "Nearly every day" in html
    assert "Get back to running twice a week" in html
    assert "Is there anything that is easier to write than to say?" in html
    assert "Only your therapist will see this." in html
    assert 'lang="en"' in html


def test_the_token_appears_nowhere_in_the_page_and_referrers_are_off(client, link):
    _, path = link
    token = path.strip("/").split("/")[-1]
    response = client.get(path)
    assert token not in response.content.decode()
    # "same-origin" on a page with a form: a form posted from a "no-referrer" page carries
    # "Origin: null", which the CSRF check refuses; no other site ever gets the address.
    assert response["Referrer-Policy"] == "same-origin"
    assert "no-store" in response["Cache-Control"]


def test_every_read_is_audited_as_the_client(client, link, client_of_a):
    _, path = link
    client.get(path)
    client.get(path)
    reads = audit_rows("checkin", action=Action.READ)
    assert len(reads) == 2
    assert {r.role for r in reads} == {"client"}
    assert {r.patient_id for r in reads} == {str(client_of_a.public_id)}


def test_sending_a_complete_check_in_stores_scores_and_thanks_the_client(
    client, link, episode_of_a
):
    checkin, path = link
    goal = episode_of_a.goals.first()
    data = full_answers(checkin, "1", {f"goal.{goal.public_id}": "6", "note": "Hard week at work."})
    response = client.post(path, data)
    assert response.status_code == 200, response.content.decode()[:3000]
    html = response.content.decode()
    assert "Thank you, Sam" in html
    counts = stored_counts(checkin)
    assert counts["responses"] == len(checkin.instruments)
    assert counts["goal_ratings"] == 1
    assert counts["notes"] == 1
    checkin.refresh_from_db()
    assert checkin.status == CheckInStatus.COMPLETED
    sent = audit_rows("checkin_submission", outcome=Outcome.SUCCESS)
    assert len(sent) == 1
    assert sent[0].role == "client"


def test_endorsing_item_9_shows_crisis_resources_and_raises_a_safety_alert(
    client, link, practice_a
):
    checkin, path = link
    response = client.post(path, full_answers(checkin, "0", {"phq9.phq9_9": "1"}))
    html = response.content.decode()
    assert response.status_code == 200
    assert "Your therapist will see your answers" in html
    assert "9-8-8" in html
    assert "9-1-1" in html
    alert = Alert.objects.get(episode=checkin.episode)
    assert alert.kind == AlertKind.SAFETY


def test_sending_twice_stores_once_and_thanks_both_times(client, link):
    checkin, path = link
    data = full_answers(checkin, "2")
    first = client.post(path, data)
    second = client.post(path, data)
    assert first.status_code == second.status_code == 200
    assert "Thank you" in second.content.decode()
    assert Response.objects.filter(checkin=checkin).count() == len(checkin.instruments)
    assert Score.objects.filter(response__checkin=checkin).count() == len(checkin.instruments)
