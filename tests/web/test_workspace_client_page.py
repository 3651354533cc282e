"""The client page (/w/clients/<id>/): DESIGN.md's order, every persona, escaping, auditing."""

from __future__ import annotations

import uuid

import pytest

from alliance_web.audit.models import Action
from alliance_web.care import services
from alliance_web.care.models import ConsentScope, EpisodeInsight, Goal, PrivateNote
from alliance_web.workspace import sample
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
fast_passwords, foreign, priya, robin, sam = (
    wh.fast_passwords,
    wh.foreign,
    wh.priya,
    wh.robin,
    wh.sam,
)

NOTE = "It is hard to say out loud how tired I am."


def url(episode) -> str:
    return f"/w/clients/{episode.client.public_id}/"


def test_the_treating_therapist_sees_the_page_in_design_order(client, login, therapist_a, sam):
    login(client, therapist_a)
    response = client.get(url(sam))
    assert response.status_code == 200
    html = response.content.decode()
    order = [
        "<h1>Sam</h1>",
        'id="alerts-h"',
        'id="outcome-h"',
        'id="alliance-h"',
        'id="goals-h"',
        'id="checklist-h"',
        'id="notes-h"',
        'id="sessions-h"',
        'id="rating-h"',
        'id="process-h"',
    ]
    positions = [html.find(marker) for marker in order]
    assert -1 not in positions, [m for m, p in zip(order, positions, strict=True) if p == -1]
    assert positions == sorted(positions)
    assert 'id="stage-h"' in html
    assert 'id="checkins-h"' in html


def test_the_header_shows_episode_session_stage_and_safety_first(client, login, therapist_a, sam):
    login(client, therapist_a)
    html = client.get(url(sam)).content.decode()
    head = html[html.find("<h1>Sam</h1>") : html.find('id="alerts-h"')]
    assert "Session 6 of 12" in head
    assert "Stage 2 · Shared goals — suggested" in head
    assert ">confirm</a>" in head
    assert head.find("</span> Safety</span>") < head.find("</span> Off track</span>")


def test_the_outcome_chart_has_points_in_signal_shapes_and_a_table_alternative(
    client, login, therapist_a, sam
):
    login(client, therapist_a)
    html = client.get(url(sam)).content.decode()
    assert 'class="chart outcome-chart"' in html
    assert html.count('class="pt p') >= 6  # every score is focusable
    assert "mark sig-off_track" in html
    assert "since intake" in html  # the exact change is in each point's label
    assert 'class="band"' in html
    assert 'class="median"' in html
    assert 'class="cutoff"' in html
    assert "↓ better" in html
    assert "Show as a table" in html
    assert "<caption" in html


def test_why_this_signal_names_rule_threshold_source_and_method(client, login, therapist_a, sam):
    login(client, therapist_a)
    html = client.get(url(sam)).content.decode()
    why = html[html.find("Why this signal?") :]
    for label in ("Rule", "Threshold", "Method", "Source"):
        assert f"<dt>{label}</dt>" in why
    assert "sample_expected_band" in why


def test_the_chart_switches_between_the_episodes_instruments(client, login, therapist_a, sam):
    login(client, therapist_a)
    html = client.get(url(sam), {"instrument": "gad7"}).content.decode()
    assert "Outcome · GAD-7" in html
    assert "GAD-7 score" in html


@pytest.mark.parametrize("instrument", ["who5", "../etc", "<script>", ""])
def test_an_instrument_outside_the_plan_shows_the_primary_one(
    client, login, therapist_a, sam, instrument
):
    login(client, therapist_a)
    response = client.get(url(sam), {"instrument": instrument})
    assert response.status_code == 200
    assert "Outcome · PHQ-9" in response.content.decode()


def test_the_alliance_chart_marks_ruptures_and_repairs(client, login, therapist_a, sam, robin):
    login(client, therapist_a)
    html = client.get(url(sam)).content.decode()
    assert 'class="chart alliance-chart"' in html
    assert "rupture-mark rupture" in html
    assert "not yet repaired" in html
    html = client.get(url(robin)).content.decode()
    assert 'class="repair-arc"' in html
    assert "rupture-mark rupture repaired" in html


def test_a_flagged_perspective_gap_is_shaded_and_explained(client, login, therapist_a):
    episode = sample.add_client(
        therapist_a, "Alex", course="on_track", sessions=5, gap=True, seed=3
    )
    login(client, therapist_a)
    html = client.get(url(episode)).content.decode()
    assert 'class="gap-fill"' in html
    assert "perspective gap" in html


def test_goals_show_in_the_clients_words_with_their_trajectory(client, login, therapist_a, sam):
    login(client, therapist_a)
    html = client.get(url(sam)).content.decode()
    assert "Get back to running twice a week" in html
    assert 'class="chart goal-chart"' in html
    assert "/10" in html


def test_the_checklist_shows_only_when_the_client_is_off_track(
    client, login, therapist_a, sam, robin
):
    login(client, therapist_a)
    assert 'id="checklist-h"' in client.get(url(sam)).content.decode()
    assert 'id="checklist-h"' not in client.get(url(robin)).content.decode()


def test_the_clients_private_note_is_shown_to_the_treating_therapist_as_written_privately(
    client, login, therapist_a, sam
):
    login(client, therapist_a)
    html = client.get(url(sam)).content.decode()
    assert NOTE in html
    assert "written privately by the client" in html


def test_the_supervisor_sees_the_record_but_not_the_clients_private_notes(
    client, login, supervisor, therapist_a, sam
):
    services.add_private_note(therapist_a, sam, "Shared reflection on the rupture", share=True)
    services.add_private_note(therapist_a, sam, "My own unshared process note", share=False)
    login(client, supervisor)
    response = client.get(url(sam))
    assert response.status_code == 200
    html = response.content.decode()
    assert "<h1>Sam</h1>" in html
    assert NOTE not in html
    assert "Only the treating therapist sees what the client writes privately." in html
    assert "Shared reflection on the rupture" in html
    assert "My own unshared process note" not in html
    assert "Acknowledge" not in html  # reading, not treating


@pytest.mark.parametrize("persona", ["therapist_b", "practice_admin", "outsider"])
def test_anyone_else_gets_404_and_an_audited_deny(client, login, request, sam, persona):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    response = client.get(url(sam))
    assert response.status_code == 404
    assert "Sam" not in response.content.decode()
    assert denied_since(head)


def test_an_unknown_client_id_is_404(client, login, therapist_a):
    login(client, therapist_a)
    assert client.get(f"/w/clients/{uuid.uuid4()}/").status_code == 404
    assert client.get("/w/clients/not-a-uuid/").status_code == 404


def test_a_client_who_withdrew_supervision_consent_is_404_for_the_supervisor(
    client, login, supervisor, therapist_a, sam
):
    services.set_consent(therapist_a, sam.client, ConsentScope.SUPERVISION, False)
    login(client, supervisor)
    head = audit_head()
    assert client.get(url(sam)).status_code == 404
    assert denied_since(head)
    login(client, therapist_a)
    assert client.get(url(sam)).status_code == 200


def test_reading_the_page_is_audited_without_phi(client, login, therapist_a, sam):
    login(client, therapist_a)
    head = audit_head()
    client.get(url(sam))
    reads = audit_since(head, action=Action.READ, patient_id=str(sam.client.public_id))
    assert reads.exists()
    assert all(NOTE not in str(e.detail) and "Sam" not in str(e.detail) for e in reads)


def test_an_episode_without_a_snapshot_says_what_is_missing(
    client, login, therapist_a, client_of_a, episode_of_a
):
    EpisodeInsight.objects.filter(episode=episode_of_a).delete()
    login(client, therapist_a)
    response = client.get(url(episode_of_a))
    assert response.status_code == 200
    html = response.content.decode()
    assert "Needs more sessions" in html
    assert "Send a check-in link" in html


def test_a_client_with_two_episodes_can_open_the_earlier_one(client, login, therapist_a):
    old = sample.add_client(
        therapist_a, "Dana", course="recovered", sessions=6, seed=8, closed="planned"
    )
    new = services.open_episode(therapist_a, old.client, concerns=["anxiety"])
    login(client, therapist_a)
    html = client.get(url(new)).content.decode()
    assert "Episodes:" in html
    assert "(closed)" in html
    html = client.get(url(new), {"episode": str(old.public_id)}).content.decode()
    assert "Episode closed" in html
    assert "Recovered" in html


def test_another_clients_episode_id_cannot_be_smuggled_in(client, login, therapist_a, sam, robin):
    login(client, therapist_a)
    html = client.get(url(sam), {"episode": str(robin.public_id)}).content.decode()
    assert "<h1>Sam</h1>" in html
    assert "sessions so far" in html


@pytest.mark.parametrize("probe", PROBES)
def test_names_goals_and_notes_are_escaped(client, login, therapist_a, probe):
    episode = sample.add_client(
        therapist_a,
        probe,
        course="off_track",
        sessions=4,
        seed=6,
        note=probe,
        goals=[probe, "Sleep"],
    )
    services.add_private_note(therapist_a, episode, probe)
    services.log_relationship_event(therapist_a, episode, event="rupture", text=probe)
    assert Goal.objects.filter(episode=episode).count() == 2
    assert PrivateNote.objects.filter(episode=episode).exists()
    login(client, therapist_a)
    html = client.get(url(episode)).content.decode()
    assert_escaped(html, probe)
