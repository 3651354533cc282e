"""The FHIR R4 facade: ``/fhir/r4/`` (SPEC C8).

* ``metadata`` — the CapabilityStatement (public);
* ``Questionnaire`` — read and search the instrument library (the engine's export);
* ``QuestionnaireResponse`` — **create** (validated with the R4B model, scored again by the
  engine, stored through :func:`~alliance_web.care.services.submit_checkin`, which raises alerts
  and audits), read, search by patient;
* ``Observation`` — the scores, searched by patient, code, date and derived-from;
* ``Patient`` — read and search within the caller's scope;
* ``AuditEvent`` — search, for practice admins (the mapping is :mod:`alliance_web.audit.fhir`).

Every read of client data is audited (one row per client on a search page); every refusal is an
``OperationOutcome`` with a diagnostic; rows outside the caller's scope are 404s with an audit
'deny', exactly as in the REST API.
"""

from __future__ import annotations

import copy
import re
import uuid
from datetime import datetime, time, timedelta
from typing import Any

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.utils import extend_schema
from rest_framework import permissions
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

import alliance as al
from alliance.errors import AllianceError
from alliance_web.api.auth import BearerTokenAuthentication, VerifiedSessionAuthentication
from alliance_web.api.fhir import resources as fr
from alliance_web.api.fhir.outcome import (
    AlwaysFhirJSON,
    FhirError,
    FhirJSONParser,
    FhirJSONRenderer,
    handle,
    issue,
    operation_outcome,
)
from alliance_web.api.idempotency import idempotent
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record, record_many
from alliance_web.care import services
from alliance_web.care.access import Scope, get_or_404, scope_for
from alliance_web.care.models import CheckInKind, EpisodeStatus

DEFAULT_COUNT = 50
MAX_COUNT = 200
FHIR_VERSION = "4.0.1"
_DATE_PREFIX = re.compile(r"^(eq|ne|gt|lt|ge|le|sa|eb|ap)?(.+)$")
_PATIENT_REF = re.compile(r"^(?:Patient/)?([0-9a-fA-F-]{32,36})$")


class FhirView(APIView):
    authentication_classes = [BearerTokenAuthentication, VerifiedSessionAuthentication]
    permission_classes = [permissions.IsAuthenticated]
    renderer_classes = [FhirJSONRenderer]
    parser_classes = [FhirJSONParser]
    content_negotiation_class = AlwaysFhirJSON
    #: Search parameters this resource understands (others are refused, not ignored).
    search_params: frozenset[str] = frozenset()

    def get_exception_handler(self) -> Any:
        return handle

    @property
    def scope(self) -> Scope:
        if not hasattr(self, "_scope"):
            self._scope = scope_for(self.request.user)
        return self._scope

    def need_clinical(self, entity: str) -> None:
        if not self.scope.sees_clinical:
            record(
                Actor.of(self.request.user),
                Action.READ,
                entity,
                outcome=Outcome.DENY,
                detail={"reason": "role_sees_no_clinical_content"},
            )
            raise FhirError(403, "Your role does not see clinical content.")

    # -- search helpers --------------------------------------------------------------------
    def check_params(self, request: Request) -> None:
        allowed = self.search_params | {"_count", "_offset", "_format"}
        unknown = sorted(set(request.query_params) - allowed)
        if unknown:
            raise FhirError(
                400,
                f"Unknown search parameter(s) {', '.join(unknown)}; this server supports "
                f"{', '.join(sorted(allowed))} here.",
                code="not-supported",
            )

    def paging(self, request: Request) -> tuple[int, int]:
        def number(name: str, default: int, top: int) -> int:
            raw = request.query_params.get(name)
            if raw in (None, ""):
                return default
            if not raw.isdigit() or len(raw) > 7:
                raise FhirError(400, f"{name} must be a whole number from 0 to {top}.")
            return min(int(raw), top)

        return number("_count", DEFAULT_COUNT, MAX_COUNT), number("_offset", 0, 10_000_000)

    def bundle(
        self, request: Request, resource_type: str, rows: list[dict[str, Any]], total: int
    ) -> dict[str, Any]:
        count, offset = self.paging(request)
        base = fr.base_url()
        params = {k: v for k, v in request.query_params.lists() if k not in ("_offset",)}
        query = "&".join(f"{k}={v}" for k, vs in params.items() for v in vs)
        links = [{"relation": "self", "url": f"{base}/{resource_type}?{query}&_offset={offset}"}]
        if offset + count < total:
            links.append(
                {
                    "relation": "next",
                    "url": f"{base}/{resource_type}?{query}&_offset={offset + count}",
                }
            )
        return {
            "resourceType": "Bundle",
            "type": "searchset",
            "total": total,
            "link": links,
            "entry": [
                {
                    "fullUrl": f"{base}/{resource_type}/{r['id']}",
                    "resource": r,
                    "search": {"mode": "match"},
                }
                for r in rows
            ],
        }

    def page(self, request: Request, queryset: QuerySet[Any]) -> tuple[list[Any], int]:
        count, offset = self.paging(request)
        total = queryset.count()
        return list(queryset[offset : offset + count]), total

    def audit_clients(self, entity: str, client_ids: list[Any]) -> None:
        record_many(
            Actor.of(self.request.user),
            Action.READ,
            entity,
            [("", c) for c in dict.fromkeys(str(c) for c in client_ids)],
            purpose="fhir_search",
        )

    def audit_read(self, entity: str, entity_id: str, client_id: Any) -> None:
        record(
            Actor.of(self.request.user),
            Action.READ,
            entity,
            entity_id,
            client_id,
            purpose="fhir_read",
        )


def _patient_id(raw: str, param: str = "patient") -> uuid.UUID:
    m = _PATIENT_REF.match(raw.strip())
    if not m:
        raise FhirError(400, f"{param} must be Patient/<id> (a UUID of this server), not {raw!r}.")
    try:
        return uuid.UUID(m.group(1))
    except ValueError:
        raise FhirError(400, f"{param}: {m.group(1)!r} is not a patient id.") from None


def _date_filters(values: list[str], field: str) -> dict[str, Any]:
    """FHIR date search (``ge2026-01-01``, ``lt2026-02-01T10:00:00Z``, a bare date = that day)."""
    lookups: dict[str, Any] = {}
    for value in values:
        m = _DATE_PREFIX.match(value)
        prefix, text = (m.group(1) or "eq", m.group(2)) if m else ("eq", value)
        if prefix not in ("eq", "gt", "lt", "ge", "le"):
            raise FhirError(
                400, f"date prefix {prefix!r} is not supported (use eq, gt, ge, lt, le)."
            )
        try:
            moment = parse_datetime(text)
            day = None if moment else parse_date(text)
        except ValueError:
            moment, day = None, None
        if moment is not None:
            if timezone.is_naive(moment):
                moment = timezone.make_aware(moment)
            start, end = moment, moment + timedelta(seconds=1)
        elif day is not None:
            start = timezone.make_aware(datetime.combine(day, time.min))
            end = start + timedelta(days=1)
        else:
            raise FhirError(
                400, f"{value!r} is not a FHIR date or dateTime (YYYY-MM-DD[Thh:mm:ssZ])."
            )
        if prefix == "eq":
            lookups[f"{field}__gte"], lookups[f"{field}__lt"] = start, end
        elif prefix == "ge":
            lookups[f"{field}__gte"] = start
        elif prefix == "gt":
            lookups[f"{field}__gte"] = end
        elif prefix == "le":
            lookups[f"{field}__lt"] = end
        else:
            lookups[f"{field}__lt"] = start
    return lookups


# --------------------------------------------------------------------------------------------
class Metadata(FhirView):
    permission_classes = [permissions.AllowAny]

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        search = {
            "Patient": ["_id", "name", "birthdate"],
            "Questionnaire": ["_id", "url", "name", "title", "code"],
            "QuestionnaireResponse": ["_id", "patient", "subject", "questionnaire", "authored"],
            "Observation": ["_id", "patient", "subject", "code", "date", "derived-from"],
            "AuditEvent": ["date", "patient", "action"],
        }
        types = {
            "date": "date",
            "authored": "date",
            "birthdate": "date",
            "patient": "reference",
            "subject": "reference",
            "derived-from": "reference",
            "questionnaire": "reference",
            "code": "token",
            "action": "token",
            "_id": "token",
            "url": "uri",
        }
        interactions = {
            "Patient": ["read", "search-type"],
            "Questionnaire": ["read", "search-type"],
            "QuestionnaireResponse": ["create", "read", "search-type"],
            "Observation": ["read", "search-type"],
            "AuditEvent": ["search-type"],
        }
        return Response(
            {
                "resourceType": "CapabilityStatement",
                "status": "active",
                "date": "2026-11-26",
                "kind": "instance",
                "software": {"name": "Alliance", "version": al.__version__},
                "implementation": {
                    "description": "Alliance measurement-based care: FHIR R4 facade",
                    "url": fr.base_url(),
                },
                "fhirVersion": FHIR_VERSION,
                "format": ["application/fhir+json", "json"],
                "rest": [
                    {
                        "mode": "server",
                        "security": {
                            "description": "Authorization: Bearer <practice API token>; every "
                            "read and write of client data is audited."
                        },
                        "resource": [
                            {
                                "type": rtype,
                                "interaction": [{"code": c} for c in interactions[rtype]],
                                "searchParam": [
                                    {"name": p, "type": types.get(p, "string")} for p in params
                                ],
                            }
                            for rtype, params in search.items()
                        ],
                    }
                ],
            }
        )


# --------------------------------------------------------------------------------------------
class QuestionnaireSearch(FhirView):
    search_params = frozenset({"_id", "url", "name", "title", "code"})

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        self.check_params(request)
        q = request.query_params
        rows = []
        for inst_id in sorted(al.instruments()):
            resource = fr.questionnaire(inst_id)
            if q.get("_id") and resource["id"] != q["_id"]:
                continue
            if q.get("url") and resource["url"] != q["url"].split("|", 1)[0]:
                continue
            if q.get("name") and q["name"].lower() not in resource["name"].lower():
                continue
            if q.get("title") and q["title"].lower() not in resource.get("title", "").lower():
                continue
            if q.get("code"):
                code = q["code"].rpartition("|")[2]
                codes = {c.get("code") for c in resource.get("code", [])}
                if code not in codes:
                    continue
            rows.append(resource)
        count, offset = self.paging(request)
        return Response(
            self.bundle(request, "Questionnaire", rows[offset : offset + count], len(rows))
        )

    @extend_schema(exclude=True)
    def post(self, request: Request) -> Response:
        raise FhirError(
            405,
            "Questionnaires are read-only here: Alliance serves its instrument library. To send "
            "answers to a form of your own, put the Questionnaire in QuestionnaireResponse."
            "contained and set questionnaire to '#<its id>'.",
            code="not-supported",
        )


class QuestionnaireRead(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, rid: str) -> Response:
        inst_id = fr.instruments_by_fhir_id().get(rid)
        if inst_id is None:
            raise FhirError(
                404, f"No Questionnaire {rid!r}; GET /fhir/r4/Questionnaire lists them."
            )
        return Response(fr.questionnaire(inst_id))


# --------------------------------------------------------------------------------------------
def _validate_r4b(resource: dict[str, Any]) -> list[dict[str, Any]]:
    """Problems the R4B model finds in the response itself (``contained`` is checked by the
    engine, which reads third-party questionnaires tolerantly and says what it skipped)."""
    from fhir.resources.R4B.questionnaireresponse import QuestionnaireResponse
    from pydantic import ValidationError

    body = {k: v for k, v in resource.items() if k != "contained"}
    try:
        QuestionnaireResponse.model_validate(body)
    except ValidationError as exc:
        return [
            issue(
                "error",
                "structure",
                f"{err['msg']}",
                [
                    "QuestionnaireResponse."
                    + ".".join(str(p) for p in err["loc"] if p != "__root__")
                ],
            )
            for err in exc.errors()[:20]
        ]
    return []


KIND_FOR_RATER = {"client": CheckInKind.PRE_SESSION, "therapist": CheckInKind.THERAPIST}


class QuestionnaireResponseSearch(FhirView):
    search_params = frozenset({"_id", "patient", "subject", "questionnaire", "authored"})

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        self.need_clinical("questionnaire_response")
        self.check_params(request)
        scores = _score_search(self.scope, request, date_param="authored")
        rows, total = self.page(request, scores)
        self.audit_clients("questionnaire_response", [s.episode.client.public_id for s in rows])
        return Response(
            self.bundle(
                request,
                "QuestionnaireResponse",
                [fr.questionnaire_response(s) for s in rows],
                total,
            )
        )

    @extend_schema(exclude=True)
    @idempotent
    def post(self, request: Request) -> Response:
        self.need_clinical("questionnaire_response")
        resource = request.data
        if not isinstance(resource, dict):
            raise FhirError(400, "The body must be one JSON object (a QuestionnaireResponse).")
        rtype = resource.get("resourceType")
        if rtype != "QuestionnaireResponse":
            hint = (
                " A Questionnaire describes a form; Alliance's forms are at GET /fhir/r4/"
                "Questionnaire. To send answers to your own form, put it in "
                "QuestionnaireResponse.contained."
                if rtype == "Questionnaire"
                else ""
            )
            raise FhirError(
                400,
                f"This endpoint creates QuestionnaireResponse resources; the body is "
                f"{rtype or 'not a FHIR resource (no resourceType)'}.{hint}",
                expression=["resourceType"],
            )
        problems = _validate_r4b(resource)
        if problems:
            raise FhirError(
                400,
                f"The QuestionnaireResponse is not valid FHIR R4 ({len(problems)} problem(s)).",
                code="structure",
                issues=problems,
            )
        if resource.get("status") not in ("completed", "amended"):
            raise FhirError(
                422,
                f"Only completed responses are scored and stored; status is "
                f"{resource.get('status')!r}.",
                code="business-rule",
                expression=["QuestionnaireResponse.status"],
            )
        reference = (resource.get("subject") or {}).get("reference")
        if not reference:
            raise FhirError(
                422,
                "subject is required: the Patient the answers are about (Patient/<id>).",
                code="required",
                expression=["QuestionnaireResponse.subject"],
            )
        local = str(reference)
        if local.startswith(fr.base_url() + "/"):
            local = local[len(fr.base_url()) + 1 :]
        if not _PATIENT_REF.match(local) or not local.startswith("Patient/"):
            raise FhirError(
                422,
                f"subject must reference a Patient of this server (Patient/<id>), not "
                f"{reference!r}.",
                code="invalid",
                expression=["QuestionnaireResponse.subject"],
            )
        client = get_or_404(
            self.scope,
            self.scope.clients().select_related("practice"),
            entity="client",
            public_id=_patient_id(local, "subject"),
        )
        episode = (
            self.scope.episodes()
            .filter(client=client, status=EpisodeStatus.OPEN)
            .select_related("client", "therapist")
            .order_by("-opened_at")
            .first()
        )
        if episode is None:
            raise FhirError(
                422,
                "The patient has no open episode of care; open one before sending answers.",
                code="business-rule",
            )
        if not self.scope.may_treat(episode):
            record(
                Actor.of(request.user),
                Action.CREATE,
                "questionnaire_response",
                "",
                client.public_id,
                outcome=Outcome.DENY,
                detail={"reason": "not_permitted"},
            )
            raise FhirError(403, "Only the client's treating therapist may store answers.")

        scored, answers = _score(resource)
        inst_id = scored.score.instrument
        kind = KIND_FOR_RATER.get(al.instrument(inst_id).rater, CheckInKind.PRE_SESSION)
        if inst_id == episode.alliance_instrument:
            kind = CheckInKind.POST_SESSION
        with transaction.atomic():
            checkin, _ = services.issue_checkin(
                episode, kind=kind, actor=Actor.of(request.user), hours_valid=1
            )
            # One instrument per stored response: the check-in asks exactly what was answered.
            checkin.instruments = [inst_id]
            checkin.includes_goals = False
            checkin.includes_note = False
            checkin.save(update_fields=["instruments", "includes_goals", "includes_note"])
            result = services.submit_checkin(
                checkin,
                services.Submission(answers={inst_id: answers}),
                by=request.user,
                require_all=False,
            )
        score = (
            self.scope.scores()
            .filter(response__checkin=result.checkin, instrument=inst_id)
            .select_related("response__checkin", "episode__client")
            .get()
        )
        stored = fr.questionnaire_response(score)
        obs = fr.observation(score)
        if "return=operationoutcome" in request.headers.get("Prefer", "").replace(" ", "").lower():
            notes = [
                issue(
                    "information",
                    "informational",
                    f"Stored as QuestionnaireResponse/{stored['id']}; {inst_id} total "
                    f"{score.total:g}"
                    + (f" ({score.severity})" if score.severity else "")
                    + f" as Observation/{obs['id']}.",
                ),
                *[issue("warning", "informational", w) for w in scored.warnings],
                *[
                    issue("warning", "informational", f"Alert raised: {a.kind}.")
                    for a in result.alerts
                ],
            ]
            body: dict[str, Any] = operation_outcome(notes)
        else:
            body = stored
        response = Response(body, status=201)
        response["Location"] = f"{fr.base_url()}/QuestionnaireResponse/{stored['id']}"
        return response


def _score(resource: dict[str, Any]) -> tuple[Any, dict[str, float]]:
    """The engine's reading of the response: its score and the item answers to store."""
    data = copy.deepcopy(resource)
    try:
        (scored,) = al.score_fhir_response(data)
        frame, _warnings = al.responses_from_fhir(copy.deepcopy(resource))
    except AllianceError as exc:
        raise FhirError(
            422,
            f"The answers cannot be read: {exc}. Use a questionnaire from GET /fhir/r4/"
            "Questionnaire (its canonical url), or contain your own in the response.",
            code="processing",
            expression=["QuestionnaireResponse.questionnaire"],
        ) from None
    except ValueError as exc:  # a single response is expected
        raise FhirError(422, f"Send one QuestionnaireResponse at a time ({exc}).") from None
    if scored.matched != "matched":
        raise FhirError(
            422,
            "The questionnaire is not one of Alliance's instruments (it was read as a custom "
            "form, which a practice cannot store); match it to a library instrument.",
            code="not-supported",
            expression=["QuestionnaireResponse.questionnaire"],
        )
    if scored.error:
        raise FhirError(
            422,
            f"The answers cannot be scored: {scored.error}",
            code="business-rule",
            expression=["QuestionnaireResponse.item"],
        )
    row = frame.iloc[0].to_dict()
    answers = {}
    for key, value in row.items():
        if key == "id" or value is None:
            continue
        if isinstance(value, str):
            raise FhirError(422, f"{key}: {value} is not an answer option.", code="code-invalid")
        if value == value:  # not NaN
            answers[str(key)] = float(value)
    return scored, answers


def _score_search(scope: Scope, request: Request, *, date_param: str) -> QuerySet[Any]:
    q = request.query_params
    scores = scope.scores().select_related("response__checkin", "episode__client")
    ref = q.get("patient") or q.get("subject")
    if ref:
        scores = scores.filter(episode__client__public_id=_patient_id(ref))
    if q.get("_id"):
        parsed = fr.parse_record_id(q["_id"])
        if parsed is None:
            return scores.none()
        scores = scores.filter(response__checkin__public_id=parsed[0], instrument=parsed[1])
    if q.get("questionnaire"):
        inst = fr.instrument_for_canonical(q["questionnaire"])
        if inst is None:
            return scores.none()
        scores = scores.filter(instrument=inst)
    dates = q.getlist(date_param)
    if dates:
        scores = scores.filter(**_date_filters(dates, "administered_at"))
    return scores.order_by("administered_at", "pk")


def _record_or_404(scope: Scope, rid: str, entity: str) -> Any:
    parsed = fr.parse_record_id(rid)
    scores = scope.scores().select_related("response__checkin", "episode__client")
    if parsed is None:
        record(
            Actor.of(scope.user),
            Action.READ,
            entity,
            rid[:64],
            outcome=Outcome.DENY,
            detail={"reason": "out_of_scope_or_missing"},
        )
        raise FhirError(404, f"No {entity} {rid!r} (or not yours to see).")
    return get_or_404(
        scope, scores, entity=entity, response__checkin__public_id=parsed[0], instrument=parsed[1]
    )


class QuestionnaireResponseRead(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, rid: str) -> Response:
        self.need_clinical("questionnaire_response")
        score = _record_or_404(self.scope, rid, "questionnaire_response")
        self.audit_read("questionnaire_response", rid, score.episode.client.public_id)
        return Response(fr.questionnaire_response(score))


# --------------------------------------------------------------------------------------------
class ObservationSearch(FhirView):
    search_params = frozenset({"_id", "patient", "subject", "code", "date", "derived-from"})

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        self.need_clinical("observation")
        self.check_params(request)
        scores = _score_search(self.scope, request, date_param="date")
        q = request.query_params
        if q.get("code"):
            wanted: set[str] = set()
            for token in q["code"].split(","):
                wanted |= fr.instruments_for_code(token.strip())
            scores = scores.filter(instrument__in=sorted(wanted))
        if q.get("derived-from"):
            ref = q["derived-from"].removeprefix("QuestionnaireResponse/")
            parsed = fr.parse_record_id(ref)
            if parsed is None:
                scores = scores.none()
            else:
                scores = scores.filter(response__checkin__public_id=parsed[0], instrument=parsed[1])
        rows, total = self.page(request, scores)
        self.audit_clients("observation", [s.episode.client.public_id for s in rows])
        return Response(
            self.bundle(request, "Observation", [fr.observation(s) for s in rows], total)
        )


class ObservationRead(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, rid: str) -> Response:
        self.need_clinical("observation")
        score = _record_or_404(self.scope, rid, "observation")
        self.audit_read("observation", rid, score.episode.client.public_id)
        return Response(fr.observation(score))


# --------------------------------------------------------------------------------------------
class PatientSearch(FhirView):
    search_params = frozenset({"_id", "name", "birthdate"})

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        self.need_clinical("client")
        self.check_params(request)
        q = request.query_params
        clients = self.scope.clients().select_related("practice")
        if q.get("_id"):
            try:
                clients = clients.filter(public_id=uuid.UUID(q["_id"]))
            except ValueError:
                clients = clients.none()
        if q.get("name"):
            if len(q["name"]) > 120:
                raise FhirError(400, "name is at most 120 characters.")
            clients = clients.filter(preferred_name__icontains=q["name"])
        if q.getlist("birthdate"):
            bounds = _date_filters(q.getlist("birthdate"), "date_of_birth")
            clients = clients.filter(**{k: v.date() for k, v in bounds.items()})
        rows, total = self.page(request, clients.order_by("preferred_name", "pk"))
        self.audit_clients("client", [c.public_id for c in rows])
        return Response(self.bundle(request, "Patient", [fr.patient(c) for c in rows], total))


class PatientRead(FhirView):
    @extend_schema(exclude=True)
    def get(self, request: Request, rid: str) -> Response:
        self.need_clinical("client")
        try:
            public_id = uuid.UUID(rid)
        except ValueError:
            raise FhirError(404, f"No Patient {rid!r} (or not yours to see).") from None
        client = get_or_404(
            self.scope,
            self.scope.clients().select_related("practice"),
            entity="client",
            public_id=public_id,
        )
        self.audit_read("client", str(client.public_id), client.public_id)
        return Response(fr.patient(client))


# --------------------------------------------------------------------------------------------
class AuditEventSearch(FhirView):
    search_params = frozenset({"date", "patient", "action"})

    @extend_schema(exclude=True)
    def get(self, request: Request) -> Response:
        from alliance_web.audit import fhir as audit_fhir
        from alliance_web.audit.models import AuditEvent

        user = request.user
        if getattr(user, "role", "") != "admin" or user.practice_id is None:
            record(
                Actor.of(user),
                Action.READ,
                "audit_event",
                outcome=Outcome.DENY,
                detail={"reason": "admins_only"},
            )
            raise FhirError(403, "The audit trail is for practice admins.")
        self.check_params(request)
        q = request.query_params
        events = AuditEvent.objects.filter(practice_id=user.practice_id)
        if q.get("patient"):
            events = events.filter(patient_id=str(_patient_id(q["patient"])))
        if q.get("action"):
            if q["action"] not in Action.values:
                raise FhirError(400, "action is one of C, R, U, D, E.")
            events = events.filter(action=q["action"])
        if q.getlist("date"):
            events = events.filter(**_date_filters(q.getlist("date"), "recorded"))
        rows, total = self.page(request, events.order_by("-seq"))
        record(
            Actor.of(user),
            Action.READ,
            "audit_event",
            detail={"count": len(rows)},
            purpose="fhir_search",
        )
        bundle = self.bundle(request, "AuditEvent", [audit_fhir.to_fhir(e) for e in rows], total)
        return Response(bundle)
