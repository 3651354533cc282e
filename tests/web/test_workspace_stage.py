"""Confirming the suggested relationship stage (confirm_stage)."""

from __future__ import annotations

import pytest
from django.test import Client

from alliance_web.care.models import StageAssessment
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import audit_head, audit_since, denied_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, sam = wh.fast_passwords, wh.sam


def url(episode) -> str:
    return f"/w/episodes/{episode.public_id}/stage/"


def confirmed(episode):
    return StageAssessment.objects.filter(episode=episode).latest("created_at").confirmed_stage


def test_the_page_explains_the_suggestion_and_says_it_is_a_heuristic(
    client, login, therapist_a, sam
):
    login(client, therapist_a)
    html = client.get(f"/w/clients/{sam.client.public_id}/").content.decode()
    stage = html[html.find('id="stage-h"') :]
    assert "Why this stage" in stage
    assert "not a validated scale" in stage
    assert 'name="stage"' in stage


def test_the_therapist_confirms_a_stage(client, login, therapist_a, sam):
    login(client, therapist_a)
    head = audit_head()
    response = client.post(url(sam), {"stage": "3"})
    assert response.status_code == 302
    assert confirmed(sam) == 3
    assert audit_since(head, entity_type="stage", patient_id=str(sam.client.public_id)).exists()
    html = client.get(f"/w/clients/{sam.client.public_id}/").content.decode()
    assert "Stage 3 · Working — confirmed" in html


@pytest.mark.parametrize("value", ["", "0", "5", "two", "1; DROP TABLE x"])
def test_a_stage_outside_1_to_4_is_refused(client, login, therapist_a, sam, value):
    login(client, therapist_a)
    response = client.post(url(sam), {"stage": value})
    assert response.status_code == 400
    assert confirmed(sam) is None


def test_without_a_suggestion_there_is_nothing_to_confirm(client, login, therapist_a, sam):
    StageAssessment.objects.filter(episode=sam).delete()
    login(client, therapist_a)
    response = client.post(url(sam), {"stage": "2"})
    assert response.status_code == 400
    assert "no suggested stage to confirm yet" in response.content.decode()


@pytest.mark.parametrize(
    ("persona", "status"), [("supervisor", 403), ("therapist_b", 404), ("outsider", 404)]
)
def test_only_the_treating_therapist_confirms(client, login, request, sam, persona, status):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.post(url(sam), {"stage": "2"}).status_code == status
    assert confirmed(sam) is None
    assert denied_since(head)


def test_confirming_needs_a_csrf_token(login, therapist_a, sam):
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    assert browser.post(url(sam), {"stage": "2"}).status_code == 403
    assert confirmed(sam) is None
