"""The privacy office: a client's privacy page (who accessed the record, consent, export, erasure),
pending erasure requests, and the audit review for practice admins (SECURITY.md REQ-AU2, REQ-BR2).

Who may open what (``care.privacy``): the treating clinician and the practice admin open a
client's privacy page — the admin sees who accessed the record, never its content; only the
treating clinician exports the record for the client; erasure takes a request and a confirmation
by a second person, a practice admin.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST

from alliance_web import csvsafe
from alliance_web.allowlist import AllowList
from alliance_web.audit.models import (
    Action,
    AuditEvent,
    ErasureReason,
    ErasureRequest,
    ErasureStatus,
    Outcome,
)
from alliance_web.audit.ratelimit import ExportLimitExceeded, check_export_limit
from alliance_web.audit.trail import Actor, record
from alliance_web.care import privacy, services
from alliance_web.care.models import Client, ConsentScope

REVIEW_LIMIT = 500


def staff_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    return login_required(view)


def _deny(
    request: HttpRequest, entity: str, entity_id: Any = "", patient_id: Any = "", status: int = 403
) -> HttpResponse:
    record(
        Actor.of(request.user),
        Action.UPDATE if request.method == "POST" else Action.READ,
        entity,
        entity_id,
        patient_id,
        outcome=Outcome.DENY,
        detail={"reason": "not_permitted"},
    )
    return render(request, "privacy/forbidden.html", status=status)


def _client(request: HttpRequest, public_id: uuid.UUID) -> Client:
    client = (
        privacy.privacy_clients(request.user)
        .select_related("practice")
        .filter(public_id=public_id)
        .first()
    )
    if client is None:
        record(
            Actor.of(request.user),
            Action.READ,
            "privacy",
            str(public_id),
            outcome=Outcome.DENY,
            detail={"reason": "out_of_scope_or_missing"},
        )
        raise Http404("Not found")
    return client


def _is_admin(user: Any) -> bool:
    return getattr(user, "role", "") == "admin" and user.is_active and user.practice_id is not None


def _handles_privacy(user: Any) -> bool:
    """Practice admins and clinicians with a caseload (not supervisors, who only read)."""
    from alliance_web.care.access import scope_for

    return _is_admin(user) or scope_for(user).kind == "therapist"


class ErasureForm(forms.Form):
    reason = forms.ChoiceField(choices=ErasureReason.choices, widget=forms.RadioSelect)


class ConsentForm(forms.Form):
    scope = forms.ChoiceField(choices=ConsentScope.choices)
    given = forms.TypedChoiceField(
        choices=[("yes", "yes"), ("no", "no")], coerce=lambda v: v == "yes"
    )


def _client_page(
    request: HttpRequest, client: Client, *, form: ErasureForm | None = None, status: int = 200
) -> HttpResponse:
    report = privacy.access_report(client, limit=REVIEW_LIMIT)
    record(
        Actor.of(request.user),
        Action.READ,
        "access_report",
        client.public_id,
        client.public_id,
        purpose="privacy",
        detail={"rows": len(report)},
    )
    pending = ErasureRequest.objects.filter(client=client, status=ErasureStatus.PENDING).first()
    consents = [
        (value, label, privacy.has_consent(client, value)) for value, label in ConsentScope.choices
    ]
    return render(
        request,
        "privacy/client.html",
        {
            "client": client,
            "report": report,
            "limited": len(report) >= REVIEW_LIMIT,
            "may_export": privacy.may_export(request.user, client),
            "consents": consents,
            "pending": pending,
            "erasure_form": form or ErasureForm(),
            "is_admin": _is_admin(request.user),
            "retention_until": privacy.retention_until(client),
        },
        status=status,
    )


@staff_view
def client_privacy(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    return _client_page(request, _client(request, public_id))


def _export(request: HttpRequest, public_id: uuid.UUID, fmt: str) -> HttpResponse:
    client = _client(request, public_id)
    if not privacy.may_export(request.user, client):
        return _deny(request, "client_export", client.public_id, client.public_id)
    try:
        check_export_limit(request.user, "client_export", client.public_id, client.public_id)
    except ExportLimitExceeded as exc:
        response = render(
            request, "privacy/too_many_exports.html", {"why": exc.message}, status=429
        )
        response["Retry-After"] = str(exc.retry_after)
        return response
    data = privacy.client_export(request.user, client, fmt)
    content_type = "application/fhir+json" if fmt == "fhir" else "application/pdf"
    suffix = "json" if fmt == "fhir" else "pdf"
    response = HttpResponse(data, content_type=content_type)
    response["Content-Disposition"] = f'attachment; filename="record-{client.pseudonym}.{suffix}"'
    return response


@staff_view
def export_fhir(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    return _export(request, public_id, "fhir")


@staff_view
def export_pdf(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    return _export(request, public_id, "pdf")


@staff_view
@require_POST
def set_consent(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    """The treating clinician records the client's decision (a withdrawal takes effect at once)."""
    client = _client(request, public_id)
    if not privacy.may_export(request.user, client):
        return _deny(request, "consent", "", client.public_id)
    form = ConsentForm(request.POST)
    if not form.is_valid():
        record(
            Actor.of(request.user),
            Action.UPDATE,
            "consent",
            "",
            client.public_id,
            outcome=Outcome.INVALID,
            detail={"fields": sorted(form.errors)},
        )
        messages.error(request, "Choose a consent and yes or no.")
        return _client_page(request, client, status=400)
    services.set_consent(
        request.user, client, form.cleaned_data["scope"], form.cleaned_data["given"]
    )
    messages.success(request, "Consent recorded.")
    return redirect("privacy:client", public_id=client.public_id)


@staff_view
@require_POST
def request_erasure(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    client = _client(request, public_id)
    form = ErasureForm(request.POST)
    if not form.is_valid():
        record(
            Actor.of(request.user),
            Action.CREATE,
            "erasure_request",
            "",
            client.public_id,
            outcome=Outcome.INVALID,
            detail={"fields": sorted(form.errors)},
        )
        return _client_page(request, client, form=form, status=400)
    try:
        privacy.request_erasure(request.user, client, form.cleaned_data["reason"])
    except privacy.PrivacyError as exc:
        form.add_error(None, str(exc))
        return _client_page(request, client, form=form, status=400)
    messages.success(request, "Erasure requested. Another practice admin must confirm it.")
    return redirect("privacy:client", public_id=client.public_id)


def _request(request: HttpRequest, request_id: int) -> ErasureRequest:
    req = None
    if _handles_privacy(request.user):
        req = ErasureRequest.objects.filter(
            pk=request_id, practice_id=request.user.practice_id
        ).first()
        if (
            req is not None
            and not _is_admin(request.user)
            and req.requested_by_id != request.user.pk
        ):
            req = None
    if req is None:
        record(
            Actor.of(request.user),
            Action.READ,
            "erasure_request",
            str(request_id),
            outcome=Outcome.DENY,
            detail={"reason": "out_of_scope_or_missing"},
        )
        raise Http404("Not found")
    return req


@staff_view
@require_POST
def confirm_erasure(request: HttpRequest, request_id: int) -> HttpResponse:
    req = _request(request, request_id)
    if not _is_admin(request.user):
        return _deny(request, "erasure_request", req.pk, req.client_public_id)
    try:
        privacy.confirm_erasure(request.user, req)
    except privacy.PrivacyError as exc:
        record(
            Actor.of(request.user),
            Action.UPDATE,
            "erasure_request",
            req.pk,
            req.client_public_id,
            outcome=Outcome.DENY,
            detail={"reason": "refused"},
        )
        messages.error(request, str(exc))
        return redirect("privacy:requests")
    messages.success(
        request,
        "The record was erased. The audit trail keeps that it happened, without its content.",
    )
    return redirect("privacy:requests")


@staff_view
@require_POST
def cancel_erasure(request: HttpRequest, request_id: int) -> HttpResponse:
    req = _request(request, request_id)
    try:
        privacy.cancel_erasure(request.user, req)
    except privacy.PrivacyError as exc:
        messages.error(request, str(exc))
    return redirect("privacy:requests")


@staff_view
def requests(request: HttpRequest) -> HttpResponse:
    """Pending erasure requests: all of the practice's for an admin, one's own for a clinician."""
    if not _handles_privacy(request.user):
        return _deny(request, "erasure_request")
    qs = ErasureRequest.objects.filter(practice_id=request.user.practice_id).select_related(
        "requested_by", "client"
    )
    if not _is_admin(request.user):
        qs = qs.filter(requested_by=request.user)
    rows = list(qs[:200])
    record(Actor.of(request.user), Action.READ, "erasure_request", "", detail={"listed": len(rows)})
    return render(
        request, "privacy/requests.html", {"rows": rows, "is_admin": _is_admin(request.user)}
    )


# --- the audit review (practice admins) ----------------------------------------------------------
SORTS = AllowList(
    {
        "newest": ("-seq",),
        "oldest": ("seq",),
        "user": ("username", "-seq"),
        "client": ("patient_id", "-seq"),
    },
    default="newest",
)
OUTCOMES = AllowList({o: o for o in Outcome.values} | {"": ""}, default="")


class ReviewFilter(forms.Form):
    username = forms.CharField(required=False, max_length=150)
    client = forms.UUIDField(required=False)
    outcome = forms.ChoiceField(required=False, choices=[("", "any"), *list(Outcome.choices)])
    since = forms.DateField(required=False)
    until = forms.DateField(required=False)
    sort = forms.ChoiceField(required=False, choices=[(k, k) for k in SORTS])
    sample = forms.BooleanField(required=False, help_text="A random sample, for routine review")


def _day(d: Any, end: bool = False) -> datetime:
    return timezone.make_aware(datetime.combine(d, time.max if end else time.min))


@staff_view
def audit_review(request: HttpRequest) -> HttpResponse:
    """Targeted and random review of the practice's audit trail (IPC expectation, REQ-AU2)."""
    if not _is_admin(request.user):
        return _deny(request, "audit_review")
    form = ReviewFilter(request.GET or None)
    qs = AuditEvent.objects.filter(practice_id=request.user.practice_id)
    if form.is_valid():
        data = form.cleaned_data
        if data["username"]:
            qs = qs.filter(username=data["username"])
        if data["client"]:
            qs = qs.filter(patient_id=str(data["client"]))
        if data["outcome"]:
            qs = qs.filter(outcome=OUTCOMES.get(data["outcome"]))
        if data["since"]:
            qs = qs.filter(recorded__gte=_day(data["since"]))
        if data["until"]:
            qs = qs.filter(recorded__lte=_day(data["until"], end=True))
        sort = SORTS.order_by(data.get("sort"))
        sample = data["sample"]
    else:
        sort, sample = SORTS.order_by(None), False
        qs = qs.filter(recorded__gte=timezone.now() - timedelta(days=30))
    if sample:
        ids = list(qs.order_by("?").values_list("seq", flat=True)[:50])  # random review
        qs = AuditEvent.objects.filter(seq__in=ids)
    rows = list(qs.order_by(*sort)[:REVIEW_LIMIT])
    record(
        Actor.of(request.user),
        Action.READ,
        "audit_review",
        "",
        purpose="audit_review",
        detail={
            "rows": len(rows),
            "sample": bool(sample),
            "csv": request.GET.get("format") == "csv",
        },
    )
    if request.GET.get("format") == "csv":
        header = [
            "seq",
            "recorded_utc",
            "username",
            "role",
            "action",
            "outcome",
            "entity",
            "entity_id",
            "client",
            "purpose",
            "ip",
            "request_id",
        ]
        return csvsafe.response(
            "audit-review.csv",
            header,
            (
                [
                    e.seq,
                    e.recorded.isoformat(),
                    e.username,
                    e.role,
                    e.action,
                    e.outcome,
                    e.entity_type,
                    e.entity_id,
                    e.patient_id,
                    e.purpose,
                    e.ip or "",
                    e.request_id,
                ]
                for e in rows
            ),
        )
    return render(
        request,
        "privacy/audit_review.html",
        {"form": form, "rows": rows, "limited": len(rows) >= REVIEW_LIMIT},
    )


__all__ = [
    "audit_review",
    "cancel_erasure",
    "client_privacy",
    "confirm_erasure",
    "export_fhir",
    "export_pdf",
    "request_erasure",
    "requests",
    "set_consent",
]
