"""After sending: the client's own progress (when the therapist enabled it), and the short
post-session rating."""

from __future__ import annotations

import pytest

from alliance_web.care import services
from alliance_web.care.models import Response
from tests.web.portal_helpers import full_answers

pytestmark = pytest.mark.django_db


def send(client, episode, value, extra=None):
    checkin, path = services.issue_checkin(episode)
    return client.post(path, full_answers(checkin, value, extra)).content.decode()


def test_without_the_therapists_permission_there_is_no_progress_view(client, episode_of_a):
    send(client, episode_of_a, "3")
    html = send(client, episode_of_a, "1")
    assert "Your progress" not in html
    assert "<svg" not in html


def test_the_first_check_in_explains_that_progress_comes_later(client, episode_of_a, client_of_a):
    client_of_a.progress_view_enabled = True
    client_of_a.save(update_fields=["progress_view_enabled"])
    html = send(client, episode_of_a, "2")
    assert "Your progress" in html
    assert "This is your first check-in." in html


def test_progress_is_told_in_words_and_a_chart_with_up_meaning_better(
    client, episode_of_a, client_of_a
):
    client_of_a.progress_view_enabled = True
    client_of_a.save(update_fields=["progress_view_enabled"])
    goal = episode_of_a.goals.first()
    send(client, episode_of_a, "3", {f"goal.{goal.public_id}": "2"})
    html = send(client, episode_of_a, "1", {f"goal.{goal.public_id}": "6"})
    # PHQ-9 from 27 to 9: a drop of 18, beyond the reliable-change threshold of 6 points.
    assert "Things look clearly better than when you started." in html
    assert "Your answers went from 27 to 9." in html
    assert "lower means better" in html
    assert 'class="progress-chart"' in html
    assert 'role="img"' in html
    assert "▲ Better" in html
    assert "Now: <strong>6 out of 10</strong>" in html
    assert "at the start: 2" in html
    assert "Get back to running twice a week" in html


def test_a_small_change_is_called_about_the_same(client, episode_of_a, client_of_a):
    client_of_a.progress_view_enabled = True
    client_of_a.save(update_fields=["progress_view_enabled"])
    send(client, episode_of_a, "2")
    checkin, path = services.issue_checkin(episode_of_a)
    data = full_answers(checkin, "2", {"phq9.phq9_1": "1", "phq9.phq9_2": "1"})
    html = client.post(path, data).content.decode()
    assert "about the same as when you started" in html


def test_the_post_session_rating_is_the_alliance_form_and_says_under_a_minute(client, episode_of_a):
    checkin, path = services.issue_checkin(episode_of_a, kind="post")
    html = client.get(path).content.decode()
    assert "under a minute" in html
    assert "After your session" in html
    assert 'name="note"' not in html
    assert 'name="goal.' not in html
    assert "Save and finish later" not in html
    response = client.post(path, full_answers(checkin, "4"))
    assert "Thank you" in response.content.decode()
    assert Response.objects.get(checkin=checkin).instrument == episode_of_a.alliance_instrument


def test_the_post_session_thank_you_has_no_progress_view(client, episode_of_a, client_of_a):
    client_of_a.progress_view_enabled = True
    client_of_a.save(update_fields=["progress_view_enabled"])
    send(client, episode_of_a, "2")
    checkin, path = services.issue_checkin(episode_of_a, kind="post")
    html = client.post(path, full_answers(checkin, "4")).content.decode()
    assert "Your progress" not in html


@pytest.fixture
def srs_episode(therapist_a, client_of_a):
    """A practice rating sessions with a 0–10 visual-analogue scale (SRS-style, step 0.1)."""
    return services.open_episode(
        therapist_a, client_of_a, concerns=["depression"], alliance_instrument="srs"
    )


def srs_answers(checkin, value):
    import alliance as al

    return {f"srs.{item.id}": value for item in al.instrument("srs").items if item.kind != "text"}


def test_a_fine_grained_scale_is_a_labelled_number_box(client, srs_episode):
    _, path = services.issue_checkin(srs_episode, kind="post")
    html = client.get(path).content.decode()
    assert 'inputmode="decimal"' in html
    assert "Your answer, from 0 to 10" in html


@pytest.mark.parametrize(
    ("value", "accepted"),
    [
        ("7.5", True),
        ("10", True),
        ("0", True),
        ("10.5", False),
        ("7.55", False),
        ("-0.1", False),
        ("7,5", False),
    ],
)
def test_a_fine_grained_scale_accepts_only_points_on_its_scale(
    client, srs_episode, value, accepted
):
    checkin, path = services.issue_checkin(srs_episode, kind="post")
    response = client.post(path, srs_answers(checkin, value))
    assert (response.status_code == 200) is accepted
    assert Response.objects.filter(checkin=checkin).exists() is accepted


def test_a_licensed_form_without_its_wording_says_so(client, srs_episode):
    _, path = services.issue_checkin(srs_episode, kind="post")
    assert (
        "The wording of these questions could not be shown here."
        in client.get(path).content.decode()
    )
