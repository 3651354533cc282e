"""Sign-in, sign-out and two-factor authentication for staff (SECURITY.md REQ-AN1).

Staff sign in with username and password (Argon2id, lockout per username+IP by django-axes),
then with a TOTP code from an authenticator app. The first time, they enrol: a QR code (drawn
locally as SVG; nothing leaves the server) and ten single-use backup codes shown once.
"""

from __future__ import annotations

import base64
from typing import Any

import segno
from django import forms
from django.contrib import auth
from django.contrib.auth import update_session_auth_hash
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.contrib.auth.forms import PasswordChangeForm
from django.core.exceptions import ValidationError
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_http_methods, require_POST
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_web.accounts import backup, sessions, staff
from alliance_web.accounts.models import BackupCodeDevice
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)  # rotates the session id (ASVS 7.2.4)
        record(Actor.of(self.request.user), Action.EXECUTE, "login", self.request.user.pk)
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        typed = str(form.data.get("username", ""))
        record(
            Actor(role="anonymous", username=known_username(typed)),
            Action.EXECUTE,
            "login",
            outcome=Outcome.DENY,
            detail={} if known_username(typed) else {"unknown_username": True},
        )
        return super().form_invalid(form)


def known_username(typed: str) -> str:
    """The username if such an account exists, else "" — people sometimes type their password
    into the username box, and the audit trail can never be edited (ASVS 16.2.5)."""
    from alliance_web.accounts.models import User

    typed = typed.strip()[:150]
    return typed if typed and User.objects.filter(username=typed).exists() else ""


@require_POST
def logout_view(request: HttpRequest) -> HttpResponse:
    if request.user.is_authenticated:
        record(Actor.of(request.user), Action.EXECUTE, "logout", request.user.pk)
    auth.logout(request)
    response = redirect("accounts:login")
    response["Clear-Site-Data"] = '"cache", "storage"'
    return response


class CodeForm(forms.Form):
    code = forms.CharField(
        label="Code from your authenticator app (or a backup code)",
        max_length=16,
        widget=forms.TextInput(
            attrs={"autocomplete": "one-time-code", "inputmode": "numeric", "autofocus": True}
        ),
    )


def _verify(user: Any, code: str) -> Any:
    code = code.replace(" ", "").strip()
    for device in list(TOTPDevice.objects.devices_for_user(user, confirmed=True)) + list(
        BackupCodeDevice.objects.devices_for_user(user, confirmed=True)
    ):
        if device.verify_is_allowed()[0] and device.verify_token(code):
            return device
    return None


@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Verify a second factor, or enrol one when the account has none yet."""
    user = request.user
    if getattr(user, "is_verified", lambda: False)():
        return redirect(_next(request))
    enrolled = user_has_device(user, confirmed=True)
    form = CodeForm(request.POST or None)
    context: dict[str, Any] = {"form": form, "enrolled": enrolled}
    if not enrolled:
        device, _ = TOTPDevice.objects.get_or_create(
            user=user, name="authenticator", confirmed=False
        )
        context["qr_svg"] = segno.make(device.config_url, error="m").svg_inline(scale=4)
        context["secret"] = _base32(device)
    if request.method == "POST" and form.is_valid():
        if not enrolled:
            device = TOTPDevice.objects.get(user=user, name="authenticator", confirmed=False)
            if device.verify_token(form.cleaned_data["code"].replace(" ", "")):
                with transaction.atomic():
                    device.confirmed = True
                    device.save()
                    codes = backup.new_codes(user)
                    record(Actor.of(user), Action.CREATE, "second_factor", user.pk)
                otp_login(request, device)
                return render(request, "accounts/backup_codes.html", {"codes": codes})
        else:
            device = _verify(user, form.cleaned_data["code"])
            if device is not None:
                otp_login(request, device)
                record(Actor.of(user), Action.EXECUTE, "second_factor", user.pk)
                return redirect(_next(request))
        record(Actor.of(user), Action.EXECUTE, "second_factor", user.pk, outcome=Outcome.DENY)
        form.add_error(
            "code", "That code did not work. Check the time on your phone and try the newest code."
        )
    return render(request, "accounts/two_factor.html", context)


def _next(request: HttpRequest) -> str:
    """Where to go after sign-in: a local path only (no open redirect)."""
    wanted = request.GET.get("next") or ""
    if wanted and url_has_allowed_host_and_scheme(
        wanted, allowed_hosts={request.get_host()}, require_https=request.is_secure()
    ):
        return wanted
    return "/"


def _base32(device: TOTPDevice) -> str:
    return base64.b32encode(device.bin_key).decode().rstrip("=")


@login_required
@require_http_methods(["GET", "POST"])
def password_change(request: HttpRequest) -> HttpResponse:
    """Change one's own password: the old one is asked again (re-authentication), the new one is
    checked by the validators, and every other session of the account ends (ASVS 7.4.3)."""
    form = PasswordChangeForm(request.user, request.POST if request.method == "POST" else None)
    if request.method == "POST":
        if form.is_valid():
            with transaction.atomic():
                user = form.save()  # the post-save signal ends every session of the account
                record(Actor.of(user), Action.UPDATE, "password", user.pk)
            update_session_auth_hash(request, user)  # this session continues under a new id
            sessions.track(request, user)
            return render(request, "accounts/password_changed.html")
        record(
            Actor.of(request.user),
            Action.UPDATE,
            "password",
            request.user.pk,
            outcome=Outcome.INVALID,
            detail={"fields": sorted(form.errors)},
        )
    return render(
        request, "accounts/password_change.html", {"form": form}, status=400 if form.errors else 200
    )


class WelcomeForm(forms.Form):
    username = forms.CharField(max_length=150)
    code = forms.CharField(max_length=40, label="Invitation code")
    password1 = forms.CharField(label="New password", strip=False, max_length=4096)
    password2 = forms.CharField(label="New password again", strip=False, max_length=4096)

    def clean(self) -> dict[str, Any]:
        data = super().clean() or {}
        if data.get("password1") != data.get("password2"):
            raise ValidationError("The two passwords differ.")
        return data


@require_http_methods(["GET", "POST"])
def welcome(request: HttpRequest) -> HttpResponse:
    """Accept an invitation: username + one-time code + a new password."""
    if request.user.is_authenticated:
        return redirect("/")
    form = WelcomeForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        try:
            staff.accept_invitation(data["username"], data["code"], data["password1"])
        except staff.StaffError as exc:
            form.add_error(None, str(exc))
        except ValidationError as exc:
            form.add_error("password1", exc)
        else:
            return redirect("accounts:login")
    status = 400 if request.method == "POST" else 200
    return render(request, "accounts/welcome.html", {"form": form}, status=status)


__all__ = ["LoginView", "logout_view", "password_change", "two_factor", "welcome"]
