"""The progress report PDF: an audited export of the record, with charts and without private notes."""

from __future__ import annotations

import pytest

from alliance_web.audit.models import Action
from alliance_web.care import services
from alliance_web.workspace import report, sample
from tests.web import workspace_helpers as wh
from tests.web.workspace_helpers import audit_head, audit_since, denied_since, pdf_text

pytestmark = pytest.mark.django_db

# Shared fixtures (tests/web/workspace_helpers.py).
fast_passwords, sam = wh.fast_passwords, wh.sam


@pytest.fixture(autouse=True)
def searchable_pdf(monkeypatch):
    """Build with the built-in font so that the text can be searched in the content stream."""
    monkeypatch.setattr(report, "FONT_PATHS", ())


def url(episode) -> str:
    return f"/w/clients/{episode.client.public_id}/report.pdf"


def test_the_report_is_a_pdf_attachment_named_by_pseudonym(client, login, therapist_a, sam):
    login(client, therapist_a)
    response = client.get(url(sam))
    assert response.status_code == 200
    assert response["Content-Type"] == "application/pdf"
    assert (
        response["Content-Disposition"]
        == f'attachment; filename="progress-report-{sam.client.pseudonym}.pdf"'
    )
    assert response.content.startswith(b"%PDF-")
    text = pdf_text(response.content)
    assert "(Progress report)" in text
    assert "Sam" in text
    assert "Get back to running twice a week" in text


def test_the_report_is_audited_as_an_export(client, login, therapist_a, sam):
    login(client, therapist_a)
    head = audit_head()
    client.get(url(sam))
    export = audit_since(head, action=Action.EXECUTE, entity_type="progress_report").get()
    assert export.patient_id == str(sam.client.public_id)
    assert export.detail["format"] == "pdf"


def test_the_report_never_holds_private_notes(client, login, therapist_a, sam):
    services.add_private_note(therapist_a, sam, "PROCESS-NOTE-SENTINEL", share=True)
    login(client, therapist_a)
    text = pdf_text(client.get(url(sam)).content)
    assert "Sam" in text
    assert "PROCESS-NOTE-SENTINEL" not in text
    assert "hard to say out loud" not in text  # the client's private note


def test_the_supervisor_may_download_while_consent_lasts(client, login, supervisor, sam):
    login(client, supervisor)
    assert client.get(url(sam)).status_code == 200


@pytest.mark.parametrize("persona", ["therapist_b", "practice_admin", "outsider"])
def test_anyone_else_gets_404_and_an_audited_deny(client, login, request, sam, persona):
    login(client, request.getfixturevalue(persona))
    head = audit_head()
    response = client.get(url(sam))
    assert response.status_code == 404
    assert not response.content.startswith(b"%PDF")
    assert denied_since(head)


@pytest.mark.parametrize(
    "probe", ["<b>bold</b><font size=40>x</font>", "</para><para>", "& < > \" '", "Zoë 李 🙂"]
)
def test_markup_in_names_and_goals_is_printed_as_text(client, login, therapist_a, probe):
    episode = sample.add_client(
        therapist_a, probe, course="on_track", sessions=3, seed=3, goals=[probe]
    )
    login(client, therapist_a)
    response = client.get(url(episode))
    assert response.status_code == 200
    assert response.content.startswith(b"%PDF-")


def test_a_unicode_font_is_used_when_the_system_has_one(monkeypatch):
    monkeypatch.setattr(report, "FONT_PATHS", ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",))
    import os

    if not os.path.exists(report.FONT_PATHS[0]):
        pytest.skip("DejaVu Sans is not installed (apt-get install fonts-dejavu-core)")
    assert report._fonts() == ("AllianceSans", "AllianceSans-Bold")
