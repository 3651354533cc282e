"""Privacy (tokens only in the path, never in logs; headers) and escaping of everything the portal
shows that someone typed: goals in the client's words, the practice's crisis resources."""

from __future__ import annotations

import logging

import pytest
from django.test import Client

from alliance_web.care import services
from alliance_web.portal.redact import REDACTED, RedactCheckInTokens, redact
from tests.web.portal_helpers import full_answers

pytestmark = pytest.mark.django_db

PROBES = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>",
    "\u202eevil\u200b" + "🙂" * 50,
]


def token_of(path: str) -> str:
    return path.strip("/").split("/")[-1]


def test_a_csrf_failure_is_logged_without_the_token(episode_of_a, caplog):
    checkin, path = services.issue_checkin(episode_of_a)
    with caplog.at_level(logging.WARNING, logger="django.security.csrf"):
        Client(enforce_csrf_checks=True).post(path, full_answers(checkin))
    assert caplog.records, "Django logs a CSRF failure"
    assert token_of(path) not in caplog.text
    assert REDACTED in caplog.text


def test_the_redaction_filter_rewrites_paths_with_tokens():
    record = logging.LogRecord(
        "django.request",
        logging.WARNING,
        __file__,
        1,
        "Not Found: %s",
        ("/c/abcdefghijKLMNOP_-12/draft/",),
        None,
    )
    assert RedactCheckInTokens().filter(record)
    assert record.getMessage() == "Not Found: /c/[token]/draft/"
    assert redact("/c/tablet/ and /c/") == "/c/tablet/ and /c/"


def test_pages_are_never_cached_and_never_indexed(client, episode_of_a):
    _, path = services.issue_checkin(episode_of_a)
    for response in (client.get(path), client.get("/c/"), client.get("/c/unknown-token-123/")):
        assert "no-store" in response["Cache-Control"]
        assert response["X-Robots-Tag"] == "noindex, nofollow"
        assert response["Referrer-Policy"] in {"no-referrer", "same-origin"}
        assert "script-src 'self'" in response["Content-Security-Policy"]


def test_pages_without_a_form_send_no_referrer_at_all(client, episode_of_a):
    checkin, path = services.issue_checkin(episode_of_a)
    done = client.post(path, full_answers(checkin))
    assert done["Referrer-Policy"] == "no-referrer"
    assert 'content="no-referrer"' in done.content.decode()
    assert client.get(path)["Referrer-Policy"] == "no-referrer"  # "already sent"


def test_no_inline_script_or_style_on_the_check_in_page(client, episode_of_a):
    _, path = services.issue_checkin(episode_of_a)
    html = client.get(path).content.decode()
    assert "<script>" not in html
    assert " style=" not in html
    assert " on" + "click=" not in html


@pytest.mark.parametrize("probe", PROBES)
def test_a_goal_in_the_clients_words_is_shown_escaped(client, therapist_a, client_of_a, probe):
    episode = services.open_episode(
        therapist_a, client_of_a, concerns=["depression"], goals=[probe]
    )
    _, path = services.issue_checkin(episode)
    html = client.get(path).content.decode()
    if "<" not in probe:  # plain text, however odd: shown verbatim, its direction isolated
        assert f"<bdi>{probe}</bdi>" in html
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert "<svg onload" not in html


@pytest.mark.parametrize("probe", PROBES)
def test_the_practices_crisis_text_is_shown_escaped(client, practice_a, episode_of_a, probe):
    practice_a.crisis_resources = [{"label": probe, "contact": "javascript:alert(1)"}]
    practice_a.save(update_fields=["crisis_resources"])
    checkin, path = services.issue_checkin(episode_of_a)
    html = client.post(path, full_answers(checkin, "0", {"phq9.phq9_9": "1"})).content.decode()
    assert "<script>alert(1)" not in html
    assert "<img src=x" not in html
    assert 'href="javascript:' not in html
    assert "javascript:alert(1)" in html  # shown as text, not as a link


def test_crisis_contacts_become_phone_or_web_links_only(practice_a):
    from alliance_web.portal.views import crisis_resources

    practice_a.crisis_resources = [
        {"label": "Helpline", "contact": "+1 (416) 555-0100"},
        {"label": "Website", "contact": "https://example.org/help"},
        {"label": "Odd", "contact": "data:text/html,hi"},
        "not a mapping",
    ]
    links = [r["href"] for r in crisis_resources(practice_a)]
    assert links == ["tel:+14165550100", "https://example.org/help", ""]


def test_a_practice_without_crisis_resources_gets_the_defaults(practice_a):
    from alliance_web.portal.views import crisis_resources

    practice_a.crisis_resources = []
    contacts = [r["contact"] for r in crisis_resources(practice_a)]
    assert "9-8-8" in contacts
    assert "9-1-1" in contacts
