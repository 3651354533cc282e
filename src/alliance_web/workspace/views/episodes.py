"""Adding a client, opening an episode of care, and closing it with its outcome."""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_http_methods

from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.care import insight as care_insight
from alliance_web.care import services
from alliance_web.care.models import ConsentScope, EpisodeStatus
from alliance_web.workspace import clientpage
from alliance_web.workspace.forms import CloseEpisodeForm, EpisodeForm, NewClientForm
from alliance_web.workspace.views.client import client_url
from alliance_web.workspace.views.common import (
    client_in_scope,
    episode_in_scope,
    forbidden,
    invalid,
    scope,
    staff_view,
)
from alliance_web.workspace.views.pages import page


def _open(request: HttpRequest, client: Any, form: EpisodeForm) -> Any:
    data = form.cleaned_data
    return services.open_episode(
        request.user,
        client,
        concerns=data["concerns"],
        measure_plan=data["measure_plan"] or None,
        goals=form.goals,
        first_session_at=data["first_session"],
        sessions=data["sessions"],
        interval_days=data["interval_days"],
    )


@staff_view
@require_http_methods(["GET", "POST"])
def new_client(request: HttpRequest) -> HttpResponse:
    if not getattr(request.user, "sees_caseload", False):
        return forbidden(
            request, "client", why="Clients are added by the clinician who will see them."
        )
    form = NewClientForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            data = form.cleaned_data
            consents = [ConsentScope.CARE]
            consents += [ConsentScope.SUPERVISION] if data["consent_supervision"] else []
            consents += [ConsentScope.MESSAGES] if data["consent_messages"] else []
            consents += [ConsentScope.RESEARCH] if data["consent_research"] else []
            try:
                # All or nothing: a refused episode leaves no client behind.
                with transaction.atomic():
                    client = services.create_client(
                        request.user,
                        preferred_name=data["preferred_name"],
                        therapist=request.user,
                        email=data["email"],
                        phone=data["phone"],
                        date_of_birth=data["date_of_birth"],
                        consents=consents,
                    )
                    if not data["consent_supervision"]:
                        # Record the decision, so that the supervisor's scope leaves them out.
                        services.set_consent(request.user, client, ConsentScope.SUPERVISION, False)
                    episode = _open(request, client, form)
            except services.ServiceError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(
                    request,
                    f"{client.preferred_name} is on your caseload. Send the first check-in link when you are ready.",
                )
                return redirect(client_url(episode))
        invalid(request, "client", "", "", form)
        return page(
            request, "workspace/client_form.html", {"form": form, "new_client": True}, status=400
        )
    return page(request, "workspace/client_form.html", {"form": form, "new_client": True})


@staff_view
@require_http_methods(["GET", "POST"])
def new_episode(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    client = client_in_scope(request, public_id)
    if client.therapist_id != request.user.pk:
        return forbidden(
            request,
            "episode",
            "",
            client.public_id,
            why="Only the client's therapist can open an episode.",
        )
    if scope(request).episodes().filter(client=client, status=EpisodeStatus.OPEN).exists():
        messages.error(
            request, "This client already has an open episode; close it before opening a new one."
        )
        return redirect(reverse("workspace:client", args=[client.public_id]))
    form = EpisodeForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                episode = _open(request, client, form)
            except services.ServiceError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, "A new episode of care is open.")
                return redirect(client_url(episode))
        invalid(request, "episode", "", client.public_id, form)
        return page(
            request, "workspace/client_form.html", {"form": form, "client": client}, status=400
        )
    record(
        Actor.of(request.user),
        Action.READ,
        "client",
        client.public_id,
        client.public_id,
        purpose="new_episode_form",
    )
    return page(request, "workspace/client_form.html", {"form": form, "client": client})


@staff_view
@require_http_methods(["GET", "POST"])
def close_episode(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    episode = episode_in_scope(request, public_id)
    if not scope(request).may_treat(episode):
        return forbidden(
            request,
            "episode",
            episode.public_id,
            episode.client.public_id,
            why="Only the client's therapist can close the episode.",
        )
    if episode.status == EpisodeStatus.CLOSED:
        messages.error(request, "This episode is already closed.")
        return redirect(client_url(episode))
    form = CloseEpisodeForm(request.POST or None)
    if request.method == "POST":
        if form.is_valid():
            try:
                services.close_episode(
                    request.user, episode, end_reason=form.cleaned_data["end_reason"]
                )
            except services.ServiceError as exc:
                form.add_error(None, str(exc))
            else:
                label = clientpage.OUTCOME_LABELS.get((episode.outcome or {}).get("category") or "")
                messages.success(
                    request,
                    "Episode closed. "
                    + (
                        f"Outcome: {label[1]}."
                        if label
                        else "No outcome classification: it needs an intake and a final score."
                    ),
                )
                return redirect(client_url(episode, "outcome"))
        invalid(request, "episode", episode.public_id, episode.client.public_id, form)
        status = 400
    else:
        status = 200
    insight = care_insight.fresh_insight(episode)
    # The form shows the client's name and latest signal: a read of the record.
    record(
        Actor.of(request.user),
        Action.READ,
        "episode",
        episode.public_id,
        episode.client.public_id,
        purpose="close_form",
    )
    return page(
        request,
        "workspace/close_episode.html",
        {
            "form": form,
            "episode": episode,
            "client": episode.client,
            "insight": insight,
            "back": client_url(episode),
        },
        status=status,
    )
