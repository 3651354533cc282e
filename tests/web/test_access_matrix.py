"""The role × URL matrix and the cross-practice id test (SECURITY.md REQ-AC1, REQ-AC3, REQ-AU1).

Every URL pattern of the project is found by walking the resolver and requested as every persona
of ``alliance_web.access_rules`` — with client_of_a's ids, with random ids and with practice B's
ids — and must answer what its rule declares. A refused client-data lookup must leave an audit
``deny`` row; a served one an audit row naming the client; a page with client data must say
``Cache-Control: no-store``. A URL without a rule fails with a message naming the key to add.

Each request runs inside a savepoint that is rolled back afterwards, so a POST that succeeds (the
owner acknowledging an alert) does not change what the next persona sees.

``ALLIANCE_MATRIX_DISCOVER=1 python -m pytest tests/web/test_access_matrix.py -s`` prints what each
persona actually gets, to help write a new rule (then check every number by reading the view).
"""

from __future__ import annotations

import ast
import os
import re
import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from django.db import transaction
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils import timezone

from alliance_web import access_rules
from alliance_web.access_rules import PERSONAS, RULES, SEES_CLIENT_OF_A, Rule
from alliance_web.audit.models import AuditEvent, Outcome
from alliance_web.care import services
from alliance_web.care.models import Alert, AlertKind, CheckInKind
from tests.web.conftest import make_user

DISCOVER = os.environ.get("ALLIANCE_MATRIX_DISCOVER") == "1"
SRC = Path(__file__).resolve().parents[2] / "src" / "alliance_web"


# ---------------------------------------------------------------------------------------------
# Walking the resolver
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Endpoint:
    key: str  # "namespace:name", or "namespace:<route>" for a pattern without a name
    name: str | None
    route: str
    kwargs: tuple[str, ...]
    positional: bool


def _groups(pattern) -> tuple[list[str], bool]:
    converters = getattr(pattern, "converters", None)
    if converters is not None and hasattr(pattern, "_route"):
        return list(converters), False
    regex = pattern.regex
    return list(regex.groupindex), regex.groups > len(regex.groupindex)


def endpoints() -> list[Endpoint]:
    found: list[Endpoint] = []

    def walk(patterns, namespaces, routes, kwargs, positional):
        for p in patterns:
            names, pos = _groups(p.pattern)
            route = routes + str(p.pattern)
            if isinstance(p, URLResolver):
                ns = [*namespaces, p.namespace] if p.namespace else namespaces
                walk(p.url_patterns, ns, route, kwargs + names, positional or pos)
            elif isinstance(p, URLPattern):
                prefix = ":".join(namespaces)
                key = (
                    (f"{prefix}:{p.name}" if prefix else p.name)
                    if p.name
                    else f"{prefix}:<{route}>"
                )
                found.append(
                    Endpoint(
                        key,
                        key if p.name else None,
                        route,
                        tuple(kwargs + names),
                        positional or pos,
                    )
                )

    walk(get_resolver().url_patterns, [], "", [], False)
    return found


ENDPOINTS = endpoints()
KEYS = sorted({e.key for e in ENDPOINTS})


def test_every_url_pattern_has_an_access_rule():
    missing = [e for e in ENDPOINTS if e.key not in RULES]
    assert not missing, "\n".join(
        f"No access rule for {e.key!r} (route {e.route!r}, kwargs {list(e.kwargs)}): add one to "
        "RULES in src/alliance_web/access_rules.py saying what each persona gets "
        "(ALLIANCE_MATRIX_DISCOVER=1 shows the current answers)."
        for e in missing
    )


def test_every_rule_names_a_url_that_exists():
    stale = sorted(set(RULES) - set(KEYS))
    assert not stale, f"access rules for URLs that no longer exist: {stale}"


def test_every_url_keyword_is_declared_and_named():
    problems = []
    for e in ENDPOINTS:
        rule = RULES.get(e.key)
        if e.positional:
            problems.append(f"{e.key}: use named groups, not positional ones")
        if rule is not None and set(e.kwargs) - set(rule.ids):
            problems.append(
                f"{e.key}: declare what {sorted(set(e.kwargs) - set(rule.ids))} name in its rule's ids"
            )
        if rule is not None and e.name is None and rule.path is None:
            problems.append(f"{e.key}: a pattern without a name needs a path template in its rule")
    assert not problems, "\n".join(problems)


# ---------------------------------------------------------------------------------------------
# The world: practice A with client_of_a's record, practice B with one of its own
# ---------------------------------------------------------------------------------------------
class World:
    def __init__(self):
        from alliance_web.accounts.models import Role
        from alliance_web.care.models import Practice

        now = timezone.now()
        self.practice_a = Practice.objects.create(name="Riverside Counselling", slug="riverside")
        self.practice_b = Practice.objects.create(name="Hillside Therapy", slug="hillside")
        self.users = {
            "therapist_a": make_user(self.practice_a, "therapist_a", Role.THERAPIST),
            "therapist_b": make_user(self.practice_a, "therapist_b", Role.THERAPIST),
            "supervisor": make_user(self.practice_a, "supervisor", Role.SUPERVISOR),
            "practice_admin": make_user(self.practice_a, "practice_admin", Role.ADMIN),
            "outsider": make_user(self.practice_b, "outsider", Role.THERAPIST),
        }
        self.ids = self._record(self.users["therapist_a"], "Sam", now)
        self.client_of_a = self.ids.pop("_client")
        self.foreign = self._record(self.users["outsider"], "Robin", now)
        self.foreign.pop("_client")
        self.ids["staff"] = self.users["therapist_b"].pk
        self.foreign["staff"] = self.users["outsider"].pk
        self.ids.update(self._erasure(self.client_of_a, self.users["therapist_a"]))
        self.foreign.update(self._erasure(None, self.users["outsider"]))
        self.ids["incident"] = self._incident(self.users["practice_admin"])
        self.foreign["incident"] = self._incident(self.users["outsider"])
        self.code = services.start_waiting_room_code(self.users["therapist_a"], self.checkin)

    def _record(self, therapist, name, now):
        client = services.create_client(therapist, preferred_name=name, therapist=therapist)
        episode = services.open_episode(
            therapist,
            client,
            concerns=["depression"],
            goals=["Sleep"],
            first_session_at=now - timedelta(days=1),
        )
        checkin, path = services.issue_checkin(
            episode, kind=CheckInKind.PRE_SESSION, session=episode.sessions.first()
        )
        alert = Alert.objects.create(
            practice_id=client.practice_id,
            episode=episode,
            kind=AlertKind.OFF_TRACK,
            priority=1,
            dedupe_key=f"matrix:{episode.public_id}",
        )
        if name == "Sam":
            self.checkin = checkin
        return {
            "_client": client,
            "client": client.public_id,
            "episode": episode.public_id,
            "session": episode.sessions.first().public_id,
            "checkin": checkin.public_id,
            "alert": alert.public_id,
            "token": path.strip("/").split("/")[-1],
        }

    def _erasure(self, client, by):
        try:
            from alliance_web.audit.models import ErasureRequest
        except ImportError:
            return {}
        if client is None:
            client = services.create_client(by, preferred_name="Kim", therapist=by)
        req = ErasureRequest.objects.create(
            practice_id=client.practice_id,
            client=client,
            client_public_id=client.public_id,
            requested_by=by,
            reason="created_in_error",
        )
        return {"erasure": req.pk}

    def _incident(self, by):
        from alliance_web.audit.models import Incident

        return Incident.objects.create(
            practice_id=by.practice_id,
            reported_by=by,
            discovered_on=timezone.localdate(),
            description="A letter went to the wrong address",
            category="other",
            kind="disclosed",
            individuals_affected=1,
        ).pk

    def value(self, kind: str, variant: str):
        if kind.startswith("literal:"):
            return kind.split(":", 1)[1]
        if variant == "real":
            return self.ids[kind]
        if variant == "foreign":
            return self.foreign[kind]
        if kind == "token":
            return secrets.token_urlsafe(18)
        if kind in ("staff", "erasure", "incident"):
            return 2_000_000_000 + secrets.randbelow(1000)
        return uuid.uuid4()

    def patient(self) -> str:
        return str(self.client_of_a.public_id)

    def browser(self, persona: str, rule: Rule) -> Client:
        c = Client()
        if persona == "anonymous":
            return c
        if persona == "client_link":
            c.get(f"/c/{self.ids['token']}/")
            c.post("/c/", {"code": self.code})
            return c
        user = self.users[persona]
        if rule.auth == "bearer":
            from alliance_web.api.models import ApiToken

            _, raw = ApiToken.issue(user, "matrix")
            c.defaults["HTTP_AUTHORIZATION"] = f"Bearer {raw}"
            return c
        from django_otp import DEVICE_ID_SESSION_KEY
        from django_otp.plugins.otp_totp.models import TOTPDevice

        c.force_login(user)
        session = c.session
        session[DEVICE_ID_SESSION_KEY] = TOTPDevice.objects.get(
            user=user, confirmed=True
        ).persistent_id
        session.save()
        return c


@pytest.fixture
def world(db, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    return World()


# ---------------------------------------------------------------------------------------------
# Probing
# ---------------------------------------------------------------------------------------------
def _path(endpoint: Endpoint, rule: Rule, values: dict) -> str:
    if rule.path is not None:
        return rule.path.format(**values)
    return reverse(endpoint.name, kwargs={k: values[k] for k in endpoint.kwargs})


def _probe(world: World, endpoint: Endpoint, rule: Rule, method: str, persona: str, variant: str):
    """One request in a rolled-back savepoint: (status, problems)."""
    values = {k: world.value(rule.ids[k], variant) for k in endpoint.kwargs}
    path = _path(endpoint, rule, values)
    problems: list[str] = []
    with transaction.atomic():
        browser = world.browser(persona, rule)
        head = AuditEvent.objects.order_by("-seq").values_list("seq", flat=True).first() or 0
        response = browser.get(path) if method == "GET" else browser.post(path, {})
        status = response.status_code
        events = list(AuditEvent.objects.filter(seq__gt=head))
        transaction.set_rollback(True)
    signed_in = persona not in ("anonymous", "client_link") or "token" in rule.ids.values()
    looked_up = any(not kind.startswith("literal:") for kind in rule.ids.values())
    refused = signed_in and (status == 403 or (status == 404 and looked_up))
    if refused and not any(e.outcome == Outcome.DENY for e in events):
        problems.append("refused without an audit 'deny' row")
    # Served (2xx) or refused input (400) must be audited by client; a redirect shows nothing (a
    # write that redirects is audited by its service, tested in test_audit_services.py).
    served = rule.client_data and variant == "real" and signed_in and status in (200, 201, 204, 400)
    if served and not any(e.patient_id == world.patient() for e in events):
        problems.append("client data served or changed without an audit row naming the client")
    listed = rule.shows_clients and persona in SEES_CLIENT_OF_A and status == 200
    if listed and not any(e.patient_id == world.patient() and e.action == "R" for e in events):
        problems.append("a list of clients shown without an audit READ row per client")
    has_data = (rule.client_data or rule.shows_clients) and status == 200
    if has_data and "no-store" not in response.get("Cache-Control", ""):
        problems.append("client data without Cache-Control: no-store")
    return status, problems, path


GUESS = {
    "clients/": "client",
    "episodes/": "episode",
    "sessions/": "session",
    "checkins/": "checkin",
    "alerts/": "alert",
    "staff/": "staff",
    "erasure/": "erasure",
}


def _draft_rule(key: str) -> Rule:
    """For discovery only: a rule with no expectations and ids guessed from the route."""
    endpoint = next(e for e in ENDPOINTS if e.key == key)
    ids = {}
    for kw in endpoint.kwargs:
        if kw == "token":
            ids[kw] = "token"
        elif kw == "user_id":
            ids[kw] = "staff"
        else:
            ids[kw] = next((v for k, v in GUESS.items() if k in endpoint.route), "literal:x")
    return Rule(get=access_rules.statuses(0), post=access_rules.statuses(0), ids=ids)


@pytest.mark.parametrize("key", [k for k in KEYS if k in RULES or DISCOVER])
def test_each_persona_gets_what_the_rule_declares(world, key):
    rule = RULES[key] if key in RULES else _draft_rule(key)
    failures: list[str] = []
    table: list[str] = []
    for endpoint in (e for e in ENDPOINTS if e.key == key):
        for method, expected in (("GET", rule.get), ("POST", rule.post)):
            for persona in PERSONAS:
                variants = ["real"]
                if endpoint.kwargs and any(
                    not rule.ids[k].startswith("literal:") for k in endpoint.kwargs
                ):
                    variants.append("random")
                    if persona != "outsider":
                        variants.append("foreign")
                for variant in variants:
                    real = expected[persona]
                    if variant != "real" and (
                        real == 405
                        or (
                            real == 302
                            and persona in ("anonymous", "client_link")
                            and not rule.capability
                        )
                    ):
                        continue  # answered before any lookup: other ids cannot change it
                    want = (
                        expected[persona]
                        if variant == "real"
                        else rule.expected_foreign(method, persona, variant)
                    )
                    got, problems, path = _probe(world, endpoint, rule, method, persona, variant)
                    table.append(f"{method:4} {persona:15} {variant:8} {got}  {path}")
                    if got != want:
                        problems.insert(0, f"status {got}, rule says {want}")
                    failures += [
                        f"{method} {path} as {persona} ({variant} ids): {p}" for p in problems
                    ]
    if DISCOVER:
        print(f"\n== {key}\n" + "\n".join(table))
        return
    assert not failures, "\n".join(failures)


# ---------------------------------------------------------------------------------------------
# No view reads client data around the scoping helper
# ---------------------------------------------------------------------------------------------
CLIENT_MODELS = {
    "Client",
    "Episode",
    "Session",
    "Goal",
    "CheckIn",
    "Response",
    "Score",
    "GoalRating",
    "ClientNote",
    "RelationshipNote",
    "StageAssessment",
    "Alert",
    "AlertAction",
    "PrivateNote",
    "Consent",
    "Delivery",
    "EpisodeInsight",
}
# Modules that answer requests. Helpers they call receive a Scope and filter through it.
REQUEST_MODULES = [
    "views.py",
    "portal/*.py",
    "workspace/*.py",
    "workspace/views/*.py",
    "api/**/*.py",
    "accounts/*.py",
    "audit/*.py",
]
NOT_REQUEST_CODE = {"workspace/sample.py", "api/models.py", "audit/models.py", "accounts/models.py"}
# Each allowed direct use, with the reason it is scoped anyway.
ALLOWED = {
    (
        "portal/views.py",
        "CheckIn",
    ): "the client's own check-in, found by the waiting-room session it opened",
    ("portal/progress.py", "Score"): "scores of the episode of the client's own check-in",
    ("portal/progress.py", "GoalRating"): "ratings of the episode of the client's own check-in",
    ("workspace/clientpage.py", "GoalRating"): "Prefetch queryset under goals from scope.goals()",
    ("workspace/practice.py", "CheckIn"): "an EXISTS subquery correlated to scope.sessions()",
    ("api/views.py", "Score"): "scores of a check-in just submitted through scope.checkins()",
    ("api/views.py", "GoalRating"): "Prefetch queryset under goals from scope.goals()",
}


CARE_MODELS = "alliance_web.care.models"
MANAGERS = ("objects", "_default_manager", "_base_manager")


def unscoped_uses(tree: ast.AST) -> list[tuple[int, str]]:
    """``<Model>.objects`` of a client-data model of ``alliance_web.care.models`` in a module
    (by the names it imports them under, so django's own ``Session`` is not mistaken for one)."""
    names: dict[str, str] = {}  # local name -> model
    modules: set[str] = set()  # local names of the care.models module itself
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module == CARE_MODELS:
            names.update(
                {a.asname or a.name: a.name for a in node.names if a.name in CLIENT_MODELS}
            )
        elif isinstance(node, ast.ImportFrom) and node.module == "alliance_web.care":
            modules.update(a.asname or a.name for a in node.names if a.name == "models")
        elif isinstance(node, ast.Import):
            modules.update(a.asname for a in node.names if a.name == CARE_MODELS and a.asname)
    found = []
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Attribute) and node.attr in MANAGERS):
            continue
        target = node.value
        if isinstance(target, ast.Name) and target.id in names:
            found.append((node.lineno, names[target.id]))
        elif (
            isinstance(target, ast.Attribute)
            and target.attr in CLIENT_MODELS
            and isinstance(target.value, ast.Name)
            and target.value.id in modules
        ):
            found.append((node.lineno, target.attr))
    return found


def _unscoped_uses() -> list[tuple[str, int, str]]:
    found = []
    files = sorted({p for pattern in REQUEST_MODULES for p in SRC.glob(pattern)})
    for path in files:
        rel = path.relative_to(SRC).as_posix()
        if rel in NOT_REQUEST_CODE or "/migrations/" in rel or "/management/" in rel:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        found += [
            (rel, line, model) for line, model in unscoped_uses(tree) if (rel, model) not in ALLOWED
        ]
    return found


def test_no_request_code_reads_client_data_around_the_scoping_helper():
    found = _unscoped_uses()
    assert not found, "\n".join(
        f"{rel}:{line}: {model}.objects in request code — start from scope_for(user) "
        "(alliance_web.care.access) or, if it is scoped another way, add it to ALLOWED with the reason"
        for rel, line, model in found
    )


@pytest.mark.parametrize(
    ("source", "hits"),
    [
        ("from alliance_web.care.models import Client\nClient.objects.get(pk=1)", 1),
        ("from alliance_web.care.models import Client as C\nC._default_manager.all()", 1),
        ("from alliance_web.care import models\nmodels.Episode.objects.all()", 1),
        ("from django.contrib.sessions.models import Session\nSession.objects.all()", 0),
        ("from alliance_web.care.models import Practice\nPractice.objects.all()", 0),
    ],
)
def test_the_unscoped_check_catches_a_bare_lookup(source, hits):
    assert len(unscoped_uses(ast.parse(source))) == hits


REQUEST_NAMES = re.compile(r"\brequest\.(GET|POST|data|query_params|body)\b")
ORM_KEY_METHODS = {"order_by", "annotate", "alias", "values", "values_list", "extra", "aggregate"}


def test_no_request_data_reaches_orm_field_names():
    """CVE-2021-35042, -2022-28346, -2024-42005, -2025-57833 (SECURITY.md REQ-IJ1): sort and
    field names come from allow-lists (alliance_web.allowlist), never straight from the request."""
    problems = []
    files = sorted({p for pattern in REQUEST_MODULES for p in SRC.glob(pattern)})
    for path in files:
        rel = path.relative_to(SRC).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ORM_KEY_METHODS
            ):
                source = ast.unparse(node)
                args = " ".join(
                    ast.unparse(a) for a in [*node.args, *[k.value for k in node.keywords]]
                )
                if REQUEST_NAMES.search(args) or any(k.arg is None for k in node.keywords):
                    problems.append(f"{rel}:{node.lineno}: {source[:100]}")
    assert not problems, "request data passed to ORM field-name arguments:\n" + "\n".join(problems)


def test_rules_module_lists_every_persona():
    assert set(access_rules.STAFF) <= set(PERSONAS)
