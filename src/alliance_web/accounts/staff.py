"""Staff management for practice admins: invite, change role, disable, reset two-factor.

Each workflow runs in one transaction with its audit row (entity ``staff``). An admin manages the
accounts of their own practice only (the tenant boundary); the views find the account through
:func:`manageable`, which answers 404 and audits a denial for anyone else's id.

A new colleague (or one whose password was reset) gets a one-time invitation code, shown once to
the admin and handed over in person or by phone; with it and their username they choose a
password at ``/accounts/welcome/`` and then enrol two-factor sign-in. The code never appears in a
URL and only its hash is stored. Resetting a password this way does not bypass two-factor sign-in
(ASVS 6.4.3): the authenticator stays unless the admin also resets it.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import timedelta
from typing import Any

from django.contrib.auth.password_validation import validate_password
from django.db import transaction
from django.db.models import QuerySet
from django.http import Http404
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_web.accounts import sessions
from alliance_web.accounts.models import BackupCodeDevice, Invitation, Role, User
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record

INVITATION_LIFETIME = timedelta(hours=72)
CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 20  # 31**20 ≈ 2**99


class StaffError(Exception):
    """A staff-management step refused: the message says why."""


def is_admin(user: Any) -> bool:
    return bool(
        getattr(user, "is_authenticated", False)
        and user.is_active
        and getattr(user, "role", "") == Role.ADMIN
        and getattr(user, "practice_id", None) is not None
    )


def colleagues(by: Any) -> QuerySet[User]:
    """The accounts ``by`` may manage: their practice's, if they are its admin."""
    if not is_admin(by):
        return User.objects.none()
    return User.objects.filter(practice_id=by.practice_id)


def manageable(by: Any, user_id: Any) -> User:
    """The colleague with this id, or 404 with an audit 'deny' (no existence leak)."""
    user = colleagues(by).filter(pk=user_id).first() if str(user_id).isdigit() else None
    if user is None:
        record(
            Actor.of(by),
            Action.READ,
            "staff",
            str(user_id)[:64],
            outcome=Outcome.DENY,
            detail={"reason": "out_of_scope_or_missing"},
        )
        raise Http404("Not found")
    return user


def _code_hash(code: str) -> str:
    return hashlib.sha256(("invitation:" + normalise_code(code)).encode()).hexdigest()


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def _new_invitation(by: Any, user: User) -> str:
    Invitation.objects.filter(user=user, used_at__isnull=True).update(used_at=timezone.now())
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    Invitation.objects.create(
        user=user,
        code_hash=_code_hash(code),
        created_by=by,
        expires_at=timezone.now() + INVITATION_LIFETIME,
    )
    return "-".join(code[i : i + 5] for i in range(0, CODE_LENGTH, 5))


def _check_role(role: str) -> None:
    if role not in Role.values:
        raise StaffError("Choose therapist, supervisor or practice admin.")


def _last_admin(user: User) -> bool:
    return (
        user.role == Role.ADMIN
        and not User.objects.filter(practice_id=user.practice_id, role=Role.ADMIN, is_active=True)
        .exclude(pk=user.pk)
        .exists()
    )


@transaction.atomic
def invite(
    by: Any,
    *,
    username: str,
    display_name: str,
    email: str = "",
    role: str = Role.THERAPIST,
    is_clinician: bool = False,
) -> tuple[User, str]:
    """Create a colleague's account (no password yet) and their invitation code."""
    if not is_admin(by):
        raise StaffError("Only a practice admin can add colleagues.")
    _check_role(role)
    username = username.strip()
    if not username or User.objects.filter(username__iexact=username).exists():
        raise StaffError("That username is taken; choose another.")
    user = User(
        username=username,
        display_name=display_name.strip(),
        email=email.strip(),
        role=role,
        is_clinician=is_clinician and role != Role.THERAPIST,
        practice_id=by.practice_id,
    )
    user.set_unusable_password()
    user.save()
    code = _new_invitation(by, user)
    record(Actor.of(by), Action.CREATE, "staff", user.pk, detail={"role": role})
    return user, code


@transaction.atomic
def reset_password(by: Any, user: User) -> str:
    """A new invitation code; the old password stops working and every session ends."""
    user.set_unusable_password()
    user.save(update_fields=["password"])
    code = _new_invitation(by, user)
    record(Actor.of(by), Action.UPDATE, "staff", user.pk, detail={"credential_reset": True})
    return code


@transaction.atomic
def change_role(by: Any, user: User, role: str, is_clinician: bool) -> User:
    _check_role(role)
    if user.pk == by.pk and role != Role.ADMIN:
        raise StaffError("You cannot remove your own admin role; ask another admin.")
    if role != Role.ADMIN and _last_admin(user):
        raise StaffError("The practice needs at least one active admin.")
    before = (user.role, user.is_clinician)
    user.role = role
    user.is_clinician = is_clinician and role != Role.THERAPIST
    user.save(update_fields=["role", "is_clinician"])
    record(
        Actor.of(by),
        Action.UPDATE,
        "staff",
        user.pk,
        detail={"role": [before[0], user.role], "is_clinician": [before[1], user.is_clinician]},
    )
    return user


@transaction.atomic
def set_active(by: Any, user: User, active: bool) -> User:
    """Disable (every session ends at once) or re-enable an account."""
    if user.pk == by.pk:
        raise StaffError("You cannot disable your own account.")
    if not active and _last_admin(user):
        raise StaffError("The practice needs at least one active admin.")
    user.is_active = active
    user.save(update_fields=["is_active"])  # the pre/post-save signals end the sessions
    if not active:
        sessions.end_sessions(user)
    record(Actor.of(by), Action.UPDATE, "staff", user.pk, detail={"active": active})
    return user


@transaction.atomic
def reset_two_factor(by: Any, user: User) -> None:
    """Remove the authenticator and backup codes: the person enrols again at next sign-in."""
    if user.pk == by.pk:
        raise StaffError("Ask another admin to reset your own two-factor sign-in.")
    TOTPDevice.objects.filter(user=user).delete()
    BackupCodeDevice.objects.filter(user=user).delete()
    ended = sessions.end_sessions(user)
    record(Actor.of(by), Action.DELETE, "second_factor", user.pk, detail={"sessions_ended": ended})


@transaction.atomic
def end_sessions(by: Any, user: User) -> int:
    ended = sessions.end_sessions(user)
    record(Actor.of(by), Action.DELETE, "session", user.pk, detail={"sessions_ended": ended})
    return ended


@transaction.atomic
def accept_invitation(username: str, code: str, password: str) -> User:
    """Set the password of the invited account; raise StaffError or ValidationError."""
    invitation = (
        Invitation.objects.select_for_update()
        .select_related("user")
        .filter(code_hash=_code_hash(code), user__username__iexact=username.strip())
        .first()
    )
    if invitation is None or not invitation.usable or not invitation.user.is_active:
        record(Actor(role="anonymous"), Action.EXECUTE, "invitation", outcome=Outcome.DENY)
        raise StaffError(
            "That code and username do not match an open invitation. Codes expire after 72 "
            "hours; ask your practice admin for a new one."
        )
    user = invitation.user
    validate_password(password, user)
    user.set_password(password)
    user.save(update_fields=["password"])
    invitation.used_at = timezone.now()
    invitation.save(update_fields=["used_at"])
    record(Actor.of(user), Action.UPDATE, "password", user.pk, detail={"invitation": True})
    return user


__all__ = [
    "StaffError",
    "accept_invitation",
    "change_role",
    "colleagues",
    "end_sessions",
    "invite",
    "is_admin",
    "manageable",
    "reset_password",
    "reset_two_factor",
    "set_active",
]
