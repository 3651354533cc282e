"""Every workspace page in a real browser: it renders without console or CSP errors, charts are
focusable with their exact values, and a screenshot of each page is saved for review."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from alliance_web.workspace import sample

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def practice_story(therapist_a, therapist_b, supervisor):
    """A small practice: therapist_a's caseload covers every signal; therapist_b has a few."""
    story = {
        "safety": sample.add_client(
            therapist_a, "Sam", course="off_track", sessions=7, safety=True, rupture=True, seed=1
        ),
        "recovered": sample.add_client(
            therapist_a, "Robin", course="recovered", sessions=9, rupture=True, seed=2
        ),
        "gap": sample.add_client(
            therapist_a, "Alex", course="on_track", sessions=5, gap=True, seed=3
        ),
        "at_risk": sample.add_client(
            therapist_a, "Noor", course="at_risk", sessions=6, seed=4, concerns=("anxiety",)
        ),
        "new": sample.add_client(therapist_a, "Jonah", course="not_enough_data", seed=5, overdue=1),
        "dropout": sample.add_client(
            therapist_a, "Kiran", course="improved", sessions=4, dropout=True, seed=6
        ),
    }
    for i, course in enumerate(
        ["recovered", "improved", "on_track", "off_track", "recovered", "improved", "recovered"]
    ):
        sample.add_client(
            therapist_a if i % 2 else therapist_b,
            f"Closed {i}",
            course=course,
            sessions=8,
            seed=20 + i,
            closed="planned" if i != 3 else "dropout",
            concerns=("depression",) if i % 3 else ("anxiety",),
        )
    sample.add_client(therapist_b, "Priya", course="off_track", sessions=5, seed=11)
    sample.add_client(therapist_b, "Tess", course="on_track", sessions=3, seed=12)
    return story


def no_errors(page):
    assert page.js_errors == [], page.js_errors


def test_the_therapist_pages_render_cleanly(
    desktop_page, live_server, sign_in, screenshot, therapist_a, practice_story
):
    page = desktop_page
    sign_in(page, therapist_a)
    page.goto(f"{live_server.url}/w/")
    page.goto(f"{live_server.url}/w/")
    expect(page.locator("table.caseload tbody tr").first).to_contain_text("Sam")
    screenshot(page, "01-caseload")
    page.goto(f"{live_server.url}/w/clients/{practice_story['safety'].client.public_id}/")
    expect(page.locator("h1")).to_have_text("Sam")
    screenshot(page, "02-client-safety")
    points = page.locator("svg.outcome-chart g.pt")
    last = points.count() - 1
    tip = page.locator(f"svg.outcome-chart .tips .t{last}")
    expect(tip).to_be_hidden()
    points.last.focus()
    expect(tip).to_be_visible()
    expect(tip).to_contain_text("since intake")
    screenshot(page, "03-outcome-point-focused", full_page=False)
    page.goto(f"{live_server.url}/w/clients/{practice_story['recovered'].client.public_id}/")
    screenshot(page, "04-client-recovered")
    page.goto(f"{live_server.url}/w/alerts/")
    screenshot(page, "05-alerts")
    page.goto(f"{live_server.url}/w/clients/new/")
    screenshot(page, "06-add-client")
    no_errors(page)


def test_the_supervisor_pages_render_cleanly(
    desktop_page, live_server, sign_in, screenshot, supervisor, practice_story
):
    page = desktop_page
    sign_in(page, supervisor)
    page.goto(f"{live_server.url}/w/practice/")
    expect(page.locator("h1")).to_contain_text("practice")
    screenshot(page, "01-practice")
    page.goto(f"{live_server.url}/w/")
    screenshot(page, "02-caseload")
    no_errors(page)


def test_break_glass_in_a_browser_opens_one_record_read_only_and_the_admin_sees_it(
    desktop_page, live_server, sign_in, screenshot, therapist_b, practice_admin, practice_story
):
    """SECURITY.md REQ-AC2 as a clinician meets it: the form, the refused short reason, the record
    with its banner and no write controls, then the practice admin's log."""
    page = desktop_page
    client = practice_story["safety"].client
    sign_in(page, therapist_b)
    page.goto(f"{live_server.url}/w/emergency-access/")
    screenshot(page, "emergency-01-form")
    page.fill("input[name=code]", client.pseudonym)
    page.fill("textarea[name=reason]", "short")
    page.locator("main form button[type=submit]").last.click()
    expect(page.locator("main")).to_contain_text("10")  # the reason's minimum length
    page.js_errors.clear()  # the refused form answers 400, which the console reports
    page.fill(
        "textarea[name=reason]", "Covering the crisis line while the treating therapist is away"
    )
    page.locator("main form button[type=submit]").last.click()
    expect(page.locator("h1")).to_have_text("Sam")
    expect(page.locator("main")).to_contain_text("every view is recorded")
    # Read-only: none of the treating therapist's forms or links to record work.
    expect(page.locator("main form[method=post] textarea")).to_have_count(0)
    expect(page.get_by_role("link", name="Check-in link")).to_have_count(0)
    expect(page.locator("#client-notes")).to_contain_text("Only the treating therapist sees")
    expect(page.locator("#client-notes")).not_to_contain_text("Nothing yet")
    screenshot(page, "emergency-02-client")
    no_errors(page)
    page.context.clear_cookies()
    sign_in(page, practice_admin)
    page.goto(f"{live_server.url}/w/emergency-access/grants/")
    expect(page.locator("table")).to_contain_text(client.pseudonym)
    expect(page.locator("table")).to_contain_text("Covering the crisis line")
    screenshot(page, "emergency-03-admin-log")
    no_errors(page)
