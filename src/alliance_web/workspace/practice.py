"""The supervisor's view of the practice: caseload risk across therapists, outcomes per
therapist and per concern with their uncertainty, alerts and how fast they were answered, and
data completeness. Aggregates only — no client is named — read through the supervisor's scope
(so clients who withdrew consent to supervision are left out of every figure).
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Exists, OuterRef
from django.utils import timezone

import alliance as al
from alliance_web.care.access import Scope
from alliance_web.care.models import (
    AlertKind,
    CheckIn,
    CheckInKind,
    CheckInStatus,
    Concern,
    EndReason,
    EpisodeStatus,
    SessionStatus,
)
from alliance_web.workspace import caseload, charts, stats

IMPROVED = {"recovered", "improved"}


@dataclass
class OutcomeGroup:
    label: str
    closed: int = 0
    classified: int = 0
    recovered_k: int = 0
    improved_k: int = 0
    deteriorated_k: int = 0
    dropouts: int = 0
    pairs: dict[str, list[tuple[float, float]]] = field(default_factory=lambda: defaultdict(list))
    recovery: stats.Proportion | None = None
    reliable: stats.Proportion | None = None
    effect: stats.PrePostEffect | None = None
    effect_instrument: str = ""

    def finish(self) -> OutcomeGroup:
        if self.classified:
            self.recovery = stats.wilson(self.recovered_k, self.classified)
            self.reliable = stats.wilson(self.improved_k, self.classified)
        if self.pairs:
            instrument, pairs = max(self.pairs.items(), key=lambda kv: len(kv[1]))
            try:
                direction = al.instrument(instrument).direction
                name = al.instrument(instrument).short_name
            except al.UnknownInstrument:
                direction, name = "higher_is_worse", instrument
            self.effect = stats.prepost_effect(
                [a for a, _ in pairs], [b for _, b in pairs], direction=direction
            )
            self.effect_instrument = f"{name}, n = {len(pairs)}"
        return self


def _names(scope: Scope) -> dict[int, str]:
    User = get_user_model()
    return {u.pk: str(u) for u in User.objects.filter(practice_id=scope.practice_id)}


def risk(scope: Scope, names: dict[int, str]) -> dict[str, Any]:
    episodes = list(caseload.open_episodes(scope))
    kinds = caseload.unresolved_alert_kinds(scope)
    per: dict[int, Counter[str]] = defaultdict(Counter)
    for e in episodes:
        row = caseload.row_for(e, kinds.get(e.pk, set()), sparklines=False)
        per[e.therapist_id][row.category if row.category != "recovered" else "improved"] += 1
    order = caseload.CATEGORY_ORDER
    rows = sorted(
        per.items(), key=lambda kv: (-kv[1]["safety"], -kv[1]["off_track"], names.get(kv[0], ""))
    )
    table = [
        {
            "therapist": names.get(tid, "—"),
            "counts": [c[k] for k in order],
            "total": sum(c.values()),
        }
        for tid, c in rows
    ]
    totals: Counter[str] = Counter()
    for _, c in rows:
        totals.update(c)
    return {
        "chart": charts.stacked_bars(
            [(names.get(tid, "—"), [(k, c[k]) for k in order]) for tid, c in rows],
            caseload.CATEGORY_LABELS,
            symbols=caseload.FLAG_SYMBOLS,
            width=1000,
            title="Open episodes per therapist by triage category",
        )
        if rows
        else None,
        "table": table,
        "columns": [
            (k, caseload.CATEGORY_LABELS[k], caseload.FLAG_SYMBOLS.get(k, "")) for k in order
        ],
        "totals": [totals[k] for k in order],
        "open_total": len(episodes),
    }


def outcomes(scope: Scope, names: dict[int, str], since: datetime | None) -> dict[str, Any]:
    closed = scope.episodes().filter(status=EpisodeStatus.CLOSED)
    if since is not None:
        closed = closed.filter(closed_at__gte=since)
    episodes = list(
        closed.only("pk", "therapist_id", "concerns", "measure_plan", "outcome", "end_reason")
    )
    missing = [e.pk for e in episodes if not {"pre", "post"} <= set(e.outcome or {})]
    first_last: dict[tuple[int, str], list[float]] = {}
    if missing:
        for episode_id, instrument, total in (
            scope.scores()
            .filter(episode_id__in=missing, rater="client", total__isnull=False)
            .order_by("administered_at", "pk")
            .values_list("episode_id", "instrument", "total")
        ):
            first_last.setdefault((episode_id, instrument), []).append(total)
    overall = OutcomeGroup("All closed episodes")
    by_therapist: dict[int, OutcomeGroup] = {}
    by_concern: dict[str, OutcomeGroup] = {}
    concern_labels = dict(Concern.choices)
    for e in episodes:
        outcome = e.outcome or {}
        category = outcome.get("category")
        instrument = outcome.get("instrument") or (e.measure_plan[0] if e.measure_plan else "")
        if (
            "pre" in outcome
            and "post" in outcome
            and outcome["pre"] is not None
            and outcome["post"] is not None
        ):
            pair = (float(outcome["pre"]), float(outcome["post"]))
        else:
            series = first_last.get((e.pk, instrument)) or []
            pair = (series[0], series[-1]) if len(series) >= 2 else None
        groups = [
            overall,
            by_therapist.setdefault(e.therapist_id, OutcomeGroup(names.get(e.therapist_id, "—"))),
        ]
        groups += [
            by_concern.setdefault(c, OutcomeGroup(concern_labels.get(c, c)))
            for c in (e.concerns or ["other"])
        ]
        for g in groups:
            g.closed += 1
            g.dropouts += e.end_reason == EndReason.DROPOUT
            if category:
                g.classified += 1
                g.recovered_k += category == "recovered"
                g.improved_k += category in IMPROVED
                g.deteriorated_k += category == "deteriorated"
            if pair is not None and instrument:
                g.pairs[instrument].append(pair)
    groups_t = [g.finish() for g in sorted(by_therapist.values(), key=lambda g: g.label)]
    groups_c = [g.finish() for g in sorted(by_concern.values(), key=lambda g: g.label)]
    overall.finish()

    def rate_rows(
        groups: list[OutcomeGroup], attr: str
    ) -> list[tuple[str, float | None, float | None, float | None, str]]:
        out = []
        for g in groups:
            p = getattr(g, attr)
            out.append(
                (
                    g.label,
                    p.estimate if p else None,
                    p.low if p else None,
                    p.high if p else None,
                    f"{p.k} of {p.n}" if p else "no classified endings yet",
                )
            )
        return out

    def effect_rows(
        groups: list[OutcomeGroup],
    ) -> list[tuple[str, float | None, float | None, float | None, str]]:
        return [
            (
                g.label,
                g.effect.d if g.effect else None,
                g.effect.low if g.effect else None,
                g.effect.high if g.effect else None,
                g.effect_instrument if g.effect else "needs 3+ clients with intake and last scores",
            )
            for g in groups
        ]

    everyone = [overall, *groups_t]
    return {
        "overall": overall,
        "by_therapist": groups_t,
        "by_concern": groups_c,
        "closed_total": len(episodes),
        "recovery_chart": charts.interval_chart(
            rate_rows(everyone, "recovery"),
            width=560,
            title="Recovery rate with 95% Wilson interval",
        )
        if episodes
        else None,
        "reliable_chart": charts.interval_chart(
            rate_rows(everyone, "reliable"),
            width=560,
            title="Reliable improvement rate with 95% Wilson interval",
        )
        if episodes
        else None,
        "concern_chart": charts.interval_chart(
            rate_rows(groups_c, "reliable"), title="Reliable improvement by concern"
        )
        if groups_c
        else None,
        "effect_chart": charts.interval_chart(
            effect_rows([overall, *groups_t, *groups_c]),
            domain=(0.0, 1.0),
            percent=False,
            reference=0.0,
            reference_label="no change",
            title="Pre–post effect size with 95% interval",
        )
        if episodes
        else None,
    }


def _hours(a: datetime, b: datetime) -> float:
    return (b - a).total_seconds() / 3600


def alerts(scope: Scope, names: dict[int, str], since: datetime | None) -> dict[str, Any]:
    qs = scope.alerts()
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    rows = list(
        qs.values_list("kind", "status", "created_at", "acknowledged_at", "episode__therapist_id")
    )
    labels = dict(AlertKind.choices)
    by_kind: dict[str, dict[str, Any]] = {}
    per_therapist: dict[int, list[float]] = defaultdict(list)
    all_times: list[float] = []
    for kind, status, created, acked, therapist_id in rows:
        k = by_kind.setdefault(
            kind,
            {
                "kind": kind,
                "label": labels.get(kind, kind),
                "total": 0,
                "unresolved": 0,
                "times": [],
            },
        )
        k["total"] += 1
        k["unresolved"] += status in caseload.UNRESOLVED and acked is None
        if acked is not None:
            hours = _hours(created, acked)
            k["times"].append(hours)
            all_times.append(hours)
            per_therapist[therapist_id].append(hours)
    order = {
        k: i
        for i, k in enumerate(
            [
                AlertKind.SAFETY,
                AlertKind.OFF_TRACK,
                AlertKind.RUPTURE,
                AlertKind.DROPOUT,
                AlertKind.GAP,
                AlertKind.MISSED,
                AlertKind.AT_RISK,
            ]
        )
    }
    kinds = sorted(by_kind.values(), key=lambda k: order.get(k["kind"], 99))
    for k in kinds:
        k["median"] = stats.percentile(k["times"], 0.5)
        k["p90"] = stats.percentile(k["times"], 0.9)
        k["acknowledged"] = len(k["times"])
    therapists = [
        {
            "therapist": names.get(tid, "—"),
            "n": len(ts),
            "median": stats.percentile(ts, 0.5),
            "p90": stats.percentile(ts, 0.9),
        }
        for tid, ts in sorted(per_therapist.items(), key=lambda kv: names.get(kv[0], ""))
    ]
    return {
        "kinds": kinds,
        "therapists": therapists,
        "total": len(rows),
        "unresolved": sum(k["unresolved"] for k in kinds),
        "median": stats.percentile(all_times, 0.5),
        "p90": stats.percentile(all_times, 0.9),
        "count_chart": charts.range_bars(
            [(k["label"], float(k["total"]), None, f"{k['unresolved']} waiting") for k in kinds],
            formatter=lambda v: f"{v:.0f} raised",
            classes=[f"bar-{k['kind']}" for k in kinds],
            width=560,
            title="Alerts by kind",
        )
        if kinds
        else None,
        "time_chart": charts.range_bars(
            [(k["label"], k["median"], k["p90"], f"n = {k['acknowledged']}") for k in kinds],
            unit="h",
            classes=[f"bar-{k['kind']}" for k in kinds],
            width=560,
            title="Hours from alert to acknowledgement: median (bar) and 90th percentile (tick)",
        )
        if all_times
        else None,
    }


def completeness(scope: Scope, names: dict[int, str], since: datetime | None) -> dict[str, Any]:
    done = CheckIn.objects.filter(
        session=OuterRef("pk"), kind=CheckInKind.PRE_SESSION, status=CheckInStatus.COMPLETED
    )
    qs = scope.sessions().filter(status=SessionStatus.ATTENDED, scheduled_at__lte=timezone.now())
    if since is not None:
        qs = qs.filter(scheduled_at__gte=since)
    per: dict[int, list[int]] = defaultdict(lambda: [0, 0])
    for therapist_id, has in qs.annotate(has=Exists(done)).values_list(
        "episode__therapist_id", "has"
    ):
        per[therapist_id][0] += 1
        per[therapist_id][1] += bool(has)
    rows = [
        {"therapist": names.get(tid, "—"), "sessions": n, "with": k, "share": stats.wilson(k, n)}
        for tid, (n, k) in sorted(per.items(), key=lambda kv: names.get(kv[0], ""))
    ]
    total_n = sum(n for n, _ in per.values())
    total_k = sum(k for _, k in per.values())
    overall = stats.wilson(total_k, total_n) if total_n else None
    chart_rows = [
        (r["therapist"], r["share"].estimate, None, f"{r['with']} of {r['sessions']}") for r in rows
    ]
    if overall:
        chart_rows.insert(0, ("Whole practice", overall.estimate, None, f"{total_k} of {total_n}"))
    return {
        "rows": rows,
        "overall": overall,
        "chart": charts.range_bars(
            chart_rows,
            unit="%",
            domain_max=1.0,
            higher_is_better=True,
            title="Share of attended sessions with a completed check-in",
        )
        if rows
        else None,
    }


PERIODS = {"all": None, "365": 365, "90": 90}


def build(scope: Scope, period: str = "all") -> dict[str, Any]:
    days = PERIODS.get(period)
    since = timezone.now() - timedelta(days=days) if days else None
    names = _names(scope)
    return {
        "risk": risk(scope, names),
        "outcomes": outcomes(scope, names, since),
        "alerts": alerts(scope, names, since),
        "completeness": completeness(scope, names, since),
        "period": period,
    }
