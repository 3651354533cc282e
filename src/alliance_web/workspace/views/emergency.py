"""Break-glass emergency access (SECURITY.md REQ-AC2): asking for it, and the admins' list.

A clinician who needs a record outside their scope types the client's code and why on
``/w/emergency-access/``; a 404 elsewhere never offers it, so no page reveals that a client exists.
A code that matches nobody and one of another practice get the same answer. What a grant allows
and how long it lasts: :mod:`alliance_web.care.emergency`.
"""

from __future__ import annotations

from django.contrib import messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils import timezone

from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record
from alliance_web.care import emergency
from alliance_web.care.models import EmergencyAccess
from alliance_web.workspace.forms import EmergencyAccessForm, RevokeEmergencyAccessForm
from alliance_web.workspace.views.common import forbidden, invalid, scope, staff_view
from alliance_web.workspace.views.pages import page

NEUTRAL = (
    "No client of your practice can be opened with that code. Check the code with the client's "
    "report or your practice admin."
)


def _is_admin(request: HttpRequest) -> bool:
    return (
        bool(getattr(request.user, "is_practice_admin", False))
        and scope(request).practice_id is not None
    )


@staff_view
def request_access(request: HttpRequest) -> HttpResponse:
    """The clinician's form: the client's code and a reason; a valid one opens the record."""
    s = scope(request)
    if not s.sees_clinical:
        return forbidden(
            request,
            "emergency_access",
            why="Emergency access is for clinicians; a practice admin account cannot use it.",
        )
    form = EmergencyAccessForm(request.POST if request.method == "POST" else None)
    context = {"form": form, "hours": emergency.EMERGENCY_ACCESS_HOURS}
    if request.method != "POST":
        return page(request, "workspace/emergency_access.html", context)
    if not form.is_valid():
        invalid(request, "emergency_access", "", "", form)
        return page(request, "workspace/emergency_access.html", context, status=400)
    try:
        client = emergency.find_client(request.user, form.cleaned_data["code"])
    except emergency.NotFound:
        form.add_error(None, NEUTRAL)
        return page(request, "workspace/emergency_access.html", context, status=400)
    client_url = reverse("workspace:client", args=[client.public_id])
    if s.own_clients().filter(pk=client.pk).exists():
        messages.info(request, "You already have access to this client; no emergency access used.")
        return redirect(client_url)
    current = s.emergency_grant(client)
    if current is None:
        current = emergency.grant(request.user, client, form.cleaned_data["reason"])
    until = timezone.localtime(current.expires_at).strftime("%H:%M")
    messages.warning(
        request, f"Emergency access until {until}. Your practice admins have been told."
    )
    return redirect(client_url)


@staff_view
def grants(request: HttpRequest) -> HttpResponse:
    """Practice admins: every break-glass grant of the practice (who, which client code, when,
    until, why), newest first; POST ``grant`` revokes one. No clinical content is shown."""
    if not _is_admin(request):
        return forbidden(
            request, "emergency_access", why="The emergency access log is for practice admins."
        )
    practice_id = scope(request).practice_id
    rows = EmergencyAccess.objects.filter(practice_id=practice_id).select_related(
        "user", "client", "revoked_by"
    )
    if request.method == "POST":
        form = RevokeEmergencyAccessForm(request.POST)
        if not form.is_valid():
            invalid(request, "emergency_access", "", "", form)
            messages.error(request, "Choose a grant to revoke.")
            return _list(request, rows, status=400)
        row = rows.filter(public_id=form.cleaned_data["grant"]).first()
        if row is None:
            record(
                Actor.of(request.user),
                Action.UPDATE,
                "emergency_access",
                form.cleaned_data["grant"],
                outcome=Outcome.DENY,
                detail={"reason": "out_of_scope_or_missing"},
            )
            messages.error(request, "No such grant in your practice.")
            return _list(request, rows, status=404)
        if emergency.revoke(request.user, row):
            messages.success(request, f"Emergency access of {row.user} ended.")
        else:
            messages.info(request, "That emergency access had already ended.")
        return redirect("workspace:emergency_grants")
    return _list(request, rows)


def _list(
    request: HttpRequest, rows: QuerySet[EmergencyAccess], *, status: int = 200
) -> HttpResponse:
    shown = list(rows.order_by("-granted_at")[:500])
    record(
        Actor.of(request.user),
        Action.READ,
        "emergency_access",
        purpose="break_glass_review",
        detail={"listed": len(shown)},
    )
    now = timezone.now()
    return page(
        request,
        "workspace/emergency_grants.html",
        {"rows": [(g, g.is_active(now)) for g in shown], "hours": emergency.EMERGENCY_ACCESS_HOURS},
        status=status,
    )
