"""The caseload as a triage list (DESIGN.md): one row per open episode, most urgent first.

Everything comes from the :class:`EpisodeInsight` snapshots and one query of unresolved alerts, so
the page costs the same handful of queries for 20 clients or 200.

A snapshot is refreshed by the worker after each check-in. The same query says which rows are
stale (a score newer than the snapshot: the worker is behind or not running); the page refreshes
at most :data:`REFRESH_ON_VIEW` of them, most urgent first, before it sorts — so the caseload keeps
a bounded cost (constant when every snapshot is fresh) and a few views catch up without a worker.
A new safety alert needs no refresh: alerts are read directly and put the client on top at once.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from alliance_web.care import insight as care_insight
from alliance_web.care.access import Scope
from alliance_web.care.insight import TRIAGE
from alliance_web.care.models import (
    AlertKind,
    AlertStatus,
    Concern,
    Episode,
    EpisodeStatus,
)
from alliance_web.workspace import charts

# Triage rank → the category a row is sorted under (care.insight.TRIAGE, inverted).
CATEGORY_OF_RANK = {
    0: "safety",
    1: "off_track",
    2: "rupture",
    3: "dropout",
    4: "gap",
    5: "overdue",
    6: "at_risk",
    7: "on_track",
    8: "improved",
    9: "not_enough_data",
}
CATEGORY_LABELS = {
    "safety": "Safety",
    "off_track": "Off track",
    "rupture": "Rupture",
    "dropout": "Dropout risk",
    "gap": "Perspective gap",
    "overdue": "Overdue check-in",
    "at_risk": "At risk",
    "on_track": "On track",
    "improved": "Improved",
    "recovered": "Recovered",
    "not_enough_data": "Needs more sessions",
}
# The order the supervisor's chart stacks them in (and the legend reads).
CATEGORY_ORDER = [
    "safety",
    "off_track",
    "rupture",
    "dropout",
    "gap",
    "overdue",
    "at_risk",
    "on_track",
    "improved",
    "not_enough_data",
]
FLAG_SYMBOLS = {
    **charts.SIGNAL_SHAPES,
    "rupture": "◗",
    "repaired": "◖",
    "dropout": "⇥",
    "gap": "⇕",
    "overdue": "◷",
    "safety_acted": "⚠",
}
STAGE_SHORT = {1: "Engagement", 2: "Shared goals", 3: "Working", 4: "Consolidation"}
# Alerts waiting for the therapist. A safety alert stays on top after its action is recorded, until
# it is resolved (marked "acted on"), so that safety is never out of sight.
UNRESOLVED = [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED]
SAFETY_STAYS = [AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.ACTIONED]
SAFETY_ACTED = "safety_acted"
# Stale snapshots one caseload view refreshes (each ≈ 10 queries and a few milliseconds of engine
# work); the rest wait for the worker, its sweep or the next view.
REFRESH_ON_VIEW = 5


def kinds_of(alerts: Any) -> set[str]:
    """The reasons for attention in (kind, status) pairs: waiting kinds, plus ``safety_acted``."""
    kinds: set[str] = set()
    for kind, status in alerts:
        if status in UNRESOLVED:
            kinds.add(kind)
        elif kind == AlertKind.SAFETY and status in SAFETY_STAYS:
            kinds.add(SAFETY_ACTED)
    return kinds


GOOD_SIGNALS = {"on_track", "improved", "recovered"}


BADGE = '<span class="badge {}"><span aria-hidden="true">{}</span> {}</span>'


def badge(code: str, label: str) -> SafeString:
    """A labelled badge: colour (by class), shape and words — the caseload builds hundreds, so it
    is formatted here rather than by a template include per row."""
    return format_html(BADGE, code, FLAG_SYMBOLS.get(code, "•"), label)


@dataclass(frozen=True)
class Flag:
    code: str
    label: str

    @property
    def symbol(self) -> str:
        return FLAG_SYMBOLS.get(self.code, "•")

    @property
    def html(self) -> SafeString:
        return badge(self.code, self.label)


@dataclass
class Row:
    episode: Episode
    insight: Any
    category: str
    flags: list[Flag]
    signal: str
    signal_label: str
    stage: str
    sort_key: tuple[Any, ...]
    open_alerts: int = 0
    outcome_spark: SafeString | None = None
    alliance_spark: SafeString | None = None
    forced: bool = False  # shown despite the filters because of a safety alert

    @property
    def client(self) -> Any:
        return self.episode.client

    @property
    def last_checkin(self) -> datetime | None:
        return getattr(self.insight, "last_checkin_at", None)

    @property
    def concerns(self) -> str:
        return concern_text(self.episode.concerns)

    @property
    def signal_badge(self) -> SafeString:
        return badge(self.signal, CATEGORY_LABELS.get(self.signal, "Needs more sessions"))

    @property
    def flag_badges(self) -> SafeString:
        return format_html_join(" ", "{}", ((f.html,) for f in self.flags))


@dataclass
class Caseload:
    rows: list[Row]
    total: int
    counts: dict[str, int] = field(default_factory=dict)
    filtered: bool = False


CONCERNS = dict(Concern.choices)


def concern_text(concerns: list[str] | None) -> str:
    return ", ".join(str(CONCERNS.get(c, c)) for c in concerns or [])


def stage_chip(stage: dict[str, Any] | None) -> str:
    """'Stage 2 · Shared goals — suggested' (or '— confirmed')."""
    if not stage or (not stage.get("suggested") and not stage.get("confirmed")):
        return ""
    n = int(stage.get("confirmed") or stage["suggested"])
    status = "confirmed" if stage.get("confirmed") else "suggested"
    return f"Stage {n} · {STAGE_SHORT.get(n, stage.get('name', ''))} — {status}"


def flags_for(insight: Any, alert_kinds: set[str]) -> list[Flag]:
    """Every reason for attention, in triage order, each a labelled badge."""
    flags: list[Flag] = []
    if AlertKind.SAFETY in alert_kinds:
        flags.append(Flag("safety", "Safety"))
    elif SAFETY_ACTED in alert_kinds:
        flags.append(Flag("safety_acted", "Safety · acted on"))
    if insight is None:
        return flags
    signal = (insight.signal or {}).get("code", "")
    if signal == "off_track":
        flags.append(Flag("off_track", "Off track"))
    alliance = insight.alliance or {}
    ruptures = alliance.get("ruptures") or []
    if any(r.get("repair_session") is None for r in ruptures) or AlertKind.RUPTURE in alert_kinds:
        flags.append(Flag("rupture", "Rupture"))
    elif ruptures:
        flags.append(Flag("repaired", "Repaired"))
    if (insight.dropout or {}).get("flag") or AlertKind.DROPOUT in alert_kinds:
        flags.append(Flag("dropout", "Dropout risk"))
    if (alliance.get("gap") or {}).get("flag") or AlertKind.GAP in alert_kinds:
        flags.append(Flag("gap", "Perspective gap"))
    if insight.overdue_checkins or AlertKind.MISSED in alert_kinds:
        n = insight.overdue_checkins
        flags.append(
            Flag(
                "overdue",
                f"{n} overdue check-in{'s' if n != 1 else ''}" if n else "Missed check-ins",
            )
        )
    if signal == "at_risk":
        flags.append(Flag("at_risk", "At risk"))
    return flags


# What a caseload row reads: nothing else is loaded (the snapshot's checklist, the episode's plan).
ROW_FIELDS = (
    "public_id",
    "practice_id",
    "concerns",
    "status",
    "opened_at",
    "therapist_id",
    "client_id",
    "client__public_id",
    "client__preferred_name",
    "client__practice_id",
    "client__therapist_id",
    "therapist__username",
    "therapist__display_name",
    "therapist__first_name",
    "therapist__last_name",
    "insight__triage",
    "insight__signal",
    "insight__outcome",
    "insight__alliance",
    "insight__dropout",
    "insight__stage",
    "insight__last_checkin_at",
    "insight__overdue_checkins",
)


def open_episodes(scope: Scope) -> QuerySet[Episode]:
    return (
        scope.episodes()
        .filter(status=EpisodeStatus.OPEN)
        .select_related("client", "therapist", "insight")
        .only(*ROW_FIELDS)
        .annotate(stale=care_insight.stale_expression())
        .order_by()
    )


def unresolved_alert_kinds(
    scope: Scope, episode_ids: list[int] | None = None
) -> dict[int, set[str]]:
    pairs: dict[int, list[tuple[str, str]]] = defaultdict(list)
    rows = scope.alerts().filter(episode__status=EpisodeStatus.OPEN, status__in=SAFETY_STAYS)
    if episode_ids is not None:
        rows = rows.filter(episode_id__in=episode_ids)
    for episode_id, kind, status in rows.values_list("episode_id", "kind", "status"):
        pairs[episode_id].append((kind, status))
    return {episode_id: kinds_of(p) for episode_id, p in pairs.items()}


def refresh_stale(
    scope: Scope, episodes: list[Episode], alert_kinds: dict[int, set[str]]
) -> list[int]:
    """Refresh up to :data:`REFRESH_ON_VIEW` stale snapshots among ``episodes``, most urgent
    first, then read those rows and their alerts again (two queries, through ``scope``), in place.
    Returns the ids refreshed."""
    stale = [e for e in episodes if getattr(e, "stale", False)]
    if not stale:
        return []
    stale.sort(key=lambda e: row_for(e, alert_kinds.get(e.pk, set()), sparklines=False).sort_key)
    ids = []
    for episode in stale[:REFRESH_ON_VIEW]:
        care_insight.refresh_and_notify(episode)
        ids.append(episode.pk)
    again = {e.pk: e for e in open_episodes(scope).filter(pk__in=ids)}
    episodes[:] = [again.get(e.pk, e) for e in episodes if e.pk not in ids or e.pk in again]
    fresh_kinds = unresolved_alert_kinds(scope, ids)
    for episode_id in ids:
        alert_kinds[episode_id] = fresh_kinds.get(episode_id, set())
    return ids


def row_for(episode: Episode, alert_kinds: set[str], *, sparklines: bool = True) -> Row:
    insight = getattr(episode, "insight", None)
    rank = insight.triage if insight is not None else TRIAGE["not_enough_data"]
    safety = AlertKind.SAFETY in alert_kinds or SAFETY_ACTED in alert_kinds
    category = "safety" if safety else CATEGORY_OF_RANK.get(rank, "not_enough_data")
    signal = ((insight.signal or {}).get("code") if insight else "") or "not_enough_data"
    if category == "improved" and signal == "recovered":
        category = "recovered"
    last = getattr(insight, "last_checkin_at", None)
    row = Row(
        episode=episode,
        insight=insight,
        category=category,
        flags=flags_for(insight, alert_kinds),
        signal=signal,
        signal_label=CATEGORY_LABELS.get(signal, signal),
        stage=stage_chip(insight.stage if insight else None),
        # Safety first (waiting before acted on), then the snapshot's triage rank, then the
        # longest without a check-in.
        sort_key=(
            0 if AlertKind.SAFETY in alert_kinds else 1 if safety else 2,
            rank,
            last.timestamp() if last else 0.0,
            episode.client.preferred_name.casefold(),
        ),
        open_alerts=len(alert_kinds),
    )
    if sparklines and insight is not None:
        row.outcome_spark = charts.outcome_sparkline(insight.outcome or {}, signal)
        row.alliance_spark = charts.alliance_sparkline(insight.alliance or {})
    return row


def build(
    scope: Scope, *, therapist: str = "", concern: str = "", signal: str = "", sort: str = "triage"
) -> Caseload:
    episodes = list(open_episodes(scope))
    alert_kinds = unresolved_alert_kinds(scope)
    refresh_stale(scope, episodes, alert_kinds)
    rows = [row_for(e, alert_kinds.get(e.pk, set()), sparklines=False) for e in episodes]
    counts: dict[str, int] = defaultdict(int)
    for row in rows:
        counts[row.category] += 1
    filtered = bool(therapist or concern or signal)
    shown = []
    for row in rows:
        match = (
            (not therapist or str(row.episode.therapist_id) == therapist)
            and (not concern or concern in (row.episode.concerns or []))
            and (
                not signal
                or (signal == "safety" and row.category == "safety")
                or row.signal == signal
            )
        )
        # DESIGN.md: a safety badge is never hidden by filters.
        if match or row.category == "safety":
            row.forced = not match
            shown.append(row)
    if sort == "name":
        shown.sort(key=lambda r: (r.client.preferred_name.casefold(), r.sort_key))
    elif sort == "last_checkin":
        shown.sort(
            key=lambda r: (r.sort_key[0], r.last_checkin.timestamp() if r.last_checkin else 0.0)
        )
    else:
        shown.sort(key=lambda r: r.sort_key)
    for row in shown:
        if row.insight is not None:
            row.outcome_spark = charts.outcome_sparkline(row.insight.outcome or {}, row.signal)
            row.alliance_spark = charts.alliance_sparkline(row.insight.alliance or {})
    return Caseload(rows=shown, total=len(rows), counts=dict(counts), filtered=filtered)


def days_since(when: datetime | None) -> int | None:
    if when is None:
        return None
    return (timezone.now() - when).days
