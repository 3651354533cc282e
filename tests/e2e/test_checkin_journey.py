"""The client's part of the core journey (issue 5 acceptance), in a real browser.

A client opens their check-in link on a phone-sized screen, answers every question — endorsing the
PHQ-9 safety item — sees the practice's crisis resources at once, finishes, and sees them again on the
thank-you page; the therapist's safety alert exists as soon as the page says thank you. Once with
JavaScript (one question per screen) and once without (one plain page). The therapist's part of the
journey continues from :func:`client_completes_checkin_on_a_phone`.
"""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import expect

from alliance_web.care import services
from alliance_web.care.models import Alert, AlertKind, CheckInStatus, ClientNote, Response

pytestmark = pytest.mark.django_db(transaction=True)

SAFETY_ITEM = "phq9.phq9_9"


def answer_for(key: str) -> str:
    """What the client in this journey answers: struggling, and item 9 endorsed."""
    if key == SAFETY_ITEM:
        return "Several days"
    if key == "phq9.phq9_difficulty":
        return "Somewhat difficult"
    if key.startswith("goal."):
        return "4"
    if key.startswith("phq9.") or key.startswith("gad7."):
        return "More than half the days"
    return ""


def visible_step(page):
    return page.locator("[data-step]:visible, [data-final]:visible").first


def choose(page, step, label: str) -> None:
    step.locator("label.option", has_text=re.compile(rf"^\s*{re.escape(label)}\s*$")).first.click()


def client_completes_checkin_on_a_phone(page, live_server, episode, screenshot=None):
    """Walk the check-in step by step on a phone with JavaScript; return the check-in."""
    checkin, path = services.issue_checkin(episode)
    page.goto(live_server.url + path)
    expect(page.locator("h1")).to_contain_text("Hi Sam")
    expect(page.locator(".progress-text")).to_have_text(re.compile(r"Question 1 of \d+"))
    if screenshot:
        screenshot(page, "01-first-question", full_page=False)
    safety_seen = False
    for _ in range(60):
        step = visible_step(page)
        if step.get_attribute("data-final") is not None:
            break
        key = step.get_attribute("data-key") or ""
        if key == "note":
            step.locator("textarea").fill("It's hard to say out loud how tired I am.")
        elif answer_for(key):
            choose(page, step, answer_for(key))
        if key == SAFETY_ITEM:
            panel = step.locator(".crisis")
            expect(panel).to_be_visible()
            expect(panel).to_contain_text("Your therapist will see your answers")
            expect(panel).to_contain_text("9-8-8")
            safety_seen = True
            if screenshot:
                screenshot(page, "02-safety-panel", full_page=False)
        if key.startswith("goal.") and screenshot:
            screenshot(page, "03-goal", full_page=False)
        if key == "note" and screenshot:
            screenshot(page, "04-note", full_page=False)
        page.click("[data-next]")
    assert safety_seen, "the safety item was never shown"
    if screenshot:
        screenshot(page, "05-ready-to-send", full_page=False)
    page.click("button[name=action][value=send]")
    expect(page.locator("h1")).to_contain_text("Thank you")
    return checkin


def test_a_client_completes_the_check_in_on_a_phone_and_sees_crisis_resources(
    phone_page, live_server, episode_of_a, screenshot
):
    page = phone_page
    checkin = client_completes_checkin_on_a_phone(page, live_server, episode_of_a, screenshot)
    crisis = page.locator(".crisis")
    expect(crisis).to_be_visible()
    expect(crisis).to_contain_text("Your therapist will see your answers")
    expect(crisis).to_contain_text("9-1-1")
    screenshot(page, "06-thank-you")
    checkin.refresh_from_db()
    assert checkin.status == CheckInStatus.COMPLETED
    assert Alert.objects.filter(episode=episode_of_a, kind=AlertKind.SAFETY).count() == 1
    assert ClientNote.objects.filter(checkin=checkin).count() == 1
    assert page.js_errors == []


def test_back_keeps_the_answers_and_the_progress_bar_counts(
    phone_page, live_server, episode_of_a, screenshot
):
    page = phone_page
    _, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    first = visible_step(page)
    choose(page, first, "Several days")
    page.click("[data-next]")
    expect(page.locator(".progress-text")).to_have_text(re.compile(r"Question 2 of \d+"))
    page.click("[data-back]")
    expect(page.locator(".progress-text")).to_have_text(re.compile(r"Question 1 of \d+"))
    expect(visible_step(page).locator("input[value='1']")).to_be_checked()
    # Next without an answer asks for one instead of moving on.
    page.click("[data-next]")
    page.click("[data-next]")
    expect(page.locator(".step-hint:visible")).to_have_text("Please choose an answer to go on.")
    screenshot(page, "needs-an-answer", full_page=False)
    assert page.js_errors == []


def test_answers_are_saved_as_the_client_goes_and_come_back(phone_page, live_server, episode_of_a):
    page = phone_page
    checkin, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    choose(page, visible_step(page), "Nearly every day")
    expect(page.locator("[data-autosave-status]")).to_contain_text("saved", timeout=8000)
    checkin.refresh_from_db()
    assert checkin.status == CheckInStatus.STARTED
    assert checkin.draft["values"]["phq9.phq9_1"] == "3"
    page.goto(live_server.url + path)  # come back later with the same link
    expect(page.locator("#f-phq9-phq9_1 input[value='3']")).to_be_checked()
    expect(page.locator(".progress-text")).to_have_text(re.compile(r"Question 2 of \d+"))


def test_without_javascript_the_whole_check_in_is_one_plain_form(
    phone_page_nojs, live_server, episode_of_a, screenshot
):
    page = phone_page_nojs
    checkin, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    steps = page.locator("fieldset[data-step]")
    assert steps.count() > 10
    expect(page.locator("[data-step-nav]")).to_be_hidden()
    screenshot(page, "01-one-page")
    for i in range(steps.count()):
        step = steps.nth(i)
        label = answer_for(step.get_attribute("data-key") or "")
        if label:
            choose(page, step, label)
    page.fill("textarea[name=note]", "Easier to write: I have been skipping meals.")
    # The safety panel needs JavaScript to appear at once; without it, it is on the next page.
    page.click("button[name=action][value=send]")
    expect(page.locator("h1")).to_contain_text("Thank you")
    expect(page.locator(".crisis")).to_be_visible()
    expect(page.locator(".crisis")).to_contain_text("9-8-8")
    screenshot(page, "02-thank-you")
    assert Response.objects.filter(checkin=checkin).count() == len(checkin.instruments)
    assert Alert.objects.filter(episode=episode_of_a, kind=AlertKind.SAFETY).count() == 1


def test_without_javascript_a_missing_answer_is_named_and_everything_else_is_kept(
    phone_page_nojs, live_server, episode_of_a, screenshot
):
    page = phone_page_nojs
    checkin, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    steps = page.locator("fieldset[data-step]")
    for i in range(steps.count()):
        key = steps.nth(i).get_attribute("data-key") or ""
        if key != SAFETY_ITEM and answer_for(key):
            choose(page, steps.nth(i), answer_for(key))
    page.fill("textarea[name=note]", "Kept after the error")
    page.click("button[name=action][value=send]")
    summary = page.locator(".error-summary")
    expect(summary).to_contain_text("Please answer this question.")
    expect(page.locator("textarea[name=note]")).to_have_value("Kept after the error")
    expect(page.locator("#f-gad7-gad7_1 input:checked")).to_have_count(1)
    screenshot(page, "error-summary")
    summary.locator("a").first.click()
    assert page.evaluate("location.hash") == "#f-phq9-phq9_9"
    assert Response.objects.filter(checkin=checkin).count() == 0


def test_a_post_session_rating_takes_under_a_minute(
    phone_page, live_server, episode_of_a, screenshot
):
    page = phone_page
    checkin, path = services.issue_checkin(episode_of_a, kind="post")
    page.goto(live_server.url + path)
    expect(page.locator(".lead")).to_contain_text("under a minute")
    screenshot(page, "01-first", full_page=False)
    for _ in range(30):
        step = visible_step(page)
        if step.get_attribute("data-final") is not None:
            break
        step.locator("label.option").nth(3).click()
        page.click("[data-next]")
    page.click("button[name=action][value=send]")
    expect(page.locator("h1")).to_contain_text("Thank you")
    screenshot(page, "02-thank-you", full_page=False)
    assert (
        Response.objects.filter(
            checkin=checkin, instrument=episode_of_a.alliance_instrument
        ).count()
        == 1
    )


def test_the_client_sees_their_own_progress_when_the_therapist_enabled_it(
    desktop_page, live_server, episode_of_a, client_of_a, screenshot
):
    from django.test import Client as DjangoClient

    from tests.web.portal_helpers import full_answers

    client_of_a.progress_view_enabled = True
    client_of_a.save(update_fields=["progress_view_enabled"])
    goal = episode_of_a.goals.first()
    browser_less = DjangoClient()
    for value, rating in (("3", "2"), ("2", "4")):
        earlier, earlier_path = services.issue_checkin(episode_of_a)
        browser_less.post(
            earlier_path, full_answers(earlier, value, {f"goal.{goal.public_id}": rating})
        )
    _, path = services.issue_checkin(episode_of_a)
    page = desktop_page
    page.goto(live_server.url + path)
    for i in range(page.locator("fieldset[data-step]").count()):
        step = page.locator("fieldset[data-step]").nth(i)
        key = step.get_attribute("data-key") or ""
        label = {"phq9.phq9_difficulty": "Somewhat difficult", SAFETY_ITEM: "Not at all"}.get(
            key, "Several days"
        )
        choose(page, step, "7" if key.startswith("goal.") else label)
    page.click("button[name=action][value=send]")
    expect(page.locator(".progress-view")).to_be_visible()
    expect(page.locator(".progress-view")).to_contain_text("better than when you started")
    expect(page.locator("svg.progress-chart")).to_be_visible()
    screenshot(page, "progress")
