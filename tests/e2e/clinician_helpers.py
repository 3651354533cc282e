"""Helpers for the clinician browser tests (not a test module)."""

from __future__ import annotations

import re
import time

from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from tests.web.conftest import PASSWORD


def sign_in_as(page, live_server, user):
    """The real sign-in and two-factor forms (the header's "Sign out" button is also a submit
    button, so every click here is scoped to the page's main content)."""
    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", user.username)
    page.fill("#id_password", PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/two-factor/.*"))
    device = TOTPDevice.objects.get(user=user, confirmed=True)
    if device.last_t >= int(time.time()) // device.step:
        time.sleep(device.step - time.time() % device.step + 0.5)
    page.fill(
        "input[name=code]",
        f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}",
    )
    page.click("main button[type=submit]")
    page.wait_for_url(re.compile(r".*/w/.*"))
    return page
