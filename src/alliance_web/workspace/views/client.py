"""The client page and what a therapist records on it.

A POST that fails re-renders the whole page with the form's errors and what was typed (status
400); one that succeeds redirects back to the section it came from. Writes need the right to
treat this episode (``scope.may_treat``): a supervisor who may read gets 403, audited.
"""

from __future__ import annotations

import uuid
from typing import Any

from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.urls import reverse
from django.views.decorators.http import require_POST

from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.care import services
from alliance_web.care.access import get_or_404
from alliance_web.care.models import Client, Episode
from alliance_web.workspace import clientpage
from alliance_web.workspace.forms import (
    AlertActionForm,
    AttendanceForm,
    IssueCheckinForm,
    PrivateNoteForm,
    RelationshipNoteForm,
    StageForm,
    TherapistRatingForm,
)
from alliance_web.workspace.views.common import (
    client_in_scope,
    episode_in_scope,
    forbidden,
    invalid,
    parse_uuid,
    scope,
    staff_view,
)
from alliance_web.workspace.views.pages import page


def pick_episode(request: HttpRequest, client: Client) -> Episode | None:
    """The episode asked for (``?episode=``, within scope), else the open one, else the latest."""
    episodes = (
        scope(request)
        .episodes()
        .filter(client=client)
        .select_related("insight", "therapist", "client")
    )
    wanted = parse_uuid(request.GET.get("episode"))
    if wanted is not None:
        chosen = episodes.filter(public_id=wanted).first()
        if chosen is not None:
            return chosen
    # "open" sorts after "closed": descending puts the open episode first.
    return episodes.order_by("-status", "-opened_at").first()


def client_url(episode: Episode, anchor: str = "") -> str:
    url = reverse("workspace:client", args=[episode.client.public_id])
    return f"{url}?episode={episode.public_id}" + (f"#{anchor}" if anchor else "")


def render_client(
    request: HttpRequest,
    client: Client,
    episode: Episode | None,
    *,
    forms: dict[str, Any] | None = None,
    status: int = 200,
    shown_once: dict[str, Any] | None = None,
) -> HttpResponse:
    s = scope(request)
    instrument = request.GET.get("instrument", "")
    ctx = clientpage.build(s, client, episode, instrument=instrument)
    forms = forms or {}
    if episode is not None:
        sessions = [e["session"] for e in ctx["session_log"]]
        attended = ctx["attended_sessions"]
        ther = ctx["therapist_instrument"]
        rate_sessions = attended or sessions
        ctx["forms"] = {
            "action": AlertActionForm(),
            "stage": forms.get("stage")
            or StageForm(initial={"stage": (ctx["stage"] or {}).get("suggested")}),
            "private": forms.get("private") or PrivateNoteForm(),
            "relationship": forms.get("relationship")
            or RelationshipNoteForm(
                sessions=rate_sessions,
                initial={"session": str(rate_sessions[-1].public_id) if rate_sessions else None},
            ),
            "rating": forms.get("rating")
            or (
                TherapistRatingForm(
                    instrument=ther,
                    sessions=rate_sessions,
                    initial={
                        "session": str(rate_sessions[-1].public_id) if rate_sessions else None
                    },
                )
                if ther
                else None
            ),
            "checkin": forms.get("checkin") or IssueCheckinForm(sessions=sessions),
        }
        ctx["action_errors"] = forms.get("action_errors")
    ctx["shown_once"] = shown_once
    # Read through a break-glass grant (REQ-AC2): the page says so, and until when.
    grant = s.emergency_grant(client)
    ctx["emergency_until"] = grant.expires_at if grant is not None else None
    # Reading the page is a read of the record; the client's private notes are audited by name.
    actor = Actor.of(request.user)
    record(
        actor,
        Action.READ,
        "client",
        client.public_id,
        client.public_id,
        purpose="client_page",
        detail={
            "episode": str(episode.public_id) if episode else "",
            "client_notes": len(ctx.get("client_notes", [])),
            "private_notes": len(ctx.get("private_notes", [])),
        },
    )
    return page(request, "workspace/client.html", ctx, status=status)


@staff_view
def client_detail(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    client = client_in_scope(request, public_id)
    return render_client(request, client, pick_episode(request, client))


def _treating(
    request: HttpRequest, public_id: uuid.UUID, entity: str
) -> tuple[Episode, HttpResponse | None]:
    episode = episode_in_scope(request, public_id)
    if not scope(request).may_treat(episode):
        return episode, forbidden(
            request,
            entity,
            episode.public_id,
            episode.client.public_id,
            why="Only the client's therapist can record this.",
        )
    return episode, None


def _refused(
    request: HttpRequest, episode: Episode, key: str, form: Any, entity: str
) -> HttpResponse:
    invalid(request, entity, episode.public_id, episode.client.public_id, form)
    return render_client(request, episode.client, episode, forms={key: form}, status=400)


@staff_view
@require_POST
def therapist_rating(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    episode, refused = _treating(request, public_id, "therapist_rating")
    if refused:
        return refused
    instrument = clientpage.instrument_or_none(episode.therapist_alliance_instrument)
    if instrument is None:
        messages.error(
            request, "The therapist's alliance form is not installed in the instrument library."
        )
        return redirect(client_url(episode, "rating"))
    sessions = list(scope(request).sessions().filter(episode=episode).order_by("number"))
    form = TherapistRatingForm(request.POST, instrument=instrument, sessions=sessions)
    if not form.is_valid():
        return _refused(request, episode, "rating", form, "therapist_rating")
    try:
        services.rate_as_therapist(request.user, episode, form.chosen_session(), form.answers())
    except services.CheckInInvalid as exc:
        for key, msg in exc.errors.items():
            form.add_error(None, f"{key}: {msg}")
        return _refused(request, episode, "rating", form, "therapist_rating")
    except services.ServiceError as exc:
        form.add_error(None, str(exc))
        return _refused(request, episode, "rating", form, "therapist_rating")
    messages.success(request, f"Your rating for session {form.chosen_session().number} is saved.")
    return redirect(client_url(episode, "alliance"))


@staff_view
@require_POST
def confirm_stage(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    episode, refused = _treating(request, public_id, "stage")
    if refused:
        return refused
    form = StageForm(request.POST)
    assessment = (
        scope(request)
        .stage_assessments()
        .filter(episode=episode)
        .order_by("-created_at", "-pk")
        .first()
    )
    if assessment is None:
        form.is_valid()
        form.add_error(
            None,
            "There is no suggested stage to confirm yet; it appears after the first check-ins.",
        )
        return _refused(request, episode, "stage", form, "stage")
    if not form.is_valid():
        return _refused(request, episode, "stage", form, "stage")
    services.confirm_stage(request.user, assessment, form.cleaned_data["stage"])
    messages.success(request, f"Stage {form.cleaned_data['stage']} confirmed.")
    return redirect(client_url(episode, "stage"))


@staff_view
@require_POST
def add_private_note(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    episode, refused = _treating(request, public_id, "private_note")
    if refused:
        return refused
    form = PrivateNoteForm(request.POST)
    if not form.is_valid():
        return _refused(request, episode, "private", form, "private_note")
    services.add_private_note(
        request.user, episode, form.cleaned_data["text"], share=form.cleaned_data["share"]
    )
    messages.success(
        request,
        "Process note saved"
        + (" and shared with your supervisor." if form.cleaned_data["share"] else "."),
    )
    return redirect(client_url(episode, "process-notes"))


@staff_view
@require_POST
def log_relationship(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    episode, refused = _treating(request, public_id, "relationship_note")
    if refused:
        return refused
    sessions = list(scope(request).sessions().filter(episode=episode).order_by("number"))
    form = RelationshipNoteForm(request.POST, sessions=sessions)
    if not form.is_valid():
        return _refused(request, episode, "relationship", form, "relationship_note")
    data = form.cleaned_data
    services.log_relationship_event(
        request.user,
        episode,
        event=data["event"],
        session=form.sessions[data["session"]],
        marker=data["marker"] if data["event"] == "rupture" else "",
        text=data["text"],
    )
    messages.success(request, "Added to the session log.")
    return redirect(client_url(episode, "sessions"))


@staff_view
@require_POST
def record_attendance(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    s = scope(request)
    session = get_or_404(
        s,
        s.sessions().select_related("episode", "episode__client"),
        entity="session",
        public_id=public_id,
    )
    episode = session.episode
    if not s.may_treat(episode):
        return forbidden(
            request,
            "session",
            session.public_id,
            episode.client.public_id,
            why="Only the client's therapist can record attendance.",
        )
    form = AttendanceForm(request.POST)
    if not form.is_valid():
        invalid(request, "session", session.public_id, episode.client.public_id, form)
        messages.error(request, "Choose attended, did not attend, cancelled or scheduled.")
        return render_client(request, episode.client, episode, status=400)
    services.record_attendance(request.user, session, form.cleaned_data["status"])
    messages.success(request, f"Session {session.number}: {session.get_status_display().lower()}.")
    return redirect(client_url(episode, "sessions"))


@staff_view
@require_POST
def issue_checkin(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    episode, refused = _treating(request, public_id, "checkin")
    if refused:
        return refused
    sessions = list(scope(request).sessions().filter(episode=episode).order_by("number"))
    form = IssueCheckinForm(request.POST, sessions=sessions)
    if not form.is_valid():
        return _refused(request, episode, "checkin", form, "checkin")
    try:
        checkin, path = services.issue_checkin(
            episode,
            kind=form.cleaned_data["kind"],
            session=form.sessions.get(form.cleaned_data["session"]),
            actor=Actor.of(request.user),
        )
    except services.ServiceError as exc:
        form.add_error(None, str(exc))
        return _refused(request, episode, "checkin", form, "checkin")
    # The link is shown once, on this response only; only its hash is stored.
    return page(
        request,
        "workspace/checkin_link.html",
        {
            "episode": episode,
            "client": episode.client,
            "checkin": checkin,
            "link": request.build_absolute_uri(path),
            "back": client_url(episode, "checkins"),
        },
    )


@staff_view
@require_POST
def waiting_room_code(request: HttpRequest, public_id: uuid.UUID) -> HttpResponse:
    s = scope(request)
    checkin = get_or_404(
        s,
        s.checkins().select_related("episode", "episode__client"),
        entity="checkin",
        public_id=public_id,
    )
    if not s.may_treat(checkin.episode):
        return forbidden(
            request, "checkin_code", checkin.public_id, checkin.episode.client.public_id
        )
    if not checkin.is_open:
        messages.error(request, "This check-in is closed or expired; create a new one.")
        return redirect(client_url(checkin.episode, "checkins"))
    code = services.start_waiting_room_code(request.user, checkin)
    return page(
        request,
        "workspace/checkin_code.html",
        {
            "episode": checkin.episode,
            "client": checkin.episode.client,
            "checkin": checkin,
            "code": code,
            "back": client_url(checkin.episode, "checkins"),
        },
    )


__all__ = [
    "AlertActionForm",
    "add_private_note",
    "client_detail",
    "confirm_stage",
    "issue_checkin",
    "log_relationship",
    "record_attendance",
    "render_client",
    "therapist_rating",
    "waiting_room_code",
]
