"""The alerts inbox and the closed loop: acknowledge → record what you did → follow-up."""

from __future__ import annotations

import uuid

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record, record_many
from alliance_web.care import services
from alliance_web.care.models import Alert, AlertKind, AlertStatus
from alliance_web.workspace import clientpage, followup
from alliance_web.workspace.forms import AlertActionForm, AlertFilter
from alliance_web.workspace.views.common import (
    alert_in_scope,
    forbidden,
    invalid,
    scope,
    staff_view,
)
from alliance_web.workspace.views.pages import page

STATUS_ORDER = {
    AlertStatus.OPEN: 0,
    AlertStatus.ACKNOWLEDGED: 1,
    AlertStatus.ACTIONED: 2,
    AlertStatus.RESOLVED: 3,
}
INBOX_LIMIT = 300


def _with_follow_up(request: HttpRequest, alerts: list[Alert]) -> list[Alert]:
    later = followup.later_scores(scope(request), alerts)
    for alert in alerts:
        alert.follow = followup.follow_up(
            alert, later.get(alert.episode_id, []), getattr(alert.episode, "insight", None)
        )
    return alerts


@staff_view
def inbox(request: HttpRequest) -> HttpResponse:
    s = scope(request)
    if not s.sees_clinical:
        return page(request, "workspace/no_clinical.html", {})
    filters = AlertFilter(request.GET or None, kinds=list(AlertKind.choices))
    status = filters.value("status", "open")
    kind = filters.value("kind")
    qs = clientpage.annotate_alerts(s.alerts()).select_related(
        "episode", "episode__client", "episode__therapist", "episode__insight"
    )
    if status == "open":
        qs = qs.filter(status__in=[AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED])
    if kind:
        qs = qs.filter(kind=kind)
    alerts = list(qs.prefetch_related("actions").order_by("-created_at")[:INBOX_LIMIT])
    # Open first, safety on top, newest first within each.
    alerts.sort(
        key=lambda a: (STATUS_ORDER.get(a.status, 9), a.priority, -a.created_at.timestamp())
    )
    _with_follow_up(request, alerts)
    for alert in alerts:
        alert.may_act = s.may_treat(alert.episode)
    record_many(
        Actor.of(request.user),
        Action.READ,
        "alert",
        [(a.public_id, a.episode.client.public_id) for a in alerts],
        purpose="alerts_inbox",
    )
    return page(
        request,
        "workspace/alerts.html",
        {
            "alerts": alerts,
            "filters": filters,
            "status": status,
            "kind": kind,
            "action_form": AlertActionForm(),
            "limited": len(alerts) >= INBOX_LIMIT,
        },
    )


def _back(request: HttpRequest, alert: Alert) -> str:
    wanted = request.POST.get("next", "")
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return reverse("workspace:alert", args=[alert.public_id])


def render_alert(
    request: HttpRequest, alert: Alert, *, form: AlertActionForm | None = None, status: int = 200
) -> HttpResponse:
    s = scope(request)
    alert = (
        clientpage.annotate_alerts(s.alerts())
        .select_related("episode", "episode__client", "episode__insight")
        .prefetch_related("actions", "actions__by")
        .get(pk=alert.pk)
    )
    _with_follow_up(request, [alert])
    record(
        Actor.of(request.user),
        Action.READ,
        "alert",
        alert.public_id,
        alert.episode.client.public_id,
        purpose="alert_detail",
    )
    return page(
        request,
        "workspace/alert_detail.html",
        {
            "alert": alert,
            "action_form": form or AlertActionForm(),
            "may_treat": s.may_treat(alert.episode),
            "client": alert.episode.client,
            "episode": alert.episode,
            "detail_rows": [
                (
                    str(k).replace("_", " ").capitalize(),
                    ", ".join(map(str, v)) if isinstance(v, list | tuple) else str(v),
                )
                for k, v in (alert.detail or {}).items()
            ],
        },
        status=status,
    )


@staff_view
def alert_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    return render_alert(request, alert_in_scope(request, public_id))


@staff_view
@require_POST
def acknowledge(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    alert = alert_in_scope(request, public_id)
    if not scope(request).may_treat(alert.episode):
        return forbidden(
            request,
            "alert",
            alert.public_id,
            alert.episode.client.public_id,
            why="Only the client's therapist can acknowledge this alert.",
        )
    services.acknowledge_alert(request.user, alert)
    messages.success(
        request,
        f"{alert.get_kind_display()} alert acknowledged. Record what you did when you have acted.",
    )
    return redirect(_back(request, alert))


@staff_view
@require_POST
def record_action(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    alert = alert_in_scope(request, public_id)
    if not scope(request).may_treat(alert.episode):
        return forbidden(
            request,
            "alert_action",
            alert.public_id,
            alert.episode.client.public_id,
            why="Only the client's therapist can record this.",
        )
    form = AlertActionForm(request.POST)
    if form.is_valid():
        try:
            services.record_alert_action(
                request.user, alert, form.cleaned_data["kind"], form.cleaned_data["note"]
            )
        except services.ServiceError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(
                request,
                "Action recorded. The follow-up shows whether the client gets back on track.",
            )
            return redirect(_back(request, alert))
    invalid(request, "alert_action", alert.public_id, alert.episode.client.public_id, form)
    return render_alert(request, alert, form=form, status=400)
