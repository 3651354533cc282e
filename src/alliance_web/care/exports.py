"""CSV exports (SPEC C8, C7): de-identified research data and identified practice data.

**Research export** (clinical supervisors): one row per score of the clients in the caller's scope
who gave research consent and have not withdrawn it. Clients appear under their random pseudonym
(never derived from identity), episodes as ``<pseudonym>-E<n>``; every date is shifted by a
per-client offset of −182…+182 days that is stable across exports (an HMAC of the pseudonym
under the install's secret key), so intervals within a client are kept and calendar dates are not.
No names, contact details, birth dates, free text or notes.

**Practice export** (practice admins): the practice's own record of clients, episodes and scores,
identified, for moving to another system or for the practice's files — still no free text (goals,
notes and private notes stay out).

Both are formula-safe (a text cell starting with ``= + - @``, tab, CR or NUL gets a leading ``'``;
numbers stay numbers, SECURITY.md 4a) and audited as exports: one EXECUTE row per client included
and one for the export itself.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable, Iterator
from typing import Any

from django.conf import settings
from django.db.models import QuerySet

from alliance_web import csvsafe
from alliance_web.audit.models import Action
from alliance_web.audit.ratelimit import check_export_limit
from alliance_web.audit.trail import Actor, record, record_many
from alliance_web.care.access import Scope
from alliance_web.care.models import Client, Score
from alliance_web.care.privacy import research_consented

SHIFT_DAYS = 182


class ExportRefused(Exception):
    """The caller's role may not make this export."""


def write_csv(header: list[str], rows: Iterable[list[Any]]) -> str:
    """RFC 4180, formula-safe (``alliance_web.csvsafe``, the one CSV writer of the web app)."""
    return csvsafe.to_text(header, rows)


def date_shift(pseudonym: str) -> dt.timedelta:
    """The client's stable offset: HMAC-SHA256(secret, pseudonym) mapped onto ±SHIFT_DAYS."""
    key = hashlib.sha256(b"alliance.research-date-shift:" + settings.SECRET_KEY.encode()).digest()
    digest = hmac.new(key, pseudonym.encode(), hashlib.sha256).digest()
    offset = int.from_bytes(digest[:8], "big") % (2 * SHIFT_DAYS + 1) - SHIFT_DAYS
    return dt.timedelta(days=offset)


def _research_clients(clients: QuerySet[Client]) -> QuerySet[Client]:
    """Clients whose latest research consent is given and not withdrawn (REQ-CO1)."""
    return research_consented(clients)


RESEARCH_HEADER = [
    "client",
    "episode",
    "concerns",
    "episode_opened",
    "episode_closed",
    "end_reason",
    "outcome_category",
    "instrument",
    "rater",
    "session",
    "date",
    "total",
    "severity",
    "subscales",
    "flags",
    "prorated",
    "method",
    "engine_version",
]


def _require_supervisor(scope: Scope) -> None:
    if scope.kind != "supervisor":
        raise ExportRefused("The research export is for clinical supervisors.")


def _require_admin(user: Any) -> None:
    if getattr(user, "role", "") != "admin" or user.practice_id is None:
        raise ExportRefused("The identified practice export is for practice admins.")


def research_rows(
    scope: Scope, *, instrument: str | None = None
) -> tuple[list[list[Any]], list[Client]]:
    _require_supervisor(scope)
    clients = list(_research_clients(scope.own_clients()).order_by("pseudonym"))
    ids = [c.pk for c in clients]
    scores = (
        scope.scores()
        .filter(episode__client_id__in=ids)
        .select_related("episode", "episode__client")
        .order_by("episode__client__pseudonym", "episode__opened_at", "administered_at", "pk")
    )
    if instrument:
        scores = scores.filter(instrument=instrument)
    episode_no: dict[int, str] = {}
    counters: dict[int, int] = {}
    rows = []
    for s in scores:
        client = s.episode.client
        if s.episode_id not in episode_no:
            counters[client.pk] = counters.get(client.pk, 0) + 1
            episode_no[s.episode_id] = f"{client.pseudonym}-E{counters[client.pk]}"
        shift = date_shift(client.pseudonym)

        def day(value: dt.datetime | None, shift: dt.timedelta = shift) -> str:
            return "" if value is None else (value + shift).date().isoformat()

        ep = s.episode
        rows.append(
            [
                client.pseudonym,
                episode_no[s.episode_id],
                ";".join(ep.concerns or []),
                day(ep.opened_at),
                day(ep.closed_at),
                ep.end_reason,
                (ep.outcome or {}).get("category", ""),
                s.instrument,
                s.rater,
                s.session_number if s.session_number is not None else "",
                day(s.administered_at),
                s.total if s.total is not None else "",
                s.severity,
                ";".join(f"{k}={v}" for k, v in sorted((s.subscales or {}).items())),
                ";".join(s.flags or []),
                s.prorated,
                s.method,
                s.engine_version,
            ]
        )
    return rows, clients


PRACTICE_HEADER = [
    "client_id",
    "preferred_name",
    "date_of_birth",
    "email",
    "phone",
    "therapist",
    "episode_id",
    "episode_status",
    "opened_at",
    "closed_at",
    "end_reason",
    "instrument",
    "rater",
    "session",
    "administered_at",
    "total",
    "severity",
    "flags",
    "prorated",
    "method",
]


def _practice_scores(practice_id: int | None) -> Iterator[Score]:
    # The admin's own practice, whole: the custodian's copy of its record (no free text).
    return (
        Score.objects.filter(
            episode__practice_id=practice_id, episode__client__erased_at__isnull=True
        )
        .select_related("episode", "episode__client", "episode__therapist")
        .order_by("episode__client__preferred_name", "episode__opened_at", "administered_at", "pk")
        .iterator(chunk_size=2000)
    )


def practice_rows(user: Any) -> tuple[list[list[Any]], list[Client]]:
    _require_admin(user)
    rows, clients = [], {}
    for s in _practice_scores(user.practice_id):
        c, ep = s.episode.client, s.episode
        clients[c.pk] = c
        rows.append(
            [
                str(c.public_id),
                c.preferred_name,
                c.date_of_birth.isoformat() if c.date_of_birth else "",
                c.email,
                c.phone,
                ep.therapist.get_username(),
                str(ep.public_id),
                ep.status,
                ep.opened_at.isoformat(),
                ep.closed_at.isoformat() if ep.closed_at else "",
                ep.end_reason,
                s.instrument,
                s.rater,
                s.session_number if s.session_number is not None else "",
                s.administered_at.isoformat(),
                s.total if s.total is not None else "",
                s.severity,
                ";".join(s.flags or []),
                s.prorated,
                s.method,
            ]
        )
    return rows, list(clients.values())


def _audit(user: Any, kind: str, clients: list[Client], n_rows: int) -> None:
    actor = Actor.of(user)
    record_many(
        actor,
        Action.EXECUTE,
        f"{kind}_export",
        [("", c.public_id) for c in clients],
        purpose="research" if kind == "research" else "export",
    )
    record(
        actor,
        Action.EXECUTE,
        f"{kind}_export",
        detail={"rows": n_rows, "clients": len(clients)},
        purpose="research" if kind == "research" else "export",
    )


def research_csv(user: Any, scope: Scope, *, instrument: str | None = None) -> str:
    """The research CSV; raises :class:`ExportRefused` for other roles and
    :class:`~alliance_web.audit.ratelimit.ExportLimitExceeded` over the hourly limit."""
    _require_supervisor(scope)
    check_export_limit(user, "research_export")
    rows, clients = research_rows(scope, instrument=instrument)
    _audit(user, "research", clients, len(rows))
    return write_csv(RESEARCH_HEADER, rows)


def practice_csv(user: Any) -> str:
    """The practice CSV; raises :class:`ExportRefused` for other roles and
    :class:`~alliance_web.audit.ratelimit.ExportLimitExceeded` over the hourly limit."""
    _require_admin(user)
    check_export_limit(user, "practice_export")
    rows, clients = practice_rows(user)
    _audit(user, "practice", clients, len(rows))
    return write_csv(PRACTICE_HEADER, rows)


__all__ = [
    "PRACTICE_HEADER",
    "RESEARCH_HEADER",
    "ExportRefused",
    "date_shift",
    "practice_csv",
    "research_csv",
    "write_csv",
]
