"""Consent, the client's right of access, erasure and retention (SECURITY.md REQ-CO1, REQ-RT1,
REQ-PN1, REQ-BR2).

* **Consent** gates sharing: :func:`consented` keeps the clients whose latest decision for a
  scope is "yes"; the research export calls :func:`research_consented`, the supervisor scope
  (``care.access``) filters on supervision consent. A withdrawal is a new fact, never a deletion.
* **Access**: :func:`export_bundle` is the client's record as a FHIR R4 ``Bundle`` (Patient,
  Goals, QuestionnaireResponses, Observations, the notes the client wrote, relationship notes,
  alerts, consents and who accessed the record as AuditEvents); :func:`export_pdf` is a readable
  summary. The therapist's process notes (``PrivateNote``, HIPAA "psychotherapy notes") are never
  part of either. :func:`client_export` writes the audit row ("E", purpose ``client_request``).
* **Who looked at my record**: :func:`access_report`.
* **Erasure**: two steps by two people — :func:`request_erasure` (the treating therapist or a
  practice admin) and :func:`confirm_erasure` (a practice admin who did not ask) — then
  :func:`erase_client` destroys the record and keeps a tombstone (ids only) so that the audit trail,
  which holds no PHI, still resolves.
* **Retention**: :func:`retention_until` is 10 years after the last contact, or 10 years after the
  18th birthday if later (CRPO / College of Psychologists of Ontario record-keeping standard;
  SECURITY.md [P6]); :func:`due_for_destruction` lists clients past it with no open episode.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any
from xml.sax.saxutils import escape  # escapes text for reportlab; parses nothing

from django.db import transaction
from django.db.models import OuterRef, QuerySet, Subquery
from django.utils import timezone

import alliance as al
from alliance.fhir.questionnaire import ALLIANCE_NS, canonical_url, fhir_id
from alliance_web.audit.fhir import to_fhir
from alliance_web.audit.models import (
    Action,
    AuditEvent,
    ErasureReason,
    ErasureRequest,
    ErasureStatus,
    Outcome,
)
from alliance_web.audit.trail import Actor, record
from alliance_web.care.access import scope_for
from alliance_web.care.models import (
    Alert,
    AlertAction,
    CheckIn,
    Client,
    ClientNote,
    Consent,
    ConsentScope,
    Episode,
    EpisodeStatus,
    Goal,
    RelationshipNote,
    Response,
    Score,
)

RETENTION_YEARS = 10
AGE_OF_MAJORITY = 18
LOINC = "http://loinc.org"
ERASED_NAME = "Erased client"


class PrivacyError(Exception):
    """A privacy step refused: the message says why."""


# ---------------------------------------------------------------------------------------------
# Consent
# ---------------------------------------------------------------------------------------------
def _latest_withdrawn(scope: str) -> Subquery:
    latest = Consent.objects.filter(client=OuterRef("pk"), scope=scope).order_by("-given_at", "-pk")
    return Subquery(latest.values("withdrawn_at")[:1])


def _latest_exists(scope: str) -> Subquery:
    latest = Consent.objects.filter(client=OuterRef("pk"), scope=scope).order_by("-given_at", "-pk")
    return Subquery(latest.values("pk")[:1])


def consented(clients: QuerySet[Client], scope: str) -> QuerySet[Client]:
    """The clients whose latest decision for ``scope`` is consent (never asked = no)."""
    if scope not in ConsentScope.values:
        raise PrivacyError(f"Unknown consent scope {scope!r}.")
    return (
        clients.annotate(
            _consent_id=_latest_exists(scope), _consent_withdrawn=_latest_withdrawn(scope)
        )
        .filter(_consent_id__isnull=False, _consent_withdrawn__isnull=True)
        .filter(erased_at__isnull=True)
    )


def research_consented(clients: QuerySet[Client]) -> QuerySet[Client]:
    """The clients who may be in a (de-identified) research export: research consent given and
    not withdrawn. Every research or service-evaluation export starts from this."""
    return consented(clients, ConsentScope.RESEARCH)


def has_consent(client: Client, scope: str) -> bool:
    return consented(Client.objects.filter(pk=client.pk), scope).exists()


# ---------------------------------------------------------------------------------------------
# Who may handle a client's privacy requests
# ---------------------------------------------------------------------------------------------
def privacy_clients(user: Any) -> QuerySet[Client]:
    """Clients whose privacy page this person may open: a practice admin's practice (metadata
    only — the access report and erasure requests), a clinician's own caseload."""
    if (
        getattr(user, "is_authenticated", False)
        and user.is_active
        and getattr(user, "role", "") == "admin"
        and user.practice_id is not None
    ):
        return Client.objects.filter(practice_id=user.practice_id, erased_at__isnull=True)
    scope = scope_for(user)
    if scope.kind != "therapist":
        return Client.objects.none()
    return scope.own_clients()  # not break-glass grants: they are read-only (REQ-AC2)


def may_export(user: Any, client: Client) -> bool:
    """Only a clinician treating the client hands them their record (it holds clinical content)."""
    scope = scope_for(user)
    return scope.kind == "therapist" and scope.own_clients().filter(pk=client.pk).exists()


# ---------------------------------------------------------------------------------------------
# Who looked at my record
# ---------------------------------------------------------------------------------------------
ACTION_WORDS = {
    Action.CREATE: "added to",
    Action.READ: "looked at",
    Action.UPDATE: "changed",
    Action.DELETE: "removed from",
    Action.EXECUTE: "exported or acted on",
}


@dataclass(frozen=True)
class AccessEntry:
    when: datetime
    who: str
    role: str
    action: str
    what: str
    outcome: str
    purpose: str


def access_events(client: Client) -> QuerySet[AuditEvent]:
    return AuditEvent.objects.filter(patient_id=str(client.public_id)).order_by("-seq")


def access_report(client: Client, *, limit: int | None = None) -> list[AccessEntry]:
    """Every audited action on the client's record, newest first, with staff by name."""
    from alliance_web.accounts.models import User

    events = list(access_events(client)[:limit] if limit else access_events(client))
    names = {
        u.pk: str(u) for u in User.objects.filter(pk__in={e.user_id for e in events if e.user_id})
    }
    entries = []
    for e in events:
        if e.role == "client":
            who = "You (check-in link)"
        elif e.role == "system":
            who = "Alliance (automatic)"
        else:
            who = names.get(e.user_id, e.username or "unknown")
        entries.append(
            AccessEntry(
                when=e.recorded,
                who=who,
                role=e.role,
                action=ACTION_WORDS.get(e.action, e.action),
                what=e.entity_type.replace("_", " "),
                outcome=e.outcome,
                purpose=e.purpose,
            )
        )
    return entries


# ---------------------------------------------------------------------------------------------
# The client's record as FHIR
# ---------------------------------------------------------------------------------------------
def _iso(dt: datetime | date) -> str:
    if isinstance(dt, datetime):
        return dt.astimezone(UTC).isoformat().replace("+00:00", "Z")
    return dt.isoformat()


def _num(value: float) -> int | float:
    return int(value) if float(value).is_integer() else float(value)


def _answer(instrument: Any, item_id: str, value: float) -> dict[str, Any]:
    item = None
    if instrument is not None:
        item = next((i for i in instrument.items if i.id == item_id), None)
    if item is not None and item.kind == "choice":
        option = next((o for o in item.options if float(o.value) == float(value)), None)
        if option is not None:
            coding = {
                "system": option.system
                or (
                    LOINC
                    if option.code
                    else f"{ALLIANCE_NS}/CodeSystem/{fhir_id(instrument.id)}-answers"
                ),
                "code": option.code or str(_num(value)),
            }
            if option.label:
                coding["display"] = option.label
            return {"valueCoding": coding}
    number = _num(value)
    return {"valueInteger": number} if isinstance(number, int) else {"valueDecimal": number}


def _instrument(instrument_id: str) -> Any:
    try:
        return al.instrument(instrument_id)
    except Exception:  # noqa: BLE001 - a removed custom instrument still exports its numbers
        return None


def _patient(client: Client) -> dict[str, Any]:
    patient: dict[str, Any] = {
        "resourceType": "Patient",
        "id": str(client.public_id),
        "identifier": [{"system": f"{ALLIANCE_NS}/sid/client", "value": str(client.public_id)}],
        "name": [{"text": client.preferred_name}],
        "managingOrganization": {"display": client.practice.name},
    }
    telecom = []
    if client.email:
        telecom.append({"system": "email", "value": client.email})
    if client.phone:
        telecom.append({"system": "phone", "value": client.phone})
    if telecom:
        patient["telecom"] = telecom
    if client.date_of_birth:
        patient["birthDate"] = client.date_of_birth.isoformat()
    return patient


def _note_observation(
    rid: str, subject: dict[str, str], when: datetime, label: str, text: str, author: str
) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "id": rid,
        "status": "final",
        "code": {"text": label},
        "subject": subject,
        "effectiveDateTime": _iso(when),
        "performer": [{"display": author}],
        "valueString": text,
    }


def export_bundle(client: Client) -> dict[str, Any]:
    """The client's record as a FHIR R4 ``collection`` Bundle (never the process notes)."""
    subject = {"reference": f"Patient/{client.public_id}"}
    resources: list[dict[str, Any]] = [_patient(client)]
    episodes = list(Episode.objects.filter(client=client).select_related("therapist"))
    for goal in Goal.objects.filter(episode__in=episodes).order_by("episode_id", "position"):
        resources.append(
            {
                "resourceType": "Goal",
                "id": str(goal.public_id),
                "lifecycleStatus": "completed" if goal.closed_at else "active",
                "description": {"text": goal.text},
                "subject": subject,
                "startDate": goal.created_at.date().isoformat(),
            }
        )
    responses = (
        Response.objects.filter(checkin__episode__in=episodes)
        .select_related("checkin", "checkin__completed_by")
        .order_by("submitted_at", "pk")
    )
    qr_ids: dict[int, str] = {}
    for response in responses:
        inst = _instrument(response.instrument)
        rid = f"qr-{response.pk}"
        qr_ids[response.pk] = rid
        by_therapist = response.checkin.completed_by is not None
        resources.append(
            {
                "resourceType": "QuestionnaireResponse",
                "id": rid,
                "questionnaire": f"{canonical_url(response.instrument)}|{response.instrument_version}",
                "status": "completed",
                "subject": subject,
                "authored": _iso(response.submitted_at),
                "author": {"display": str(response.checkin.completed_by)}
                if by_therapist
                else subject,
                "item": [
                    {"linkId": item_id, "answer": [_answer(inst, item_id, value)]}
                    for item_id, value in sorted(response.answers.items())
                ],
            }
        )
    for score in Score.objects.filter(episode__in=episodes).order_by("administered_at", "pk"):
        inst = _instrument(score.instrument)
        code: dict[str, Any] = {
            "text": f"{inst.short_name if inst else score.instrument} total score"
        }
        if inst is not None and inst.loinc is not None and inst.loinc.total:
            code["coding"] = [{"system": LOINC, "code": inst.loinc.total}]
        observation: dict[str, Any] = {
            "resourceType": "Observation",
            "id": f"score-{score.pk}",
            "status": "final",
            "category": [
                {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                            "code": "survey",
                        }
                    ]
                }
            ],
            "code": code,
            "subject": subject,
            "effectiveDateTime": _iso(score.administered_at),
            "derivedFrom": [{"reference": f"QuestionnaireResponse/{qr_ids[score.response_id]}"}]
            if score.response_id in qr_ids
            else [],
        }
        if score.total is None:
            observation["dataAbsentReason"] = {"text": score.error or "not scored"}
        else:
            observation["valueQuantity"] = {"value": _num(score.total), "unit": "score"}
        if score.severity:
            observation["interpretation"] = [{"text": score.severity}]
        if not observation["derivedFrom"]:
            del observation["derivedFrom"]
        resources.append(observation)
    for note in ClientNote.objects.filter(episode__in=episodes).order_by("written_at"):
        resources.append(
            {
                "resourceType": "Communication",
                "id": f"note-{note.pk}",
                "status": "completed",
                "subject": subject,
                "sender": subject,
                "sent": _iso(note.written_at),
                "payload": [{"contentString": note.text}],
            }
        )
    rel_notes = RelationshipNote.objects.filter(episode__in=episodes).select_related("author")
    for rel in rel_notes.order_by("created_at"):
        label = f"Working relationship: {rel.get_event_display().lower()}"
        resources.append(
            _note_observation(
                f"relationship-{rel.pk}",
                subject,
                rel.created_at,
                label,
                rel.text or "—",
                str(rel.author),
            )
        )
    for alert in Alert.objects.filter(episode__in=episodes).order_by("created_at"):
        resources.append(
            {
                "resourceType": "Flag",
                "id": str(alert.public_id),
                "status": "active" if alert.status == "open" else "inactive",
                "code": {"text": alert.get_kind_display()},
                "subject": subject,
                "period": {"start": _iso(alert.created_at)},
            }
        )
    actions = AlertAction.objects.filter(alert__episode__in=episodes).select_related("by", "alert")
    for act in actions.order_by("at"):
        resources.append(
            _note_observation(
                f"alert-action-{act.pk}",
                subject,
                act.at,
                act.get_kind_display(),
                act.note or "—",
                str(act.by),
            )
        )
    for consent in Consent.objects.filter(client=client).order_by("given_at", "pk"):
        resources.append(
            {
                "resourceType": "Consent",
                "id": f"consent-{consent.pk}",
                "status": "active" if consent.withdrawn_at is None else "inactive",
                "scope": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
                            "code": "research"
                            if consent.scope == ConsentScope.RESEARCH
                            else "patient-privacy",
                        }
                    ],
                    "text": consent.get_scope_display(),
                },
                "category": [{"text": consent.scope}],
                "patient": subject,
                "dateTime": _iso(consent.withdrawn_at or consent.given_at),
                "policyRule": {
                    "coding": [
                        {
                            "system": "http://terminology.hl7.org/CodeSystem/v3-ActCode",
                            "code": "OPTIN" if consent.withdrawn_at is None else "OPTOUT",
                        }
                    ]
                },
            }
        )
    for event in access_events(client).order_by("seq"):
        resources.append(to_fhir(event))
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": _iso(timezone.now()),
        "entry": [
            {"fullUrl": f"{ALLIANCE_NS}/{r['resourceType']}/{r['id']}", "resource": r}
            for r in resources
        ],
    }


# ---------------------------------------------------------------------------------------------
# The client's record as a readable PDF
# ---------------------------------------------------------------------------------------------
_FONT_PATHS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
)


def _font() -> str:
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.ttfonts import TTFont

    for path in _FONT_PATHS:
        if os.path.exists(path):
            if "AlliancePrivacySans" not in pdfmetrics.getRegisteredFontNames():
                pdfmetrics.registerFont(TTFont("AlliancePrivacySans", path))
            return "AlliancePrivacySans"
    return "Helvetica"


def export_pdf(client: Client) -> bytes:
    """A readable summary of the record for the client (the same content as the Bundle)."""
    from reportlab.lib import colors
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.lib.units import mm
    from reportlab.platypus import Paragraph, SimpleDocTemplate, Spacer, Table, TableStyle

    font = _font()
    styles = getSampleStyleSheet()
    for style in styles.byName.values():
        style.fontName = font
    body, h1, h2 = styles["BodyText"], styles["Title"], styles["Heading2"]

    def p(text: Any, style: Any = body) -> Any:
        return Paragraph(escape(str(text)), style)

    def table(rows: list[list[Any]], widths: list[float]) -> Any:
        t = Table([[p(c) for c in row] for row in rows], colWidths=widths, repeatRows=1)
        t.setStyle(
            TableStyle(
                [
                    ("LINEBELOW", (0, 0), (-1, 0), 0.5, colors.grey),
                    ("VALIGN", (0, 0), (-1, -1), "TOP"),
                ]
            )
        )
        return t

    episodes = list(Episode.objects.filter(client=client))
    story: list[Any] = [
        p("Your record at " + client.practice.name, h1),
        p(f"Prepared for {client.preferred_name} on {timezone.localdate().isoformat()}."),
        p(
            "This is what the practice keeps about you in Alliance. Your therapist's own process "
            "notes are kept separately and are not part of this record."
        ),
        Spacer(1, 4 * mm),
        p("Goals", h2),
    ]
    goals = Goal.objects.filter(episode__in=episodes).order_by("episode_id", "position")
    story += [p(f"{g.position}. {g.text}") for g in goals] or [p("No goals recorded.")]
    story.append(p("Questionnaires", h2))
    scores = Score.objects.filter(episode__in=episodes).order_by("administered_at")
    rows = [["Date", "Questionnaire", "Score", "Meaning"]]
    for s in scores:
        inst = _instrument(s.instrument)
        rows.append(
            [
                timezone.localtime(s.administered_at).date().isoformat(),
                inst.short_name if inst else s.instrument,
                "—" if s.total is None else f"{s.total:g}",
                s.severity or "",
            ]
        )
    story.append(
        table(rows, [30 * mm, 45 * mm, 20 * mm, 70 * mm]) if len(rows) > 1 else p("None yet.")
    )
    notes = ClientNote.objects.filter(episode__in=episodes).order_by("written_at")
    story.append(p("What you wrote to your therapist", h2))
    story += [
        p(f"{timezone.localtime(n.written_at).date().isoformat()}: {n.text}") for n in notes
    ] or [p("Nothing.")]
    story.append(p("Notes about our working relationship", h2))
    rel = RelationshipNote.objects.filter(episode__in=episodes).order_by("created_at")
    story += [
        p(
            f"{timezone.localtime(r.created_at).date().isoformat()} ({r.get_event_display()}): {r.text or '—'}"
        )
        for r in rel
    ] or [p("None.")]
    story.append(p("Your consent decisions", h2))
    for c in Consent.objects.filter(client=client).order_by("given_at"):
        state = f"withdrawn {c.withdrawn_at.date().isoformat()}" if c.withdrawn_at else "given"
        story.append(
            p(f"{c.get_scope_display()}: {state} (recorded {c.given_at.date().isoformat()})")
        )
    story.append(p("Who looked at or changed your record", h2))
    rows = [["When", "Who", "What"]]
    for e in access_report(client, limit=500):
        rows.append(
            [
                timezone.localtime(e.when).strftime("%Y-%m-%d %H:%M"),
                f"{e.who} ({e.role})",
                f"{e.action} {e.what}"
                + ("" if e.outcome == Outcome.SUCCESS else f" — {e.outcome}"),
            ]
        )
    story.append(table(rows, [35 * mm, 60 * mm, 70 * mm]))
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer, pagesize=A4, title="Your record", author=client.practice.name, invariant=1
    )
    doc.build(story)
    return buffer.getvalue()


@transaction.atomic
def client_export(by: Any, client: Client, fmt: str) -> bytes:
    """The client's record (``fmt`` "fhir" or "pdf"), audited as an export for the client."""
    import json

    if fmt not in ("fhir", "pdf"):
        raise PrivacyError("Choose FHIR or PDF.")
    if fmt == "fhir":
        bundle = export_bundle(client)
        data = json.dumps(bundle, ensure_ascii=False, indent=1).encode("utf-8")
        detail = {"format": "fhir", "resources": len(bundle["entry"])}
    else:
        data = export_pdf(client)
        detail = {"format": "pdf", "bytes": len(data)}
    record(
        Actor.of(by),
        Action.EXECUTE,
        "client_export",
        client.public_id,
        client.public_id,
        purpose="client_request",
        detail=detail,
    )
    return data


# ---------------------------------------------------------------------------------------------
# Erasure
# ---------------------------------------------------------------------------------------------
@transaction.atomic
def request_erasure(by: Any, client: Client, reason: str) -> ErasureRequest:
    if reason not in ErasureReason.values:
        raise PrivacyError("Choose why the record should be erased.")
    if ErasureRequest.objects.filter(client=client, status=ErasureStatus.PENDING).exists():
        raise PrivacyError("An erasure request for this client is already waiting.")
    req = ErasureRequest.objects.create(
        practice_id=client.practice_id,
        client=client,
        client_public_id=client.public_id,
        requested_by=by,
        reason=reason,
    )
    record(
        Actor.of(by),
        Action.CREATE,
        "erasure_request",
        req.pk,
        client.public_id,
        detail={"reason": reason},
    )
    return req


@transaction.atomic
def cancel_erasure(by: Any, req: ErasureRequest) -> ErasureRequest:
    locked = ErasureRequest.objects.select_for_update().get(pk=req.pk)
    if locked.status != ErasureStatus.PENDING:
        raise PrivacyError("This request was already decided.")
    locked.status, locked.decided_by, locked.decided_at = (
        ErasureStatus.CANCELLED,
        by,
        timezone.now(),
    )
    locked.save(update_fields=["status", "decided_by", "decided_at"])
    record(
        Actor.of(by),
        Action.UPDATE,
        "erasure_request",
        locked.pk,
        locked.client_public_id,
        detail={"status": "cancelled"},
    )
    return locked


@transaction.atomic
def confirm_erasure(by: Any, req: ErasureRequest) -> dict[str, int]:
    """Step two: a practice admin other than the requester confirms; the record is destroyed."""
    locked = (
        ErasureRequest.objects.select_for_update(of=("self",))
        .select_related("client")
        .get(pk=req.pk)
    )
    if getattr(by, "role", "") != "admin" or by.practice_id != locked.practice_id:
        raise PrivacyError("A practice admin confirms erasure.")
    if by.pk == locked.requested_by_id:
        raise PrivacyError(
            "Erasure needs a second person: another admin must confirm your request."
        )
    if locked.status != ErasureStatus.PENDING or locked.client is None:
        raise PrivacyError("This request was already decided.")
    counts = erase_client(locked.client, actor=Actor.of(by), purpose=f"erasure:{locked.reason}")
    locked.status, locked.decided_by, locked.decided_at = ErasureStatus.ERASED, by, timezone.now()
    locked.save(update_fields=["status", "decided_by", "decided_at"])
    return counts


def _count(qs: QuerySet[Any]) -> int:
    return qs.count()


@transaction.atomic
def erase_client(client: Client, *, actor: Actor, purpose: str) -> dict[str, int]:
    """Destroy the client's record; keep a tombstone with ids only. Audited with counts."""
    client = Client.objects.select_for_update().get(pk=client.pk)
    if client.erased_at is not None:
        raise PrivacyError("This record was already erased.")
    episodes = Episode.objects.filter(client=client)
    counts = {
        "episodes": _count(episodes),
        "checkins": _count(CheckIn.objects.filter(episode__in=episodes)),
        "responses": _count(Response.objects.filter(checkin__episode__in=episodes)),
        "notes": _count(ClientNote.objects.filter(episode__in=episodes)),
        "goals": _count(Goal.objects.filter(episode__in=episodes)),
        "consents": _count(Consent.objects.filter(client=client)),
    }
    episodes.delete()  # cascades to sessions, goals, check-ins, answers, scores, notes, alerts
    Consent.objects.filter(client=client).delete()
    client.preferred_name = ERASED_NAME
    client.email = client.phone = ""
    client.date_of_birth = None
    client.progress_view_enabled = False
    client.erased_at = timezone.now()
    client.save()
    record(
        actor,
        Action.DELETE,
        "client",
        client.public_id,
        client.public_id,
        purpose=purpose,
        detail=counts,
    )
    return counts


# ---------------------------------------------------------------------------------------------
# Retention
# ---------------------------------------------------------------------------------------------
def add_years(day: date, years: int) -> date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a year that has none
        return day.replace(year=day.year + years, day=28)


def retention_until(client: Client) -> date:
    """The day after which the record may be destroyed: 10 years after the last contact, or
    10 years after the 18th birthday if that is later."""
    last = timezone.localtime(client.last_contact_at).date()
    until = add_years(last, RETENTION_YEARS)
    if client.date_of_birth:
        until = max(until, add_years(client.date_of_birth, AGE_OF_MAJORITY + RETENTION_YEARS))
    return until


@dataclass(frozen=True)
class Due:
    client: Client
    until: date


def due_for_destruction(*, today: date | None = None, practice_id: int | None = None) -> list[Due]:
    """Clients past their retention date, without an open episode, not yet erased."""
    today = today or timezone.localdate()
    cutoff = timezone.make_aware(
        datetime.combine(add_years(today, -RETENTION_YEARS), datetime.min.time())
    )
    candidates = Client.objects.filter(erased_at__isnull=True, last_contact_at__lt=cutoff)
    if practice_id is not None:
        candidates = candidates.filter(practice_id=practice_id)
    candidates = candidates.exclude(episodes__status=EpisodeStatus.OPEN).select_related("practice")
    due = [Due(c, retention_until(c)) for c in candidates.order_by("last_contact_at", "pk")]
    return [d for d in due if d.until < today]


def destroy(due: Iterable[Due], *, actor: Actor) -> dict[str, int]:
    """Erase each client that is due, one transaction each; return the totals."""
    totals: dict[str, int] = {"clients": 0}
    for item in due:
        counts = erase_client(item.client, actor=actor, purpose="retention")
        totals["clients"] += 1
        for key, value in counts.items():
            totals[key] = totals.get(key, 0) + value
    return totals


__all__ = [
    "AccessEntry",
    "Due",
    "PrivacyError",
    "access_events",
    "access_report",
    "add_years",
    "cancel_erasure",
    "client_export",
    "confirm_erasure",
    "consented",
    "destroy",
    "due_for_destruction",
    "erase_client",
    "export_bundle",
    "export_pdf",
    "has_consent",
    "may_export",
    "privacy_clients",
    "request_erasure",
    "research_consented",
    "retention_until",
]
