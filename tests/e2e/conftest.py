"""Browser tests: Playwright's sync API driving Debian's chromium, headless, against pytest-django's
``live_server``.

Fixtures
--------
browser          one headless chromium per test session (skips when chromium or Playwright is missing)
desktop_page     a 1280×900 page
phone_page       a 390×844 touch page (an iPhone 12-sized screen), JavaScript on
phone_page_nojs  the same screen with JavaScript off (the check-in must work fully without it)
screenshot       ``screenshot(page, "step")`` saves ``tests/e2e/screenshots/<test>-<step>.png``
sign_in          ``sign_in(page, user)`` signs a staff persona in through the real pages

How staff sign in: ``sign_in`` fills the real sign-in form (username, password), then the real
two-factor form with the current TOTP code computed from the persona's confirmed device key
(``django_otp.oath.totp``, the same function the server verifies with) — so the browser walks the
same path a person does, two-factor included. The web tests' personas (``therapist_a``, …) all have
a confirmed TOTP device and the password ``tests.web.conftest.PASSWORD``.

Playwright's sync API runs an event loop in the test thread, which Django's async-safety check would
mistake for async code; ``DJANGO_ALLOW_ASYNC_UNSAFE`` turns that check off for these tests only.
"""

from __future__ import annotations

import os
import re
import shutil
import time
from pathlib import Path

import pytest
from django.core.servers.basehttp import WSGIServer
from django.db import connections
from django.test.testcases import LiveServerThread

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

# The personas and the `login` fixture of the web tests are shared with the browser tests.
from tests.web.conftest import (  # noqa: F401
    PASSWORD,
    client_of_a,
    episode_of_a,
    outsider,
    practice_a,
    practice_admin,
    practice_b,
    supervisor,
    therapist_a,
    therapist_b,
)

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SKIP_REASON = "browser tests need Debian's chromium: apt-get install chromium"
SCREENSHOTS = Path(__file__).resolve().parent / "screenshots"
PHONE = {
    "viewport": {"width": 390, "height": 844},
    "device_scale_factor": 2,
    "is_mobile": True,
    "has_touch": True,
}
DESKTOP = {"viewport": {"width": 1280, "height": 900}}


class _OneRequestAtATime(WSGIServer):
    """The live server, answering one request at a time.

    With SQLite in memory (the default test database), pytest-django hands the test's own database
    connection to the server, and Django's threaded server shares it between request threads; two
    overlapping requests (an autosave and a send, say) then trip over each other on that one
    connection ("database table is locked"). A person's browser overlaps requests as a matter of
    course, so the browser tests serve them in turn; Django closes each connection after its
    response when the server is not threaded, so nothing waits on a keep-alive.
    """

    def __init__(self, *args, connections_override=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.connections_override = connections_override

    def close_request(self, request):
        # As the threaded server does: a server connection left open (PostgreSQL) would keep the
        # test database busy when it is dropped. Django never closes a shared in-memory database.
        connections.close_all()
        super().close_request(request)


LiveServerThread.server_class = _OneRequestAtATime


def pytest_collection_modifyitems(items):
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def _playwright():
    if not (Path(CHROMIUM).exists() or shutil.which("chromium")):
        pytest.skip(SKIP_REASON)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip(SKIP_REASON)
    with sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(_playwright):
    executable = CHROMIUM if Path(CHROMIUM).exists() else shutil.which("chromium")
    try:
        browser = _playwright.chromium.launch(
            executable_path=executable, headless=True, args=CHROMIUM_ARGS
        )
    except Exception as exc:  # noqa: BLE001 - a broken chromium install is a skip, not a failure
        pytest.skip(f"{SKIP_REASON} ({type(exc).__name__}: {exc})")
    yield browser
    browser.close()


def _wait_for_server(live_server) -> None:
    """Requests are answered in turn: once this one is answered, every earlier one (a last autosave
    sent as the page closed, say) has finished, so the database can be reset safely."""
    import urllib.request

    try:
        with urllib.request.urlopen(f"{live_server.url}/healthz", timeout=10) as response:
            response.read()
    except OSError:
        pass


def _page(browser, request, **options):
    context = browser.new_context(locale="en-CA", timezone_id="America/Toronto", **options)
    context.set_default_timeout(10_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.js_errors = errors  # type: ignore[attr-defined]
    yield page
    context.close()
    _wait_for_server(request.getfixturevalue("live_server"))


@pytest.fixture(autouse=True)
def server_errors():
    """Fail a browser test when the live server raised, with the server's traceback (a browser
    only ever sees "Server Error (500)")."""
    import traceback

    from django.core.signals import got_request_exception

    errors: list[str] = []

    def on_exception(sender, request=None, **kwargs):
        errors.append(traceback.format_exc())

    got_request_exception.connect(on_exception, weak=False)
    yield errors
    got_request_exception.disconnect(on_exception)
    assert not errors, "the live server raised:\n" + "\n".join(errors)


@pytest.fixture
def desktop_page(browser, request, live_server):
    yield from _page(browser, request, **DESKTOP)


@pytest.fixture
def phone_page(browser, request, live_server):
    yield from _page(browser, request, **PHONE)


@pytest.fixture
def phone_page_nojs(browser, request, live_server):
    yield from _page(browser, request, java_script_enabled=False, **PHONE)


@pytest.fixture
def screenshot(request):
    """``screenshot(page, step, full_page=True)`` → tests/e2e/screenshots/<test>-<step>.png."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    test = re.sub(r"[^A-Za-z0-9_.-]+", "-", request.node.name).strip("-")

    def _shot(page, step: str, *, full_page: bool = True) -> Path:
        path = SCREENSHOTS / f"{test}-{step}.png"
        page.bring_to_front()  # chromium cannot capture a page hidden behind another tab
        page.screenshot(path=str(path), full_page=full_page)
        return path

    return _shot


@pytest.fixture
def sign_in(live_server):
    """``sign_in(page, user)``: the real sign-in and two-factor forms, TOTP code from the device key."""
    from django_otp.oath import totp
    from django_otp.plugins.otp_totp.models import TOTPDevice

    def _sign_in(page, user, password: str = PASSWORD):
        page.goto(f"{live_server.url}/accounts/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", password)
        page.locator("form:has(#id_password) button[type=submit]").click()
        page.wait_for_url(re.compile(r".*/two-factor/.*|.*/two-factor/$"))
        device = TOTPDevice.objects.get(user=user, confirmed=True)
        # A code is single use per time step: wait for a fresh step if this one was used already.
        if device.last_t >= int(time.time()) // device.step:
            time.sleep(device.step - time.time() % device.step + 0.5)
        code = f"{totp(device.bin_key, step=device.step, t0=device.t0, digits=device.digits):0{device.digits}d}"
        page.fill("input[name=code]", code)
        # The page also has a "Sign out" button: submit the code's own form.
        page.locator("form:has(input[name=code]) button[type=submit]").click()
        page.wait_for_load_state()
        return page

    return _sign_in
