"""Pages for practice admins to manage their colleagues' accounts (see ``accounts.staff``).

Everyone else gets 403 (audited). An account of another practice, or one that does not exist,
is a 404 (audited) — the same answer, so ids leak nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any

from django import forms
from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_http_methods, require_POST

from alliance_web.accounts import sessions, staff
from alliance_web.accounts.models import Role, User
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record


def admin_view(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    @login_required
    @wraps(view)
    def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        if not staff.is_admin(request.user):
            record(
                Actor.of(request.user),
                Action.READ,
                "staff",
                str(kwargs.get("user_id", ""))[:64],
                outcome=Outcome.DENY,
                detail={"reason": "not_permitted"},
            )
            return render(request, "accounts/staff_forbidden.html", status=403)
        return view(request, *args, **kwargs)

    return wrapper


class StaffForm(forms.Form):
    username = forms.SlugField(max_length=150, help_text="Letters, digits, - and _.")
    display_name = forms.CharField(max_length=120, label="Name shown to colleagues")
    email = forms.EmailField(required=False)
    role = forms.ChoiceField(choices=Role.choices)
    is_clinician = forms.BooleanField(
        required=False, label="Also sees their own caseload (supervisors and admins)"
    )


class RoleForm(forms.Form):
    role = forms.ChoiceField(choices=Role.choices)
    is_clinician = forms.BooleanField(required=False)


def _rows(request: HttpRequest) -> list[User]:
    return list(
        staff.colleagues(request.user)
        .annotate(n_totp=Count("totpdevice", filter=Q(totpdevice__confirmed=True), distinct=True))
        .order_by("-is_active", "display_name", "username")
    )


@admin_view
def staff_list(request: HttpRequest) -> HttpResponse:
    rows = _rows(request)
    record(Actor.of(request.user), Action.READ, "staff", "", detail={"listed": len(rows)})
    return render(request, "accounts/staff_list.html", {"rows": rows})


@admin_view
@require_http_methods(["GET", "POST"])
def staff_new(request: HttpRequest) -> HttpResponse:
    form = StaffForm(request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            try:
                user, code = staff.invite(request.user, **form.cleaned_data)
            except staff.StaffError as exc:
                form.add_error(None, str(exc))
            else:
                return render(
                    request, "accounts/staff_invitation.html", {"member": user, "code": code}
                )
        return render(request, "accounts/staff_form.html", {"form": form}, status=400)
    return render(request, "accounts/staff_form.html", {"form": form})


@admin_view
@require_http_methods(["GET", "POST"])
def staff_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    member = staff.manageable(request.user, user_id)
    form = RoleForm(
        request.POST if request.method == "POST" else None,
        initial={"role": member.role, "is_clinician": member.is_clinician},
    )
    status = 200
    if request.method == "POST":
        if form.is_valid():
            try:
                staff.change_role(
                    request.user,
                    member,
                    form.cleaned_data["role"],
                    form.cleaned_data["is_clinician"],
                )
            except staff.StaffError as exc:
                form.add_error(None, str(exc))
            else:
                messages.success(request, f"{member} is now {member.get_role_display().lower()}.")
                return redirect("accounts:staff_detail", user_id=member.pk)
        status = 400
    record(Actor.of(request.user), Action.READ, "staff", member.pk)
    return render(
        request,
        "accounts/staff_detail.html",
        {
            "member": member,
            "form": form,
            "sessions": sessions.count(member),
            "has_totp": member.totpdevice_set.filter(confirmed=True).exists(),
            "is_self": member.pk == request.user.pk,
        },
        status=status,
    )


def _act(
    request: HttpRequest, user_id: int, action: Callable[[Any, User], Any], done: str
) -> HttpResponse:
    member = staff.manageable(request.user, user_id)
    try:
        result = action(request.user, member)
    except staff.StaffError as exc:
        messages.error(request, str(exc))
        return redirect("accounts:staff_detail", user_id=member.pk)
    if isinstance(result, str):  # an invitation code: shown once, on this response only
        return render(request, "accounts/staff_invitation.html", {"member": member, "code": result})
    messages.success(request, done.format(member=member))
    return redirect("accounts:staff_detail", user_id=member.pk)


@admin_view
@require_POST
def staff_disable(request: HttpRequest, user_id: int) -> HttpResponse:
    return _act(
        request,
        user_id,
        lambda by, m: staff.set_active(by, m, False),
        "{member} can no longer sign in; their sessions have ended.",
    )


@admin_view
@require_POST
def staff_enable(request: HttpRequest, user_id: int) -> HttpResponse:
    return _act(
        request, user_id, lambda by, m: staff.set_active(by, m, True), "{member} can sign in again."
    )


@admin_view
@require_POST
def staff_reset_two_factor(request: HttpRequest, user_id: int) -> HttpResponse:
    return _act(
        request,
        user_id,
        staff.reset_two_factor,
        "{member} will set up two-factor sign-in again next time; their sessions have ended.",
    )


@admin_view
@require_POST
def staff_end_sessions(request: HttpRequest, user_id: int) -> HttpResponse:
    return _act(request, user_id, staff.end_sessions, "{member} has been signed out everywhere.")


@admin_view
@require_POST
def staff_reset_password(request: HttpRequest, user_id: int) -> HttpResponse:
    return _act(request, user_id, staff.reset_password, "")


__all__ = [
    "staff_detail",
    "staff_disable",
    "staff_enable",
    "staff_end_sessions",
    "staff_list",
    "staff_new",
    "staff_reset_password",
    "staff_reset_two_factor",
]
