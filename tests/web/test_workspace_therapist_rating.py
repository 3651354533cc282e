"""The therapist's own post-session alliance rating, from the client page (rate_as_therapist)."""

from __future__ import annotations

import pytest
from django.test import Client

import alliance as al
from alliance_web.care.models import CheckIn, CheckInKind, Score
from alliance_web.workspace import sample
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import audit_head, audit_since, denied_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, sam = wh.fast_passwords, wh.sam


def url(episode) -> str:
    return f"/w/episodes/{episode.public_id}/rating/"


def answers(episode, value: str = "4", **overrides) -> dict[str, str]:
    inst = al.instrument(episode.therapist_alliance_instrument)
    data = {it.id: value for it in inst.scored_items}
    data["session"] = str(episode.sessions.get(number=6).public_id)
    data.update(overrides)
    return data


def ratings(episode) -> int:
    return Score.objects.filter(episode=episode, rater="therapist").count()


def test_the_form_shows_every_item_of_the_therapist_form(client, login, therapist_a, sam):
    login(client, therapist_a)
    html = client.get(f"/w/clients/{sam.client.public_id}/").content.decode()
    inst = al.instrument(sam.therapist_alliance_instrument)
    for item in inst.scored_items:
        assert f'name="{item.id}"' in html


def test_a_complete_rating_is_scored_stored_and_audited(client, login, therapist_a, sam):
    before = ratings(sam)
    login(client, therapist_a)
    head = audit_head()
    response = client.post(url(sam), answers(sam))
    assert response.status_code == 302
    assert ratings(sam) == before + 1
    score = Score.objects.filter(episode=sam, rater="therapist").latest("administered_at")
    assert score.total == 4 * len(al.instrument(sam.therapist_alliance_instrument).scored_items)
    assert score.session_number == 6
    assert audit_since(head, patient_id=str(sam.client.public_id), action="C").exists()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"wai_sr_t_3": ""}, "Please rate this item."),
        ({"wai_sr_t_3": "9"}, "Choose one of the options."),
        ({"wai_sr_t_3": "2.5"}, "Choose one of the options."),
        ({"session": "not-a-session"}, "Choose one of this episode&#x27;s sessions."),
    ],
    ids=["missing item", "out of scale", "between options", "unknown session"],
)
def test_a_bad_rating_says_what_to_fix_and_stores_nothing(
    client, login, therapist_a, sam, change, message
):
    before = ratings(sam)
    checkins = CheckIn.objects.filter(episode=sam, kind=CheckInKind.THERAPIST).count()
    login(client, therapist_a)
    head = audit_head()
    response = client.post(url(sam), answers(sam, **change))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert (
        'value="4" checked' in html or 'value="4"\n' in html or "checked" in html
    )  # what was typed is kept
    assert ratings(sam) == before
    assert CheckIn.objects.filter(episode=sam, kind=CheckInKind.THERAPIST).count() == checkins
    assert audit_since(head, outcome="invalid").exists()


def test_another_sessions_id_from_another_episode_is_refused(client, login, therapist_a, sam):
    other = sample.add_client(therapist_a, "Robin", course="on_track", sessions=3, seed=2)
    login(client, therapist_a)
    response = client.post(url(sam), answers(sam, session=str(other.sessions.first().public_id)))
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("persona", "status"),
    [("supervisor", 403), ("therapist_b", 404), ("practice_admin", 404), ("outsider", 404)],
)
def test_only_the_treating_therapist_can_rate(client, login, request, sam, persona, status):
    before = ratings(sam)
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.post(url(sam), answers(sam)).status_code == status
    assert ratings(sam) == before
    assert denied_since(head)


def test_rating_needs_a_csrf_token(login, therapist_a, sam):
    before = ratings(sam)
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    assert browser.post(url(sam), answers(sam)).status_code == 403
    assert ratings(sam) == before


def test_rating_needs_post(client, login, therapist_a, sam):
    login(client, therapist_a)
    assert client.get(url(sam)).status_code == 405
