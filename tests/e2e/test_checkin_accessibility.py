"""An axe-free accessibility smoke test of the check-in (WCAG 2.2 AA, the parts a script can check).

* every control has an accessible name, as Chromium's own accessibility tree computes it;
* keyboard only: Tab reaches every question in order, focus is visible, and the check-in can be
  completed and sent without a mouse;
* text contrast of the portal's text styles is at least 4.5:1 (AA for body text);
* tap targets are at least 44 px high; ``lang`` is set; the error summary links to the fields.

What a script cannot judge (wording, whether the order makes sense to a person, screen-reader
announcements in practice) is left to people; the screenshots of the journey help with that.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from alliance_web.care import services

pytestmark = pytest.mark.django_db(transaction=True)

INTERACTIVE_ROLES = {"radio", "textbox", "button", "checkbox", "combobox", "link", "spinbutton"}

CONTRAST_JS = """
(selectors) => {
  function rgb(s) { const m = s.match(/[\\d.]+/g).map(Number); return {r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1}; }
  function lum(c) { const f = v => { v /= 255; return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4); };
    return 0.2126 * f(c.r) + 0.7152 * f(c.g) + 0.0722 * f(c.b); }
  function background(el) { while (el) { const c = rgb(getComputedStyle(el).backgroundColor); if (c.a > 0.5) return c; el = el.parentElement; }
    return {r: 255, g: 255, b: 255, a: 1}; }
  const out = [];
  for (const sel of selectors) {
    for (const el of document.querySelectorAll(sel)) {
      if (!el.offsetParent && getComputedStyle(el).position !== 'fixed') continue;
      const fg = rgb(getComputedStyle(el).color), bg = background(el);
      const [a, b] = [lum(fg), lum(bg)].sort((x, y) => y - x);
      out.push({sel, ratio: (a + 0.05) / (b + 0.05)});
      break;
    }
  }
  return out;
}
"""


def ax_nodes(page):
    session = page.context.new_cdp_session(page)
    try:
        return session.send("Accessibility.getFullAXTree")["nodes"]
    finally:
        session.detach()


def test_every_control_has_an_accessible_name(desktop_page, live_server, episode_of_a):
    page = desktop_page
    _, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    assert page.get_attribute("html", "lang") == "en"
    nameless = []
    counted = 0
    for node in ax_nodes(page):
        role = (node.get("role") or {}).get("value")
        if role in INTERACTIVE_ROLES and not node.get("ignored"):
            counted += 1
            name = ((node.get("name") or {}).get("value") or "").strip()
            if not name:
                nameless.append(role)
    assert counted > 60
    assert nameless == []
    # Each question's options are grouped under its question text.
    groups = page.locator("fieldset[data-step]")
    for i in range(groups.count()):
        assert groups.nth(i).locator("legend").inner_text().strip()


def test_the_check_in_can_be_completed_with_the_keyboard_alone(
    desktop_page, live_server, episode_of_a, screenshot
):
    page = desktop_page
    checkin, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    keys = [
        page.locator("fieldset[data-step]").nth(i).get_attribute("data-key")
        for i in range(page.locator("fieldset[data-step]").count())
    ]
    page.keyboard.press("Tab")
    first = page.evaluate("document.activeElement.className")
    assert first == "skip-link"
    visited: list[str] = []
    shot = False
    for _ in range(200):
        page.keyboard.press("Tab")
        active = page.evaluate(
            """() => { const el = document.activeElement;
                const focusEl = el.type === 'radio' ? el.closest('.option') : el;
                return {tag: el.tagName, type: el.type || '', name: el.name || '', value: el.value || '',
                        outline: getComputedStyle(focusEl).outlineStyle, text: (el.textContent || '').trim()}; }"""
        )
        if active["tag"] in {"INPUT", "TEXTAREA", "BUTTON"}:
            assert active["outline"] != "none", f"no visible focus on {active}"
        if active["type"] == "radio":
            if active["name"] not in visited:
                visited.append(active["name"])
                page.keyboard.press("Space")  # choose the focused (first) answer
            if not shot and active["name"] == "phq9.phq9_9":
                page.keyboard.press("ArrowDown")  # "Several days": the safety panel appears
                expect(page.locator("#crisis-f-phq9-phq9_9")).to_be_visible()
                screenshot(page, "keyboard-focus", full_page=False)
                shot = True
        elif active["tag"] == "TEXTAREA":
            page.keyboard.type("Typed with the keyboard.")
        elif active["tag"] == "BUTTON" and active["value"] == "send":
            break
    assert visited == keys, "Tab should reach every question once, in order"
    page.keyboard.press("Enter")
    expect(page.locator("h1")).to_contain_text("Thank you")
    checkin.refresh_from_db()
    assert checkin.status == "completed"


def test_text_has_enough_contrast_and_targets_are_big_enough(phone_page, live_server, episode_of_a):
    page = phone_page
    _checkin, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    selectors = [
        ".portal-practice",
        ".portal-help-link",
        ".eyebrow",
        ".lead",
        ".checkin-intro .small.muted",
        ".instructions",
        ".question legend",
        ".q-number",
        ".option-label",
        ".progress-text",
        "[data-next]",
        "[data-back]",
        ".scale-anchors",
    ]
    ratios = page.evaluate(CONTRAST_JS, selectors)
    assert {r["sel"] for r in ratios} >= {
        ".option-label",
        ".question legend",
        "[data-next]",
        ".progress-text",
    }
    low = [r for r in ratios if r["ratio"] < 4.5]
    assert low == []
    for locator in (page.locator(".option:visible"), page.locator(".step-nav .button")):
        for i in range(locator.count()):
            box = locator.nth(i).bounding_box()
            assert box["height"] >= 44
    # The safety panel; widening the window leaves step-by-step mode with every question shown.
    page.set_viewport_size({"width": 1000, "height": 800})
    expect(page.locator("[data-step-nav]")).to_be_hidden()
    page.evaluate("document.querySelector('[data-critical]').click()")
    ratios = page.evaluate(
        CONTRAST_JS, [".crisis h2", ".crisis p", ".resource-contact", ".resource-label"]
    )
    assert len(ratios) == 4
    assert [r for r in ratios if r["ratio"] < 4.5] == []


def test_the_error_summary_is_announced_and_links_to_each_field(
    phone_page_nojs, live_server, episode_of_a
):
    page = phone_page_nojs
    _, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    page.click("button[name=action][value=send]")
    summary = page.locator(".error-summary")
    assert summary.get_attribute("role") == "alert"
    assert page.title().startswith("Error: ")
    links = summary.locator("a")
    assert links.count() >= 16  # every required question
    for i in range(links.count()):
        target = links.nth(i).get_attribute("href")[1:]
        field = page.locator(f"[id='{target}']")
        expect(field).to_have_count(1)
        described = field.get_attribute("aria-describedby") or ""
        assert f"{target}-error" in described.split()


def test_on_a_phone_the_focused_answer_is_never_hidden_behind_the_step_bar(
    phone_page, live_server, episode_of_a
):
    page = phone_page
    _, path = services.issue_checkin(episode_of_a)
    page.goto(live_server.url + path)
    page.locator("#f-phq9-phq9_1 input").first.focus()
    page.keyboard.press("ArrowUp")  # wraps to the last answer, "Nearly every day", below the fold
    focused = page.locator("#f-phq9-phq9_1 .option:focus-within")
    expect(focused).to_contain_text("Nearly every day")
    answer, bar = focused.bounding_box(), page.locator("[data-step-nav]").bounding_box()
    assert answer["y"] + answer["height"] <= bar["y"] + 1
