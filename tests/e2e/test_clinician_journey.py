"""The core journey, the clinicians' part (issue 5 acceptance): after a client endorses the safety
item on a phone, the therapist signs in, sees the safety alert at the top, acknowledges it and
records what they did; the supervisor then sees it counted. Screenshots of each page are saved."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from alliance_web.care.models import ActionKind, Alert, AlertAction, AlertKind, AlertStatus
from alliance_web.workspace import sample
from tests.e2e.test_checkin_journey import client_completes_checkin_on_a_phone

pytestmark = pytest.mark.django_db(transaction=True)


def test_the_therapist_answers_a_safety_alert_and_the_supervisor_sees_it_counted(
    browser,
    phone_page,
    live_server,
    sign_in,
    episode_of_a,
    therapist_a,
    therapist_b,
    supervisor,
    screenshot,
):
    # Others on the caseload, calmer than Sam, so that "at the top" means something.
    sample.add_client(therapist_a, "Robin", course="recovered", sessions=6, rupture=True, seed=2)
    sample.add_client(
        therapist_a, "Noor", course="at_risk", sessions=5, seed=4, concerns=("anxiety",)
    )
    sample.add_client(therapist_b, "Priya", course="on_track", sessions=4, seed=3)

    # 1. The client, on a phone, endorses the safety item (the portal's half of the journey).
    client_completes_checkin_on_a_phone(phone_page, live_server, episode_of_a)
    alert = Alert.objects.get(episode=episode_of_a, kind=AlertKind.SAFETY)

    # 2. The therapist signs in and sees the safety alert at the top of the caseload.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-CA", timezone_id="America/Toronto"
    )
    page = context.new_page()
    errors: list[str] = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: errors.append(str(e)))
    sign_in(page, therapist_a)
    page.goto(f"{live_server.url}/w/")
    first = page.locator("table.caseload tbody tr").first
    expect(first).to_contain_text("Sam")
    expect(first.locator(".badge.safety")).to_have_text(re.compile("Safety"))
    expect(page.locator(".count-pill")).to_be_visible()
    screenshot(page, "01-caseload-safety-first")

    # 3. The client page: the alert comes straight after the header, before the charts.
    first.locator("a.client-link").click()
    expect(page.locator("h1")).to_have_text("Sam")
    card = page.locator("article.alert-card.kind-safety")
    expect(card).to_be_visible()
    expect(card).to_contain_text("A safety item was endorsed")
    screenshot(page, "02-client-page-with-safety-alert")

    # 4. Acknowledge it.
    card.get_by_role("button", name="Acknowledge").click()
    expect(page.locator(".messages")).to_contain_text("alert acknowledged")
    card = page.locator("article.alert-card.kind-safety")
    expect(card.locator(".status-tag")).to_have_text("Acknowledged")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACKNOWLEDGED

    # 5. Record what they did.
    card.locator("summary", has_text="Record what you did").click()
    card.get_by_label("Reviewed or made a safety plan").check()
    card.locator("textarea[name=note]").fill(
        "Called Sam the same afternoon; reviewed the safety plan together."
    )
    screenshot(page, "03-recording-the-action", full_page=False)
    card.get_by_role("button", name="Save").click()
    expect(page.locator(".messages")).to_contain_text("Action recorded")
    card = page.locator("article.alert-card.kind-safety")
    expect(card).to_contain_text("Reviewed or made a safety plan")
    expect(card).to_contain_text("No check-in since the action yet.")
    screenshot(page, "04-action-recorded")
    alert.refresh_from_db()
    assert alert.status == AlertStatus.ACTIONED
    assert AlertAction.objects.get(alert=alert).kind == ActionKind.SAFETY_PLAN

    # 6. The inbox now has nothing new for this alert.
    page.goto(f"{live_server.url}/w/alerts/")
    screenshot(page, "05-alerts-inbox")
    assert errors == [], errors
    context.close()

    # 7. The supervisor sees it counted, with its response time.
    context = browser.new_context(
        viewport={"width": 1280, "height": 900}, locale="en-CA", timezone_id="America/Toronto"
    )
    page = context.new_page()
    sign_in(page, supervisor)
    page.goto(f"{live_server.url}/w/practice/")
    expect(page.locator("h1")).to_contain_text("The practice at a glance")
    safety_bar = page.locator("svg.bars-chart g[aria-label^='Safety:']").first
    expect(safety_bar).to_have_attribute("aria-label", re.compile(r"Safety: 1 raised"))
    alerts = page.locator("section[aria-labelledby=alerts-h]")
    alerts.locator("summary", has_text="Show as a table").click()
    expect(alerts.locator("table").first).to_contain_text("Safety")
    screenshot(page, "06-supervisor-sees-it-counted")
    alerts.scroll_into_view_if_needed()
    screenshot(page, "07-supervisor-alerts-section", full_page=False)
    context.close()
