"""The supervisor's view (/w/practice/): risk across therapists, outcomes with their uncertainty,
alerts and response times, data completeness — aggregates of the supervisor's scope only."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alliance_web.audit.models import Action
from alliance_web.care import services
from alliance_web.care.access import scope_for
from alliance_web.care.models import ActionKind, Alert, AlertKind, ConsentScope, Session
from alliance_web.workspace import practice, sample, stats
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import audit_head, audit_since, denied_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, priya, robin, sam = wh.fast_passwords, wh.priya, wh.robin, wh.sam

URL = "/w/practice/"


@pytest.fixture
def closed(therapist_a, therapist_b):
    """Five closed episodes with known classes: A has recovered ×2 and unchanged; B improved and recovered."""
    out = []
    for i, (who, course, reason) in enumerate(
        [
            (therapist_a, "recovered", "planned"),
            (therapist_a, "recovered", "planned"),
            (therapist_a, "at_risk", "dropout"),
            (therapist_b, "improved", "planned"),
            (therapist_b, "recovered", "planned"),
        ]
    ):
        out.append(
            sample.add_client(
                who, f"Closed {i}", course=course, sessions=8, seed=40 + i, closed=reason
            )
        )
    return out


def test_the_supervisor_sees_the_practice_as_charts_with_tables_behind_them(
    client, login, supervisor, sam, priya, closed
):
    login(client, supervisor)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    for title in (
        "Caseload risk across therapists",
        "Outcomes of closed episodes",
        "Alerts and response times",
        "Data completeness",
    ):
        assert title in html
    assert html.count('class="chart ') >= 5
    assert html.count("Show as a table") >= 4
    assert "Therapist A" in html
    assert "Therapist B" in html
    # Aggregates only: no client is named.
    for name in ("Sam", "Priya", "Closed 0"):
        assert name not in html


@pytest.mark.parametrize("persona", ["therapist_a", "therapist_b", "practice_admin", "outsider"])
def test_everyone_but_the_supervisor_is_refused(client, login, request, sam, persona):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    assert client.get(URL).status_code == 403
    assert denied_since(head)


def test_the_view_is_audited_as_a_read_of_the_practice_report(client, login, supervisor, sam):
    login(client, supervisor)
    head = audit_head()
    client.get(URL)
    assert audit_since(head, action=Action.READ, entity_type="practice_report").exists()


def test_risk_is_counted_by_triage_category_per_therapist(
    supervisor, therapist_a, sam, robin, priya
):
    data = practice.build(scope_for(supervisor))
    risk = data["risk"]
    assert risk["open_total"] == 3
    columns = [c[0] for c in risk["columns"]]
    rows = {r["therapist"]: dict(zip(columns, r["counts"], strict=True)) for r in risk["table"]}
    assert rows["Therapist A"]["safety"] == 1
    assert rows["Therapist A"]["improved"] == 1  # Robin, recovered
    assert rows["Therapist B"]["at_risk"] == 1
    assert risk["table"][0]["therapist"] == "Therapist A"  # the one with a safety alert first


def test_outcome_rates_carry_wilson_intervals_and_the_effect_size_its_ci(supervisor, closed):
    out = practice.build(scope_for(supervisor))["outcomes"]
    overall = out["overall"]
    assert overall.closed == 5
    assert overall.classified == 5
    categories = [e.outcome["category"] for e in closed]
    recovered = categories.count("recovered")
    improved = recovered + categories.count("improved")
    assert overall.recovery == stats.wilson(recovered, 5)
    assert overall.reliable == stats.wilson(improved, 5)
    assert overall.dropouts == 1
    pre = [e.outcome["pre"] for e in closed]
    post = [e.outcome["post"] for e in closed]
    assert overall.effect == stats.prepost_effect(pre, post, direction="higher_is_worse")
    by = {g.label: g for g in out["by_therapist"]}
    assert by["Therapist A"].closed == 3
    assert by["Therapist B"].closed == 2
    assert by["Therapist B"].effect is None  # two clients are too few for an effect size
    assert {g.label for g in out["by_concern"]} == {"Depression"}


def test_a_client_who_withdrew_consent_is_left_out_of_every_figure(
    supervisor, therapist_a, sam, robin, closed
):
    before = practice.build(scope_for(supervisor))
    services.set_consent(therapist_a, sam.client, ConsentScope.SUPERVISION, False)
    services.set_consent(therapist_a, closed[0].client, ConsentScope.SUPERVISION, False)
    after = practice.build(scope_for(supervisor))
    assert after["risk"]["open_total"] == before["risk"]["open_total"] - 1
    assert after["outcomes"]["closed_total"] == before["outcomes"]["closed_total"] - 1
    assert after["alerts"]["total"] < before["alerts"]["total"]


def test_an_acknowledged_alert_is_counted_with_its_response_time(supervisor, therapist_a, sam):
    alert = Alert.objects.get(episode=sam, kind=AlertKind.SAFETY)
    Alert.objects.filter(pk=alert.pk).update(created_at=timezone.now() - timedelta(hours=6))
    services.acknowledge_alert(therapist_a, alert)
    services.record_alert_action(therapist_a, alert, ActionKind.SAFETY_PLAN)
    data = practice.build(scope_for(supervisor))["alerts"]
    safety = next(k for k in data["kinds"] if k["kind"] == AlertKind.SAFETY)
    assert safety["total"] == 1
    assert safety["unresolved"] == 0
    assert safety["median"] == pytest.approx(6.0, abs=0.01)
    assert data["time_chart"] is not None


def test_completeness_is_the_share_of_attended_sessions_with_a_check_in(supervisor, sam):
    Session.objects.filter(episode=sam, number=7).update(
        status="attended", scheduled_at=timezone.now() - timedelta(hours=1)
    )
    data = practice.build(scope_for(supervisor))["completeness"]
    assert data["overall"] == stats.wilson(6, 7)


@pytest.mark.parametrize("period", ["90", "365", "all", "forever", "'; DROP"])
def test_the_period_comes_from_an_allow_list(client, login, supervisor, sam, period):
    login(client, supervisor)
    assert client.get(URL, {"period": period}).status_code == 200


def test_an_empty_practice_says_what_will_appear(client, login, supervisor):
    login(client, supervisor)
    html = client.get(URL).content.decode()
    assert "No closed episodes in this period yet." in html
    assert "No open episodes." in html
