"""Sign-in, sign-out and two-factor authentication for staff (SECURITY.md REQ-AN1).

Staff sign in with username and password (Argon2id, lockout per username+IP by django-axes),
then with a TOTP code from an authenticator app. The first time, they enrol: a QR code (drawn
locally as SVG; nothing leaves the server) and ten single-use backup codes shown once.
"""

from __future__ import annotations

import secrets
from typing import Any

import segno
from django import forms
from django.contrib import auth
from django.contrib.auth import views as auth_views
from django.contrib.auth.decorators import login_required
from django.db import transaction
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from django_otp import login as otp_login
from django_otp import user_has_device
from django_otp.plugins.otp_static.models import StaticDevice
from django_otp.plugins.otp_totp.models import TOTPDevice

from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record

BACKUP_CODES = 10


class LoginView(auth_views.LoginView):
    template_name = "accounts/login.html"
    redirect_authenticated_user = True

    def form_valid(self, form: Any) -> HttpResponse:
        response = super().form_valid(form)  # rotates the session id (ASVS 7.2.4)
        record(Actor.of(self.request.user), Action.EXECUTE, "login", self.request.user.pk)
        return response

    def form_invalid(self, form: Any) -> HttpResponse:
        record(
            Actor(role="anonymous", username=str(form.data.get("username", ""))[:150]),
            Action.EXECUTE,
            "login",
            outcome=Outcome.DENY,
        )
        return super().form_invalid(form)


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
        StaticDevice.objects.devices_for_user(user, confirmed=True)
    ):
        if device.verify_is_allowed()[0] and device.verify_token(code):
            return device
    return None


@login_required
def two_factor(request: HttpRequest) -> HttpResponse:
    """Verify a second factor, or enrol one when the account has none yet."""
    user = request.user
    if getattr(user, "is_verified", lambda: False)():
        return redirect(request.GET.get("next") or "home")
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
                    codes = _new_backup_codes(user)
                    record(Actor.of(user), Action.CREATE, "second_factor", user.pk)
                otp_login(request, device)
                return render(request, "accounts/backup_codes.html", {"codes": codes})
        else:
            device = _verify(user, form.cleaned_data["code"])
            if device is not None:
                otp_login(request, device)
                record(Actor.of(user), Action.EXECUTE, "second_factor", user.pk)
                return redirect(request.GET.get("next") or "home")
        record(Actor.of(user), Action.EXECUTE, "second_factor", user.pk, outcome=Outcome.DENY)
        form.add_error(
            "code", "That code did not work. Check the time on your phone and try the newest code."
        )
    return render(request, "accounts/two_factor.html", context)


def _base32(device: TOTPDevice) -> str:
    import base64

    return base64.b32encode(device.bin_key).decode().rstrip("=")


def _new_backup_codes(user: Any) -> list[str]:
    static, _ = StaticDevice.objects.get_or_create(
        user=user, name="backup", defaults={"confirmed": True}
    )
    static.token_set.all().delete()
    codes = [secrets.token_hex(5) for _ in range(BACKUP_CODES)]
    for code in codes:
        static.token_set.create(token=code)
    return codes


__all__ = ["LoginView", "logout_view", "two_factor"]
