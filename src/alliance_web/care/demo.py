"""A demo practice seeded from the simulator (SPEC C12): three therapists, a supervisor, an admin and
about sixty clients in every stage — some with safety flags, ruptures and off-track courses.

Everything comes from :func:`alliance.simulate_practice` (seeded, so the demo is the same every time)
and is scored by the engine exactly as real check-ins are; rows are written in bulk so the demo is
ready in seconds. Names, goals and notes are invented.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import numpy as np
import pandas as pd
from django.db import transaction
from django.utils import timezone
from django_otp.plugins.otp_totp.models import TOTPDevice

import alliance as al
from alliance_web.accounts.models import Role, User
from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.care import analysis, calibration, insight, services, tokens
from alliance_web.care.models import (
    ActionKind,
    Alert,
    AlertAction,
    AlertKind,
    AlertStatus,
    CheckIn,
    CheckInKind,
    CheckInStatus,
    Client,
    ClientNote,
    Consent,
    ConsentScope,
    EndReason,
    Episode,
    Goal,
    GoalRating,
    Practice,
    RelationshipEvent,
    RelationshipNote,
    Response,
    Score,
    Session,
    SessionStatus,
)

SLUG = "demo"
STAFF = [
    ("therapist1", Role.THERAPIST, "Amara Okafor", "amara@demo.alliance.invalid"),
    ("therapist2", Role.THERAPIST, "Jonas Lindqvist", "jonas@demo.alliance.invalid"),
    ("therapist3", Role.THERAPIST, "Priya Raman", "priya@demo.alliance.invalid"),
    ("supervisor", Role.SUPERVISOR, "Helen Marsh", "helen@demo.alliance.invalid"),
    ("admin", Role.ADMIN, "Sam Whitford", "sam@demo.alliance.invalid"),
]
FIRST_NAMES = [
    "Alex",
    "Bea",
    "Cam",
    "Dana",
    "Eli",
    "Farah",
    "Gus",
    "Hana",
    "Ines",
    "Jay",
    "Kofi",
    "Lena",
    "Milo",
    "Noor",
    "Omar",
    "Pia",
    "Quinn",
    "Rosa",
    "Sami",
    "Tara",
    "Umar",
    "Vera",
    "Wes",
    "Xena",
    "Yusuf",
    "Zoe",
    "Ada",
    "Ben",
    "Cleo",
    "Dev",
    "Emma",
    "Finn",
    "Gia",
    "Hugo",
    "Isla",
    "Jude",
    "Kai",
    "Lior",
    "Maya",
    "Nils",
    "Olu",
    "Priya",
    "Rafi",
    "Sana",
    "Theo",
    "Uma",
    "Vik",
    "Wren",
    "Yara",
    "Zeke",
    "Anya",
    "Bo",
    "Cyrus",
    "Dina",
    "Ezra",
    "Fen",
    "Gabe",
    "Hui",
    "Ivo",
    "June",
]
GOALS = {
    "depression": [
        "Get out of bed before nine on weekdays",
        "See a friend once a week",
        "Start running again",
    ],
    "anxiety": ["Worry less about work at night", "Drive on the highway", "Say no to extra shifts"],
    "ocd": [
        "Leave the house without checking the stove twice",
        "Touch door handles at work",
        "Spend less time on rituals",
    ],
    "panic": [
        "Take the subway to work",
        "Go to the supermarket at busy times",
        "Stop carrying my pills everywhere",
    ],
    "phobia": ["Get my blood test done", "Fly to visit my sister", "Walk past dogs in the park"],
    "social_anxiety": [
        "Speak up in team meetings",
        "Go to my cousin's wedding",
        "Eat lunch with colleagues",
    ],
}
NOTES = [
    "I didn't want to say it in front of my partner but things at home have been really tense.",
    "Last session felt rushed. I wasn't sure you understood what I meant about my mum.",
    "I've been drinking more than I said.",
    "Work is getting better. I think the plan is helping.",
    "Sometimes I wonder if this is worth it. Not in a dangerous way, just tired.",
    "I'm nervous about the exposure exercise next week.",
]
RUPTURE_NOTES = [
    "Client went quiet after I suggested homework; named it together and agreed a smaller step.",
    "Client said the exposure pace felt pushed. We slowed down and revisited the rationale.",
    "Disagreement about the focus of sessions; re-negotiated goals.",
]


@dataclass(frozen=True)
class DemoInfo:
    summary: str
    checkin_client: str
    checkin_path: str


def ensure_demo(
    *, password: str, seed: int = 2026, progress: Callable[[str], None] = lambda _: None
) -> DemoInfo:
    """Create the demo practice once (and set the staff password every time); return a link."""
    practice = Practice.objects.filter(slug=SLUG).first()
    if practice is None:
        progress("simulating a practice and scoring its check-ins …")
        practice = _seed(seed, progress)
    staff = {u.username: u for u in User.objects.filter(practice=practice)}
    for username, *_ in STAFF:
        user = staff[username]
        user.set_password(password)
        user.save(update_fields=["password"])
    checkin, client = _fresh_link(practice)
    n_clients = Client.objects.filter(practice=practice).count()
    n_open = Episode.objects.filter(practice=practice, status="open").count()
    return DemoInfo(
        summary=f"{n_clients} clients, {n_open} in therapy now",
        checkin_client=client.preferred_name,
        checkin_path=tokens.link_path(checkin),
    )


def _fresh_link(practice: Practice) -> tuple[CheckIn, Client]:
    """A pending pre-session check-in for a demo client (a new one if the last was used)."""
    candidates = Episode.objects.filter(practice=practice, status="open").select_related(
        "client", "client__practice"
    )
    ordered = sorted(
        candidates, key=lambda e: (e.primary_instrument != "phq9", e.client.preferred_name)
    )
    episode = ordered[0] if ordered else None
    if episode is None:
        raise RuntimeError("the demo practice has no open episode")
    open_checkin = CheckIn.objects.filter(
        episode=episode,
        kind=CheckInKind.PRE_SESSION,
        status=CheckInStatus.PENDING,
        expires_at__gt=timezone.now(),
    ).first()
    if open_checkin is None:
        session = episode.sessions.filter(status=SessionStatus.SCHEDULED).order_by("number").first()
        open_checkin, _ = services.issue_checkin(episode, session=session, hours_valid=24 * 7)
    return open_checkin, episode.client


def _primary(concern: str, available: list[str]) -> list[str]:
    wanted = {"depression": ["phq9", "gad7"], "anxiety": ["gad7", "phq9"]}.get(concern)
    if wanted is None:
        specific = [i for i in available if i not in ("phq9", "gad7")]
        wanted = [*specific[:1], "phq9", "gad7"]
    return [i for i in wanted if i in available]


@transaction.atomic
def _seed(seed: int, progress: Callable[[str], None]) -> Practice:
    rng = random.Random(seed)  # noqa: S311 - reproducible demo data, not security
    sim = al.simulate_practice(
        al.SimulationConfig(n_therapists=3, n_clients=60, max_sessions=16, seed=seed)
    )
    practice = Practice.objects.create(name="Riverside Counselling (demo)", slug=SLUG)
    staff: dict[str, User] = {}
    for username, role, name, email in STAFF:
        first, last = name.split(" ", 1)
        user = User.objects.create_user(
            username=username,
            password=None,
            practice=practice,
            role=role,
            display_name=name,
            first_name=first,
            last_name=last,
            email=email,
            is_demo=True,
        )
        TOTPDevice.objects.filter(user=user).delete()
        staff[username] = user
    therapists = [staff["therapist1"], staff["therapist2"], staff["therapist3"]]
    therapist_of = {
        t: therapists[i % 3] for i, t in enumerate(sorted(sim.therapists["therapist"].unique()))
    }

    items = sim.items
    answers: dict[tuple[Any, int, str], dict[str, float]] = defaultdict(dict)
    for row in items.itertuples(index=False):
        answers[(row.client, int(row.session), str(row.instrument))][str(row.item)] = float(
            row.value
        )
    available_by_client: dict[Any, list[str]] = defaultdict(list)
    for client_id, _, inst in answers:
        if inst not in available_by_client[client_id] and al.instrument(inst).kind == "outcome":
            available_by_client[client_id].append(inst)

    now = timezone.now()
    clients = sim.clients.sort_values("client").reset_index(drop=True)
    n = len(clients)
    # A spread of stages: a quarter finished (some dropped out), the rest somewhere in therapy.
    finished = set(clients["client"].iloc[: max(8, n // 4)])
    plan_rows: list[tuple[Episode, Any, int]] = []
    progress(f"creating {n} clients and their episodes …")
    for idx, row in clients.iterrows():
        therapist = therapist_of[row["therapist"]]
        concern = str(row["concern"])
        name = FIRST_NAMES[int(idx) % len(FIRST_NAMES)]
        client = Client.objects.create(
            practice=practice,
            therapist=therapist,
            preferred_name=name,
            email=f"{name.lower()}{idx}@example.invalid",
            progress_view_enabled=bool(idx % 2),
        )
        for scope in (ConsentScope.CARE, ConsentScope.SUPERVISION, ConsentScope.MESSAGES):
            Consent.objects.create(
                client=client,
                scope=scope,
                recorded_by=therapist,
                given_at=now - timedelta(days=200),
            )
        last = int(row["last_session"])
        done = last if row["client"] in finished else max(1, min(last, rng.randint(1, 12)))
        # Session n falls on opened_at + 7n days: for clients in therapy the next session (done + 1)
        # is 1–6 days ahead; finished clients ended weeks or months ago.
        local = timezone.localtime(now)
        slot = local.replace(
            hour=rng.randint(9, 17), minute=rng.choice((0, 30)), second=0, microsecond=0
        )
        ahead = slot - now + timedelta(days=rng.randint(1, 6))
        if row["client"] in finished:
            ahead -= timedelta(days=rng.randint(20, 160))
        start = now + ahead - timedelta(days=7 * (done + 1))
        plan = _primary(concern, available_by_client[row["client"]]) or ["phq9"]
        episode = Episode.objects.create(
            practice=practice,
            client=client,
            therapist=therapist,
            concerns=[concern],
            measure_plan=plan,
            alliance_instrument="wai_sr",
            therapist_alliance_instrument="wai_sr_t",
            opened_at=start,
            planned_end_session=16,
        )
        for position, text in enumerate(
            rng.sample(GOALS.get(concern, GOALS["depression"]), k=rng.randint(1, 3)), 1
        ):
            Goal.objects.create(episode=episode, position=position, text=text, created_at=start)
        plan_rows.append((episode, row, done))

    progress("scoring check-ins and alliance ratings with the engine …")
    sessions_frame = sim.sessions.set_index(["client", "session"])["status"].to_dict()
    pending: dict[str, list[tuple[CheckIn, dict[str, float], int | None, Any]]] = defaultdict(list)
    goal_rows: list[GoalRating] = []
    note_rows: list[ClientNote] = []
    for episode, row, done in plan_rows:
        client_id = row["client"]
        finished_client = client_id in finished
        sessions = []
        for number in range(1, 17):
            when = episode.opened_at + timedelta(days=7 * number)
            status = sessions_frame.get((client_id, number), "attended")
            if number > int(row["last_session"]):
                status = "cancelled" if finished_client else "scheduled"
            elif number > done:
                status = "scheduled"
            sessions.append(
                Session(episode=episode, number=number, scheduled_at=when, status=status)
            )
        Session.objects.bulk_create(sessions)
        goals = list(episode.goals.all())
        intake = None
        for session in sessions:
            if session.status != SessionStatus.ATTENDED:
                continue
            at = session.scheduled_at - timedelta(hours=2)
            pre = CheckIn(
                practice=practice,
                episode=episode,
                session=session,
                kind=CheckInKind.PRE_SESSION,
                instruments=list(episode.measure_plan),
                includes_goals=bool(goals),
                includes_note=True,
                status=CheckInStatus.COMPLETED,
                created_at=at - timedelta(hours=20),
                opens_at=at - timedelta(hours=20),
                expires_at=at + timedelta(hours=4),
                completed_at=at,
            )
            post = CheckIn(
                practice=practice,
                episode=episode,
                session=session,
                kind=CheckInKind.POST_SESSION,
                instruments=["wai_sr"],
                status=CheckInStatus.COMPLETED,
                created_at=session.scheduled_at,
                opens_at=session.scheduled_at,
                expires_at=session.scheduled_at + timedelta(days=2),
                completed_at=session.scheduled_at + timedelta(hours=1),
            )
            ther = CheckIn(
                practice=practice,
                episode=episode,
                session=session,
                kind=CheckInKind.THERAPIST,
                instruments=["wai_sr_t"],
                status=CheckInStatus.COMPLETED,
                created_at=session.scheduled_at,
                opens_at=session.scheduled_at,
                expires_at=session.scheduled_at + timedelta(days=2),
                completed_at=session.scheduled_at + timedelta(hours=2),
                completed_by=episode.therapist,
            )
            for checkin in (pre, post, ther):
                checkin.token_hash = None
            CheckIn.objects.bulk_create([pre, post, ther])
            for inst in episode.measure_plan:
                ans = answers.get((client_id, session.number, inst))
                if ans:
                    pending[inst].append((pre, ans, session.number, pre.completed_at))
            for checkin, inst in ((post, "wai_sr"), (ther, "wai_sr_t")):
                ans = answers.get((client_id, session.number, inst))
                if ans:
                    pending[inst].append((checkin, ans, session.number, checkin.completed_at))
            primary = answers.get((client_id, session.number, episode.measure_plan[0]))
            total = sum(primary.values()) if primary else None
            if total is not None and intake is None:
                intake = total
            for goal in goals:
                improvement = (
                    0.0 if not intake or total is None else (intake - total) / max(intake, 1)
                )
                value = int(np.clip(round(2 + 8 * improvement + rng.gauss(0, 1.2)), 0, 10))
                goal_rows.append(GoalRating(goal=goal, checkin=pre, value=value, rated_at=at))
            if rng.random() < 0.08:
                note_rows.append(
                    ClientNote(checkin=pre, episode=episode, text=rng.choice(NOTES), written_at=at)
                )
    GoalRating.objects.bulk_create(goal_rows)
    ClientNote.objects.bulk_create(note_rows)

    for inst_id, entries in pending.items():
        inst = al.instrument(inst_id)
        table = al.score(inst, [dict(ans) for _, ans, _, _ in entries])
        responses = Response.objects.bulk_create(
            Response(
                checkin=checkin,
                instrument=inst_id,
                instrument_version=inst.version,
                answers=ans,
                submitted_at=when,
                content_hash=services._hash_json({"instrument": inst_id, "answers": ans}),
            )
            for checkin, ans, _, when in entries
        )
        Score.objects.bulk_create(
            Score(
                response=response,
                episode_id=checkin.episode_id,
                instrument=inst_id,
                rater=inst.rater,
                session_number=number,
                administered_at=when,
                total=None if pd.isna(res["total"]) else float(res["total"]),
                subscales={
                    k: (None if v is None or pd.isna(v) else float(v))
                    for k, v in (res["subscales"] or {}).items()
                },
                severity=res["severity"] or "",
                flags=list(res["flags"] or []),
                prorated=bool(res["prorated"]),
                error=res["error"] or "",
                method=str(res.get("method", "alliance.scoring/1")),
                engine_version=al.__version__,
            )
            for response, (checkin, _, number, when), (_, res) in zip(
                responses, entries, table.iterrows(), strict=True
            )
        )

    progress("calibrating the expected-recovery model on the practice's own data …")
    for inst_id in ("phq9", "gad7"):
        calibration.recalibrate(practice, inst_id, min_clients=20, validate=False)
    progress("computing signals, ruptures and stages; raising alerts …")
    system = Actor.system("demo-seed", practice.pk)
    for episode, row, done in plan_rows:
        for score in Score.objects.filter(episode=episode).order_by("administered_at"):
            if any("safety" in f for f in score.flags or []):
                alert = analysis.raise_alert(
                    episode,
                    AlertKind.SAFETY,
                    f"safety:{score.response.checkin.public_id}:{score.instrument}",
                    session_number=score.session_number,
                    detail={
                        "instrument": score.instrument,
                        "flags": score.flags,
                        "rule": "critical item endorsed",
                    },
                    actor=system,
                )
                if alert:
                    Alert.objects.filter(pk=alert.pk).update(created_at=score.administered_at)
                if alert and score.session_number and score.session_number < done:
                    _close_loop(alert, episode, score.administered_at)
        insight.refresh(episode, actor=system)
        # Alerts from the latest check-in are dated with it (the seed runs "now").
        last_at = (
            Score.objects.filter(episode=episode)
            .order_by("-administered_at")
            .values_list("administered_at", flat=True)
            .first()
        )
        if last_at:
            Alert.objects.filter(episode=episode).exclude(kind=AlertKind.SAFETY).update(
                created_at=last_at
            )
        for rupture in sim.ruptures[sim.ruptures["client"] == row["client"]].itertuples(
            index=False
        ):
            repaired = not pd.isna(rupture.repair_session)
            if int(rupture.start_session) <= done and repaired and rng.random() < 0.6:
                RelationshipNote.objects.create(
                    episode=episode,
                    session=episode.sessions.filter(number=int(rupture.repair_session)).first(),
                    author=episode.therapist,
                    event=RelationshipEvent.REPAIR,
                    marker=rng.choice(["withdrawal", "confrontation"]),
                    text=rng.choice(RUPTURE_NOTES),
                )
        if row["client"] in finished:
            reason = EndReason.DROPOUT if bool(row["dropped_out"]) else EndReason.PLANNED
            last_session = (
                episode.sessions.filter(status=SessionStatus.ATTENDED).order_by("-number").first()
            )
            services.close_episode(
                episode.therapist,
                episode,
                end_reason=reason,
                closed_at=(last_session.scheduled_at if last_session else now) + timedelta(days=1),
            )
    record(system, Action.CREATE, "demo_practice", practice.pk, detail={"clients": n})
    return practice


def _close_loop(alert: Alert, episode: Episode, at: Any) -> None:
    """Older safety alerts in the demo were handled: acknowledged and an action recorded."""
    Alert.objects.filter(pk=alert.pk).update(
        status=AlertStatus.ACTIONED,
        acknowledged_at=at + timedelta(hours=3),
        acknowledged_by=episode.therapist,
    )
    AlertAction.objects.create(
        alert=alert,
        kind=ActionKind.SAFETY_PLAN,
        note="Reviewed safety plan at the start of the session; no current intent.",
        by=episode.therapist,
        at=at + timedelta(hours=3),
    )
