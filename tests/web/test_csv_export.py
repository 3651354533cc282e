"""CSV exports: de-identified research data (pseudonyms, per-client stable date shifts, consented
clients only, supervisors) and the identified practice export (admins); formula-safe; audited."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.utils import timezone

import alliance as al
from alliance_web.audit.models import Action
from alliance_web.care import exports, services
from alliance_web.care.models import ConsentScope
from tests.web.api_helpers import audit_since, last_seq

pytestmark = pytest.mark.django_db


def submit(episode, value=1):
    checkin, _ = services.issue_checkin(episode, session=episode.sessions.get(number=1))
    answers = {
        inst: {i.id: value for i in al.instrument(inst).items if i.kind == "choice"}
        for inst in checkin.instruments
    }
    services.submit_checkin(checkin, services.Submission(answers=answers))


@pytest.fixture
def two_clients(therapist_a):
    """Sam consented to research; Jo did not. Both have scores."""
    made = {}
    for name, research in (("Sam", True), ('=HYPERLINK("x")', False)):
        consents = [ConsentScope.CARE, ConsentScope.SUPERVISION] + (
            [ConsentScope.RESEARCH] if research else []
        )
        client = services.create_client(
            therapist_a,
            preferred_name=name,
            therapist=therapist_a,
            email=f"{name[:3]}@example.org".replace('"', ""),
            consents=consents,
        )
        episode = services.open_episode(
            therapist_a,
            client,
            concerns=["depression"],
            first_session_at=timezone.now() - timedelta(hours=1),
        )
        submit(episode)
        made[research] = client
    return made


def rows(text):
    return list(csv.DictReader(io.StringIO(text)))


def test_the_research_export_has_only_consenting_clients_under_pseudonyms(supervisor, two_clients):
    from alliance_web.care.access import scope_for

    text = exports.research_csv(supervisor, scope_for(supervisor))
    data = rows(text)
    consenting = two_clients[True]
    assert {r["client"] for r in data} == {consenting.pseudonym}
    assert "Sam" not in text
    assert str(consenting.public_id) not in text
    assert "@example.org" not in text
    assert {r["instrument"] for r in data} == {"phq9", "gad7"}


def test_research_dates_are_shifted_by_a_stable_per_client_offset(supervisor, two_clients):
    from alliance_web.care.access import scope_for

    consenting = two_clients[True]
    shift = exports.date_shift(consenting.pseudonym)
    assert abs(shift.days) <= exports.SHIFT_DAYS
    first = rows(exports.research_csv(supervisor, scope_for(supervisor)))
    again = rows(exports.research_csv(supervisor, scope_for(supervisor)))
    assert first == again
    score_day = timezone.now().date() + shift
    assert {r["date"] for r in first} <= {
        (score_day + timedelta(days=d)).isoformat() for d in (-1, 0, 1)
    }


def test_withdrawing_research_consent_removes_the_client(supervisor, therapist_a, two_clients):
    from alliance_web.care.access import scope_for

    services.set_consent(therapist_a, two_clients[True], ConsentScope.RESEARCH, given=False)
    assert rows(exports.research_csv(supervisor, scope_for(supervisor))) == []


def test_only_supervisors_make_research_exports(therapist_a, practice_admin):
    from alliance_web.care.access import scope_for

    for user in (therapist_a, practice_admin):
        with pytest.raises(exports.ExportRefused):
            exports.research_csv(user, scope_for(user))


def test_the_practice_export_is_identified_formula_safe_and_for_admins(
    practice_admin, therapist_a, two_clients
):
    text = exports.practice_csv(practice_admin)
    data = rows(text)
    names = {r["preferred_name"] for r in data}
    assert "Sam" in names
    assert '\'=HYPERLINK("x")' in names  # formula neutralised (SECURITY.md 4a)
    assert all(r["total"].replace(".", "").isdigit() for r in data)  # numbers stay numbers
    with pytest.raises(exports.ExportRefused):
        exports.practice_csv(therapist_a)


@pytest.mark.parametrize("value", ["=1+1", "+cmd", "-1+1", "@SUM(A1)", "\tx", "\0x", "plain"])
def test_text_cells_that_look_like_formulas_get_a_leading_quote(value):
    (row,) = rows(exports.write_csv(["v"], [[value]]))
    assert row["v"] == (value if value == "plain" else "'" + value)


def test_negative_numbers_stay_numbers():
    (row,) = rows(exports.write_csv(["v"], [[-3.5]]))
    assert row["v"] == "-3.5"


def test_exports_are_audited_per_client(supervisor, two_clients):
    from alliance_web.care.access import scope_for

    seq = last_seq()
    exports.research_csv(supervisor, scope_for(supervisor))
    events = audit_since(seq, action=Action.EXECUTE)
    assert {e.patient_id for e in events if e.patient_id} == {str(two_clients[True].public_id)}
    assert any(e.detail.get("rows") for e in events)


def test_the_export_endpoints_serve_csv_to_the_right_roles(
    api_as, supervisor, practice_admin, therapist_a, two_clients
):
    research = api_as(supervisor).get("/api/v1/exports/research.csv")
    assert research.status_code == 200
    assert research["Content-Type"].startswith("text/csv")
    assert "attachment" in research["Content-Disposition"]
    assert api_as(therapist_a).get("/api/v1/exports/research.csv").status_code == 403
    practice = api_as(practice_admin).get("/api/v1/exports/practice.csv")
    assert practice.status_code == 200
    assert b"Sam" in practice.content
    assert api_as(supervisor).get("/api/v1/exports/practice.csv").status_code == 403
    assert (
        api_as(supervisor).get("/api/v1/exports/research.csv", {"instrument": "nope"}).status_code
        == 400
    )
