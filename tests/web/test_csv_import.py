"""Importing historical scores from CSV: a validation report before anything is written, all or
nothing, re-runs harmless, item rows scored by the engine; the command and the API endpoint."""

from __future__ import annotations

from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.utils import timezone

from alliance_web.audit.models import Action
from alliance_web.care import imports
from alliance_web.care.access import scope_for
from alliance_web.care.models import CheckIn, Response, Score
from tests.web.api_helpers import audit_since, last_seq

pytestmark = pytest.mark.django_db


@pytest.fixture
def backdated(therapist_a, client_of_a):
    from alliance_web.care import services

    return services.open_episode(
        therapist_a,
        client_of_a,
        concerns=["depression"],
        opened_at=timezone.now() - timedelta(days=120),
        first_session_at=timezone.now() - timedelta(days=119),
    )


def day(n: int) -> str:
    return (timezone.now() - timedelta(days=n)).date().isoformat()


def totals_csv(client, rows) -> str:
    lines = ["ClientID,When,Measure,Score,Visit"]
    lines += [f"{client.public_id},{d},{m},{t},{v}" for d, m, t, v in rows]
    return "\n".join(lines) + "\n"


MAPPING = imports.ColumnMapping(
    client="ClientID",
    date="When",
    instrument="Measure",
    total="Score",
    session="Visit",
    instrument_names={"PHQ-9": "phq9", "GAD-7": "gad7"},
)


def test_a_clean_file_is_reported_then_imported_with_bands(therapist_a, client_of_a, backdated):
    text = totals_csv(
        client_of_a,
        [(day(100), "PHQ-9", 18, 1), (day(93), "PHQ-9", 12, 2), (day(93), "GAD-7", 9, 2)],
    )
    scope = scope_for(therapist_a)
    report = imports.import_scores(text, MAPPING, therapist_a, scope, dry_run=True)
    assert report.ok
    assert (report.rows, report.ready, report.clients) == (3, 3, 1)
    assert report.by_instrument == {"phq9": 2, "gad7": 1}
    assert Score.objects.count() == 0  # a dry run writes nothing

    seq = last_seq()
    report = imports.import_scores(text, MAPPING, therapist_a, scope, dry_run=False)
    assert report.applied
    scores = {(s.instrument, s.session_number): s for s in Score.objects.all()}
    assert scores[("phq9", 1)].total == 18
    assert scores[("phq9", 1)].severity == "moderately severe"
    assert scores[("phq9", 2)].severity == "moderate"
    assert scores[("gad7", 2)].severity == "mild"
    assert all(s.method == imports.METHOD_TOTAL_ONLY for s in scores.values())
    assert all(s.episode == backdated for s in scores.values())
    assert CheckIn.objects.filter(token_hash__isnull=True, status="completed").count() == 3
    events = audit_since(seq)
    assert any(
        e.action == Action.CREATE and e.patient_id == str(client_of_a.public_id) for e in events
    )
    assert any(e.action == Action.EXECUTE and e.entity_type == "score_import" for e in events)


def test_running_the_same_import_again_stores_nothing_new(therapist_a, client_of_a, backdated):
    text = totals_csv(client_of_a, [(day(100), "PHQ-9", 18, 1)])
    scope = scope_for(therapist_a)
    imports.import_scores(text, MAPPING, therapist_a, scope, dry_run=False)
    again = imports.import_scores(text, MAPPING, therapist_a, scope, dry_run=False)
    assert (again.ready, again.already_present) == (0, 1)
    assert Score.objects.count() == 1


@pytest.mark.parametrize(
    ("row", "column", "needle"),
    [
        ((day(10), "PHQ-9", 28, 1), "Score", "outside"),
        ((day(10), "PHQ-9", "=HYPERLINK(1)", 1), "Score", "not a number"),
        ((day(10), "BDI", 10, 1), "Measure", "unknown instrument"),
        (("next week", "PHQ-9", 10, 1), "When", "not a date"),
        (
            ((timezone.now() + timedelta(days=3)).date().isoformat(), "PHQ-9", 10, 1),
            "When",
            "future",
        ),
        ((day(400), "PHQ-9", 10, 1), "When", "no episode"),
        ((day(10), "PHQ-9", 10, "first"), "Visit", "session number"),
    ],
)
def test_one_bad_row_stops_the_whole_file_and_the_report_says_where(
    therapist_a, client_of_a, backdated, row, column, needle
):
    text = totals_csv(client_of_a, [(day(100), "PHQ-9", 18, 1), row])
    report = imports.import_scores(
        text, MAPPING, therapist_a, scope_for(therapist_a), dry_run=False
    )
    assert not report.applied
    (problem,) = report.errors
    assert (problem.line, problem.column) == (3, column)
    assert needle in problem.message
    assert Score.objects.count() == 0
    assert Response.objects.count() == 0


def test_a_client_outside_the_caseload_is_refused(therapist_b, client_of_a, backdated):
    text = totals_csv(client_of_a, [(day(100), "PHQ-9", 18, 1)])
    report = imports.import_scores(
        text, MAPPING, therapist_b, scope_for(therapist_b), dry_run=False
    )
    assert "not a client id you may import for" in report.errors[0].message
    assert Score.objects.count() == 0


def test_item_columns_are_scored_by_the_engine_with_flags_and_proration(
    therapist_a, client_of_a, backdated
):
    header = "client,date," + ",".join(f"Q{i}" for i in range(1, 10))
    full = f"{client_of_a.public_id},{day(50)}," + ",".join(["1"] * 9)
    prorated = f"{client_of_a.public_id},{day(40)}," + ",".join(["2"] * 8 + [""])
    mapping = imports.ColumnMapping(
        instrument=None,
        total=None,
        fixed_instrument="phq9",
        items={f"phq9_{i}": f"Q{i}" for i in range(1, 10)},
    )
    report = imports.import_scores(
        "\n".join([header, full, prorated]),
        mapping,
        therapist_a,
        scope_for(therapist_a),
        dry_run=False,
    )
    assert report.applied, report.as_dict()
    by_total = {s.total: s for s in Score.objects.all()}
    assert set(by_total) == {9.0, 18.0}
    assert by_total[9.0].flags == ["safety"]  # item 9 answered 1
    assert by_total[18.0].prorated  # item 9 missing: PHQ-9's rule (NHS Data Dictionary) prorates
    assert by_total[9.0].method != imports.METHOD_TOTAL_ONLY


def test_missing_columns_are_reported_before_reading_rows(therapist_a):
    report = imports.validate("a,b\n1,2\n", MAPPING, scope_for(therapist_a))
    assert report.errors[0].line == 1
    assert "ClientID" in report.errors[0].message


def test_the_command_reports_then_applies(therapist_a, client_of_a, backdated, tmp_path):
    path = tmp_path / "scores.csv"
    path.write_text(totals_csv(client_of_a, [(day(100), "PHQ-9", 18, 1)]), encoding="utf-8")
    args = [
        "import_scores",
        str(path),
        "--as",
        "therapist_a",
        "--map",
        "client=ClientID",
        "--map",
        "date=When",
        "--map",
        "instrument=Measure",
        "--map",
        "total=Score",
        "--map",
        "session=Visit",
        "--instrument-name",
        "PHQ-9=phq9",
    ]
    out = StringIO()
    call_command(*args, stdout=out)
    assert "Dry run" in out.getvalue()
    assert Score.objects.count() == 0
    call_command(*args, "--apply", stdout=StringIO())
    assert Score.objects.count() == 1
    path.write_text("ClientID,When,Measure,Score,Visit\nnope,x,y,z,1\n", encoding="utf-8")
    with pytest.raises(CommandError, match="Nothing was imported"):
        call_command(*args, "--apply", stdout=StringIO())


def test_the_api_endpoint_dry_runs_imports_and_refuses_with_the_report(
    api_as, therapist_a, client_of_a, backdated, supervisor
):
    body = {
        "csv": totals_csv(client_of_a, [(day(100), "PHQ-9", 18, 1)]),
        "mapping": {
            "client": "ClientID",
            "date": "When",
            "instrument": "Measure",
            "total": "Score",
            "session": "Visit",
            "instrument_names": {"PHQ-9": "phq9"},
        },
    }
    api = api_as(therapist_a)
    dry = api.post("/api/v1/imports/scores/", body, format="json")
    assert dry.status_code == 200
    assert dry.json()["ready"] == 1
    assert Score.objects.count() == 0
    done = api.post("/api/v1/imports/scores/", {**body, "dry_run": False}, format="json")
    assert done.status_code == 201
    assert done.json()["applied"] is True
    bad = api.post(
        "/api/v1/imports/scores/",
        {**body, "csv": totals_csv(client_of_a, [(day(90), "PHQ-9", 99, 1)]), "dry_run": False},
        format="json",
    )
    assert bad.status_code == 400
    assert bad.json()["report"]["errors"][0]["column"] == "Score"
    assert (
        api_as(supervisor).post("/api/v1/imports/scores/", body, format="json").status_code == 403
    )
