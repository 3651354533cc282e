"""The supervisor's view of the practice (aggregates only)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.workspace import practice
from alliance_web.workspace.forms import PracticeFilter
from alliance_web.workspace.views.common import forbidden, scope, staff_view
from alliance_web.workspace.views.pages import page


@staff_view
def overview(request: HttpRequest) -> HttpResponse:
    s = scope(request)
    if s.kind != "supervisor":
        return forbidden(
            request,
            "practice_report",
            s.practice_id or "",
            why="The practice view is for clinical supervisors.",
        )
    filters = PracticeFilter(request.GET or None)
    period = (
        filters.cleaned_data.get("period") if filters.is_bound and filters.is_valid() else "all"
    )
    data = practice.build(s, period or "all")
    record(
        Actor.of(request.user),
        Action.READ,
        "practice_report",
        s.practice_id or "",
        "",
        purpose="supervision",
        detail={
            "open": data["risk"]["open_total"],
            "closed": data["outcomes"]["closed_total"],
            "period": period or "all",
        },
    )
    return page(request, "workspace/practice.html", {**data, "filters": filters})
