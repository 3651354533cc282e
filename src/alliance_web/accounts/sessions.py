"""A person's sessions: tracked at sign-in so that they can all be ended at once.

ASVS 5.0 7.4.2 (disabled account ⇒ every session ends), 7.4.3 (credential change ⇒ the other
sessions end), 7.4.5 (an administrator can end a person's sessions). The signal handlers in
:mod:`alliance_web.accounts.signals` call these; so do the staff-management services.
"""

from __future__ import annotations

import time
from typing import Any

from django.contrib.sessions.models import Session
from django.db import transaction
from django.http import HttpRequest

LOGIN_AT = "alliance_login_at"


def track(request: HttpRequest, user: Any, *, signed_in_now: bool = False) -> None:
    """Remember that this request's session belongs to ``user``; at sign-in, start the clock of
    the absolute session limit (a password change keeps the original sign-in time)."""
    from alliance_web.accounts.models import UserSession

    session = request.session
    if session.session_key is None:
        session.save()
    if signed_in_now or LOGIN_AT not in session:
        session[LOGIN_AT] = time.time()
    UserSession.objects.update_or_create(
        session_key=session.session_key, defaults={"user_id": user.pk}
    )


def untrack(session_key: str | None) -> None:
    from alliance_web.accounts.models import UserSession

    if session_key:
        UserSession.objects.filter(session_key=session_key).delete()


@transaction.atomic
def end_sessions(user: Any, *, keep: str | None = None) -> int:
    """End every session of ``user`` except ``keep``; return how many ended."""
    from alliance_web.accounts.models import UserSession

    keys = list(
        UserSession.objects.filter(user_id=user.pk)
        .exclude(session_key=keep or "")
        .values_list("session_key", flat=True)
    )
    Session.objects.filter(session_key__in=keys).delete()
    UserSession.objects.filter(session_key__in=keys).delete()
    return len(keys)


def count(user: Any) -> int:
    from alliance_web.accounts.models import UserSession

    return UserSession.objects.filter(user_id=user.pk).count()


__all__ = ["LOGIN_AT", "count", "end_sessions", "track", "untrack"]
