"""XSS probes in everything staff pages show, rendered in headless Chromium (issue 6 acceptance;
SECURITY.md 4a, §2 "push every user-controlled string through an XSS probe").

Names, goals, the client's private note, process notes, relationship notes, alert-action notes, the
practice's name, a colleague's display name and a username typed at sign-in (which the audit review
shows) all carry probes: ``<script>``, ``"><img src=x onerror=…>``, an SVG ``onload``, a
``javascript:`` URL and 10 kB of emoji, right-to-left and zero-width text. On every page: no dialog
opens, no script runs, the Content Security Policy reports no violation (a violation would mean
markup got through escaping and only the CSP stopped it), no ``<img src=x>`` or ``javascript:`` link
exists, and the probes are shown as text. The check-in pages are probed in test_checkin_security.py.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from alliance_web.accounts.models import User
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record
from alliance_web.care import services
from alliance_web.care.models import Alert, AlertKind, CheckInKind

pytestmark = pytest.mark.django_db(transaction=True)

SCRIPT = "<script>alert('script')</script>"
IMG = "\"><img src=x onerror=alert('img')>"
SVG = "<svg/onload=alert('svg')>"
JS_URL = "javascript:alert('url')"
ATTR = "' autofocus onfocus=alert('attr') x='"
# 10 kB of text that is hard to render: emoji (with ZWJ sequences), right-to-left override and
# isolates, zero-width spaces and joiners, combining marks.
LONG = ("👩‍👩‍👧 שלום مرحبا \u202egnp.exe\u202c \u200b\u200d\u2066x\u2069 é̃ " * 200)[:10_000]

WATCH = """
window.__csp = [];
document.addEventListener('securitypolicyviolation', e => window.__csp.push(e.violatedDirective + ' ' + e.blockedURI));
"""


def watch(page) -> list[str]:
    events: list[str] = []
    page.add_init_script(WATCH)
    page.on("dialog", lambda d: (events.append(f"dialog: {d.message}"), d.dismiss()))
    page.on("pageerror", lambda exc: events.append(f"pageerror: {exc}"))
    page.on(
        "console",
        lambda m: (
            events.append(f"console: {m.text}")
            if m.type == "error" and ("Content Security Policy" in m.text or "Refused" in m.text)
            else None
        ),
    )
    return events


def assert_inert(page, events: list[str], where: str) -> None:
    page.wait_for_load_state("load")
    page.wait_for_timeout(150)  # let any onerror/onload handler run if it were there
    violations = page.evaluate("window.__csp || []")
    assert violations == [], f"{where}: CSP violations {violations}"
    assert events == [], f"{where}: {events}"
    assert page.locator("img[src=x]").count() == 0, where
    assert page.locator("svg[onload]").count() == 0, where
    assert page.locator("a[href^='javascript' i]").count() == 0, where
    assert page.locator("[onfocus], [onerror], [onload]").count() == 0, where
    assert page.evaluate("document.querySelectorAll('script:not([src])').length") == 0, where


@pytest.fixture
def hostile(practice_a, therapist_a, practice_admin):
    practice_a.name = f"Clinic {IMG}"
    practice_a.save(update_fields=["name"])
    therapist_a.display_name = f"Dr {SVG}"
    therapist_a.save(update_fields=["display_name"])
    client = services.create_client(
        therapist_a, preferred_name=f"Sam {SCRIPT}", therapist=therapist_a, email="sam@example.org"
    )
    episode = services.open_episode(
        therapist_a,
        client,
        concerns=["depression"],
        goals=[f"Run {IMG}", LONG[:290], f"Call {ATTR}"],
        first_session_at=timezone.now() - timedelta(days=1),
    )
    checkin, _ = services.issue_checkin(episode, kind=CheckInKind.PRE_SESSION)
    from tests.web.portal_helpers import full_answers

    data = full_answers(checkin, "2")
    from alliance_web.portal.forms import CheckInForm

    class QD(dict):
        def getlist(self, key):
            return [self[key]] if key in self else []

    submission = CheckInForm(checkin).parse(QD(data)).submission
    submission.note = f"Note {SCRIPT} {IMG} {LONG[:3000]}"
    services.submit_checkin(checkin, submission)
    services.add_private_note(therapist_a, episode, f"Process {SVG} {JS_URL}")
    services.log_relationship_event(therapist_a, episode, event="rupture", text=f"Rupture {IMG}")
    alert = Alert.objects.create(
        practice_id=client.practice_id,
        episode=episode,
        kind=AlertKind.OFF_TRACK,
        priority=1,
        dedupe_key="xss:1",
    )
    services.record_alert_action(therapist_a, alert, "discussed", f"Action {SCRIPT} {LONG[:1000]}")
    record(
        Actor(role="anonymous", username=f"{SCRIPT}"[:150], practice_id=practice_a.pk),
        Action.EXECUTE,
        "login",
        outcome=Outcome.DENY,
    )
    return client, episode, alert


def test_probes_in_the_clinicians_pages_fire_nothing(
    desktop_page, live_server, sign_in, hostile, therapist_a, screenshot
):
    client, _episode, alert = hostile
    page = desktop_page
    events = watch(page)
    sign_in(page, therapist_a)
    pages = {
        "caseload": "/w/",
        "client": f"/w/clients/{client.public_id}/",
        "alerts": "/w/alerts/",
        "alert": f"/w/alerts/{alert.public_id}/",
        "privacy": f"/privacy/clients/{client.public_id}/",
        "password": "/accounts/password/",
    }
    for name, path in pages.items():
        page.goto(live_server.url + path)
        assert_inert(page, events, name)
        if name in ("caseload", "client", "alert", "privacy"):
            assert "Sam <script>" in page.inner_text("main"), (
                f"{name}: the name is not shown as text"
            )
    screenshot(page, "client-privacy")
    page.goto(f"{live_server.url}/w/clients/{client.public_id}/")
    body = page.inner_text("main")
    assert "Note <script>alert('script')</script>" in body  # the client's note, shown as text
    assert 'Rupture "><img src=x' in body


def test_the_probe_check_notices_an_injection(desktop_page):
    """The checks above are not vacuous: a page that lets a probe through fails them."""
    page = desktop_page
    events = watch(page)
    page.set_content(f"<html><body><main>{IMG}</main></body></html>")
    with pytest.raises(AssertionError):
        assert_inert(page, events, "control")


def test_probes_in_the_admins_pages_fire_nothing(
    browser, live_server, sign_in, hostile, practice_admin, therapist_a, screenshot
):
    context = browser.new_context(
        locale="en-CA", timezone_id="America/Toronto", viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(10_000)
    page = context.new_page()
    events = watch(page)
    try:
        sign_in(page, practice_admin)
        colleague = User.objects.get(pk=therapist_a.pk)
        client, _, _ = hostile
        pages = {
            "staff": "/accounts/staff/",
            "staff-detail": f"/accounts/staff/{colleague.pk}/",
            "audit-review": "/privacy/audit/",
            "privacy": f"/privacy/clients/{client.public_id}/",
            "requests": "/privacy/",
        }
        for name, path in pages.items():
            page.goto(live_server.url + path)
            assert_inert(page, events, name)
        page.goto(live_server.url + "/privacy/audit/")
        assert "<script>alert('script')</script>" in page.inner_text("main")
        page.goto(f"{live_server.url}/accounts/staff/{colleague.pk}/")
        assert "Dr <svg/onload=alert('svg')>" in page.inner_text("main")
        screenshot(page, "staff-detail")
    finally:
        context.close()
