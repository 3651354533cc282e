"""Session bookkeeping and audit for sign-in events (connected in ``AccountsConfig.ready``).

* sign-in: the session is tracked (see :mod:`alliance_web.accounts.sessions`) and stamped with
  the time, for the absolute 12-hour limit;
* an account disabled (``is_active`` set to False, by any path): all its sessions end;
* a password changed (by any path): all its sessions end — the password-change page then keeps
  the session it was used from;
* a lockout by django-axes: an audit row (the failed attempts themselves are audited by the
  sign-in view).
"""

from __future__ import annotations

from typing import Any

from axes.signals import user_locked_out
from django.contrib.auth.signals import user_logged_in, user_logged_out
from django.db.models.signals import post_save, pre_save
from django.dispatch import receiver

from alliance_web.accounts import sessions
from alliance_web.accounts.models import User
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record


@receiver(user_logged_in, dispatch_uid="alliance_track_session")
def _on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        sessions.track(request, user, signed_in_now=True)


@receiver(user_logged_out, dispatch_uid="alliance_untrack_session")
def _on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if request is not None and hasattr(request, "session"):
        sessions.untrack(request.session.session_key)


@receiver(pre_save, sender=User, dispatch_uid="alliance_user_changes")
def _remember_changes(sender: Any, instance: User, **kwargs: Any) -> None:
    instance._alliance_end_sessions = False  # type: ignore[attr-defined]
    if instance.pk is None:
        return
    old = User.objects.filter(pk=instance.pk).values("is_active", "password").first()
    if old is None:
        return
    deactivated = old["is_active"] and not instance.is_active
    new_password = old["password"] != instance.password
    instance._alliance_end_sessions = deactivated or new_password  # type: ignore[attr-defined]


@receiver(post_save, sender=User, dispatch_uid="alliance_user_end_sessions")
def _end_sessions(sender: Any, instance: User, **kwargs: Any) -> None:
    if getattr(instance, "_alliance_end_sessions", False):
        sessions.end_sessions(instance)
        instance._alliance_end_sessions = False  # type: ignore[attr-defined]


@receiver(user_locked_out, dispatch_uid="alliance_audit_lockout")
def _on_lockout(sender: Any, request: Any, username: str | None = None, **kwargs: Any) -> None:
    from alliance_web.accounts.views import known_username

    record(
        Actor(role="anonymous", username=known_username(str(username or ""))),
        Action.EXECUTE,
        "login",
        outcome=Outcome.DENY,
        detail={"locked_out": True},
    )
