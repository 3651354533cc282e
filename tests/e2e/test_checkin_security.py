"""XSS probes rendered in headless Chromium fire nothing (issue 6 acceptance, SECURITY.md 4a): a goal
in the client's words and the practice's crisis resources carry the probes; no dialog opens, no
script runs, and the text is shown as text."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from alliance_web.care import services

pytestmark = pytest.mark.django_db(transaction=True)

PROBES = [
    "<script>alert('goal')</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg/onload=alert(2)>",
    "javascript:alert(3)",
]


def test_probes_in_goals_and_crisis_resources_fire_nothing(
    desktop_page, live_server, practice_a, therapist_a, client_of_a, screenshot
):
    practice_a.crisis_resources = [
        {"label": PROBES[1], "contact": "javascript:alert(4)"},
        {"label": "Crisis line <b>bold?</b>", "contact": "9-8-8"},
    ]
    practice_a.save(update_fields=["crisis_resources"])
    episode = services.open_episode(
        therapist_a, client_of_a, concerns=["depression"], goals=[PROBES[0], PROBES[1], PROBES[2]]
    )
    _, path = services.issue_checkin(episode)
    page = desktop_page
    dialogs: list[str] = []
    page.on("dialog", lambda d: (dialogs.append(d.message), d.dismiss()))
    page.goto(live_server.url + path)
    expect(page.locator(".goal-text").first).to_contain_text(PROBES[0])
    page.evaluate("document.querySelector('[data-critical]').click()")
    expect(page.locator(".crisis:visible")).to_contain_text(PROBES[1])
    expect(page.locator(".crisis:visible")).to_contain_text("Crisis line <b>bold?</b>")
    assert page.locator(".crisis:visible a[href^='javascript']").count() == 0
    screenshot(page, "probes")
    assert page.locator("img[src=x]").count() == 0
    assert dialogs == []
    assert page.js_errors == []
