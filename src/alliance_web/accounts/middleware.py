"""Session rules for staff (SECURITY.md REQ-SE1, REQ-AN1).

* Idle timeout: 30 minutes for clinicians, 15 for practice admins.
* Absolute limit: ``SESSION_COOKIE_AGE`` (12 hours) after sign-in, however active the session was
  (the database session's own expiry slides with every request, so it is checked here against the
  sign-in time stamped by :func:`alliance_web.accounts.sessions.track`).
* Two-factor sign-in: a signed-in staff member who has not verified a second factor only reaches
  the two-factor pages and sign-out (demo accounts are exempt only in explicit insecure-demo mode).
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.conf import settings
from django.contrib.auth import logout
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect

from alliance_web.accounts.sessions import LOGIN_AT

LAST_SEEN = "alliance_last_seen"
# Reachable before the second factor: signing in and out, two-factor itself, accepting an
# invitation, the client portal, and the APIs (tokens; a cookie session there must be verified:
# alliance_web.accounts.drf.VerifiedSessionAuthentication).
OPEN_PATHS = (
    "/accounts/login/",
    "/accounts/logout/",
    "/accounts/two-factor/",
    "/accounts/welcome/",
    "/static/",
    "/healthz",
    "/c/",
    "/api/",
    "/fhir/",
)


def needs_second_factor(request: HttpRequest) -> bool:
    user = request.user
    if not user.is_authenticated:
        return False
    if settings.ALLIANCE_DEMO_INSECURE_LOGIN and getattr(user, "is_demo", False):
        return False
    is_verified: Callable[[], bool] | None = getattr(user, "is_verified", None)
    return not (is_verified and is_verified())


class SessionPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        user = getattr(request, "user", None)
        if user is not None and user.is_authenticated and hasattr(request, "session"):
            now = time.time()
            idle = (
                settings.ALLIANCE_ADMIN_IDLE_TIMEOUT
                if getattr(user, "role", "") == "admin"
                else settings.ALLIANCE_IDLE_TIMEOUT
            )
            last = request.session.get(LAST_SEEN)
            if last is not None and now - float(last) > idle.total_seconds():
                logout(request)
                return redirect(f"{settings.LOGIN_URL}?timeout=1")
            signed_in_at = request.session.setdefault(LOGIN_AT, now)
            if now - float(signed_in_at) > settings.SESSION_COOKIE_AGE:
                logout(request)
                return redirect(f"{settings.LOGIN_URL}?timeout=1")
            request.session[LAST_SEEN] = now
            if needs_second_factor(request) and not request.path.startswith(OPEN_PATHS):
                return redirect("accounts:two_factor")
        return self.get_response(request)
