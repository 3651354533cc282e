"""The progress report PDF: an export of the record, audited as one."""

from __future__ import annotations

import uuid

from django.http import HttpRequest, HttpResponse

from alliance_web.audit.models import Action
from alliance_web.audit.ratelimit import ExportLimitExceeded, check_export_limit
from alliance_web.audit.trail import Actor, record
from alliance_web.care import insight as care_insight
from alliance_web.workspace import clientpage, report
from alliance_web.workspace.views.client import pick_episode
from alliance_web.workspace.views.common import client_in_scope, scope, staff_view
from alliance_web.workspace.views.pages import page


@staff_view
def progress_report(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    client = client_in_scope(request, public_id)
    episode = pick_episode(request, client)
    if episode is None:
        return page(
            request,
            "workspace/forbidden.html",
            {"why": "There is no episode to report on yet."},
            status=404,
        )
    try:
        check_export_limit(request.user, "progress_report", episode.public_id, client.public_id)
    except ExportLimitExceeded as exc:
        response = page(
            request, "workspace/too_many_exports.html", {"why": exc.message}, status=429
        )
        response["Retry-After"] = str(exc.retry_after)
        return response
    s = scope(request)
    pdf = report.build(
        practice=str(client.practice),
        client=client,
        episode=episode,
        insight=care_insight.fresh_insight(episode),  # a check-in not yet analysed is in it
        goals=clientpage.goals_view(s, episode),
        therapist=str(episode.therapist),
    )
    record(
        Actor.of(request.user),
        Action.EXECUTE,
        "progress_report",
        episode.public_id,
        client.public_id,
        purpose="export",
        detail={"format": "pdf", "bytes": len(pdf)},
    )
    response = HttpResponse(pdf, content_type="application/pdf")
    response["Content-Disposition"] = (
        f'attachment; filename="progress-report-{client.pseudonym}.pdf"'
    )
    return response
