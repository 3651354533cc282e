"""What a client sees: the check-in behind a link or a waiting-room code, and the pages around it.

Views stay thin: find the check-in, audit the read as the client, parse the form
(:mod:`alliance_web.portal.forms`), call the service (``submit_checkin`` / ``save_draft``), render.

Privacy rules held here (SECURITY.md ASVS 14.2.1, 16.2.5): the token appears only in the path of
the check-in pages (forms post to the page's own address and the autosave URL is relative, so it
is never written into the HTML); every portal response says ``Referrer-Policy: no-referrer``; a
waiting-room tablet never sees the token at all (the code opens the check-in in a short session).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from functools import wraps
from typing import Any
from zoneinfo import ZoneInfo

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.utils import timezone
from django.views.csrf import csrf_failure as django_csrf_failure
from django.views.decorators.http import require_http_methods, require_POST

from alliance_web.audit.models import Action, AuditEvent, Outcome
from alliance_web.audit.trail import Actor, current_meta, record
from alliance_web.care import services, tokens
from alliance_web.care.models import (
    CheckIn,
    CheckInKind,
    CheckInStatus,
    Practice,
    default_crisis_resources,
)
from alliance_web.portal import progress
from alliance_web.portal.forms import CheckInForm

TABLET_CHECKIN = "portal_checkin"
TABLET_UNTIL = "portal_until"
TABLET_MINUTES = 60
# Waiting-room code guessing: failures per address within the window, counted from the audit
# trail itself (durable and shared by every worker process, unlike a per-process cache).
CODE_FAILURE_LIMIT = 10
CODE_FAILURE_WINDOW = timedelta(minutes=15)

FORM_REFERRER_POLICY = "same-origin"
_PHONE = re.compile(r"^\+?[0-9][0-9 ().-]{0,20}$")
_WEB = re.compile(r"^https?://[^\s\"'<>]+$")
_TOKEN_IN_PATH = re.compile(r"^/c/([A-Za-z0-9_-]{10,100})(/|$)")


def portal_page(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """Headers every client-facing page carries (``Cache-Control: no-store`` comes from middleware)."""

    @wraps(view)
    def wrapped(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        response = view(request, *args, **kwargs)
        _portal_headers(response)
        return response

    return wrapped


def _portal_headers(response: HttpResponse) -> HttpResponse:
    # "no-referrer" everywhere except on pages with a form (set in _render_form / code_entry):
    # browsers send "Origin: null" for a form posted from a no-referrer page (Fetch standard,
    # "append a request Origin header"), and Django's CSRF check rightly refuses that — over HTTPS
    # it also needs a Referer. "same-origin" still never sends the address to another site.
    if "Referrer-Policy" not in response:
        response["Referrer-Policy"] = "no-referrer"
    response["X-Robots-Tag"] = "noindex, nofollow"
    return response


# --------------------------------------------------------------------------------------------
# Helpers shared by the pages
# --------------------------------------------------------------------------------------------
def crisis_resources(practice: Practice | None) -> list[dict[str, str]]:
    """The practice's crisis contacts, checked for shape; a link only for a phone number or an
    http(s) address (a ``javascript:`` value stays plain text)."""
    raw = practice.crisis_resources if practice is not None else None
    entries = []
    for entry in raw if isinstance(raw, list) else []:
        if not isinstance(entry, dict):
            continue
        label, contact = (
            str(entry.get("label") or "").strip(),
            str(entry.get("contact") or "").strip(),
        )
        if label or contact:
            entries.append({"label": label[:200], "contact": contact[:200]})
    if not entries:
        entries = default_crisis_resources()
    for entry in entries:
        contact = entry["contact"]
        if _PHONE.match(contact):
            entry["href"] = (
                "tel:" + ("+" if contact.startswith("+") else "") + re.sub(r"\D", "", contact)
            )
        elif _WEB.match(contact):
            entry["href"] = contact
        else:
            entry["href"] = ""
    return entries


def _local(dt: Any, practice: Practice) -> Any:
    try:
        zone = ZoneInfo(practice.time_zone)
    except Exception:  # noqa: BLE001 - fall back to the server's zone for a bad setting
        zone = timezone.get_current_timezone()
    return timezone.localtime(dt, zone)


def _context(checkin: CheckIn | None, **extra: Any) -> dict[str, Any]:
    practice = checkin.episode.client.practice if checkin is not None else None
    context: dict[str, Any] = {
        "checkin": checkin,
        "client": checkin.episode.client if checkin is not None else None,
        "practice": practice,
        "crisis": crisis_resources(practice),
    }
    if checkin is not None and practice is not None:
        context["expires_local"] = _local(checkin.expires_at, practice)
        context["opens_local"] = _local(checkin.opens_at, practice)
    context.update(extra)
    return context


def _audit(
    checkin: CheckIn, action: str, entity: str, *, outcome: str = Outcome.SUCCESS, **detail: Any
) -> None:
    client = checkin.episode.client
    record(
        Actor.client(client),
        action,
        entity,
        checkin.public_id,
        client.public_id,
        outcome=outcome,
        detail=detail,
    )


# --------------------------------------------------------------------------------------------
# Finding the check-in: a link token in the path, or a waiting-room session
# --------------------------------------------------------------------------------------------
def _by_token(token: str) -> CheckIn | None:
    checkin = services.checkin_for_token(token)
    if checkin is None or checkin.kind == CheckInKind.THERAPIST:
        return None  # a therapist's own rating is never answered through the portal
    return checkin


def _by_session(request: HttpRequest) -> CheckIn | None:
    public_id = request.session.get(TABLET_CHECKIN)
    until = request.session.get(TABLET_UNTIL, 0)
    if not public_id or timezone.now().timestamp() > float(until):
        return None
    checkin = (
        CheckIn.objects.select_related(
            "episode", "episode__client", "episode__client__practice", "session"
        )
        .filter(public_id=public_id)
        .exclude(kind=CheckInKind.THERAPIST)
        .first()
    )
    return checkin


def _end_tablet_session(request: HttpRequest) -> None:
    request.session.pop(TABLET_CHECKIN, None)
    request.session.pop(TABLET_UNTIL, None)


def not_found(request: HttpRequest, exception: Exception | None = None) -> HttpResponse:
    record(Actor(role="anonymous"), Action.READ, "checkin_link", outcome=Outcome.DENY)
    response = render(request, "portal/not_found.html", _context(None), status=404)
    return _portal_headers(response)


# --------------------------------------------------------------------------------------------
# The check-in page
# --------------------------------------------------------------------------------------------
@portal_page
@require_http_methods(["GET", "POST"])
def checkin_by_link(request: HttpRequest, token: str) -> HttpResponse:
    checkin = _by_token(token)
    if checkin is None:
        return not_found(request)
    return _checkin_page(request, checkin, via="link")


@portal_page
@require_http_methods(["GET", "POST"])
def checkin_by_code(request: HttpRequest) -> HttpResponse:
    checkin = _by_session(request)
    if checkin is None:
        _end_tablet_session(request)
        return redirect("portal:code")
    return _checkin_page(request, checkin, via="code")


def add_slash(request: HttpRequest, token: str) -> HttpResponse:
    """Links in text messages sometimes lose their last character: ``/c/<token>`` → ``/c/<token>/``."""
    return _portal_headers(redirect(request.path + "/"))


def _closed(request: HttpRequest, checkin: CheckIn, via: str) -> HttpResponse:
    if checkin.status == CheckInStatus.COMPLETED:
        reason, status = "completed", 200
    elif checkin.status == CheckInStatus.CANCELLED:
        reason, status = "cancelled", 410
    elif checkin.opens_at > timezone.now() and checkin.status != CheckInStatus.EXPIRED:
        reason, status = "not_yet", 200
    else:
        reason, status = "expired", 410
    _audit(checkin, Action.READ, "checkin", via=via, status=reason)
    if via == "code":
        _end_tablet_session(request)
    return render(
        request, "portal/closed.html", _context(checkin, reason=reason, via=via), status=status
    )


def _checkin_page(request: HttpRequest, checkin: CheckIn, *, via: str) -> HttpResponse:
    if request.method == "POST":
        if request.POST.get("action") == "save":
            return _save(request, checkin, via=via)
        return _send(request, checkin, via=via)
    if not checkin.is_open:
        return _closed(request, checkin, via)
    form = CheckInForm(checkin)
    values = form.clean_values(
        (checkin.draft or {}).get("values", {}) if isinstance(checkin.draft, dict) else {}
    )
    _audit(checkin, Action.READ, "checkin", via=via, resumed=bool(values))
    return _render_form(request, checkin, form, values, {}, via=via, resumed=bool(values))


def _render_form(
    request: HttpRequest,
    checkin: CheckIn,
    form: CheckInForm,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    via: str,
    status: int = 200,
    resumed: bool = False,
    notice: str = "",
) -> HttpResponse:
    page = form.page(values, errors)
    context = _context(
        checkin,
        form=form,
        page=page,
        via=via,
        resumed=resumed,
        notice=notice,
        post_session=form.is_post_session,
    )
    response = render(request, "portal/checkin.html", context, status=status)
    response["Referrer-Policy"] = FORM_REFERRER_POLICY
    return response


def _invalid(
    request: HttpRequest,
    checkin: CheckIn,
    form: CheckInForm,
    values: dict[str, str],
    errors: dict[str, str],
    *,
    via: str,
    entity: str,
) -> HttpResponse:
    # Field keys only (item ids, goal ids), never the values typed (no PHI in the audit trail).
    _audit(
        checkin,
        Action.CREATE if entity == "checkin_submission" else Action.UPDATE,
        entity,
        outcome=Outcome.INVALID,
        via=via,
        fields=sorted(errors)[:40],
    )
    return _render_form(request, checkin, form, values, errors, via=via, status=400)


def _send(request: HttpRequest, checkin: CheckIn, *, via: str) -> HttpResponse:
    form = CheckInForm(checkin)
    parsed = form.parse(request.POST)
    errors = {**form.missing(parsed), **parsed.errors}
    if not errors:
        try:
            result = services.submit_checkin(checkin, parsed.submission)
        except services.CheckInInvalid as exc:
            errors = dict(exc.errors)
        except services.CheckInClosed:
            checkin.refresh_from_db()
            return _closed(request, checkin, via)
        else:
            return _done(request, result, via=via)
    if not checkin.is_open:
        # A completed, expired or cancelled check-in: say so rather than show a form with errors.
        return _closed(request, checkin, via)
    return _invalid(
        request, checkin, form, parsed.values, errors, via=via, entity="checkin_submission"
    )


def _done(request: HttpRequest, result: services.SubmitResult, *, via: str) -> HttpResponse:
    checkin = result.checkin
    episode = checkin.episode
    client = episode.client
    if via == "code":
        _end_tablet_session(request)
    show_progress = client.progress_view_enabled and checkin.kind == CheckInKind.PRE_SESSION
    context = _context(
        checkin,
        safety=result.safety,
        duplicate=result.duplicate,
        progress=progress.for_episode(episode) if show_progress else None,
        post_session=checkin.kind == CheckInKind.POST_SESSION,
        via=via,
    )
    if show_progress:
        _audit(checkin, Action.READ, "client_progress", via=via)
    return render(request, "portal/done.html", context)


def _save(
    request: HttpRequest, checkin: CheckIn, *, via: str, as_json: bool = False
) -> HttpResponse:
    """ "Save and finish later" without JavaScript, and the autosave from checkin.js (JSON)."""
    if not checkin.is_open:
        if as_json:
            return JsonResponse({"saved": False, "closed": True}, status=409)
        return _closed(request, checkin, via)
    form = CheckInForm(checkin)
    parsed = form.parse(request.POST)
    if parsed.errors:
        if as_json:
            _audit(
                checkin,
                Action.UPDATE,
                "checkin_draft",
                outcome=Outcome.INVALID,
                via=via,
                fields=sorted(parsed.errors)[:40],
            )
            return JsonResponse({"saved": False, "errors": parsed.errors}, status=400)
        return _invalid(
            request, checkin, form, parsed.values, parsed.errors, via=via, entity="checkin_draft"
        )
    values = {k: v for k, v in parsed.values.items() if v != ""}
    services.save_draft(checkin, {"values": values, "saved_at": timezone.now().isoformat()})
    if as_json:
        return JsonResponse({"saved": True})
    page = form.page(values, {})
    if via == "code":
        _end_tablet_session(request)
    return render(
        request,
        "portal/saved.html",
        _context(checkin, via=via, safety=page.safety_endorsed, post_session=form.is_post_session),
    )


@portal_page
@require_POST
def draft_by_link(request: HttpRequest, token: str) -> HttpResponse:
    checkin = _by_token(token)
    if checkin is None:
        record(Actor(role="anonymous"), Action.UPDATE, "checkin_link", outcome=Outcome.DENY)
        return JsonResponse({"saved": False}, status=404)
    return _save(request, checkin, via="link", as_json=True)


@portal_page
@require_POST
def draft_by_code(request: HttpRequest) -> HttpResponse:
    checkin = _by_session(request)
    if checkin is None:
        record(
            Actor(role="anonymous"),
            Action.UPDATE,
            "checkin_link",
            outcome=Outcome.DENY,
            detail={"via": "code"},
        )
        return JsonResponse({"saved": False}, status=404)
    return _save(request, checkin, via="code", as_json=True)


# --------------------------------------------------------------------------------------------
# The waiting-room code
# --------------------------------------------------------------------------------------------
def _recent_code_failures(ip: str | None) -> int:
    since = timezone.now() - CODE_FAILURE_WINDOW
    events = AuditEvent.objects.filter(
        entity_type="checkin_code", outcome=Outcome.DENY, recorded__gte=since
    )
    events = events.filter(ip=ip) if ip else events.filter(ip__isnull=True)
    return events.count()


def _code_page(request: HttpRequest, context: dict[str, Any], status: int = 200) -> HttpResponse:
    response = render(request, "portal/code.html", context, status=status)
    response["Referrer-Policy"] = FORM_REFERRER_POLICY
    return response


@portal_page
@require_http_methods(["GET", "POST"])
def code_entry(request: HttpRequest) -> HttpResponse:
    context = _context(None, code="", error="")
    if request.method == "GET":
        return _code_page(request, context)
    ip = current_meta().ip
    anonymous = Actor(role="anonymous")
    if _recent_code_failures(ip) >= CODE_FAILURE_LIMIT:
        record(
            anonymous,
            Action.EXECUTE,
            "checkin_code",
            outcome=Outcome.DENY,
            detail={"throttled": True},
        )
        context["throttled"] = True
        return _code_page(request, context, status=429)
    raw = str(request.POST.get("code", ""))[:40]
    code = tokens.normalise_code(raw)
    context["code"] = raw
    checkin = None
    if len(code) == tokens.CODE_LENGTH and all(ch in tokens.CODE_ALPHABET for ch in code):
        checkin = services.checkin_for_code(code)
        if checkin is not None and checkin.kind == CheckInKind.THERAPIST:
            checkin = None
    if checkin is None:
        record(anonymous, Action.EXECUTE, "checkin_code", outcome=Outcome.DENY)
        context["error"] = (
            "That code didn't work. Check the letters and numbers and try again, "
            "or ask at the front desk for a new code."
        )
        return _code_page(request, context, status=400)
    client = checkin.episode.client
    record(
        Actor.client(client), Action.EXECUTE, "checkin_code", checkin.public_id, client.public_id
    )
    if not checkin.is_open:
        return _closed(request, checkin, "code")
    request.session.cycle_key()
    until = min(timezone.now() + timedelta(minutes=TABLET_MINUTES), checkin.expires_at)
    request.session[TABLET_CHECKIN] = str(checkin.public_id)
    request.session[TABLET_UNTIL] = until.timestamp()
    return redirect(reverse("portal:tablet"), permanent=False)


# --------------------------------------------------------------------------------------------
# A failed CSRF check on a portal page (settings.CSRF_FAILURE_VIEW)
# --------------------------------------------------------------------------------------------
def csrf_failure(request: HttpRequest, reason: str = "") -> HttpResponse:
    """On a check-in page: show the form again with what was typed and say it was not sent.
    Anywhere else: Django's own page."""
    if not request.path.startswith("/c/"):
        return django_csrf_failure(request, reason=reason)
    checkin = None
    match = _TOKEN_IN_PATH.match(request.path)
    if match:
        checkin = _by_token(match.group(1))
    elif request.path.startswith("/c/tablet/"):
        checkin = _by_session(request)
    if checkin is None:
        record(
            Actor(role="anonymous"),
            Action.EXECUTE,
            "checkin_submission",
            outcome=Outcome.DENY,
            detail={"csrf": True},
        )
        response = render(request, "portal/csrf.html", _context(None), status=403)
        return _portal_headers(response)
    _audit(checkin, Action.CREATE, "checkin_submission", outcome=Outcome.DENY, csrf=True)
    if request.path.endswith("/draft/") or not checkin.is_open:
        response = (
            JsonResponse({"saved": False, "reload": True}, status=403)
            if request.path.endswith("/draft/")
            else render(request, "portal/csrf.html", _context(checkin), status=403)
        )
        return _portal_headers(response)
    form = CheckInForm(checkin)
    parsed = form.parse(request.POST)
    via = "code" if request.path.startswith("/c/tablet/") else "link"
    notice = (
        "Your answers were not sent yet, because this page had been open for a long time or came "
        "from somewhere else. Check your answers below and press “Send” again."
    )
    response = _render_form(
        request, checkin, form, parsed.values, {}, via=via, status=403, notice=notice
    )
    return _portal_headers(response)
