"""The caseload (the workspace's home) and the shared page frame."""

from __future__ import annotations

from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record_many
from alliance_web.care.models import ActionKind, AlertStatus, EpisodeStatus
from alliance_web.workspace import caseload
from alliance_web.workspace.forms import CaseloadFilter
from alliance_web.workspace.views.common import scope, staff_view


def page(
    request: HttpRequest, template: str, context: dict[str, Any], *, status: int = 200
) -> HttpResponse:
    """Render a workspace page with what the navigation needs (the count of new alerts)."""
    s = scope(request)
    nav_alerts = 0
    if s.sees_clinical:
        nav_alerts = (
            s.alerts().filter(status=AlertStatus.OPEN, episode__status=EpisodeStatus.OPEN).count()
        )
    context = {
        "nav_alerts": nav_alerts,
        "scope_kind": s.kind,
        "action_kinds": ActionKind.choices,
        **context,
    }
    return render(request, template, context, status=status)


def therapist_choices(request: HttpRequest) -> list[tuple[str, str]]:
    User = get_user_model()
    staff = User.objects.filter(practice_id=scope(request).practice_id, is_active=True).filter(
        Q(role="therapist") | Q(is_clinician=True)
    )
    return [(str(u.pk), str(u)) for u in sorted(staff, key=str)]


@staff_view
def home(request: HttpRequest) -> HttpResponse:
    s = scope(request)
    if not s.sees_clinical:
        return page(request, "workspace/no_clinical.html", {})
    supervisor = s.kind == "supervisor"
    therapists = therapist_choices(request) if supervisor else []
    filters = CaseloadFilter(request.GET or None, therapists=therapists)
    data = caseload.build(
        s,
        therapist=filters.value("therapist") if supervisor else "",
        concern=filters.value("concern"),
        signal=filters.value("signal"),
        sort=filters.value("sort") or "triage",
    )
    # One audit row per client shown (REQ-AU1: reads are audited too).
    record_many(
        Actor.of(request.user),
        Action.READ,
        "client",
        [(r.client.public_id, r.client.public_id) for r in data.rows],
        purpose="caseload",
    )
    return page(
        request,
        "workspace/caseload.html",
        {
            "caseload": data,
            "filters": filters,
            "supervisor": supervisor,
            "show_therapist": supervisor,
            "can_add": getattr(request.user, "sees_caseload", False),
            "summary": [
                (
                    k,
                    caseload.CATEGORY_LABELS[k],
                    caseload.FLAG_SYMBOLS.get(k, ""),
                    data.counts.get(k, 0),
                )
                for k in ("safety", "off_track", "rupture", "dropout", "gap", "overdue")
                if data.counts.get(k)
            ],
        },
    )
