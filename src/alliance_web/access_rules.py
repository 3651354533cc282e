"""Who gets what from every URL: the role × URL matrix (SECURITY.md REQ-AC1, REQ-AC3).

``tests/web/test_access_matrix.py`` walks the URL resolver, finds every pattern of the project
(portal, workspace, accounts, privacy, and the API and FHIR endpoints once they exist) and requests
each one as every persona below. A pattern without a rule here fails that test, with a message
naming the key to add. Adding an endpoint therefore means adding one line to :data:`RULES`.

Personas (the same people as ``tests/web/conftest.py``):

``anonymous``       nobody signed in
``client_link``     a client holding the check-in link of ``client_of_a`` and a waiting-room
                    (tablet) session for that check-in; to staff pages this is nobody
``therapist_a``     treats ``client_of_a``
``therapist_b``     same practice, another caseload
``supervisor``      sees practice A's clients (they consented to supervision); writes nothing
``practice_admin``  configures practice A; no clinical content
``outsider``        a therapist in practice B

A rule gives, per HTTP method, the status each persona gets when the URL carries *client_of_a's*
ids. The test also sends ids that are not theirs — a random UUID or integer, and the matching row
of practice B — and then expects 404 from every signed-in persona (unless ``foreign`` says
otherwise), with an audit ``deny`` row whenever a client-data lookup is refused.

``ids`` maps each URL keyword to what it names. Kinds in :data:`CLIENT_DATA` are client data: a
refusal must be audited, and a success must leave an audit row naming the client. ``staff`` names
a staff account (an integer primary key). ``literal:<value>`` is a fixed, harmless value.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

PERSONAS = (
    "anonymous",
    "client_link",
    "therapist_a",
    "therapist_b",
    "supervisor",
    "practice_admin",
    "outsider",
)
STAFF = PERSONAS[2:]
# Who may see client_of_a at all (the matrix checks their reads are audited by client).
SEES_CLIENT_OF_A = frozenset({"therapist_a", "supervisor"})

CLIENT_DATA = frozenset({"client", "episode", "session", "checkin", "alert", "token"})
ID_KINDS = CLIENT_DATA | {"staff", "erasure", "incident"}


def statuses(default: int, **overrides: int) -> Mapping[str, int]:
    """Every persona gets ``default`` except those named."""
    unknown = set(overrides) - set(PERSONAS)
    if unknown:
        raise ValueError(f"unknown persona(s) {sorted(unknown)}")
    return MappingProxyType({p: overrides.get(p, default) for p in PERSONAS})


def signed_in(
    default: int, *, anonymous: int = 302, client_link: int = 302, **overrides: int
) -> Mapping[str, int]:
    """A page behind staff sign-in: nobody signed in is sent to the sign-in page (302)."""
    return statuses(default, anonymous=anonymous, client_link=client_link, **overrides)


def post_only(post: Mapping[str, int]) -> Mapping[str, int]:
    """The GET answer of a POST-only URL behind sign-in: 302 to sign in, then 405 for staff."""
    return signed_in(405)


PUBLIC_GET = statuses(200)
NO_METHOD = statuses(405)


@dataclass(frozen=True)
class Rule:
    """What each persona gets from one URL pattern."""

    get: Mapping[str, int]
    post: Mapping[str, int]
    ids: Mapping[str, str] = field(default_factory=dict)
    # Statuses for ids that are not client_of_a's (random, or practice B's); by default 404 from
    # everyone who got past sign-in, and whatever sign-in answered for the others.
    foreign: Mapping[str, int] | None = None
    # A path template for a pattern without a name (``{token}`` etc. are filled in).
    path: str | None = None
    # The page lists clients (caseload, inbox): a persona who can see client_of_a must leave an
    # audit READ row naming them.
    shows_clients: bool = False
    # The ids are capabilities (a check-in link token): whoever holds one gets what its owner
    # gets, so ids of another practice answer like client_of_a's; random ones still 404.
    capability: bool = False
    # "session" (cookie sign-in, two-factor passed) or "bearer" (an API token).
    auth: str = "session"
    note: str = ""

    def __post_init__(self) -> None:
        for method in (self.get, self.post):
            missing = set(PERSONAS) - set(method)
            if missing:
                raise ValueError(f"rule lacks persona(s) {sorted(missing)}")
        for kind in self.ids.values():
            if kind not in ID_KINDS and not kind.startswith("literal:"):
                raise ValueError(f"unknown id kind {kind!r}")

    @property
    def client_data(self) -> bool:
        return any(kind in CLIENT_DATA for kind in self.ids.values())

    def expected_foreign(self, method: str, persona: str, variant: str = "random") -> int:
        real = (self.get if method == "GET" else self.post)[persona]
        if self.capability and variant == "foreign":
            return real
        if self.foreign is not None and persona in self.foreign:
            return self.foreign[persona]
        if real in (302, 405) and persona in ("anonymous", "client_link"):
            return real
        if real == 405:
            return 405
        return 404


CLIENT = {"public_id": "client"}
EPISODE = {"public_id": "episode"}
SESSION = {"public_id": "session"}
CHECKIN = {"public_id": "checkin"}
ALERT = {"public_id": "alert"}
LINK_KWARG = "token"  # the portal's URL keyword for a check-in link token
TOKEN = {LINK_KWARG: "token"}
STAFF_ID = {"user_id": "staff"}
ERASURE = {"request_id": "erasure"}
INCIDENT = {"incident_id": "incident"}  # an incident of the register (integer primary key)

# Statuses for a page only the treating therapist may change (supervisor reads but gets 403).
TREATS_POST = signed_in(404, therapist_a=400, supervisor=403)
TREATS_GET = post_only(TREATS_POST)

# The REST API answers 401 (JSON) to anyone without a token, 403 to a role without clinical
# content (practice admin), 404 to ids outside the caller's scope; it reads JSON only.
API_LIST = statuses(200, anonymous=401, client_link=401, practice_admin=403)
API_CREATE = statuses(415, anonymous=401, client_link=401, practice_admin=403)
API_READ = statuses(
    404, anonymous=401, client_link=401, practice_admin=403, therapist_a=200, supervisor=200
)
API_NO_METHOD = statuses(405, anonymous=401, client_link=401)
API_TREATS = statuses(
    404, anonymous=401, client_link=401, practice_admin=403, therapist_a=200, supervisor=403
)
API_TREATS_BODY = statuses(
    404, anonymous=401, client_link=401, practice_admin=403, therapist_a=415, supervisor=403
)
API_FOREIGN = statuses(404, anonymous=401, client_link=401, practice_admin=403)

# Staff management: the role is checked before the method and before the id.
ADMIN_ONLY = signed_in(403, practice_admin=200)
ADMIN_POST_ONLY = signed_in(403, practice_admin=405)
ADMIN_ACTS = signed_in(403, practice_admin=302)
ADMIN_FOREIGN = signed_in(403, practice_admin=404)
ADMIN_FOREIGN_POST = signed_in(403, practice_admin=404)

RULES: dict[str, Rule] = {
    # --- public pages ---------------------------------------------------------------------------
    "healthz": Rule(get=PUBLIC_GET, post=PUBLIC_GET, note="liveness; no data"),
    "home": Rule(
        get=statuses(302, anonymous=200, client_link=200),
        post=statuses(302, anonymous=200, client_link=200),
        note="staff are sent on to their workspace",
    ),
    "instrument_list": Rule(get=PUBLIC_GET, post=PUBLIC_GET),
    "instrument_preview": Rule(
        get=PUBLIC_GET, post=PUBLIC_GET, ids={"instrument_id": "literal:phq9"}
    ),
    # --- signing in -----------------------------------------------------------------------------
    "accounts:login": Rule(
        get=statuses(302, anonymous=200, client_link=200),
        post=statuses(302, anonymous=200, client_link=200),
        note="signed-in staff are redirected; an empty form is shown again",
    ),
    "accounts:logout": Rule(get=NO_METHOD, post=statuses(302)),
    "accounts:two_factor": Rule(
        get=statuses(302), post=statuses(302), note="personas have passed two-factor already"
    ),
    # --- the client portal: a link token is the client's only credential -----------------------
    "portal:code": Rule(get=PUBLIC_GET, post=statuses(400), note="an empty code is refused"),
    "portal:tablet": Rule(
        get=statuses(302, client_link=200),
        post=statuses(302, client_link=400),
        note="only the waiting-room session opens it; an empty submission is refused",
    ),
    "portal:tablet_draft": Rule(
        get=NO_METHOD, post=statuses(404, client_link=200), note="an empty draft saves nothing"
    ),
    "portal:checkin": Rule(
        get=PUBLIC_GET,
        post=statuses(400),
        ids=TOKEN,
        capability=True,
        note="the link is a bearer credential; an empty submission is refused",
    ),
    "portal:draft": Rule(get=NO_METHOD, post=PUBLIC_GET, ids=TOKEN, capability=True),
    r"portal:<c/^(?P<token>[A-Za-z0-9_-]{10,100})$>": Rule(
        get=statuses(302),
        post=statuses(302),
        ids=TOKEN,
        path="/c/{token}",
        foreign=statuses(302),
        note="adds the slash a text message lost; looks nothing up",
    ),
    "portal:<c/^.*$>": Rule(
        get=statuses(404),
        post=statuses(404),
        path="/c/no/such/page/",
        note="anything else under /c/ is a friendly 404",
    ),
    # --- the clinician workspace ------------------------------------------------------------------
    "workspace:home": Rule(get=signed_in(200), post=signed_in(200), shows_clients=True),
    "workspace:client_new": Rule(
        get=signed_in(200, supervisor=403, practice_admin=403),
        post=signed_in(400, supervisor=403, practice_admin=403),
        note="clients are added by a clinician, into their own practice",
    ),
    "workspace:client": Rule(
        get=signed_in(404, therapist_a=200, supervisor=200),
        post=signed_in(404, therapist_a=200, supervisor=200),
        ids=CLIENT,
    ),
    "workspace:episode_new": Rule(
        get=signed_in(404, therapist_a=302, supervisor=403),
        post=signed_in(404, therapist_a=302, supervisor=403),
        ids=CLIENT,
        note="therapist_a is redirected: the client already has an open episode",
    ),
    "workspace:report": Rule(
        get=signed_in(404, therapist_a=200, supervisor=200),
        post=signed_in(404, therapist_a=200, supervisor=200),
        ids=CLIENT,
    ),
    "workspace:rating": Rule(get=TREATS_GET, post=TREATS_POST, ids=EPISODE),
    "workspace:stage": Rule(get=TREATS_GET, post=TREATS_POST, ids=EPISODE),
    "workspace:private_note": Rule(get=TREATS_GET, post=TREATS_POST, ids=EPISODE),
    "workspace:relationship": Rule(get=TREATS_GET, post=TREATS_POST, ids=EPISODE),
    "workspace:checkin": Rule(get=TREATS_GET, post=TREATS_POST, ids=EPISODE),
    "workspace:close": Rule(
        get=signed_in(404, therapist_a=200, supervisor=403), post=TREATS_POST, ids=EPISODE
    ),
    "workspace:attendance": Rule(get=TREATS_GET, post=TREATS_POST, ids=SESSION),
    "workspace:checkin_code": Rule(
        get=TREATS_GET, post=signed_in(404, therapist_a=200, supervisor=403), ids=CHECKIN
    ),
    "workspace:alerts": Rule(get=signed_in(200), post=signed_in(200), shows_clients=True),
    "workspace:alert": Rule(
        get=signed_in(404, therapist_a=200, supervisor=200),
        post=signed_in(404, therapist_a=200, supervisor=200),
        ids=ALERT,
    ),
    "workspace:alert_ack": Rule(
        get=TREATS_GET, post=signed_in(404, therapist_a=302, supervisor=403), ids=ALERT
    ),
    "workspace:alert_action": Rule(get=TREATS_GET, post=TREATS_POST, ids=ALERT),
    # --- the account itself, and staff management (practice admins) ------------------------------
    "accounts:password_change": Rule(get=signed_in(200), post=signed_in(400)),
    "accounts:welcome": Rule(
        get=statuses(302, anonymous=200, client_link=200),
        post=statuses(302, anonymous=400, client_link=400),
        note="accepting an invitation; signed-in staff have no use for it",
    ),
    "accounts:staff": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY),
    "accounts:staff_new": Rule(get=ADMIN_ONLY, post=signed_in(403, practice_admin=400)),
    "accounts:staff_detail": Rule(
        get=ADMIN_ONLY, post=signed_in(403, practice_admin=400), ids=STAFF_ID, foreign=ADMIN_FOREIGN
    ),
    "accounts:staff_disable": Rule(
        get=ADMIN_POST_ONLY, post=ADMIN_ACTS, ids=STAFF_ID, foreign=ADMIN_FOREIGN_POST
    ),
    "accounts:staff_enable": Rule(
        get=ADMIN_POST_ONLY, post=ADMIN_ACTS, ids=STAFF_ID, foreign=ADMIN_FOREIGN_POST
    ),
    "accounts:staff_reset_two_factor": Rule(
        get=ADMIN_POST_ONLY, post=ADMIN_ACTS, ids=STAFF_ID, foreign=ADMIN_FOREIGN_POST
    ),
    "accounts:staff_end_sessions": Rule(
        get=ADMIN_POST_ONLY, post=ADMIN_ACTS, ids=STAFF_ID, foreign=ADMIN_FOREIGN_POST
    ),
    "accounts:staff_reset_password": Rule(
        get=ADMIN_POST_ONLY,
        post=signed_in(403, practice_admin=200),
        ids=STAFF_ID,
        foreign=ADMIN_FOREIGN_POST,
        note="the new invitation code is shown once (200)",
    ),
    # --- the privacy office ------------------------------------------------------------------------
    "privacy:requests": Rule(
        get=signed_in(200, supervisor=403), post=signed_in(200, supervisor=403)
    ),
    "privacy:audit": Rule(get=ADMIN_ONLY, post=ADMIN_ONLY, note="the practice's audit review"),
    "privacy:client": Rule(
        get=signed_in(404, therapist_a=200, practice_admin=200),
        post=signed_in(404, therapist_a=200, practice_admin=200),
        ids=CLIENT,
        note="the admin sees who accessed the record, never its content",
    ),
    "privacy:export_fhir": Rule(
        get=signed_in(404, therapist_a=200, practice_admin=403),
        post=signed_in(404, therapist_a=200, practice_admin=403),
        ids=CLIENT,
        note="only the treating clinician hands the client their record",
    ),
    "privacy:export_pdf": Rule(
        get=signed_in(404, therapist_a=200, practice_admin=403),
        post=signed_in(404, therapist_a=200, practice_admin=403),
        ids=CLIENT,
    ),
    "privacy:consent": Rule(
        get=signed_in(405), post=signed_in(404, therapist_a=400, practice_admin=403), ids=CLIENT
    ),
    "privacy:erasure_request": Rule(
        get=signed_in(405), post=signed_in(404, therapist_a=400, practice_admin=400), ids=CLIENT
    ),
    "privacy:erasure_confirm": Rule(
        get=signed_in(405),
        post=signed_in(404, therapist_a=403, practice_admin=302),
        ids=ERASURE,
        note="therapist_a asked; a practice admin confirms (a second person)",
    ),
    "privacy:erasure_cancel": Rule(
        get=signed_in(405), post=signed_in(404, therapist_a=302, practice_admin=302), ids=ERASURE
    ),
    # --- the incident register (REQ-BR1): practice admins of the practice only ---------------------
    "privacy:incidents": Rule(get=ADMIN_ONLY, post=ADMIN_POST_ONLY, note="GET only"),
    "privacy:incident_new": Rule(
        get=ADMIN_ONLY, post=signed_in(403, practice_admin=400), note="an empty form is refused"
    ),
    "privacy:incident_edit": Rule(
        get=ADMIN_ONLY,
        post=signed_in(403, practice_admin=400),
        ids=INCIDENT,
        foreign=ADMIN_FOREIGN,
        note="another practice's incident is a 404 for the admin (audited)",
    ),
    "privacy:incident_export": Rule(
        get=ADMIN_ONLY, post=ADMIN_POST_ONLY, note="the yearly counts as CSV; GET only"
    ),
    "workspace:practice": Rule(
        get=signed_in(403, supervisor=200),
        post=signed_in(403, supervisor=200),
        note="aggregates for clinical supervisors only",
    ),
    # --- break-glass emergency access (REQ-AC2) --------------------------------------------------
    "workspace:emergency_access": Rule(
        get=signed_in(200, practice_admin=403),
        post=signed_in(400, practice_admin=403),
        note="clinicians ask by client code and reason (an empty form is refused); not admins",
    ),
    "workspace:emergency_grants": Rule(
        get=ADMIN_ONLY,
        post=signed_in(403, practice_admin=400),
        note="the practice admins' log of grants; POST revokes one (an empty form is refused)",
    ),
    # --- REST API v1 (bearer tokens; JSON only, so an empty form POST is 415) ----------------------
    "api:openapi": Rule(get=PUBLIC_GET, post=NO_METHOD, auth="bearer", note="the OpenAPI document"),
    "api:docs": Rule(get=PUBLIC_GET, post=NO_METHOD, auth="bearer", note="Swagger UI, offline"),
    "api:client-list": Rule(get=API_LIST, post=API_CREATE, auth="bearer", shows_clients=True),
    "api:client-detail": Rule(
        get=API_READ, post=API_NO_METHOD, ids=CLIENT, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:episode-list": Rule(get=API_LIST, post=API_CREATE, auth="bearer", shows_clients=True),
    "api:episode-detail": Rule(
        get=API_READ, post=API_NO_METHOD, ids=EPISODE, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:episode-close": Rule(
        get=API_NO_METHOD, post=API_TREATS_BODY, ids=EPISODE, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:session-list": Rule(get=API_LIST, post=API_NO_METHOD, auth="bearer", shows_clients=True),
    "api:session-detail": Rule(
        get=API_READ, post=API_NO_METHOD, ids=SESSION, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:session-attendance": Rule(
        get=API_NO_METHOD, post=API_TREATS_BODY, ids=SESSION, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:checkin-list": Rule(get=API_LIST, post=API_CREATE, auth="bearer", shows_clients=True),
    "api:checkin-detail": Rule(
        get=API_READ, post=API_NO_METHOD, ids=CHECKIN, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:checkin-submit": Rule(
        get=API_NO_METHOD, post=API_TREATS_BODY, ids=CHECKIN, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:score-list": Rule(
        get=API_LIST,
        post=API_NO_METHOD,
        auth="bearer",
        shows_clients=False,
        note="client_of_a has no scores in the matrix world",
    ),
    "api:alert-list": Rule(get=API_LIST, post=API_NO_METHOD, auth="bearer", shows_clients=True),
    "api:alert-detail": Rule(
        get=API_READ, post=API_NO_METHOD, ids=ALERT, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:alert-acknowledge": Rule(
        get=API_NO_METHOD, post=API_TREATS, ids=ALERT, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:alert-actions": Rule(
        get=API_NO_METHOD, post=API_TREATS_BODY, ids=ALERT, foreign=API_FOREIGN, auth="bearer"
    ),
    "api:goal-list": Rule(get=API_LIST, post=API_CREATE, auth="bearer", shows_clients=True),
    "api:goal-detail": Rule(
        get=API_FOREIGN,
        post=API_NO_METHOD,
        ids={"public_id": "literal:00000000-0000-4000-8000-000000000000"},
        auth="bearer",
        foreign=API_FOREIGN,
        note="goal ids are not in the matrix world; an unknown one is a 404 (403 for the admin role)",
    ),
    # --- FHIR R4 facade (bearer tokens; errors are OperationOutcomes) ------------------------------
    "fhir:metadata": Rule(
        get=PUBLIC_GET, post=NO_METHOD, auth="bearer", note="CapabilityStatement"
    ),
    "fhir:questionnaire-search": Rule(
        get=statuses(200, anonymous=401, client_link=401),
        post=API_NO_METHOD,
        auth="bearer",
        note="the instrument library; creating questionnaires is refused (405)",
    ),
    "fhir:questionnaire": Rule(
        get=statuses(200, anonymous=401, client_link=401),
        post=API_NO_METHOD,
        auth="bearer",
        ids={"rid": "literal:phq9"},
    ),
    "fhir:questionnaireresponse-search": Rule(
        get=API_LIST,
        post=API_CREATE,
        auth="bearer",
        note="client_of_a has no responses in the matrix world; an empty form body is 415",
    ),
    "fhir:questionnaireresponse": Rule(
        get=API_FOREIGN,
        post=API_NO_METHOD,
        auth="bearer",
        ids={"rid": "literal:0123456789abcdef0123456789abcdef.phq9"},
    ),
    "fhir:observation-search": Rule(get=API_LIST, post=API_NO_METHOD, auth="bearer"),
    "fhir:observation": Rule(
        get=API_FOREIGN,
        post=API_NO_METHOD,
        auth="bearer",
        ids={"rid": "literal:0123456789abcdef0123456789abcdef.phq9"},
    ),
    "fhir:patient-search": Rule(
        get=API_LIST, post=API_NO_METHOD, auth="bearer", shows_clients=True
    ),
    "fhir:patient": Rule(
        get=API_READ, post=API_NO_METHOD, ids={"rid": "client"}, foreign=API_FOREIGN, auth="bearer"
    ),
    "fhir:auditevent-search": Rule(
        get=statuses(403, anonymous=401, client_link=401, practice_admin=200),
        post=API_NO_METHOD,
        auth="bearer",
        note="the audit trail as FHIR AuditEvents, admins only",
    ),
    # --- CSV in and out through the API -----------------------------------------------------------
    "api:score-import": Rule(
        get=API_NO_METHOD,
        post=statuses(415, anonymous=401, client_link=401, supervisor=403, practice_admin=403),
        auth="bearer",
        note="therapists import for their caseload; an empty form body is 415",
    ),
    "api:research-export": Rule(
        get=statuses(403, anonymous=401, client_link=401, supervisor=200),
        post=API_NO_METHOD,
        auth="bearer",
        note="de-identified; client_of_a gave no research consent in the matrix",
    ),
    "api:practice-export": Rule(
        get=statuses(403, anonymous=401, client_link=401, practice_admin=200),
        post=API_NO_METHOD,
        auth="bearer",
        note="the identified record for the custodian's admins",
    ),
}
