"""Consent, the client's copy of their record, erasure and retention (SECURITY.md REQ-CO1,
REQ-RT1, REQ-PN1, REQ-BR2)."""

from __future__ import annotations

import io
import json
from datetime import date, datetime, timedelta

import pytest
from django.core.management import call_command
from django.test import Client as Browser
from django.utils import timezone
from fhir.resources.R4B.bundle import Bundle

from alliance_web.audit.models import AuditEvent, ErasureRequest
from alliance_web.care import privacy, services
from alliance_web.care.models import (
    CheckIn,
    Client,
    ClientNote,
    ConsentScope,
    Episode,
    Goal,
    PrivateNote,
    Response,
    Score,
)
from tests.web.portal_helpers import full_answers


@pytest.fixture
def record(client, episode_of_a, therapist_a):
    """client_of_a after one check-in with a private note, plus a process note by the therapist."""
    checkin, path = services.issue_checkin(episode_of_a, session=episode_of_a.sessions.first())
    data = full_answers(checkin, "2")
    data["note"] = "I felt unheard when we talked about my father"
    assert client.post(path, data).status_code == 200
    services.add_private_note(
        therapist_a, episode_of_a, "PROCESS-NOTE countertransference again", share=False
    )
    services.log_relationship_event(
        therapist_a, episode_of_a, event="rupture", text="withdrew after homework talk"
    )
    return episode_of_a


# --- consent -------------------------------------------------------------------------------------
def test_research_exports_see_only_clients_who_consented(therapist_a, client_of_a):
    other = services.create_client(
        therapist_a,
        preferred_name="Ana",
        therapist=therapist_a,
        consents=[ConsentScope.CARE, ConsentScope.RESEARCH],
    )
    both = Client.objects.filter(pk__in=[client_of_a.pk, other.pk])
    assert list(privacy.research_consented(both)) == [other]
    services.set_consent(therapist_a, other, ConsentScope.RESEARCH, False)
    assert not privacy.research_consented(both).exists()
    services.set_consent(therapist_a, other, ConsentScope.RESEARCH, True)
    assert list(privacy.research_consented(both)) == [other]


def test_withdrawn_supervision_consent_hides_the_client_from_the_supervisor_with_an_audited_404(
    client, login, supervisor, therapist_a, client_of_a
):
    login(client, supervisor)
    url = f"/w/clients/{client_of_a.public_id}/"
    assert client.get(url).status_code == 200
    services.set_consent(therapist_a, client_of_a, ConsentScope.SUPERVISION, False)
    assert client.get(url).status_code == 404
    assert AuditEvent.objects.filter(
        user_id=supervisor.pk, outcome="deny", entity_id=str(client_of_a.public_id)
    ).exists()
    caseload = client.get("/w/")
    assert b"Sam" not in caseload.content


def test_the_therapist_records_a_withdrawal_on_the_privacy_page(
    client, login, therapist_a, client_of_a
):
    login(client, therapist_a)
    response = client.post(
        f"/privacy/clients/{client_of_a.public_id}/consent/",
        {"scope": "supervision", "given": "no"},
    )
    assert response.status_code == 302
    assert not privacy.has_consent(client_of_a, ConsentScope.SUPERVISION)
    assert AuditEvent.objects.filter(
        entity_type="consent", patient_id=str(client_of_a.public_id)
    ).exists()


# --- the client's copy of their record --------------------------------------------------------------
def test_the_fhir_export_is_a_valid_bundle_with_the_whole_record_but_no_process_notes(
    client, login, record, therapist_a, client_of_a
):
    login(client, therapist_a)
    response = client.get(f"/privacy/clients/{client_of_a.public_id}/record.json")
    assert response.status_code == 200
    assert response["Content-Disposition"].startswith("attachment;")
    assert "no-store" in response["Cache-Control"]
    bundle = json.loads(response.content)
    Bundle.model_validate(bundle)
    kinds = {e["resource"]["resourceType"] for e in bundle["entry"]}
    assert {
        "Patient",
        "Goal",
        "QuestionnaireResponse",
        "Observation",
        "Communication",
        "Consent",
        "AuditEvent",
    } <= kinds
    n_responses = Response.objects.filter(checkin__episode=record).count()
    assert (
        sum(e["resource"]["resourceType"] == "QuestionnaireResponse" for e in bundle["entry"])
        == n_responses
    )
    assert (
        sum(
            e["resource"].get("category", [{}])[0].get("coding", [{}])[0].get("code") == "survey"
            for e in bundle["entry"]
            if e["resource"]["resourceType"] == "Observation"
        )
        == Score.objects.filter(episode=record).count()
    )
    text = response.content.decode()
    assert "I felt unheard when we talked about my father" in text
    assert "withdrew after homework talk" in text
    assert "PROCESS-NOTE" not in text  # REQ-PN1
    export = AuditEvent.objects.filter(entity_type="client_export").last()
    assert (export.action, export.purpose, export.patient_id) == (
        "E",
        "client_request",
        str(client_of_a.public_id),
    )


def test_the_pdf_export_is_a_pdf_without_process_notes(
    client, login, record, therapist_a, client_of_a
):
    login(client, therapist_a)
    response = client.get(f"/privacy/clients/{client_of_a.public_id}/record.pdf")
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF")
    assert b"PROCESS-NOTE" not in response.content
    assert AuditEvent.objects.filter(entity_type="client_export", detail__format="pdf").exists()


def test_answers_in_the_export_match_what_was_stored(record, client_of_a):
    bundle = privacy.export_bundle(client_of_a)
    qr = next(
        e["resource"]
        for e in bundle["entry"]
        if e["resource"]["resourceType"] == "QuestionnaireResponse"
        and "phq" in e["resource"]["questionnaire"]
    )
    stored = Response.objects.get(checkin__episode=record, instrument="phq9").answers
    assert {i["linkId"] for i in qr["item"]} == set(stored)
    coded = [i["answer"][0]["valueCoding"] for i in qr["item"]]
    assert all(c["system"] == "http://loinc.org" for c in coded)  # PHQ-9 answers carry LOINC codes


def test_who_looked_at_my_record_names_the_staff_and_is_part_of_the_export(
    client, login, record, supervisor, client_of_a
):
    login(client, supervisor)
    client.get(f"/w/clients/{client_of_a.public_id}/")
    report = privacy.access_report(client_of_a)
    assert any(e.who == str(supervisor) and e.action == "looked at" for e in report)
    assert any(e.who == "You (check-in link)" for e in report)
    bundle = privacy.export_bundle(client_of_a)
    audit = [
        e["resource"] for e in bundle["entry"] if e["resource"]["resourceType"] == "AuditEvent"
    ]
    assert any(a["agent"][0].get("altId") == "supervisor" for a in audit)


def test_the_admin_sees_who_accessed_the_record_but_not_its_content(
    client, login, record, practice_admin, client_of_a
):
    login(client, practice_admin)
    page = client.get(f"/privacy/clients/{client_of_a.public_id}/")
    assert page.status_code == 200
    assert b"therapist_a" in page.content or b"Therapist A" in page.content
    assert b"I felt unheard" not in page.content
    assert client.get(f"/privacy/clients/{client_of_a.public_id}/record.json").status_code == 403


# --- erasure ---------------------------------------------------------------------------------------
def test_erasure_needs_a_request_and_a_second_person(
    client, login, record, therapist_a, practice_admin, client_of_a
):
    login(client, therapist_a)
    assert (
        client.post(
            f"/privacy/clients/{client_of_a.public_id}/erasure/", {"reason": "created_in_error"}
        ).status_code
        == 302
    )
    req = ErasureRequest.objects.get(client=client_of_a)
    assert (
        client.post(f"/privacy/erasure/{req.pk}/confirm/").status_code == 403
    )  # the requester cannot
    assert Episode.objects.filter(client=client_of_a).exists()
    admin = login(Browser(), practice_admin)
    assert admin.post(f"/privacy/erasure/{req.pk}/confirm/").status_code == 302
    client_of_a.refresh_from_db()
    assert client_of_a.erased_at is not None
    assert client_of_a.preferred_name == privacy.ERASED_NAME
    assert client_of_a.email == ""
    assert not Episode.objects.filter(client=client_of_a).exists()
    for model in (Goal, CheckIn, Score, ClientNote, PrivateNote):
        assert not model.objects.filter(episode__client=client_of_a).exists(), model
    assert not Response.objects.filter(checkin__episode__client=client_of_a).exists()
    row = AuditEvent.objects.filter(entity_type="client", action="D").last()
    assert row.patient_id == str(client_of_a.public_id)
    assert row.detail["episodes"] == 1
    # The trail survives, still verifiable, with no name in it; the client is gone from every page.
    assert AuditEvent.objects.filter(patient_id=str(client_of_a.public_id)).count() > 5
    assert client.get(f"/w/clients/{client_of_a.public_id}/").status_code == 404


def test_an_admin_cannot_confirm_their_own_erasure_request(
    client, login, record, practice_admin, client_of_a
):
    login(client, practice_admin)
    client.post(f"/privacy/clients/{client_of_a.public_id}/erasure/", {"reason": "client_request"})
    req = ErasureRequest.objects.get(client=client_of_a)
    client.post(f"/privacy/erasure/{req.pk}/confirm/")
    client_of_a.refresh_from_db()
    assert client_of_a.erased_at is None
    assert AuditEvent.objects.filter(entity_type="erasure_request", outcome="deny").exists()


def test_a_cancelled_request_erases_nothing(
    client, login, record, therapist_a, practice_admin, client_of_a
):
    req = privacy.request_erasure(therapist_a, client_of_a, "client_request")
    privacy.cancel_erasure(therapist_a, req)
    with pytest.raises(privacy.PrivacyError):
        privacy.confirm_erasure(practice_admin, req)
    client_of_a.refresh_from_db()
    assert client_of_a.erased_at is None


# --- retention --------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("last_contact", "born", "keep_until"),
    [
        (date(2020, 3, 15), None, date(2030, 3, 15)),
        (date(2020, 3, 15), date(1990, 1, 1), date(2030, 3, 15)),  # adult
        (date(2020, 3, 15), date(2010, 6, 1), date(2038, 6, 1)),  # minor: 10 y after turning 18
        (date(2020, 3, 15), date(2002, 6, 1), date(2030, 6, 1)),  # 18th birthday 2020: later wins
        (date(2016, 2, 29), None, date(2026, 2, 28)),  # leap day
    ],
)
def test_the_retention_date_is_ten_years_after_last_contact_or_after_turning_18(
    client_of_a, last_contact, born, keep_until
):
    client_of_a.last_contact_at = timezone.make_aware(
        datetime.combine(last_contact, datetime.min.time().replace(hour=12))
    )
    client_of_a.date_of_birth = born
    assert privacy.retention_until(client_of_a) == keep_until


def _aged(therapist, name, years_ago, *, born=None, open_episode=False):
    c = services.create_client(
        therapist, preferred_name=name, therapist=therapist, date_of_birth=born
    )
    if open_episode:
        services.open_episode(therapist, c, concerns=["anxiety"])
    else:
        ep = services.open_episode(therapist, c, concerns=["anxiety"])
        services.close_episode(therapist, ep, end_reason="planned")
    Client.objects.filter(pk=c.pk).update(
        last_contact_at=timezone.now() - timedelta(days=int(365.25 * years_ago))
    )
    return c


def test_the_retention_job_is_a_dry_run_unless_told_to_apply(therapist_a):
    old = _aged(therapist_a, "Old", 11)
    young_adult = _aged(
        therapist_a, "Minor then", 11, born=timezone.localdate() - timedelta(days=365 * 20)
    )
    recent = _aged(therapist_a, "Recent", 3)
    still_seen = _aged(therapist_a, "Open", 12, open_episode=True)
    out = io.StringIO()
    call_command("retention", "--json", stdout=out)
    listed = {row["client"] for row in json.loads(out.getvalue())}
    assert listed == {str(old.public_id)}
    assert Client.objects.get(pk=old.pk).erased_at is None  # dry run
    assert AuditEvent.objects.filter(entity_type="retention_run", detail__dry_run=True).exists()
    call_command("retention", "--apply", stdout=io.StringIO())
    assert Client.objects.get(pk=old.pk).erased_at is not None
    assert not Episode.objects.filter(client=old).exists()
    for kept in (young_adult, recent, still_seen):
        assert Client.objects.get(pk=kept.pk).erased_at is None
    row = AuditEvent.objects.filter(entity_type="client", action="D", purpose="retention").get()
    assert row.role == "system"
    assert row.patient_id == str(old.public_id)


def test_the_retention_job_can_preview_a_future_date(therapist_a):
    recent = _aged(therapist_a, "Recent", 3)
    out = io.StringIO()
    call_command(
        "retention",
        "--json",
        "--today",
        (timezone.localdate() + timedelta(days=365 * 8)).isoformat(),
        stdout=out,
    )
    assert [r["client"] for r in json.loads(out.getvalue())] == [str(recent.public_id)]


def test_markup_in_the_record_is_text_in_the_pdf(therapist_a):
    """reportlab reads paragraph markup; probes must be escaped, not parsed (nor crash it)."""
    name = '<b>Sam</b> <para><font color="red">x</font> "><img src=x onerror=alert(1)> & <br/>'
    client = services.create_client(therapist_a, preferred_name=name, therapist=therapist_a)
    services.open_episode(
        therapist_a, client, concerns=["anxiety"], goals=["<unclosed", "👩‍👩‍👧 שלום \u202e" * 50]
    )
    pdf = privacy.export_pdf(client)
    assert pdf.startswith(b"%PDF")
