"""Adding a client and opening an episode of care (create_client + open_episode)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client as Browser
from django.utils import timezone

from alliance_web.care.models import Client, Consent, Episode, Goal, Session
from alliance_web.care.services import has_consent
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import (
    PROBES,
    assert_escaped,
    audit_head,
    audit_since,
    denied_since,
)

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, sam = wh.fast_passwords, wh.sam

URL = "/w/clients/new/"


def form(**changes) -> dict:
    start = (timezone.localtime() + timedelta(days=2)).replace(hour=10, minute=0)
    data = {
        "preferred_name": "Jo",
        "email": "jo@example.org",
        "phone": "+1 (416) 555-0100",
        "concerns": ["anxiety"],
        "goal_1": "Take the bus to work again",
        "goal_2": "",
        "goal_3": "Sleep before midnight",
        "first_session": start.strftime("%Y-%m-%dT%H:%M"),
        "sessions": "10",
        "interval_days": "7",
        "consent_supervision": "on",
    }
    data.update(changes)
    return {k: v for k, v in data.items() if v is not None}


def nothing_stored() -> bool:
    return (
        not Client.objects.filter(preferred_name__startswith="Jo").exists()
        and not Episode.objects.exists()
    )


def test_the_form_offers_concerns_measures_goals_and_schedule(client, login, therapist_a):
    login(client, therapist_a)
    html = client.get(URL).content.decode()
    for name in (
        "preferred_name",
        "concerns",
        "measure_plan",
        "goal_1",
        "goal_3",
        "first_session",
        "sessions",
        "consent_supervision",
    ):
        assert f'name="{name}"' in html
    assert "PHQ-9" in html


def test_a_client_and_episode_are_created_with_the_default_plan(client, login, therapist_a):
    login(client, therapist_a)
    head = audit_head()
    response = client.post(URL, form())
    assert response.status_code == 302
    jo = Client.objects.get(preferred_name="Jo")
    episode = Episode.objects.get(client=jo)
    assert response["Location"] == f"/w/clients/{jo.public_id}/?episode={episode.public_id}"
    assert jo.therapist == therapist_a
    assert episode.concerns == ["anxiety"]
    assert episode.measure_plan[0] == "gad7"
    assert [g.text for g in Goal.objects.filter(episode=episode)] == [
        "Take the bus to work again",
        "Sleep before midnight",
    ]
    assert Session.objects.filter(episode=episode).count() == 10
    assert has_consent(jo, "supervision")
    assert not has_consent(jo, "research")
    assert audit_since(head, action="C", patient_id=str(jo.public_id)).count() >= 2
    assert client.get(response["Location"]).status_code == 200


def test_a_chosen_measure_plan_is_kept(client, login, therapist_a):
    login(client, therapist_a)
    client.post(URL, form(measure_plan=["who5", "phq9"]))
    assert Episode.objects.get().measure_plan == ["who5", "phq9"]


def test_without_supervision_consent_the_supervisor_never_sees_the_client(
    client, login, therapist_a, supervisor
):
    login(client, therapist_a)
    client.post(URL, form(consent_supervision=None))
    jo = Client.objects.get(preferred_name="Jo")
    login(client, supervisor)
    assert client.get(f"/w/clients/{jo.public_id}/").status_code == 404


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"preferred_name": "   "}, "Write the name the client likes to be called."),
        ({"preferred_name": "x" * 121}, "at most 120 characters"),
        ({"concerns": []}, "Choose at least one presenting concern."),
        ({"concerns": ["astrology"]}, "Select a valid choice"),
        ({"measure_plan": ["nope"]}, "Select a valid choice"),
        ({"email": "not-an-email"}, "Enter a valid email address."),
        ({"phone": "call me maybe"}, "Enter a phone number"),
        ({"goal_1": "g" * 301}, "at most 300 characters"),
        ({"first_session": "tomorrow-ish"}, "Enter the date and time of the first session"),
        ({"first_session": "2099-01-01T10:00"}, "within a year of today"),
        ({"sessions": "0"}, "greater than or equal to 1"),
        ({"sessions": "500"}, "less than or equal to 52"),
        ({"interval_days": "-7"}, "greater than or equal to 1"),
        ({"date_of_birth": "2999-01-01"}, "cannot be in the future"),
        ({"preferred_name": "Jo\x00"}, "Null characters are not allowed."),
    ],
)
def test_bad_input_is_explained_keeps_what_was_typed_and_stores_nothing(
    client, login, therapist_a, changes, message
):
    login(client, therapist_a)
    head = audit_head()
    response = client.post(URL, form(**changes))
    assert response.status_code == 400
    html = response.content.decode()
    assert message in html
    assert "Sleep before midnight" in html  # what was typed is kept
    assert nothing_stored()
    assert audit_since(head, outcome="invalid").exists()


def test_a_refused_episode_leaves_no_client_behind(client, login, therapist_a, monkeypatch):
    from alliance_web.care import services

    def refuse(*args, **kwargs):
        raise services.ServiceError("Unknown instrument(s): wai_sr.")

    monkeypatch.setattr(services, "open_episode", refuse)
    login(client, therapist_a)
    response = client.post(URL, form())
    assert response.status_code == 400
    assert "Unknown instrument(s): wai_sr." in response.content.decode()
    assert nothing_stored()
    assert not Consent.objects.exists()


@pytest.mark.parametrize("persona", ["supervisor", "practice_admin"])
def test_people_without_a_caseload_cannot_add_clients(client, login, request, persona):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.get(URL).status_code == 403
    assert client.post(URL, form()).status_code == 403
    assert nothing_stored()
    assert denied_since(head)


def test_adding_a_client_needs_a_csrf_token(login, therapist_a):
    browser = login(Browser(enforce_csrf_checks=True), therapist_a)
    assert browser.post(URL, form()).status_code == 403
    assert nothing_stored()


@pytest.mark.parametrize("probe", PROBES)
def test_names_and_goals_are_stored_verbatim_and_escaped(client, login, therapist_a, probe):
    login(client, therapist_a)
    response = client.post(URL, form(preferred_name=probe, goal_1=probe))
    assert response.status_code == 302
    assert Client.objects.get(preferred_name=probe)
    assert_escaped(client.get(response["Location"]).content.decode(), probe)
    assert_escaped(client.get("/w/").content.decode(), probe)


# --- a new episode for an existing client ---------------------------------------------------------
def test_a_new_episode_opens_only_after_the_last_one_closed(client, login, therapist_a, sam):
    login(client, therapist_a)
    url = f"/w/clients/{sam.client.public_id}/episodes/new/"
    response = client.get(url)
    assert response.status_code == 302  # still open: back to the client with a message
    Episode.objects.filter(pk=sam.pk).update(status="closed")
    assert client.get(url).status_code == 200
    data = form()
    response = client.post(
        url,
        {
            k: v
            for k, v in data.items()
            if k in ("concerns", "goal_1", "first_session", "sessions", "interval_days")
        },
    )
    assert response.status_code == 302
    assert Episode.objects.filter(client=sam.client, status="open").count() == 1


@pytest.mark.parametrize(
    ("persona", "status"), [("supervisor", 403), ("therapist_b", 404), ("outsider", 404)]
)
def test_only_the_clients_therapist_opens_an_episode(client, login, request, sam, persona, status):
    Episode.objects.filter(pk=sam.pk).update(status="closed")
    login(client, request.getfixturevalue(persona))
    url = f"/w/clients/{sam.client.public_id}/episodes/new/"
    assert client.post(url, form()).status_code == status
    assert not Episode.objects.filter(client=sam.client, status="open").exists()
