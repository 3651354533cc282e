"""The browser tests' staff sign-in helper walks the real pages, two-factor included, so the
therapist's part of the journey (workspace tests) can start from a signed-in browser."""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.django_db(transaction=True)


def test_sign_in_passes_password_and_two_factor(desktop_page, live_server, therapist_a, sign_in):
    page = sign_in(desktop_page, therapist_a)
    assert "/accounts/" not in page.url
    expect(page.locator("button", has_text="Sign out")).to_be_visible()
