"""What every workspace view shares: sign-in, the person's scope, refusals that are audited."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.contrib.auth.decorators import login_required
from django.forms import Form
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record
from alliance_web.care.access import Scope, get_or_404, scope_for
from alliance_web.care.models import Alert, Client, Episode


def staff_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Signed in (two-factor is enforced by the session middleware) and carrying a scope."""

    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        request.scope = scope_for(request.user)  # type: ignore[attr-defined]
        return view(request, *args, **kwargs)

    return wrapper


def scope(request: HttpRequest) -> Scope:
    return request.scope  # type: ignore[attr-defined,no-any-return]


def forbidden(
    request: HttpRequest, entity: str, entity_id: Any = "", patient_id: Any = "", *, why: str = ""
) -> HttpResponse:
    """403 with an audit 'deny': the person may see this but not do this."""
    record(
        Actor.of(request.user),
        Action.UPDATE if request.method == "POST" else Action.READ,
        entity,
        entity_id,
        patient_id,
        outcome=Outcome.DENY,
        detail={"reason": "not_permitted"},
    )
    return render(request, "workspace/forbidden.html", {"why": why}, status=403)


def invalid(request: HttpRequest, entity: str, entity_id: Any, patient_id: Any, form: Form) -> None:
    """Audit refused input by field name only (never the values)."""
    record(
        Actor.of(request.user),
        Action.UPDATE,
        entity,
        entity_id,
        patient_id,
        outcome=Outcome.INVALID,
        detail={"fields": sorted(form.errors)},
    )


def parse_uuid(value: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except (TypeError, ValueError):
        return None


def client_in_scope(request: HttpRequest, public_id: uuid.UUID) -> Client:
    s = scope(request)
    return get_or_404(s, s.clients(), entity="client", public_id=public_id)


def episode_in_scope(request: HttpRequest, public_id: uuid.UUID) -> Episode:
    s = scope(request)
    return get_or_404(
        s, s.episodes().select_related("client", "therapist"), entity="episode", public_id=public_id
    )


def alert_in_scope(request: HttpRequest, public_id: uuid.UUID) -> Alert:
    s = scope(request)
    return get_or_404(
        s,
        s.alerts().select_related("episode", "episode__client"),
        entity="alert",
        public_id=public_id,
    )
