"""Workflows on the clinical record. Each runs in one transaction with its audit entry.

Views and API endpoints stay thin: they check access (``care.access``), call one of these, render.
A service turns rows into plain engine inputs, calls the engine (``alliance``), stores typed results
with the engine method and version, and audits — the shape of pretix's ``approve_order``.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

import alliance as al
from alliance_web.audit.models import Action, Outcome
from alliance_web.audit.trail import Actor, record
from alliance_web.audit.trail import batch as audit_batch
from alliance_web.care import analysis, insight, tokens
from alliance_web.care.models import (
    ActionKind,
    Alert,
    AlertAction,
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
    EpisodeStatus,
    Goal,
    GoalRating,
    PrivateNote,
    RelationshipEvent,
    RelationshipNote,
    Response,
    Score,
    Session,
    SessionStatus,
    StageAssessment,
)

log = logging.getLogger(__name__)

NOTE_MAX_CHARS = 5000
GOAL_MAX_CHARS = 300

# Measures asked before each session when the therapist does not choose (SPEC §2.1: sensible
# defaults per concern). PHQ-9 and GAD-7 for everyone follows the English IAPT minimum data set
# (NCCMH IAPT Manual 2018, Appendix C); the concern-specific measure is added when the library has it.
DEFAULT_PLAN = {
    "depression": ["phq9", "gad7"],
    "anxiety": ["gad7", "phq9"],
    "ocd": ["ocir", "phq9", "gad7"],
    "panic": ["pdss_sr", "phq9", "gad7"],
    "phobia": ["fq", "phq9", "gad7"],
    "social_anxiety": ["mini_spin", "phq9", "gad7"],
    "wellbeing": ["who5", "phq9", "gad7"],
    "other": ["phq9", "gad7"],
}


class ServiceError(Exception):
    """A workflow refused: the message says why and what to do."""


class CheckInInvalid(ServiceError):
    """Answers that cannot be accepted. ``errors`` maps a field name to a message."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = dict(errors)


class CheckInClosed(ServiceError):
    """The check-in has expired, was cancelled, or is not open yet."""


def default_plan(concerns: Sequence[str]) -> list[str]:
    library = al.instruments()
    plan: list[str] = []
    for concern in concerns or ["other"]:
        for inst in DEFAULT_PLAN.get(concern, DEFAULT_PLAN["other"]):
            if inst in library and inst not in plan:
                plan.append(inst)
    return plan


def _hash_json(data: Any) -> str:
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


# --------------------------------------------------------------------------------------------
# Clients and episodes
# --------------------------------------------------------------------------------------------
@transaction.atomic
def create_client(
    by: Any,
    *,
    preferred_name: str,
    therapist: Any,
    email: str = "",
    phone: str = "",
    date_of_birth: Any = None,
    consents: Iterable[str] = (ConsentScope.CARE, ConsentScope.SUPERVISION),
) -> Client:
    if therapist.practice_id != by.practice_id:
        raise ServiceError("The therapist must belong to your practice.")
    client = Client.objects.create(
        practice_id=by.practice_id,
        therapist=therapist,
        preferred_name=preferred_name.strip(),
        email=email,
        phone=phone,
        date_of_birth=date_of_birth,
    )
    for scope in consents:
        Consent.objects.create(client=client, scope=scope, recorded_by=by)
    record(Actor.of(by), Action.CREATE, "client", client.public_id, client.public_id)
    return client


@transaction.atomic
def open_episode(
    by: Any,
    client: Client,
    *,
    concerns: Sequence[str],
    measure_plan: Sequence[str] | None = None,
    goals: Sequence[str] = (),
    first_session_at: datetime | None = None,
    sessions: int = 12,
    interval_days: int = 7,
    alliance_instrument: str = "wai_sr",
    therapist_alliance_instrument: str = "wai_sr_t",
    opened_at: datetime | None = None,
) -> Episode:
    library = al.instruments()
    plan = list(measure_plan) if measure_plan else default_plan(concerns)
    unknown = [
        i for i in [*plan, alliance_instrument, therapist_alliance_instrument] if i not in library
    ]
    if unknown:
        raise ServiceError(f"Unknown instrument(s): {', '.join(unknown)}.")
    if len(goals) > 3:
        raise ServiceError("Agree at most three goals.")
    episode = Episode.objects.create(
        practice_id=client.practice_id,
        client=client,
        therapist_id=by.pk if by.sees_caseload else client.therapist_id,
        concerns=list(concerns),
        measure_plan=plan,
        alliance_instrument=alliance_instrument,
        therapist_alliance_instrument=therapist_alliance_instrument,
        session_interval_days=interval_days,
        opened_at=opened_at or timezone.now(),
    )
    for position, text in enumerate(goals, start=1):
        text = text.strip()
        if text:
            Goal.objects.create(episode=episode, position=position, text=text[:GOAL_MAX_CHARS])
    start = first_session_at or timezone.now() + timedelta(days=1)
    Session.objects.bulk_create(
        Session(
            episode=episode, number=n, scheduled_at=start + timedelta(days=interval_days * (n - 1))
        )
        for n in range(1, sessions + 1)
    )
    record(Actor.of(by), Action.CREATE, "episode", episode.public_id, client.public_id)
    return episode


@transaction.atomic
def set_goal(by: Any, episode: Episode, position: int, text: str) -> Goal:
    if not 1 <= position <= 3:
        raise ServiceError("Goals are numbered 1 to 3.")
    text = text.strip()
    if not text:
        raise ServiceError("Write the goal in the client's words.")
    goal, _ = Goal.objects.update_or_create(
        episode=episode,
        position=position,
        defaults={"text": text[:GOAL_MAX_CHARS], "closed_at": None},
    )
    record(Actor.of(by), Action.UPDATE, "goal", goal.public_id, episode.client.public_id)
    return goal


@transaction.atomic
def set_consent(by: Any, client: Client, scope: str, given: bool) -> Consent:
    if scope not in ConsentScope.values:
        raise ServiceError(f"Unknown consent scope {scope!r}.")
    now = timezone.now()
    if given:
        consent = Consent.objects.create(client=client, scope=scope, recorded_by=by, given_at=now)
    else:
        consent = (
            Consent.objects.filter(client=client, scope=scope, withdrawn_at__isnull=True)
            .order_by("-given_at")
            .first()
        )
        if consent is None:
            consent = Consent.objects.create(
                client=client, scope=scope, recorded_by=by, given_at=now, withdrawn_at=now
            )
        else:
            consent.withdrawn_at = now
            consent.save(update_fields=["withdrawn_at"])
    record(
        Actor.of(by),
        Action.UPDATE,
        "consent",
        consent.pk,
        client.public_id,
        detail={"scope": scope, "given": given},
    )
    return consent


def has_consent(client: Client, scope: str) -> bool:
    latest = Consent.objects.filter(client=client, scope=scope).order_by("-given_at", "-pk").first()
    return latest is not None and latest.withdrawn_at is None


@transaction.atomic
def record_attendance(by: Any, session: Session, status: str) -> Session:
    if status not in SessionStatus.values:
        raise ServiceError(f"Unknown session status {status!r}.")
    session.status = status
    session.save(update_fields=["status"])
    if status == SessionStatus.ATTENDED:
        Client.objects.filter(pk=session.episode.client_id).update(last_contact_at=timezone.now())
    record(
        Actor.of(by), Action.UPDATE, "session", session.public_id, session.episode.client.public_id
    )
    analysis.refresh_episode(session.episode, actor=Actor.of(by))
    return session


# --------------------------------------------------------------------------------------------
# Check-ins
# --------------------------------------------------------------------------------------------
def instruments_for(episode: Episode, kind: str) -> list[str]:
    if kind == CheckInKind.PRE_SESSION:
        return list(episode.measure_plan)
    if kind == CheckInKind.POST_SESSION:
        return [episode.alliance_instrument]
    return [episode.therapist_alliance_instrument]


@transaction.atomic
def issue_checkin(
    episode: Episode,
    *,
    kind: str = CheckInKind.PRE_SESSION,
    session: Session | None = None,
    opens_at: datetime | None = None,
    hours_valid: int | None = None,
    actor: Actor | None = None,
) -> tuple[CheckIn, str]:
    """Create a check-in and return it with its link path (``/c/<token>/``)."""
    if episode.status != EpisodeStatus.OPEN:
        raise ServiceError("This episode is closed; reopen it or open a new one first.")
    opens = opens_at or timezone.now()
    hours = hours_valid or episode.client.practice.checkin_link_hours
    checkin = CheckIn(
        practice_id=episode.practice_id,
        episode=episode,
        session=session,
        kind=kind,
        instruments=instruments_for(episode, kind),
        includes_goals=kind == CheckInKind.PRE_SESSION
        and episode.goals.filter(closed_at__isnull=True).exists(),
        includes_note=kind == CheckInKind.PRE_SESSION,
        opens_at=opens,
        expires_at=opens + timedelta(hours=hours),
    )
    checkin.token_hash = tokens.token_hash(tokens.link_token(checkin))
    checkin.save()
    record(
        actor or Actor.system("scheduler", episode.practice_id),
        Action.CREATE,
        "checkin",
        checkin.public_id,
        episode.client.public_id,
    )
    return checkin, tokens.link_path(checkin)


def checkin_for_token(token: str) -> CheckIn | None:
    return (
        CheckIn.objects.select_related(
            "episode", "episode__client", "episode__client__practice", "session"
        )
        .filter(token_hash=tokens.token_hash(token))
        .first()
    )


@transaction.atomic
def start_waiting_room_code(by: Any, checkin: CheckIn) -> str:
    code, digest = tokens.new_short_code()
    checkin.short_code_hash = digest
    checkin.short_code_expires_at = tokens.code_expiry()
    checkin.save(update_fields=["short_code_hash", "short_code_expires_at"])
    record(
        Actor.of(by),
        Action.UPDATE,
        "checkin_code",
        checkin.public_id,
        checkin.episode.client.public_id,
    )
    return code


def checkin_for_code(code: str) -> CheckIn | None:
    return (
        CheckIn.objects.select_related("episode", "episode__client", "episode__client__practice")
        .filter(short_code_hash=tokens.code_hash(code), short_code_expires_at__gt=timezone.now())
        .first()
    )


@transaction.atomic
def save_draft(checkin: CheckIn, draft: Mapping[str, Any]) -> None:
    """Keep partial answers so the client can resume (the draft is encrypted at rest)."""
    locked = CheckIn.objects.select_for_update().get(pk=checkin.pk)
    if locked.status not in (CheckInStatus.PENDING, CheckInStatus.STARTED):
        return
    locked.draft = dict(draft)
    if locked.status == CheckInStatus.PENDING:
        locked.status = CheckInStatus.STARTED
        locked.started_at = timezone.now()
    locked.save(update_fields=["draft", "status", "started_at"])
    record(
        Actor.client(checkin.episode.client),
        Action.UPDATE,
        "checkin_draft",
        checkin.public_id,
        checkin.episode.client.public_id,
    )


@dataclass
class Submission:
    """What a check-in form sends: answers per instrument, goal ratings by goal id, a private note."""

    answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    goal_ratings: dict[str, Any] = field(default_factory=dict)
    note: str = ""


@dataclass(frozen=True)
class SubmitResult:
    checkin: CheckIn
    scores: list[Score]
    alerts: list[Alert]
    duplicate: bool = False

    @property
    def safety(self) -> bool:
        return any("safety" in flag for s in self.scores for flag in (s.flags or []))


def validate_submission(
    checkin: CheckIn, sub: Submission, *, require_all: bool = True
) -> dict[str, al.Score]:
    """Check every answer with the engine; raise :class:`CheckInInvalid` listing what to fix."""
    return _validate(checkin, sub, require_all=require_all)[0]


def _validate(
    checkin: CheckIn, sub: Submission, *, require_all: bool
) -> tuple[dict[str, al.Score], dict[str, Goal]]:
    """The scores, and the episode's open goals by public id (read once, when the check-in asks
    for goal ratings)."""
    errors: dict[str, str] = {}
    goals: dict[str, Goal] = {}
    scored: dict[str, al.Score] = {}
    extra = set(sub.answers) - set(checkin.instruments)
    for name in sorted(extra):
        errors[name] = "This questionnaire is not part of this check-in."
    for inst_id in checkin.instruments:
        inst = al.instrument(inst_id)
        given = sub.answers.get(inst_id) or {}
        unknown = sorted(set(given) - set(inst.item_ids))
        for item_id in unknown:
            errors[f"{inst_id}.{item_id}"] = "Unknown question."
        if require_all:
            for item in inst.items:
                if (
                    item.scored
                    and item.required
                    and item.kind != "text"
                    and given.get(item.id) in (None, "")
                ):
                    errors[f"{inst_id}.{item.id}"] = "Please answer this question."
        if any(k.startswith(f"{inst_id}.") for k in errors):
            continue
        result = al.score_one(inst, {k: v for k, v in given.items() if v not in (None, "")})
        if result.error:
            errors[inst_id] = result.error
        scored[inst_id] = result
    if checkin.includes_goals:
        goals = {str(g.public_id): g for g in checkin.episode.goals.filter(closed_at__isnull=True)}
        for key, value in sub.goal_ratings.items():
            if str(key) not in goals:
                errors[f"goal.{key}"] = "Unknown goal."
                continue
            try:
                number = float(value)
            except (TypeError, ValueError):
                errors[f"goal.{key}"] = "Choose a number from 0 to 10."
                continue
            if not number.is_integer() or not 0 <= number <= 10:
                errors[f"goal.{key}"] = "Choose a number from 0 to 10."
    elif sub.goal_ratings:
        errors["goals"] = "This check-in has no goal ratings."
    if len(sub.note) > NOTE_MAX_CHARS:
        errors["note"] = f"Please keep the note under {NOTE_MAX_CHARS} characters."
    if sub.note and not checkin.includes_note:
        errors["note"] = "This check-in has no private note."
    if errors:
        raise CheckInInvalid(errors)
    return scored, goals


def submit_checkin(
    checkin: CheckIn, sub: Submission, *, by: Any = None, require_all: bool = True
) -> SubmitResult:
    """Validate, score, compute signals, store, raise alerts and audit — all or nothing.

    Submitting a completed check-in again stores nothing and returns the first result
    (``duplicate=True``): a double click or a retried request is harmless.

    The transaction holds what must not wait: the rows, each new score's recovery signal, the
    safety and off-track alerts, the audit entry, and a mark that the episode's snapshot is stale.
    The snapshot itself (relationship analytics, stage, checklist, other alerts, triage) is
    refreshed after commit by the worker (``care.tasks.refresh_episode``) — or by the next page
    that shows it (``care.insight``).
    """
    scored, goals = _validate(checkin, sub, require_all=require_all)
    client = checkin.episode.client
    actor = Actor.of(by) if by is not None else Actor.client(client)
    try:
        # audit_batch: the audit rows are chained at the end, so the chain lock is not held
        # while the submission is scored.
        with transaction.atomic(), audit_batch():
            # Lock the check-in's row and read only what may have changed since the caller loaded
            # it (with its episode and client): its state, and the snapshot's computed_at.
            # of=("self",): the session and snapshot joins are outer joins, which PostgreSQL
            # cannot lock.
            status, opens_at, expires_at, session_number, seen = (
                CheckIn.objects.select_for_update(of=("self",))
                .filter(pk=checkin.pk)
                .values_list(
                    "status",
                    "opens_at",
                    "expires_at",
                    "session__number",
                    "episode__insight__computed_at",
                )
                .get()
            )
            if status == CheckInStatus.COMPLETED:
                locked = CheckIn.objects.get(pk=checkin.pk)
                return SubmitResult(
                    locked, list(Score.objects.filter(response__checkin=locked)), [], duplicate=True
                )
            locked = checkin
            locked.status, locked.opens_at, locked.expires_at = status, opens_at, expires_at
            if not locked.is_open:
                raise CheckInClosed(
                    "This check-in link has expired. Ask your therapist for a new one."
                )
            episode = locked.episode
            course = insight.Course(episode, seen)
            now = timezone.now()
            responses, scores = [], []
            for inst_id, result in scored.items():
                inst = al.instrument(inst_id)
                answers = {
                    k: float(v)
                    for k, v in (sub.answers.get(inst_id) or {}).items()
                    if v not in (None, "")
                }
                response = Response(
                    checkin=locked,
                    instrument=inst_id,
                    instrument_version=inst.version,
                    answers=answers,
                    submitted_at=now,
                    content_hash=_hash_json({"instrument": inst_id, "answers": answers}),
                )
                found = course.signal(
                    inst_id, inst.rater, result.total, result.flags, session_number
                )
                responses.append(response)
                scores.append(
                    Score(
                        response=response,
                        episode=episode,
                        instrument=inst_id,
                        rater=inst.rater,
                        session_number=session_number,
                        administered_at=now,
                        total=result.total,
                        subscales=dict(result.subscales),
                        severity=result.severity or "",
                        flags=list(result.flags),
                        prorated=result.prorated,
                        error=result.error or "",
                        signal=found.signal if found else "",
                        signal_detail=insight.signal_detail(found) if found else {},
                        method=result.method,
                        engine_version=al.__version__,
                    )
                )
            Response.objects.bulk_create(responses)
            Score.objects.bulk_create(scores)
            if sub.goal_ratings:
                GoalRating.objects.bulk_create(
                    GoalRating(
                        goal=goals[str(k)], checkin=locked, value=int(float(v)), rated_at=now
                    )
                    for k, v in sub.goal_ratings.items()
                )
            if sub.note.strip():
                ClientNote.objects.create(
                    checkin=locked, episode=episode, text=sub.note.strip(), written_at=now
                )
            locked.status = CheckInStatus.COMPLETED
            locked.completed_at = now
            locked.completed_by = by if by is not None else None
            locked.draft = None
            locked.save(update_fields=["status", "completed_at", "completed_by", "draft"])
            Client.objects.filter(pk=client.pk).update(last_contact_at=now)
            record(
                actor,
                Action.CREATE,
                "checkin_submission",
                locked.public_id,
                client.public_id,
                detail={
                    "instruments": list(scored),
                    "goal_ratings": len(sub.goal_ratings),
                    "note": bool(sub.note.strip()),
                },
            )
            alerts = analysis.after_submission(locked, scores, actor=actor, course=course)
            queue = insight.mark_stale(
                episode,
                now,
                seen=seen,
                was_stale=course.was_stale,
                client=any(s.rater == "client" for s in scores),
            )
    except IntegrityError:
        # A concurrent identical submission won the race; return what it stored.
        locked = CheckIn.objects.get(pk=checkin.pk)
        return SubmitResult(
            locked, list(Score.objects.filter(response__checkin=locked)), [], duplicate=True
        )
    if alerts:
        transaction.on_commit(lambda: analysis.notify_alerts([a.pk for a in alerts]))
    if queue:
        transaction.on_commit(lambda: analysis.queue_refresh(episode.pk))
    return SubmitResult(locked, scores, alerts)


def rate_as_therapist(
    by: Any, episode: Episode, session: Session | None, answers: Mapping[str, Any]
) -> SubmitResult:
    """The therapist's own post-session alliance rating: same path as a client check-in."""
    checkin, _ = issue_checkin(
        episode, kind=CheckInKind.THERAPIST, session=session, actor=Actor.of(by)
    )
    return submit_checkin(
        checkin, Submission(answers={episode.therapist_alliance_instrument: dict(answers)}), by=by
    )


# --------------------------------------------------------------------------------------------
# Alerts: acknowledge → record action → follow-up
# --------------------------------------------------------------------------------------------
@transaction.atomic
def acknowledge_alert(by: Any, alert: Alert) -> Alert:
    locked = Alert.objects.select_for_update().get(pk=alert.pk)
    if locked.status == AlertStatus.OPEN:
        locked.status = AlertStatus.ACKNOWLEDGED
        locked.acknowledged_at = timezone.now()
        locked.acknowledged_by = by
        locked.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
    record(
        Actor.of(by),
        Action.UPDATE,
        "alert",
        locked.public_id,
        alert.episode.client.public_id,
        detail={"status": locked.status},
    )
    return locked


@transaction.atomic
def record_alert_action(by: Any, alert: Alert, kind: str, note: str = "") -> AlertAction:
    if kind not in ActionKind.values:
        raise ServiceError("Choose what you did from the list.")
    if kind == ActionKind.NO_ACTION and not note.strip():
        raise ServiceError("Say briefly why no action was needed.")
    locked = Alert.objects.select_for_update().get(pk=alert.pk)
    now = timezone.now()
    if locked.status == AlertStatus.OPEN:
        locked.acknowledged_at, locked.acknowledged_by = now, by
    locked.status = AlertStatus.ACTIONED
    locked.save(update_fields=["status", "acknowledged_at", "acknowledged_by"])
    action = AlertAction.objects.create(
        alert=locked, kind=kind, note=note.strip()[:NOTE_MAX_CHARS], by=by, at=now
    )
    record(
        Actor.of(by),
        Action.CREATE,
        "alert_action",
        action.pk,
        alert.episode.client.public_id,
        detail={"kind": kind},
    )
    analysis.refresh_episode(alert.episode, actor=Actor.of(by))  # the caseload order changes
    return action


# --------------------------------------------------------------------------------------------
# The relationship: notes, stage confirmation
# --------------------------------------------------------------------------------------------
@transaction.atomic
def log_relationship_event(
    by: Any,
    episode: Episode,
    *,
    event: str,
    session: Session | None = None,
    marker: str = "",
    text: str = "",
) -> RelationshipNote:
    if event not in RelationshipEvent.values:
        raise ServiceError("Say whether this was a rupture or a repair.")
    note = RelationshipNote.objects.create(
        episode=episode,
        session=session,
        author=by,
        event=event,
        marker=marker,
        text=text.strip()[:NOTE_MAX_CHARS],
    )
    record(
        Actor.of(by),
        Action.CREATE,
        "relationship_note",
        note.pk,
        episode.client.public_id,
        detail={"event": event},
    )
    return note


@transaction.atomic
def confirm_stage(by: Any, assessment: StageAssessment, stage: int) -> StageAssessment:
    if stage not in (1, 2, 3, 4):
        raise ServiceError("Stages are numbered 1 to 4.")
    assessment.confirmed_stage = stage
    assessment.confirmed_by = by
    assessment.confirmed_at = timezone.now()
    assessment.save(update_fields=["confirmed_stage", "confirmed_by", "confirmed_at"])
    record(
        Actor.of(by),
        Action.UPDATE,
        "stage",
        assessment.pk,
        assessment.episode.client.public_id,
        detail={"stage": stage},
    )
    return assessment


@transaction.atomic
def add_private_note(by: Any, episode: Episode, text: str, *, share: bool = False) -> PrivateNote:
    if not text.strip():
        raise ServiceError("The note is empty.")
    note = PrivateNote.objects.create(
        episode=episode,
        author=by,
        text=text.strip()[:NOTE_MAX_CHARS],
        shared_with_supervisors=share,
    )
    record(Actor.of(by), Action.CREATE, "private_note", note.pk, episode.client.public_id)
    return note


# --------------------------------------------------------------------------------------------
# Ending
# --------------------------------------------------------------------------------------------
@transaction.atomic
def close_episode(
    by: Any, episode: Episode, *, end_reason: str, closed_at: datetime | None = None
) -> Episode:
    if end_reason not in EndReason.values:
        raise ServiceError("Choose how the episode ended.")
    if episode.status == EpisodeStatus.CLOSED:
        raise ServiceError("This episode is already closed.")
    episode.status = EpisodeStatus.CLOSED
    episode.end_reason = end_reason
    episode.closed_at = closed_at or timezone.now()
    episode.outcome = analysis.episode_outcome(episode)
    episode.save(update_fields=["status", "end_reason", "closed_at", "outcome"])
    CheckIn.objects.filter(
        episode=episode, status__in=[CheckInStatus.PENDING, CheckInStatus.STARTED]
    ).update(status=CheckInStatus.CANCELLED)
    record(
        Actor.of(by),
        Action.UPDATE,
        "episode",
        episode.public_id,
        episode.client.public_id,
        detail={
            "closed": True,
            "end_reason": end_reason,
            "category": (episode.outcome or {}).get("category"),
        },
    )
    return episode


def deny(by: Any, entity: str, entity_id: Any = "", patient_id: Any = "") -> None:
    """Audit a refused attempt (the caller then answers 403/404)."""
    record(Actor.of(by), Action.READ, entity, entity_id, patient_id, outcome=Outcome.DENY)


__all__ = [
    "DEFAULT_PLAN",
    "CheckInClosed",
    "CheckInInvalid",
    "ServiceError",
    "Submission",
    "SubmitResult",
    "acknowledge_alert",
    "add_private_note",
    "checkin_for_code",
    "checkin_for_token",
    "close_episode",
    "confirm_stage",
    "create_client",
    "default_plan",
    "deny",
    "has_consent",
    "instruments_for",
    "issue_checkin",
    "log_relationship_event",
    "open_episode",
    "rate_as_therapist",
    "record_alert_action",
    "record_attendance",
    "save_draft",
    "set_consent",
    "set_goal",
    "start_waiting_room_code",
    "submit_checkin",
    "validate_submission",
]
