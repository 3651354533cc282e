"""Synthetic episodes for the workspace's tests, its caseload benchmark and manual checks.

The demo practice is seeded from the simulator (``alliance demo``); this module is smaller and
independent of the engine's progress: it writes plausible rows directly — sessions, check-ins,
responses and scores with their signals, goal ratings, alerts — and the :class:`EpisodeInsight`
snapshot in the documented shapes, so every part of the workspace has something to show.
Never used by the running app.
"""

from __future__ import annotations

import hashlib
import json
import random
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone

import alliance as al
from alliance_web.care.insight import TRIAGE
from alliance_web.care.models import (
    ALERT_PRIORITY,
    Alert,
    AlertKind,
    CheckIn,
    CheckInKind,
    CheckInStatus,
    Client,
    ClientNote,
    Consent,
    ConsentScope,
    Episode,
    EpisodeInsight,
    Goal,
    GoalRating,
    RelationshipNote,
    Response,
    Score,
    Session,
    SessionStatus,
    StageAssessment,
)

COURSES = ("on_track", "off_track", "at_risk", "improved", "recovered", "not_enough_data")
STAGE_NAMES = {
    1: "Engagement and trust",
    2: "Shared goals and tasks",
    3: "Working and challenge",
    4: "Consolidation and ending",
}
GOALS = [
    "Get back to running twice a week",
    "Sleep through the night",
    "Call my sister without dreading it",
]


@dataclass
class Story:
    """A course of therapy in numbers (PHQ-9 scale; WAI-SR 12–60 from both sides)."""

    totals: list[float]
    expected: list[dict[str, float]]
    signals: list[str]
    client_alliance: list[float]
    therapist_alliance: list[float]
    ruptures: list[dict[str, Any]] = field(default_factory=list)
    goals: list[list[int]] = field(default_factory=list)
    safety: bool = False
    gap: bool = False


def _expected(intake: float, n: int) -> list[dict[str, float]]:
    out = []
    for s in range(1, n + 1):
        median = intake * (0.55 + 0.45 * 0.82 ** (s - 1))
        out.append(
            {
                "session": s,
                "median": round(median, 2),
                "low": round(max(median - 4.5, 0), 2),
                "high": round(min(median + 4.5, 27), 2),
            }
        )
    return out


def _signal(total: float, band: dict[str, float], intake: float, s: int) -> str:
    if s == 1:
        return "not_enough_data"
    if intake - total >= 6:
        return "recovered" if total < 10 and intake >= 10 else "improved"
    if total > band["high"]:
        return "off_track"
    if total > band["median"] + 1.5:
        return "at_risk"
    return "on_track"


def story(
    course: str,
    sessions: int,
    rng: random.Random,
    *,
    rupture: bool = False,
    gap: bool = False,
    safety: bool = False,
) -> Story:
    if course not in COURSES:
        raise ValueError(f"course is one of {COURSES}")
    n = 1 if course == "not_enough_data" else sessions
    intake = float(rng.randint(14, 21))
    band = _expected(intake, max(n, 12))
    totals = []
    for s in range(1, n + 1):
        b = band[s - 1]
        if course == "off_track":
            t = intake + rng.uniform(-1.5, 2.5) + (s - 1) * 0.3
        elif course == "at_risk":
            t = b["median"] + 2.5 + rng.uniform(0, 1.5)
        elif course == "improved":
            t = intake - min(s - 1, 7) * 1.1 + rng.uniform(-0.5, 0.5)
        elif course == "recovered":
            t = intake - (s - 1) * (intake - 6) / max(n - 1, 1) + rng.uniform(-0.4, 0.4)
        else:
            t = b["median"] + rng.uniform(-1.5, 1.5)
        totals.append(float(max(0, min(27, round(t)))))
    totals[0] = intake
    signals = [_signal(t, band[i], intake, i + 1) for i, t in enumerate(totals)]
    if course in ("off_track", "at_risk") and n > 1:
        signals[-1] = course
    c_all, t_all = [], []
    base = rng.uniform(44, 52)
    for s in range(1, n + 1):
        c_all.append(float(round(min(60, base + s * 0.6 + rng.uniform(-2, 2)))))
        t_all.append(
            float(round(min(60, base - 3 + s * 0.5 + rng.uniform(-2, 2) + (9 if gap else 0))))
        )
    ruptures = []
    if rupture and n >= 4:
        low = n - 1 if course == "off_track" else max(2, n // 2)
        c_all[low - 1] = max(12.0, c_all[low - 2] - 11)
        repaired = course != "off_track" and low + 1 <= n
        ruptures.append(
            {
                "start_session": low - 1,
                "low_session": low,
                "repair_session": low + 1 if repaired else None,
                "method": "sample_baseline_drop",
                "depth": 11.0,
            }
        )
        if repaired:
            c_all[low] = c_all[low - 2] + 1
    goals = []
    for g in range(2):
        start = rng.randint(1, 3)
        step = {"off_track": 0.1, "at_risk": 0.3}.get(course, 0.8)
        goals.append(
            [
                int(max(0, min(10, round(start + step * s + rng.uniform(-0.6, 0.6) + g * 0.3))))
                for s in range(n)
            ]
        )
    return Story(totals, band, signals, c_all, t_all, ruptures, goals, safety, gap)


def _answers(inst_id: str, total: float, *, safety: bool = False) -> dict[str, float]:
    inst = al.instrument(inst_id)
    items = list(inst.scored_items)
    lo, hi = items[0].value_range
    remaining = total - lo * len(items)
    answers = {}
    for i, it in enumerate(items):
        share = min(hi - lo, max(0.0, round(remaining / (len(items) - i))))
        answers[it.id] = lo + share
        remaining -= share
    crit = [c for c in inst.critical if c.flag == "safety"]
    if crit:
        item = crit[0].item
        answers[item] = 1.0 if safety else 0.0
    return answers


def _hash(data: Any) -> str:
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()


def _consents(client: Client, therapist: Any, supervision: bool = True) -> list[Consent]:
    scopes = [ConsentScope.CARE] + ([ConsentScope.SUPERVISION] if supervision else [])
    return [
        Consent(client=client, scope=s, recorded_by=therapist, given_at=client.created_at)
        for s in scopes
    ]


def _triage(story_: Story, overdue: int, dropout: bool) -> int:
    last = story_.signals[-1]
    unrepaired = any(r["repair_session"] is None for r in story_.ruptures)
    if story_.safety:
        return TRIAGE["safety"]
    if last == "off_track":
        return TRIAGE["off_track"]
    if unrepaired:
        return TRIAGE["rupture"]
    if dropout:
        return TRIAGE["dropout"]
    if story_.gap:
        return TRIAGE["gap"]
    if overdue:
        return TRIAGE["overdue"]
    return TRIAGE.get(last, TRIAGE["not_enough_data"])


def insight_for(
    episode: Episode, st: Story, *, opened: datetime, overdue: int = 0, dropout: bool = False
) -> EpisodeInsight:
    phq9 = al.instrument("phq9")
    dates = [opened + timedelta(days=7 * i) for i in range(len(st.totals))]
    points = [
        {
            "session": i + 1,
            "total": t,
            "severity": phq9.band_for(t) or "",
            "signal": st.signals[i],
            "date": dates[i].date().isoformat(),
            "flags": ["safety"] if st.safety and i == len(st.totals) - 1 else [],
        }
        for i, t in enumerate(st.totals)
    ]
    last = st.signals[-1]
    reasons = {
        "off_track": "The latest score is above the expected range for clients who started at this severity.",
        "at_risk": "The latest score is in the upper part of the expected range.",
        "on_track": "The latest score is within the expected range.",
        "improved": "The score has dropped by at least the reliable-change threshold (6 points) since intake.",
        "recovered": "Reliable improvement and the score is now below the clinical cutoff (10).",
        "not_enough_data": "Needs a second check-in to compare with the expected course.",
    }
    gad = [
        {"session": i + 1, "total": max(0.0, min(21.0, round(t * 0.7))), "severity": ""}
        for i, t in enumerate(st.totals)
    ]
    n = len(st.totals)
    stage = 1 if n <= 3 else 2 if n <= 6 else 3
    return EpisodeInsight(
        episode=episode,
        computed_at=timezone.now(),
        engine_version="sample",
        triage=_triage(st, overdue, dropout),
        signal={
            "code": last,
            "label": last.replace("_", " ").capitalize(),
            "reason": reasons[last],
            "method": "sample_expected_band",
            "rule": "latest score compared with the 80% band of the expected course"
            if last != "not_enough_data"
            else "",
            "threshold": "band 10th–90th percentile"
            if last in ("off_track", "at_risk", "on_track")
            else "",
            "source": "Lambert et al. (2002); synthetic band for tests",
            "session": n if n > 1 else None,
            "instrument": "phq9",
        },
        outcome={
            "instrument": "phq9",
            "short_name": "PHQ-9",
            "direction": "higher_is_worse",
            "range": [0, 27],
            "cutoff": 10,
            "method": "sample_expected_band",
            "points": points,
            "expected": st.expected[: max(n, 8)],
            "others": {"gad7": gad},
        },
        alliance={
            "instrument": "wai_sr",
            "therapist_instrument": "wai_sr_t",
            "range": [12, 60],
            "therapist_range": [12, 60],
            "client": [
                {
                    "session": i + 1,
                    "total": v,
                    "normalised": round((v - 12) / 48, 4),
                    "subscales": {},
                }
                for i, v in enumerate(st.client_alliance)
            ],
            "therapist": [
                {"session": i + 1, "total": v, "normalised": round((v - 12) / 48, 4)}
                for i, v in enumerate(st.therapist_alliance)
            ],
            "ruptures": st.ruptures,
            "gap": {
                "flag": st.gap,
                "value": 9.0 if st.gap else None,
                "reason": "The therapist rates the alliance clearly higher than the client."
                if st.gap
                else "",
            },
        },
        dropout={
            "level": "high" if dropout else "low",
            "flag": dropout,
            "reasons": ["Two missed sessions in a row"] if dropout else [],
            "method": "sample",
        },
        stage={
            "suggested": stage,
            "name": STAGE_NAMES[stage],
            "reasons": [f"{n} sessions so far", "alliance stable"],
            "guidance": ["Review the goals together."],
            "method": "sample_stage_heuristic",
            "confirmed": None,
        },
        checklist=[
            {
                "area": "alliance",
                "text": "Ask how the work together feels for the client.",
                "evidence": "Client alliance dipped at the last rating.",
            },
            {
                "area": "motivation",
                "text": "Check readiness for the current tasks.",
                "evidence": "Goal ratings have not moved for 3 sessions.",
            },
            {
                "area": "life_events",
                "text": "Ask about recent changes at home or work.",
                "evidence": "Score rose by 4 points since last week.",
            },
        ]
        if last in ("off_track", "at_risk")
        else [],
        last_checkin_at=dates[-1] if n else None,
        overdue_checkins=overdue,
    )


@transaction.atomic
def add_client(
    therapist: Any,
    name: str,
    *,
    course: str = "on_track",
    sessions: int = 6,
    concerns: tuple[str, ...] = ("depression",),
    safety: bool = False,
    rupture: bool = False,
    gap: bool = False,
    dropout: bool = False,
    overdue: int = 0,
    seed: int = 0,
    note: str | None = "It is hard to say out loud how tired I am.",
    goals: list[str] | None = None,
    supervision_consent: bool = True,
    closed: str = "",
) -> Episode:
    """One client with a full history: every row the client page reads. ``closed`` (an end
    reason) closes the episode with an outcome classified by the IAPT PHQ-9 rules (reliable
    change ≥ 6 points, caseness ≥ 10; SCIENCE.md A1)."""
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    st = story(course, sessions, rng, rupture=rupture, gap=gap, safety=safety)
    n = len(st.totals)
    now = timezone.now()
    opened = now - timedelta(days=7 * n + 1)
    client = Client.objects.create(
        practice_id=therapist.practice_id,
        therapist=therapist,
        preferred_name=name,
        created_at=opened,
    )
    Consent.objects.bulk_create(_consents(client, therapist, supervision_consent))
    episode = Episode.objects.create(
        practice_id=therapist.practice_id,
        client=client,
        therapist=therapist,
        concerns=list(concerns),
        measure_plan=["phq9", "gad7"],
        opened_at=opened,
        planned_end_session=12,
    )
    goal_rows = [
        Goal.objects.create(episode=episode, position=i + 1, text=t)
        for i, t in enumerate((goals or GOALS)[:2])
    ]
    session_rows = Session.objects.bulk_create(
        Session(
            episode=episode,
            number=s,
            scheduled_at=opened + timedelta(days=7 * (s - 1)),
            status=SessionStatus.ATTENDED if s <= n else SessionStatus.SCHEDULED,
        )
        for s in range(1, 13)
    )
    phq9, gad7 = al.instrument("phq9"), al.instrument("gad7")
    for i in range(n):
        s = session_rows[i]
        when = s.scheduled_at - timedelta(hours=2)
        last = i == n - 1
        pre = CheckIn.objects.create(
            practice_id=episode.practice_id,
            episode=episode,
            session=s,
            kind=CheckInKind.PRE_SESSION,
            instruments=["phq9", "gad7"],
            includes_goals=True,
            includes_note=True,
            status=CheckInStatus.COMPLETED,
            created_at=when - timedelta(days=1),
            opens_at=when - timedelta(days=1),
            expires_at=when + timedelta(days=2),
            completed_at=when,
        )
        for inst, total in (
            (phq9, st.totals[i]),
            (gad7, max(0.0, min(21.0, round(st.totals[i] * 0.7)))),
        ):
            answers = _answers(inst.id, total, safety=safety and last)
            response = Response.objects.create(
                checkin=pre,
                instrument=inst.id,
                instrument_version=inst.version,
                answers=answers,
                submitted_at=when,
                content_hash=_hash(answers),
            )
            Score.objects.create(
                response=response,
                episode=episode,
                instrument=inst.id,
                rater="client",
                session_number=s.number,
                administered_at=when,
                total=sum(answers.values()),
                severity=inst.band_for(sum(answers.values())) or "",
                flags=["safety"] if (inst.id == "phq9" and safety and last) else [],
                signal=st.signals[i] if inst.id == "phq9" else "",
                method="sample",
                engine_version="sample",
            )
        GoalRating.objects.bulk_create(
            GoalRating(goal=g, checkin=pre, value=st.goals[j][i], rated_at=when)
            for j, g in enumerate(goal_rows)
        )
        if note and last:
            ClientNote.objects.create(checkin=pre, episode=episode, text=note, written_at=when)
        for kind, inst_id, value, rater in (
            (CheckInKind.POST_SESSION, "wai_sr", st.client_alliance[i], "client"),
            (CheckInKind.THERAPIST, "wai_sr_t", st.therapist_alliance[i], "therapist"),
        ):
            after = s.scheduled_at + timedelta(hours=1)
            ci = CheckIn.objects.create(
                practice_id=episode.practice_id,
                episode=episode,
                session=s,
                kind=kind,
                instruments=[inst_id],
                status=CheckInStatus.COMPLETED,
                opens_at=after,
                expires_at=after + timedelta(days=2),
                completed_at=after,
            )
            answers = _answers(inst_id, value)
            response = Response.objects.create(
                checkin=ci,
                instrument=inst_id,
                instrument_version="1",
                answers=answers,
                submitted_at=after,
                content_hash=_hash(answers),
            )
            Score.objects.create(
                response=response,
                episode=episode,
                instrument=inst_id,
                rater=rater,
                session_number=s.number,
                administered_at=after,
                total=sum(answers.values()),
                method="sample",
                engine_version="sample",
            )
    for r in st.ruptures:
        RelationshipNote.objects.create(
            episode=episode,
            session=session_rows[r["low_session"] - 1],
            author=therapist,
            event="rupture",
            marker="withdrawal",
            text="Went quiet when we talked about homework.",
        )
        if r["repair_session"]:
            RelationshipNote.objects.create(
                episode=episode,
                session=session_rows[r["repair_session"] - 1],
                author=therapist,
                event="repair",
                text="Named the moment together; agreed a smaller step.",
            )
    insight = insight_for(episode, st, opened=opened, overdue=overdue, dropout=dropout)
    insight.save()
    StageAssessment.objects.create(
        episode=episode,
        session_number=n,
        suggested_stage=insight.stage["suggested"],
        reasons=insight.stage["reasons"],
        method="sample_stage_heuristic",
    )
    _alerts(episode, st, n, dropout=dropout, overdue=overdue, when=now - timedelta(hours=3))
    if closed:
        pre, post = st.totals[0], st.totals[-1]
        if pre - post >= 6:
            category = "recovered" if pre >= 10 > post else "improved"
        elif post - pre >= 6:
            category = "deteriorated"
        else:
            category = "unchanged"
        Episode.objects.filter(pk=episode.pk).update(
            status="closed",
            end_reason=closed,
            closed_at=now - timedelta(hours=1),
            outcome={
                "category": category,
                "pre": pre,
                "post": post,
                "instrument": "phq9",
                "method": "sample_iapt_rules",
            },
        )
        Alert.objects.filter(episode=episode).update(status="resolved")
        episode.refresh_from_db()
    return episode


def _alerts(
    episode: Episode, st: Story, n: int, *, dropout: bool, overdue: int, when: datetime
) -> list[Alert]:
    kinds = []
    if st.safety:
        kinds.append(
            (
                AlertKind.SAFETY,
                {
                    "instrument": "phq9",
                    "flags": ["safety"],
                    "rule": "critical item endorsed",
                    "item": "phq9_9",
                },
            )
        )
    if st.signals[-1] == "off_track":
        kinds.append(
            (
                AlertKind.OFF_TRACK,
                {
                    "instrument": "phq9",
                    "signal": "off_track",
                    "rule": "score above the expected band",
                },
            )
        )
    if any(r["repair_session"] is None for r in st.ruptures):
        kinds.append(
            (
                AlertKind.RUPTURE,
                {"instrument": "wai_sr", "rule": "drop from the client's own baseline"},
            )
        )
    if dropout:
        kinds.append((AlertKind.DROPOUT, {"rule": "missed sessions and low early alliance"}))
    if st.gap:
        kinds.append(
            (AlertKind.GAP, {"rule": "therapist rates the alliance higher than the client"})
        )
    if overdue:
        kinds.append((AlertKind.MISSED, {"rule": "check-ins not completed", "count": overdue}))
    alerts = [
        Alert(
            practice_id=episode.practice_id,
            episode=episode,
            kind=k,
            priority=ALERT_PRIORITY[k],
            dedupe_key=f"sample:{k}:{episode.public_id}",
            session_number=n,
            detail=d,
            created_at=when,
        )
        for k, d in kinds
    ]
    return Alert.objects.bulk_create(alerts)


NAMES = [
    "Alex",
    "Blessing",
    "Chen",
    "Dana",
    "Eli",
    "Fatima",
    "Gabriel",
    "Hana",
    "Ines",
    "Jonah",
    "Kiran",
    "Lena",
    "Mateo",
    "Noor",
    "Oskar",
    "Priya",
    "Quinn",
    "Rosa",
    "Sami",
    "Tess",
    "Uma",
    "Victor",
    "Wren",
    "Yara",
    "Zane",
]


@transaction.atomic
def add_caseload(therapist: Any, count: int, *, seed: int = 0) -> list[Episode]:
    """Many clients at once (bulk inserts): client, consent, episode, snapshot and alerts only —
    what the caseload page reads. For the benchmark and the constant-query tests."""
    rng = random.Random(seed)  # noqa: S311  # nosec B311
    now = timezone.now()
    clients, episodes, insights, consents, plans = [], [], [], [], []
    for i in range(count):
        course = COURSES[i % len(COURSES)]
        flags = {
            "safety": i % 17 == 3,
            "rupture": i % 7 == 2,
            "gap": i % 11 == 5,
            "dropout": i % 13 == 6,
        }
        st = story(
            course,
            3 + i % 8,
            rng,
            rupture=flags["rupture"],
            gap=flags["gap"],
            safety=flags["safety"],
        )
        opened = now - timedelta(days=7 * len(st.totals) + 1)
        client = Client(
            practice_id=therapist.practice_id,
            therapist=therapist,
            preferred_name=f"{NAMES[i % len(NAMES)]} {i + 1}",
            pseudonym="C" + uuid.uuid4().hex[:12].upper(),
            created_at=opened,
        )
        clients.append(client)
        plans.append((st, opened, flags, i % 9 == 4))
    Client.objects.bulk_create(clients)
    for client, (_st, opened, _flags, _over) in zip(clients, plans, strict=True):
        episodes.append(
            Episode(
                practice_id=client.practice_id,
                client=client,
                therapist=therapist,
                concerns=[["depression"], ["anxiety"], ["depression", "anxiety"], ["panic"]][
                    client.pk % 4
                ],
                measure_plan=["phq9", "gad7"],
                opened_at=opened,
            )
        )
        consents.extend(_consents(client, therapist))
    Episode.objects.bulk_create(episodes)
    Consent.objects.bulk_create(consents)
    for episode, (st, opened, flags, over) in zip(episodes, plans, strict=True):
        insights.append(
            insight_for(
                episode, st, opened=opened, overdue=1 if over else 0, dropout=flags["dropout"]
            )
        )
    EpisodeInsight.objects.bulk_create(insights)
    for episode, (st, _opened, flags, over) in zip(episodes, plans, strict=True):
        _alerts(
            episode,
            st,
            len(st.totals),
            dropout=flags["dropout"],
            overdue=1 if over else 0,
            when=now - timedelta(hours=5),
        )
    return episodes
