"""Hardening (SECURITY.md §1.3 V3/V14/V16, §1.5, 4a): production settings pass Django's deployment
checks, response headers, no PHI or tokens in logs, formula-safe CSV, sort allow-lists, and the
bad-input rows not covered by the portal tests (oversized bodies, too many fields, deep JSON, GET to
state-changing URLs, wrong Origin / missing CSRF token)."""

from __future__ import annotations

import ast
import base64
import csv
import io
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from alliance_web import csvsafe
from alliance_web.access_rules import RULES
from alliance_web.allowlist import AllowList
from alliance_web.audit.context import RedactFilter, redact
from alliance_web.care import services
from alliance_web.care.models import PrivateNote
from tests.web.portal_helpers import full_answers

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PYTHON = os.path.abspath(sys.executable)  # the tests below run it from another directory


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def production_env(tmp_path, **extra) -> dict[str, str]:
    """Only what the issue says production needs (plus the field keys; docs/security.md)."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("ALLIANCE_", "DATABASE_URL", "DJANGO_"))
    }
    env.update(
        {
            "ALLIANCE_PRODUCTION": "True",
            "ALLIANCE_SECRET_KEY": _key() + _key(),
            "ALLIANCE_ALLOWED_HOSTS": "alliance.example.org",
            "ALLIANCE_FIELD_KEYS": f"k1:{_key()}",
            "ALLIANCE_DATA_DIR": str(tmp_path / "data"),
            "PYTHONPATH": str(SRC),
        }
    )
    env.update(extra)
    return env


# --- Django's deployment checklist ----------------------------------------------------------------
def test_production_settings_pass_check_deploy_at_warning_level(tmp_path):
    out = subprocess.run(
        [PYTHON, "-m", "alliance_web", "check", "--deploy", "--fail-level", "WARNING"],
        env=production_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "no issues" in out.stdout


def test_production_refuses_to_start_without_its_secrets(tmp_path):
    env = production_env(tmp_path)
    del env["ALLIANCE_SECRET_KEY"]
    out = subprocess.run(
        [PYTHON, "-m", "alliance_web", "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert out.returncode != 0
    assert "ALLIANCE_SECRET_KEY" in out.stderr


PROBE = """
import json, django
django.setup()
from django.conf import settings
from django.test import Client
from django.test.utils import override_settings
# The pages need built static files in production (collectstatic); the headers do not.
override_settings(STORAGES={"default": settings.STORAGES["default"],
                            "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"}}).enable()
c = Client()
out = {}
for name, kw in (("https", {"secure": True}), ("http", {})):
    r = c.get("/accounts/login/", HTTP_HOST="alliance.example.org", **kw)
    out[name] = {"status": r.status_code, "headers": dict(r.headers),
                 "cookies": {k: {a: str(m[a]) for a in ("secure", "httponly", "samesite", "path", "domain")} for k, m in r.cookies.items()}}
out["settings"] = {n: getattr(settings, n) for n in ("SESSION_COOKIE_NAME", "SESSION_COOKIE_SECURE", "CSRF_COOKIE_NAME",
                   "SESSION_COOKIE_HTTPONLY", "SECURE_HSTS_SECONDS", "SESSION_COOKIE_AGE")}
print(json.dumps(out))
"""


@pytest.fixture(scope="module")
def production_response(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prod")
    out = subprocess.run(
        [PYTHON, "-c", PROBE],
        env=production_env(tmp, DJANGO_SETTINGS_MODULE="alliance_web.settings"),
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp,
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_production_sends_hsts_for_two_years_with_subdomains(production_response):
    hsts = production_response["https"]["headers"]["Strict-Transport-Security"]
    max_age = int(hsts.split("max-age=")[1].split(";")[0])
    assert max_age >= 365 * 24 * 3600
    assert "includeSubDomains" in hsts
    assert "preload" in hsts


def test_production_redirects_plain_http_to_https(production_response):
    r = production_response["http"]
    assert r["status"] == 301
    assert r["headers"]["Location"].startswith("https://")


def test_production_cookies_are_host_prefixed_secure_and_http_only(production_response):
    cookies = production_response["https"]["cookies"]
    assert set(cookies) == {"__Host-csrftoken"}
    csrf = cookies["__Host-csrftoken"]
    assert csrf["secure"] == "True"
    assert csrf["httponly"] == "True"
    assert csrf["path"] == "/"
    assert csrf["domain"] == ""
    s = production_response["settings"]
    assert s["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert s["SESSION_COOKIE_SECURE"]
    assert s["SESSION_COOKIE_HTTPONLY"]
    assert s["SESSION_COOKIE_AGE"] == 12 * 3600


@pytest.fixture
def page(client):
    return client.get("/accounts/login/")


def _csp(response) -> dict[str, str]:
    header = response["Content-Security-Policy"]
    return {
        part.split()[0]: " ".join(part.split()[1:]) for part in header.split(";") if part.strip()
    }


def test_the_csp_blocks_plugins_base_tags_framing_and_inline_script(page):
    csp = _csp(page)
    assert csp["object-src"] == "'none'"
    assert csp["base-uri"] == "'none'"
    assert csp["frame-ancestors"] == "'none'"
    assert csp["default-src"] == "'self'"
    assert "'unsafe-inline'" not in csp["script-src"]
    assert "'unsafe-eval'" not in csp["script-src"]
    assert csp["form-action"] == "'self'"


def test_the_other_security_headers_are_set(page):
    assert page["X-Content-Type-Options"] == "nosniff"
    assert page["Referrer-Policy"] in (
        "same-origin",
        "no-referrer",
        "strict-origin-when-cross-origin",
    )
    assert page["X-Frame-Options"] == "DENY"
    assert page["Cross-Origin-Opener-Policy"] == "same-origin"
    assert "no-store" in page["Cache-Control"]
    assert page["X-Request-ID"]


@pytest.mark.parametrize("path", ["/w/", "/privacy/", "/accounts/staff/"])
def test_signed_in_pages_are_never_cached(client, login, practice_admin, path):
    login(client, practice_admin)
    assert "no-store" in client.get(path)["Cache-Control"]


# --- logs -----------------------------------------------------------------------------------------
@pytest.fixture
def console():
    """The configured console handler (with its redaction filter), writing to a buffer, everything
    at DEBUG."""
    handler = next(
        h
        for h in logging.getLogger().handlers
        if any(isinstance(f, RedactFilter) for f in h.filters)
    )
    buffer = io.StringIO()
    old_stream, old_level = handler.stream, logging.getLogger().level
    handler.stream = buffer  # not setStream(): it flushes the old stream, which may be closed
    levels = {
        name: logging.getLogger(name).level
        for name in ("django.request", "django.server", "alliance_web")
    }
    logging.getLogger().setLevel(logging.DEBUG)
    for name in levels:
        logging.getLogger(name).setLevel(logging.DEBUG)
    yield buffer
    handler.stream = old_stream
    logging.getLogger().setLevel(old_level)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


def test_a_check_in_leaves_neither_the_token_nor_the_answers_in_the_logs(
    client, episode_of_a, console, caplog, monkeypatch
):
    caplog.set_level(logging.DEBUG)
    checkin, path = services.issue_checkin(episode_of_a, session=episode_of_a.sessions.first())
    token = path.strip("/").split("/")[-1]
    note = "My neighbour Gerald frightens me"
    client.get(path)
    client.post(path + "draft/", {"note": note})
    client.post(path, {"note": note})  # incomplete: 400
    client.get(path[:-1] + "x/")  # a mistyped link: 404
    data = full_answers(checkin, "3")
    data["note"] = note
    client.post(path, data)

    def boom(*args, **kwargs):
        raise RuntimeError("database went away")

    second, path2 = services.issue_checkin(episode_of_a)
    monkeypatch.setattr(services, "submit_checkin", boom)
    client.raise_request_exception = False
    assert client.post(path2, full_answers(second)).status_code == 500  # Django logs the path
    token2 = path2.strip("/").split("/")[-1]
    text = console.getvalue()
    assert "Internal Server Error" in text
    assert (
        "/c/[redacted]" in text or "/c/[token]" in text
    )  # handler filter, or the portal's logger filter
    for secret in (token, token2, note, "Gerald"):
        assert secret not in text
    answers = [m for m in (r.getMessage() for r in caplog.records) if note in m or "Gerald" in m]
    assert not answers


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        ("Not Found: /c/AbCdEfGhIjKlMnOpQrStUvWx/", "Not Found: /c/[redacted]/"),
        ("GET /c/AbCdEfGhIjKlMnOpQrStUvWx/draft/ 200", "GET /c/[redacted]/draft/ 200"),
        ("Authorization: Bearer alli_abc.DEF-123", "Authorization: Bearer [redacted]"),
        ("token alli_Zm9vYmFy leaked", "token alli_[redacted] leaked"),
        ("/c/tablet/ is fine", "/c/tablet/ is fine"),
    ],
)
def test_tokens_are_masked_in_log_lines(text, cleaned):
    assert redact(text) == cleaned


# --- CSV --------------------------------------------------------------------------------------------
def _read(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


@pytest.mark.parametrize(
    "payload",
    [
        '=HYPERLINK("http://x","y")',
        "+cmd|' /C calc'!A0",
        "-1+1",
        "@SUM(A1:A2)",
        "\tleading tab",
        "\rcr",
        "\0nul",
        "=1+1",
    ],
)
def test_a_text_cell_that_could_be_a_formula_gets_a_quote_prefix(payload):
    row = _read(csvsafe.to_text(["v"], [[payload]]))[1]
    assert row == ["'" + payload]


@pytest.mark.parametrize(
    ("value", "written"), [(-3, "-3"), (-1.5, "-1.5"), (0, "0"), (12, "12"), (2.25, "2.25")]
)
def test_numbers_stay_numbers_even_negative(value, written):
    assert _read(csvsafe.to_text(["v"], [[value]]))[1] == [written]


text_cells = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
cells = st.one_of(
    text_cells,
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.none(),
    st.booleans(),
)


@hsettings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.lists(cells, min_size=1, max_size=6), min_size=1, max_size=6))
def test_csv_round_trip_keeps_every_value_and_defuses_every_formula(rows):
    width = max(len(r) for r in rows)
    rows = [r + [None] * (width - len(r)) for r in rows]
    back = _read(csvsafe.to_text([f"c{i}" for i in range(width)], rows))[1:]
    assert len(back) == len(rows)
    for original, read in zip(rows, back, strict=True):
        for value, cell in zip(original, read, strict=True):
            if value is None:
                assert cell == ""
            elif isinstance(value, bool):
                assert cell == ("true" if value else "false")
            elif isinstance(value, int):
                assert int(cell) == value
            elif isinstance(value, float):
                assert float(cell) == value
            else:
                expected = "'" + value if value.startswith(csvsafe.TRIGGERS) else value
                assert cell == expected
                assert not cell.startswith(csvsafe.TRIGGERS)


def test_the_csv_download_is_an_attachment_with_a_clean_name():
    response = csvsafe.response('a"b\r\n.csv', ["x"], [["=1"]])
    assert response["Content-Disposition"] == 'attachment; filename="ab.csv"'
    assert response.content.decode("utf-8-sig").splitlines()[1] == "'=1"


def test_only_csvsafe_writes_csv_in_the_web_app():
    offenders = []
    for path in (SRC / "alliance_web").rglob("*.py"):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and node.attr in ("writer", "DictWriter")
                and isinstance(node.value, ast.Name)
                and node.value.id == "csv"
                and path.name != "csvsafe.py"
            ):
                offenders.append(f"{path.relative_to(SRC)}:{node.lineno}")
    assert not offenders, f"write CSV with alliance_web.csvsafe: {offenders}"


# --- sort and filter allow-lists ----------------------------------------------------------------------
def test_an_allow_list_only_ever_yields_its_own_values():
    sorts = AllowList({"newest": ("-seq",), "user": ("username", "-seq")}, default="newest")
    assert sorts.order_by("user") == ("username", "-seq")
    for probe in (
        "id;DROP TABLE audit_auditevent",
        "a.b",
        "username__password",
        {"x": 1},
        ["user"],
        None,
        "-seq",
    ):
        assert sorts.order_by(probe) == ("-seq",)
    with pytest.raises(ValueError):
        AllowList({"a": "a"}, default="b")


@pytest.mark.parametrize(
    "sort", ["id;DROP TABLE care_client", "a.b", "password", "-seq,1", "__class__"]
)
def test_list_pages_ignore_a_sort_that_is_not_offered(
    client, login, practice_admin, therapist_a, sort
):
    login(client, practice_admin)
    response = client.get("/privacy/audit/", {"sort": sort, "outcome": "' OR 1=1 --"})
    assert response.status_code == 200
    assert b"syntax" not in response.content.lower()
    assert b"sqlite" not in response.content.lower()
    caseload = login(Client(), therapist_a).get("/w/", {"sort": sort})
    assert caseload.status_code == 200


def test_the_audit_review_downloads_formula_safe_csv(client, login, practice_admin, therapist_a):
    from alliance_web.audit.models import Action
    from alliance_web.audit.trail import Actor, record

    record(
        Actor(
            role="anonymous", username="=cmd|'/C calc'!A0", practice_id=practice_admin.practice_id
        ),
        Action.EXECUTE,
        "login",
    )
    login(client, practice_admin)
    response = client.get("/privacy/audit/", {"format": "csv"})
    assert response["Content-Type"].startswith("text/csv")
    rows = _read(response.content.decode("utf-8-sig"))
    assert any(cell == "'=cmd|'/C calc'!A0" for row in rows for cell in row)


# --- bad input (SECURITY.md 4a rows for every form, not only the check-in) ---------------------------
@pytest.fixture
def treating(client, login, therapist_a, episode_of_a):
    login(client, therapist_a)
    return f"/w/episodes/{episode_of_a.public_id}/process-notes/"


def test_an_oversized_body_is_refused_and_nothing_stored(client, treating):
    response = client.post(treating, {"text": "x" * 2_700_000})
    assert response.status_code == 400
    assert not PrivateNote.objects.exists()


def test_more_than_1000_fields_are_refused_and_nothing_stored(client, treating):
    data = {f"f{i}": "1" for i in range(1001)} | {"text": "a note"}
    assert client.post(treating, data).status_code == 400
    assert not PrivateNote.objects.exists()


def test_signing_in_with_an_oversized_body_is_refused(client):
    assert (
        client.post("/accounts/login/", {"username": "x", "password": "y" * 2_700_000}).status_code
        == 400
    )


def test_a_missing_or_wrong_csrf_token_or_a_foreign_origin_stores_nothing(
    therapist_a, episode_of_a, login
):
    browser = login(Client(enforce_csrf_checks=True), therapist_a)
    url = f"/w/episodes/{episode_of_a.public_id}/process-notes/"
    assert browser.post(url, {"text": "no token"}).status_code == 403
    browser.get(f"/w/clients/{episode_of_a.client.public_id}/")
    token = browser.cookies["csrftoken"].value
    assert browser.post(url, {"text": "forged", "csrfmiddlewaretoken": "x" * 32}).status_code == 403
    foreign = browser.post(
        url,
        {"text": "cross-site", "csrfmiddlewaretoken": token},
        HTTP_ORIGIN="https://evil.example",
    )
    assert foreign.status_code == 403
    secure_no_referer = browser.post(
        url, {"text": "no referer", "csrfmiddlewaretoken": token}, secure=True
    )
    assert secure_no_referer.status_code == 403
    assert not PrivateNote.objects.exists()
    ok = browser.post(
        url, {"text": "fine", "csrfmiddlewaretoken": token}, HTTP_ORIGIN="http://testserver"
    )
    assert ok.status_code == 302
    assert PrivateNote.objects.count() == 1


def _post_only_urls():
    return sorted(
        k
        for k, r in RULES.items()
        if r.get.get("therapist_a") == 405 and r.post.get("therapist_a") != 405
    )


def _table_counts():
    from django.apps import apps

    return {
        m._meta.label: m.objects.count()
        for app in ("care", "accounts", "audit")
        for m in apps.get_app_config(app).get_models()
        if m._meta.label != "audit.AuditEvent"
    }


@pytest.fixture
def matrix_world(db, settings):
    from tests.web.test_access_matrix import World

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return World()


def test_a_get_to_a_state_changing_url_changes_nothing(matrix_world):
    from tests.web.test_access_matrix import ENDPOINTS, _path

    checked = 0
    for key in _post_only_urls():
        rule = RULES[key]
        for endpoint in (e for e in ENDPOINTS if e.key == key):
            path = _path(
                endpoint,
                rule,
                {k: matrix_world.value(rule.ids[k], "real") for k in endpoint.kwargs},
            )
            for persona in ("therapist_a", "practice_admin"):
                browser = matrix_world.browser(persona, rule)
                before = _table_counts()
                response = browser.get(
                    path,
                    {"text": "via GET", "status": "attended", "kind": "discussed", "code": "x"},
                )
                assert response.status_code in (403, 405), (
                    f"GET {path} as {persona}: {response.status_code}"
                )
                assert _table_counts() == before, f"GET {path} changed something"
                checked += 1
    assert checked >= 10


def test_deeply_nested_json_never_causes_a_server_error(matrix_world):
    """Every URL that takes a POST answers a 100 000-deep JSON body with a 4xx (or ignores it), never 5xx."""
    from tests.web.test_access_matrix import ENDPOINTS, _path

    body = "[" * 100_000 + "]" * 100_000
    for endpoint in ENDPOINTS:
        rule = RULES.get(endpoint.key)
        if rule is None:
            continue
        path = _path(
            endpoint, rule, {k: matrix_world.value(rule.ids[k], "real") for k in endpoint.kwargs}
        )
        with transaction.atomic():
            browser = matrix_world.browser("therapist_a", rule)
            browser.raise_request_exception = False
            response = browser.post(path, body, content_type="application/json")
            transaction.set_rollback(True)
        assert response.status_code < 500, f"POST {path}: {response.status_code}"


@pytest.mark.parametrize(("depth", "refused"), [(64, False), (65, True), (5000, True)])
def test_json_deeper_than_64_levels_is_refused_before_any_view(
    client, login, therapist_a, depth, refused
):
    login(client, therapist_a)
    body = "[" * depth + "]" * depth
    response = client.post("/api/v1/clients/", body, content_type="application/json")
    assert (response.status_code == 400 and b"nested" in response.content) is refused
    assert response.status_code < 500
