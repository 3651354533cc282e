"""The caseload (/w/): a triage list of open episodes, read through each person's scope."""

from __future__ import annotations

import django
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alliance_web.audit.models import Action, Outcome
from alliance_web.care import services
from alliance_web.care.models import Alert, AlertStatus, ConsentScope
from alliance_web.workspace import sample
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import PROBES, assert_escaped, audit_head, audit_since

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, foreign, priya, robin, sam = (
    wh.fast_passwords,
    wh.foreign,
    wh.priya,
    wh.robin,
    wh.sam,
)

URL = "/w/"


def names_in_order(html: str, names: list[str]) -> list[str]:
    found = [(html.find(f">{n}</a>"), n) for n in names if f">{n}</a>" in html]
    return [n for _, n in sorted(found)]


def test_anonymous_visitors_are_sent_to_sign_in(client):
    response = client.get(URL)
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")


def test_signed_in_staff_land_on_the_caseload_from_the_home_page(client, login, therapist_a):
    login(client, therapist_a)
    response = client.get("/")
    assert response.status_code == 302
    assert response["Location"] == URL


def test_the_therapist_sees_their_own_clients_most_urgent_first(
    client, login, therapist_a, sam, robin, priya
):
    calm = sample.add_client(therapist_a, "Alex", course="on_track", sessions=4, seed=9)
    assert calm
    login(client, therapist_a)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert names_in_order(html, ["Sam", "Robin", "Alex", "Priya"]) == ["Sam", "Alex", "Robin"]
    assert "Priya" not in html
    assert "⚠</span> Safety" in html
    assert "Stage 3 · Working — suggested" in html or "Stage 2 · Shared goals — suggested" in html


def test_a_safety_alert_puts_a_client_first_whatever_the_snapshot_says(
    client, login, therapist_a, sam, robin
):
    # A new safety alert on Robin, whose snapshot still says "recovered".
    Alert.objects.create(
        practice_id=robin.practice_id,
        episode=robin,
        kind="safety",
        priority=0,
        dedupe_key="t:robin",
    )
    sam_alerts = Alert.objects.filter(episode=sam, kind="safety")
    sam_alerts.update(status=AlertStatus.ACTIONED)
    login(client, therapist_a)
    html = client.get(URL).content.decode()
    assert names_in_order(html, ["Sam", "Robin"]) == ["Robin", "Sam"]


def test_a_safety_alert_acted_on_stays_on_top_until_it_is_resolved(
    client, login, therapist_a, sam, robin
):
    alert = Alert.objects.get(episode=sam, kind="safety")
    services.record_alert_action(therapist_a, alert, "safety_plan")
    login(client, therapist_a)
    html = client.get(URL).content.decode()
    assert names_in_order(html, ["Sam", "Robin"]) == ["Sam", "Robin"]
    assert "Safety · acted on" in html
    Alert.objects.filter(pk=alert.pk).update(status=AlertStatus.RESOLVED)
    html = client.get(URL).content.decode()
    assert "Safety · acted on" not in html


def test_every_row_shows_its_flags_as_labelled_badges(client, login, therapist_a, sam):
    login(client, therapist_a)
    html = client.get(URL).content.decode()
    for label in ("Safety", "Off track", "Rupture"):
        assert f"</span> {label}</span>" in html
    assert 'aria-label="PHQ-9 from' in html  # the outcome sparkline says what it shows
    assert "Alliance, latest:" in html


def test_the_supervisor_sees_the_whole_practice_and_can_filter_by_therapist(
    client, login, supervisor, therapist_b, sam, robin, priya
):
    login(client, supervisor)
    html = client.get(URL).content.decode()
    assert {"Sam", "Robin", "Priya"} <= set(names_in_order(html, ["Sam", "Robin", "Priya"]))
    html = client.get(URL, {"therapist": str(therapist_b.pk)}).content.decode()
    # Sam stays: a safety badge is never hidden by filters.
    assert names_in_order(html, ["Sam", "Robin", "Priya"]) == ["Sam", "Priya"]
    assert "Shown because of a safety alert" in html


def test_a_client_who_withdrew_supervision_consent_disappears_for_the_supervisor(
    client, login, supervisor, therapist_a, sam, robin
):
    services.set_consent(therapist_a, robin.client, ConsentScope.SUPERVISION, False)
    login(client, supervisor)
    html = client.get(URL).content.decode()
    assert "Robin" not in html
    assert "Sam" in html


@pytest.mark.parametrize(
    ("params", "shown", "hidden"),
    [
        ({"signal": "recovered"}, ["Robin"], ["Noor"]),
        ({"concern": "anxiety"}, ["Noor"], ["Robin"]),
        ({"signal": "at_risk", "concern": "anxiety"}, ["Noor"], ["Robin"]),
    ],
)
def test_filters_narrow_the_list_but_never_hide_safety(
    client, login, therapist_a, sam, robin, params, shown, hidden
):
    sample.add_client(
        therapist_a, "Noor", course="at_risk", sessions=5, seed=7, concerns=("anxiety",)
    )
    login(client, therapist_a)
    html = client.get(URL, params).content.decode()
    for name in [*shown, "Sam"]:
        assert f">{name}</a>" in html
    for name in hidden:
        assert f">{name}</a>" not in html


@pytest.mark.parametrize(
    "params",
    [
        {"sort": "id;DROP TABLE care_client"},
        {"sort": "client__preferred_name"},
        {"signal": "<script>alert(1)</script>"},
        {"concern": "a.b"},
        {"therapist": "1 OR 1=1"},
        {"sort[]": "x", "signal": ["off_track", "recovered"]},
    ],
)
def test_filter_values_outside_the_allow_lists_are_ignored(
    client, login, therapist_a, sam, robin, params
):
    login(client, therapist_a)
    response = client.get(URL, params)
    assert response.status_code == 200
    html = response.content.decode()
    assert ">Sam</a>" in html
    assert "<script>alert(1)</script>" not in html
    assert "DROP" not in html


def test_a_therapist_cannot_filter_their_way_into_another_caseload(
    client, login, therapist_a, therapist_b, priya
):
    login(client, therapist_a)
    html = client.get(URL, {"therapist": str(therapist_b.pk)}).content.decode()
    assert "Priya" not in html


def test_the_empty_caseload_says_what_to_do_first(client, login, therapist_a):
    login(client, therapist_a)
    html = client.get(URL).content.decode()
    assert "Add your first client" in html
    assert 'href="/w/clients/new/"' in html


def test_the_practice_admin_sees_no_clinical_content(client, login, practice_admin, sam, priya):
    login(client, practice_admin)
    response = client.get(URL)
    assert response.status_code == 200
    html = response.content.decode()
    assert "Sam" not in html
    assert "Priya" not in html
    assert "Clinical pages" in html


def test_an_outsider_sees_nothing_of_another_practice(client, login, outsider, foreign, sam):
    login(client, outsider)
    html = client.get(URL).content.decode()
    assert ">Kim</a>" in html
    assert "Sam" not in html


def test_every_client_shown_is_audited_as_a_read(client, login, therapist_a, sam, robin):
    login(client, therapist_a)
    head = audit_head()
    client.get(URL)
    reads = audit_since(head, action=Action.READ, entity_type="client", outcome=Outcome.SUCCESS)
    assert {e.patient_id for e in reads} == {str(sam.client.public_id), str(robin.client.public_id)}
    assert all(e.purpose == "caseload" for e in reads)
    assert not any("Sam" in str(e.detail) for e in reads)


@pytest.mark.parametrize("probe", PROBES)
def test_names_are_escaped(client, login, therapist_a, probe):
    sample.add_client(therapist_a, probe, course="on_track", sessions=3, seed=5)
    login(client, therapist_a)
    html = client.get(URL).content.decode()
    assert_escaped(html, probe)


def test_pages_with_client_data_are_never_cached(client, login, therapist_a, sam):
    login(client, therapist_a)
    assert "no-store" in client.get(URL)["Cache-Control"]


def _queries(client, url) -> int:
    with CaptureQueriesContext(connection) as ctx:
        response = client.get(url)
    assert response.status_code == 200
    return len(ctx.captured_queries)


@pytest.mark.parametrize("persona", ["therapist_a", "supervisor"])
def test_the_caseload_costs_the_same_queries_for_20_clients_or_200(
    client, login, request, therapist_a, supervisor, persona, django_assert_max_num_queries
):
    sample.add_caseload(therapist_a, 20, seed=1)
    login(client, request.getfixturevalue(persona))
    client.get(URL)  # warm the session
    small = _queries(client, URL)
    sample.add_caseload(therapist_a, 180, seed=2)
    large = _queries(client, URL)
    if django.VERSION < (6, 0) and connection.vendor == "sqlite":
        # Django 5.2 caps an SQLite INSERT at 999 parameters, so the 200 audit rows (one per client
        # shown) go in a few batches instead of one; Django 6 uses SQLite's real limit.
        assert small <= large <= small + 4
    else:
        assert large == small
    # Sign-in and session (≈6), open episodes with snapshots (1), unresolved alerts (1), the count
    # for the navigation (1), and the audit append under its lock (5) — none of them per client.
    legacy_batches = 4 if django.VERSION < (6, 0) and connection.vendor == "sqlite" else 0
    with django_assert_max_num_queries(16 + legacy_batches):
        response = client.get(URL)
    assert response.content.decode().count('class="client-link"') == 200
