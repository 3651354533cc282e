"""The engine's view of one episode, stored as an :class:`EpisodeInsight` snapshot.

A check-in submission computes inside its transaction only what must not wait: the recovery
signal of its new scores (:class:`Course`, from that instrument's earlier totals), the safety and
off-track alerts (``care.analysis.after_submission``); it then marks the snapshot stale
(:func:`mark_stale`) and, after commit, queues ``care.tasks.refresh_episode``. :func:`refresh`
recomputes the whole snapshot — signals, expected band, ruptures, perspective gap, dropout warning,
stage, checklist, the other alerts, triage — from the episode's rows in a handful of queries, and
stores it only if no check-in arrived meanwhile. Attendance and alert actions still refresh inside
their own transaction.

**Freshness.** A snapshot is *stale* when one of the episode's scores is newer than its
``computed_at`` (:func:`stale_expression`). A refresh stores ``computed_at`` no earlier than the
newest score it read; a submission sets it to just before its own score's time. The refresh reads
without locks and writes with a compare-and-set on the ``computed_at`` it read first, so a
check-in committed while it computed makes it compute again instead of hiding the new score.
Pages never wait for a worker: the client page refreshes a stale snapshot before it renders
(:func:`fresh_insight`), the caseload a few per view (``workspace.caseload``), and the worker's
sweep refreshes any left over.

Shapes of the snapshot's JSON fields (all plain JSON; sessions are session numbers):

``signal``   {"code": "off_track"|"at_risk"|"on_track"|"improved"|"recovered"|"not_enough_data",
              "label": str, "reason": str, "method": str, "session": int|None, "instrument": str}
``outcome``  {"instrument": str, "short_name": str, "direction": str, "range": [lo, hi],
              "cutoff": float|None, "method": str,
              "points": [{"session", "total", "severity", "signal", "date", "flags"}],
              "expected": [{"session", "median", "low", "high"}],   # empty without a model
              "others": {instrument: [{"session", "total", "severity"}]}}
``alliance`` {"instrument": str, "therapist_instrument": str, "range": [lo, hi],
              "therapist_range": [lo, hi],
              "client": [{"session", "total", "normalised", "subscales"}],
              "therapist": [{"session", "total", "normalised"}],
              "ruptures": [{"start_session", "low_session", "repair_session"|None, "method", "depth"}],
              "gap": {"flag": bool, "value": float|None, "reason": str} }
``dropout``  {"level": "low"|"moderate"|"high", "flag": bool, "reasons": [str], "method": str}
``stage``    {"suggested": 1..4, "name": str, "reasons": [str], "guidance": [str], "method": str,
              "confirmed": int|None}
``checklist`` [{"area": str, "text": str, "evidence": str}]  # ordered, most relevant first
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

import pandas as pd
from django.db import IntegrityError, transaction
from django.db.models import DateTimeField, Exists, OuterRef, Prefetch, QuerySet, Value
from django.db.models.functions import Coalesce
from django.utils import timezone

import alliance as al
from alliance_web.audit.trail import Actor
from alliance_web.audit.trail import batch as audit_batch
from alliance_web.care.models import (
    Alert,
    AlertKind,
    AlertStatus,
    CheckIn,
    CheckInKind,
    CheckInStatus,
    Episode,
    EpisodeInsight,
    EpisodeStatus,
    Goal,
    PracticeModel,
    Score,
    Session,
    SessionStatus,
    Signal,
    StageAssessment,
)

log = logging.getLogger(__name__)

# The rupture rule the app uses: the client-relative 2 SD rule that also watches clients who rate
# at the top of the scale (docs/algorithms/ruptures.md: recall .76 / precision .78 on simulated
# practices, and every rupture of ceiling clients that an absolute cutoff misses).
RUPTURE_METHOD = "ceiling_aware"
# The dropout early-warning rule looks at the first sessions (early alliance predicts dropout:
# Sharf et al. 2010); the app raises it while the client is still in that early phase, and only at
# "high" risk (two or more warning signs) to keep alerts meaningful. Both are heuristics.
DROPOUT_ALERT_UNTIL_SESSION = 6
DROPOUT_ALERT_RISK = "high"
# Alerts that have had an action recorded are resolved when the data show the concern has passed.
UNRESOLVED = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED, AlertStatus.ACTIONED)
NEEDS_ATTENTION = (AlertStatus.OPEN, AlertStatus.ACKNOWLEDGED)

# Caseload order (DESIGN.md): safety → off track → rupture → dropout risk → gap → overdue → on track.
TRIAGE = {
    "safety": 0,
    "off_track": 1,
    "rupture": 2,
    "dropout": 3,
    "gap": 4,
    "overdue": 5,
    "at_risk": 6,
    "on_track": 7,
    "improved": 8,
    "recovered": 8,
    "not_enough_data": 9,
}

# A submission marks the snapshot stale by setting computed_at this much before its score's time.
STALE_MARK = timedelta(microseconds=1)
# A refresh that keeps losing the race with new check-ins leaves the snapshot stale for the next
# trigger (the submission's own task, a page view or the sweep) after this many tries.
REFRESH_ATTEMPTS = 3
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _points(scores: Sequence[Score]) -> list[dict[str, Any]]:
    return [
        {
            "session": s.session_number,
            "total": s.total,
            "severity": s.severity,
            "signal": s.signal,
            "date": s.administered_at.date().isoformat(),
            "flags": list(s.flags or []),
        }
        for s in scores
        if s.total is not None
    ]


def _normalise(value: float | None, lo: float, hi: float) -> float | None:
    return None if value is None else round((value - lo) / (hi - lo), 4)


def _has_norms(instrument: str) -> bool:
    try:
        al.reliable_change_threshold(instrument)
    except al.AllianceError:
        return False
    return True


def signal_instrument(
    episode: Episode, models: Mapping[str, al.ETRModel | None] | None = None
) -> str | None:
    """The instrument whose course gives the episode its signal: the first of the measure plan that
    has reliable-change norms or a calibrated model (signals need one or the other). ``models``
    (from :func:`practice_models`) saves the query when the caller has them."""
    for inst_id in episode.measure_plan:
        if _has_norms(inst_id):
            return str(inst_id)
        if models is None:
            models = practice_models(episode.practice_id, episode.measure_plan)
        if inst_id in models:
            return str(inst_id)
    return episode.primary_instrument


def outcome_series(
    episode: Episode, scores: Sequence[Score], primary: str | None = None
) -> dict[str, Any]:
    primary = primary or signal_instrument(episode)
    if primary is None:
        return {}
    inst = al.instrument(primary)
    mine = [s for s in scores if s.instrument == primary and s.rater == "client"]
    others: dict[str, list[dict[str, Any]]] = {}
    for other in episode.measure_plan:
        if other == primary:
            continue
        others[other] = [
            {"session": s.session_number, "total": s.total, "severity": s.severity}
            for s in scores
            if s.instrument == other and s.total is not None
        ]
    return {
        "instrument": primary,
        "short_name": inst.short_name,
        "direction": inst.direction,
        "range": list(inst.scoring.range),
        "cutoff": inst.clinical_cutoff.value if inst.clinical_cutoff else None,
        "method": "",
        "points": _points(mine),
        "expected": [],
        "others": others,
    }


def alliance_series(episode: Episode, scores: Sequence[Score]) -> dict[str, Any]:
    client_inst = al.instrument(episode.alliance_instrument)
    ther_inst = al.instrument(episode.therapist_alliance_instrument)
    lo, hi = client_inst.scoring.range
    tlo, thi = ther_inst.scoring.range
    client = [
        {
            "session": s.session_number,
            "total": s.total,
            "normalised": _normalise(s.total, lo, hi),
            "subscales": s.subscales,
        }
        for s in scores
        if s.instrument == episode.alliance_instrument
        and s.rater == "client"
        and s.total is not None
    ]
    therapist = [
        {"session": s.session_number, "total": s.total, "normalised": _normalise(s.total, tlo, thi)}
        for s in scores
        if s.instrument == episode.therapist_alliance_instrument
        and s.rater == "therapist"
        and s.total is not None
    ]
    return {
        "instrument": episode.alliance_instrument,
        "therapist_instrument": episode.therapist_alliance_instrument,
        "range": [lo, hi],
        "therapist_range": [tlo, thi],
        "client": client,
        "therapist": therapist,
        "ruptures": [],
        "gap": {"flag": False, "value": None, "reason": ""},
    }


def load_episode(episode_id: int) -> Episode:
    return (
        Episode.objects.select_related("client", "client__practice", "therapist", "insight")
        .prefetch_related(
            Prefetch(
                "scores",
                queryset=Score.objects.select_related("response").order_by("administered_at", "pk"),
            ),
            Prefetch("sessions", queryset=Session.objects.order_by("number")),
        )
        .get(pk=episode_id)
    )


# Parsed recovery models of this process, by (row id, fitted_at): recalibration stores a new row,
# so an entry never goes out of date; the bound keeps a long-running process small.
_PARSED_MODELS: dict[tuple[int, datetime], al.ETRModel | None] = {}
_PARSED_MODELS_MAX = 256


def _parse_model(pk: int, data: Any) -> al.ETRModel | None:
    if data is None:
        return None
    try:
        return al.ETRModel.from_dict(data)
    except al.AllianceError:
        log.warning("stored model %s could not be loaded; using the rational rule", pk)
        return None


def practice_models(practice_id: int, instruments: Iterable[str]) -> dict[str, al.ETRModel | None]:
    """The practice's active recovery models for these instruments, in one query (a second one the
    first time this process meets a model). An instrument is a key when the practice has an active
    model for it; the value is None when the stored model cannot be loaded."""
    wanted = list(dict.fromkeys(instruments))
    if not wanted:
        return {}
    latest: dict[str, tuple[int, datetime]] = {}
    for pk, instrument, fitted_at in (
        PracticeModel.objects.filter(practice_id=practice_id, instrument__in=wanted, active=True)
        .order_by("-fitted_at", "-pk")
        .values_list("pk", "instrument", "fitted_at")
    ):
        latest.setdefault(instrument, (pk, fitted_at))
    parsed = {key: _PARSED_MODELS[key] for key in latest.values() if key in _PARSED_MODELS}
    missing = [key for key in latest.values() if key not in parsed]
    if missing:
        stored = dict(
            PracticeModel.objects.filter(pk__in=[pk for pk, _ in missing]).values_list(
                "pk", "model"
            )
        )
        if len(_PARSED_MODELS) + len(missing) > _PARSED_MODELS_MAX:
            _PARSED_MODELS.clear()
        for key in missing:
            parsed[key] = _PARSED_MODELS[key] = _parse_model(key[0], stored.get(key[0]))
    return {instrument: parsed[key] for instrument, key in latest.items()}


def active_model(practice_id: int, instrument: str) -> al.ETRModel | None:
    """The practice's calibrated recovery model for an instrument, if it has one."""
    return practice_models(practice_id, [instrument]).get(instrument)


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def signal_detail(result: al.SignalResult) -> dict[str, Any]:
    """What a score stores about its signal (``Score.signal_detail``)."""
    return {
        "method": result.method,
        "reason": result.reason,
        "expected": _finite(result.expected),
        "at_risk_limit": _finite(result.at_risk_limit),
        "off_track_limit": _finite(result.off_track_limit),
        "change": _finite(result.change),
        "reliable_change": _finite(result.reliable_change),
        "model": result.model,
    }


def _course_signals(
    instrument: str,
    sessions: Sequence[int | None],
    totals: Sequence[float],
    flags: Sequence[Sequence[str] | None],
    model: al.ETRModel | None,
) -> list[al.SignalResult]:
    """One instrument's course (client ratings with a total, oldest first) through the engine; a
    score without a session number counts as its position in the course."""
    return al.course_signals(
        [n or i + 1 for i, n in enumerate(sessions)],
        list(totals),
        instrument,
        model=model,
        flags=[tuple(f or ()) for f in flags],
    )


def _signals_for(
    instrument: str, scores: list[Score], model: al.ETRModel | None
) -> tuple[list[al.SignalResult], list[Score]]:
    """The signals of one instrument's course, and the scores whose stored signal they change
    (updated in memory; the caller writes them)."""
    if not scores:
        return [], []
    results = _course_signals(
        instrument,
        [s.session_number for s in scores],
        [s.total for s in scores],  # type: ignore[misc]
        [s.flags for s in scores],
        model,
    )
    changed = []
    for score, result in zip(scores, results, strict=True):
        detail = signal_detail(result)
        if score.signal != result.signal or score.signal_detail != detail:
            score.signal, score.signal_detail = result.signal, detail
            changed.append(score)
    return results, changed


class _Prior(NamedTuple):
    instrument: str
    rater: str
    session_number: int | None
    total: float | None
    flags: list[str]
    administered_at: datetime


class Course:
    """What a check-in submission needs to know about its episode, read once (two queries): the
    scores stored so far and the practice's recovery models — enough for the recovery signal of
    each new score, the off-track alert and whether the snapshot was already stale.

    ``seen`` is the snapshot's ``computed_at`` as the submission read it (None without one).
    """

    def __init__(self, episode: Episode, seen: datetime | None) -> None:
        self.episode = episode
        self.seen = seen
        self.prior = [
            _Prior(*row)
            for row in Score.objects.filter(episode=episode)
            .order_by("administered_at", "pk")
            .values_list(
                "instrument", "rater", "session_number", "total", "flags", "administered_at"
            )
        ]
        self.models = practice_models(episode.practice_id, episode.measure_plan)
        self.primary = signal_instrument(episode, self.models)

    @property
    def was_stale(self) -> bool:
        """A score was already newer than the snapshot: its refresh is on its way."""
        return self.seen is not None and any(p.administered_at > self.seen for p in self.prior)

    def signal(
        self,
        instrument: str,
        rater: str,
        total: float | None,
        flags: Sequence[str],
        session_number: int | None,
    ) -> al.SignalResult | None:
        """The recovery signal of a new score, from the same instrument's earlier totals — the
        value :func:`refresh` computes for it. None when the instrument is not signalled."""
        if instrument not in self.episode.measure_plan or rater != "client" or total is None:
            return None
        mine = self._course(instrument)
        try:
            results = _course_signals(
                instrument,
                [p.session_number for p in mine] + [session_number or len(mine) + 1],
                [p.total for p in mine] + [total],  # type: ignore[misc]
                [p.flags for p in mine] + [flags],
                self.models.get(instrument),
            )
        except al.InvalidParameter:
            return None  # no reliable-change norms and no model: shown, not signalled
        return results[-1]

    def episode_signal(self, scores: Sequence[Score]) -> dict[str, Any] | None:
        """The snapshot's ``signal`` as the new scores make it (None when they do not speak for
        the episode)."""
        for score in scores:
            if score.instrument == self.primary and score.signal:
                detail = score.signal_detail or {}
                return {
                    "code": score.signal,
                    "label": Signal(score.signal).label,
                    "reason": detail.get("reason", ""),
                    "method": detail.get("method", ""),
                    "session": self._session_of(score),
                    "instrument": self.primary,
                }
        return None

    def _course(self, instrument: str) -> list[_Prior]:
        return [
            p
            for p in self.prior
            if p.instrument == instrument and p.rater == "client" and p.total is not None
        ]

    def _session_of(self, score: Score) -> int:
        # As the engine numbered it: a score without a session counts as its place in the course.
        return int(score.session_number or len(self._course(score.instrument)) + 1)

    def count_with(self, scores: Sequence[Score]) -> int:
        """How many scores the episode has with the new ones."""
        return len(self.prior) + len(scores)


def mark_stale(
    episode: Episode, at: datetime, *, seen: datetime | None, was_stale: bool, client: bool
) -> bool:
    """Inside a submission's transaction: mark the episode's snapshot stale (``computed_at`` just
    before ``at``, the new scores' time; ``last_checkin_at`` too for a client's check-in). One
    UPDATE; the first check-in of an episode without a snapshot stores a placeholder.

    Return True when a refresh should be queued: not when the snapshot was already stale and
    unchanged since the submission read it (``seen``), because the check-in that made it stale
    queued one that has not finished — a burst of check-ins refreshes once.
    """
    values: dict[str, Any] = {"computed_at": at - STALE_MARK}
    if client:
        values["last_checkin_at"] = at
    rows = EpisodeInsight.objects.filter(episode_id=episode.pk)
    if seen is not None and rows.filter(computed_at=seen).update(**values):
        return not was_stale
    if rows.update(**values):
        return True  # a refresh finished since we read it: this check-in needs its own
    try:
        with transaction.atomic():
            EpisodeInsight.objects.create(
                episode_id=episode.pk, engine_version=al.__version__, **values
            )
    except IntegrityError:  # a refresh stored the first snapshot meanwhile
        rows.update(**values)
    return True


def stale_expression() -> Exists:
    """For a query of episodes: a score is newer than the snapshot, or there are scores and no
    snapshot. One correlated EXISTS on the (episode, instrument, administered_at) index."""
    return Exists(
        Score.objects.filter(
            episode=OuterRef("pk"),
            administered_at__gt=Coalesce(
                OuterRef("insight__computed_at"), Value(_EPOCH, output_field=DateTimeField())
            ),
        )
    )


def stale_episodes() -> QuerySet[Episode]:
    return Episode.objects.alias(stale=stale_expression()).filter(stale=True)


def is_stale(episode: Episode) -> bool:
    """One query: has the episode a score newer than its snapshot?"""
    insight = getattr(episode, "insight", None)
    since = insight.computed_at if insight is not None else _EPOCH
    return Score.objects.filter(episode_id=episode.pk, administered_at__gt=since).exists()


def fresh_insight(episode: Episode, *, actor: Actor | None = None) -> EpisodeInsight | None:
    """The episode's snapshot, refreshed first when a score is newer than it (the page then shows
    the check-in even when no worker runs). Costs one query when it is fresh."""
    insight = getattr(episode, "insight", None)
    if not is_stale(episode):
        return insight
    refresh_and_notify(episode, actor=actor)
    insight = EpisodeInsight.objects.filter(episode_id=episode.pk).first()
    if insight is not None:
        episode.insight = insight
    return insight


def refresh_and_notify(episode: Episode, *, actor: Actor | None = None) -> list[Alert]:
    """:func:`refresh` outside a submission (a page, the worker): the alerts it raises are emailed
    after commit."""
    from alliance_web.care import analysis

    alerts = refresh(episode, actor=actor or Actor.system("analysis", episode.practice_id))
    if alerts:
        ids = [a.pk for a in alerts]
        transaction.on_commit(lambda: analysis.notify_alerts(ids))
    return alerts


def _expected_band(
    model: al.ETRModel | None, intake: float | None, last: int
) -> list[dict[str, Any]]:
    if model is None or intake is None:
        return []
    # The band drawn is the off-track tolerance band (10th–90th percentile by default).
    p = al.SignalRules().off_track_percentile
    curve = model.curve(intake, sessions=range(1, max(last + 2, 8) + 1), percentiles=(100 - p, p))
    cols = [c for c in curve.columns if c.startswith("p")]
    bounds = curve[cols].to_numpy()
    return [
        {
            "session": int(session),
            "median": round(float(median), 2),
            "low": round(float(lo), 2),
            "high": round(float(hi), 2),
        }
        for session, median, lo, hi in zip(
            curve["session"], curve["expected"], bounds.min(axis=1), bounds.max(axis=1), strict=True
        )
    ]


def _alliance_frame(episode: Episode, scores: Sequence[Score]) -> pd.DataFrame:
    """One client's alliance ratings, column by column (total, subscales, items) for the engine."""
    inst = al.instrument(episode.alliance_instrument)
    mine = [
        s
        for s in scores
        if s.instrument == episode.alliance_instrument
        and s.rater == "client"
        and s.total is not None
    ]
    columns: dict[str, list[Any]] = {
        "client": ["c"] * len(mine),
        "session": [s.session_number for s in mine],
        "alliance": [s.total for s in mine],
    }
    for sub in inst.scoring.subscales:
        columns[f"alliance_{sub.id}"] = [(s.subscales or {}).get(sub.id) for s in mine]
    for item in inst.scored_items:
        columns[item.id] = [s.response.answers.get(item.id) for s in mine]
    return pd.DataFrame(columns)


def _ruptures(episode: Episode, frame: pd.DataFrame) -> list[dict[str, Any]]:
    if len(frame) < 3 or frame["session"].isna().any():
        return []
    inst = al.instrument(episode.alliance_instrument)
    items = [it.id for it in inst.scored_items if it.id in frame.columns]
    result = al.detect_ruptures(frame, RUPTURE_METHOD, instrument=inst, items=items or None)
    keep = (
        "start_session",
        "low_session",
        "repair_session",
        "status",
        "method",
        "depth",
        "depth_sd",
        "reasons",
    )
    return [{k: v for k, v in e.to_dict().items() if k in keep} for e in result.episodes]


def _gap(episode: Episode, alliance: dict[str, Any]) -> dict[str, Any]:
    therapist = {p["session"]: p["total"] for p in alliance["therapist"]}
    pairs = [
        (p["session"], p["total"], therapist[p["session"]])
        for p in alliance["client"]
        if p["session"] in therapist
    ]
    if len(pairs) < 2:
        return {
            "flag": False,
            "value": None,
            "reason": "Needs both ratings for at least two sessions.",
        }
    gap = al.perspective_gap(
        [c for _, c, _ in pairs],
        [t for _, _, t in pairs],
        client_rng=tuple(alliance["range"]),
        therapist_rng=tuple(alliance["therapist_range"]),
        sessions=[s for s, _, _ in pairs],
    )
    return {
        "flag": gap.flagged,
        "value": _finite(gap.mean_gap_z if gap.mean_gap_z is not None else gap.mean_gap_pomp),
        "reason": " ".join(gap.reasons),
        "therapist_higher": gap.therapist_higher,
        "diverging": gap.diverging,
        "method": gap.method,
    }


class Superseded(Exception):
    """A check-in arrived while the snapshot was computed: compute it again."""


def refresh(episode: Episode, *, actor: Actor) -> list[Alert]:
    """Recompute the episode's snapshot from its rows; return the alerts raised for new findings.

    Reads first, without locks (about ten queries), then writes in one short transaction that
    checks first that no check-in arrived meanwhile — the snapshot's ``computed_at`` is still the
    one read. If one did, everything written is rolled back and the snapshot computed again (up
    to :data:`REFRESH_ATTEMPTS` times; after that it stays stale for the next trigger).
    """
    for _ in range(REFRESH_ATTEMPTS):
        try:
            return _refresh_once(episode.pk, actor)
        except Superseded:
            continue
    log.info("snapshot of episode %s superseded %d times; left stale", episode.pk, REFRESH_ATTEMPTS)
    return []


class _AlertRow(NamedTuple):
    pk: int
    kind: str
    status: str
    created_at: datetime
    detail: dict[str, Any]


def _refresh_once(episode_id: int, actor: Actor) -> list[Alert]:
    from alliance_web.care.analysis import raise_alert

    now = timezone.now()
    # computed_at is read (with the episode) before the scores: the compare-and-set below then
    # fails for any check-in committed after this point, whether or not the reads saw it.
    episode = load_episode(episode_id)
    previous = getattr(episode, "insight", None)
    seen = previous.computed_at if previous is not None else None
    scores = list(episode.scores.all())
    sessions = list(episode.sessions.all())
    models = practice_models(episode.practice_id, episode.measure_plan)
    primary = signal_instrument(episode, models)

    # Recovery signals, per outcome instrument; the primary one speaks for the episode.
    results: list[al.SignalResult] = []
    model = None
    changed_scores: list[Score] = []
    for inst_id in episode.measure_plan:
        mine = [
            s
            for s in scores
            if s.instrument == inst_id and s.rater == "client" and s.total is not None
        ]
        inst_model = models.get(inst_id)
        try:
            inst_results, changed = _signals_for(inst_id, mine, inst_model)
        except al.InvalidParameter:
            continue  # no reliable-change norms and no model: this measure is shown, not signalled
        changed_scores.extend(changed)
        if inst_id == primary:
            results, model = inst_results, inst_model
    outcome = outcome_series(episode, scores, primary)  # points carry the signals
    alliance = alliance_series(episode, scores)
    signal: dict[str, Any] = {
        "code": Signal.NOT_ENOUGH_DATA,
        "label": Signal.NOT_ENOUGH_DATA.label,
        "reason": "Needs a first check-in."
        if not outcome.get("points")
        else "Needs more sessions.",
        "method": "",
        "session": None,
        "instrument": primary or "",
    }
    if results:
        last = results[-1]
        signal = {
            "code": last.signal,
            "label": Signal(last.signal).label,
            "reason": last.reason,
            "method": last.method,
            "session": int(last.session),
            "instrument": primary,
        }
        outcome["method"] = last.method
        intake = results[0].score if results[0].session == 1 else None
        outcome["expected"] = _expected_band(model, intake, int(last.session))

    # The relationship: ruptures, the two perspectives, dropout risk, stage, checklist.
    alliance["ruptures"] = _ruptures(episode, _alliance_frame(episode, scores))
    alliance["gap"] = _gap(episode, alliance)
    attended = [s for s in sessions if s.status == SessionStatus.ATTENDED]
    held = [s for s in sessions if s.status != SessionStatus.SCHEDULED and s.scheduled_at <= now]
    overdue = CheckIn.objects.filter(
        episode=episode,
        kind=CheckInKind.PRE_SESSION,
        status__in=[CheckInStatus.PENDING, CheckInStatus.STARTED, CheckInStatus.EXPIRED],
        expires_at__lt=now,
    ).count()
    alliance_inst = al.instrument(episode.alliance_instrument)
    primary_inst = al.instrument(primary) if primary else None
    threshold = None
    if primary_inst is not None:
        try:
            threshold = al.reliable_change_threshold(primary_inst).points
        except al.AllianceError:
            threshold = None
    warning = al.dropout_warning(
        [p["total"] for p in alliance["client"]],
        rng=tuple(alliance["range"]),
        statuses=[s.status for s in held],
        missed_checkins=overdue,
        outcome=[p["total"] for p in outcome.get("points", [])],
        outcome_direction=primary_inst.direction if primary_inst else "higher_is_worse",
        reliable_change=threshold,
        concern_threshold=alliance_inst.concern_threshold.value
        if alliance_inst.concern_threshold
        else None,
    )
    dropout = {
        "level": warning.risk,
        "flag": warning.risk == DROPOUT_ALERT_RISK
        and episode.status == EpisodeStatus.OPEN
        and len(attended) <= DROPOUT_ALERT_UNTIL_SESSION,
        "reasons": list(warning.reasons),
        "signs": list(warning.signs),
        "method": warning.method,
        "missed": warning.missed,
    }
    latest_client = alliance["client"][-1] if alliance["client"] else None
    sub = _normalised_subscales(alliance_inst, latest_client)
    goals_agreed, goal_progress = _goals(episode)
    planned_left = (
        episode.planned_end_session - len(attended) if episode.planned_end_session else None
    )
    suggestion = al.suggest_stage(
        len(attended),
        bond=sub.get("bond"),
        task=sub.get("task"),
        goal=sub.get("goal"),
        goals_agreed=goals_agreed,
        progress=goal_progress,
        sessions_left=planned_left,
        planned_ending=episode.status == EpisodeStatus.CLOSED,
    )
    last_assessment = (
        StageAssessment.objects.filter(episode=episode).order_by("-created_at", "-pk").first()
    )
    unrepaired = [r for r in alliance["ruptures"] if r.get("repair_session") is None]
    checklist_result = al.support_checklist(
        signal=signal["code"],
        rupture=bool(unrepaired),
        dropout=warning,
        gap=None,
        alliance=latest_client["normalised"] if latest_client else None,
        bond=sub.get("bond"),
        task=sub.get("task"),
        goal=sub.get("goal"),
        missed=warning.missed,
        goal_progress=goal_progress,
        sessions=len(attended),
    )
    checklist = [
        {
            "area": item.domain,
            "text": item.label + (" — " + " ".join(item.questions) if item.questions else ""),
            "evidence": "; ".join(item.evidence),
        }
        for item in checklist_result.items
    ]
    existing = [
        _AlertRow(*row)
        for row in Alert.objects.filter(episode=episode).values_list(
            "pk", "kind", "status", "created_at", "detail"
        )
    ]
    findings = {
        AlertKind.OFF_TRACK: signal["code"] == Signal.OFF_TRACK,
        AlertKind.RUPTURE: bool(unrepaired),
        AlertKind.DROPOUT: dropout["flag"],
        AlertKind.GAP: bool(alliance["gap"].get("flag")),
        AlertKind.MISSED: overdue >= 2,
    }
    last_checkin = max((s.administered_at for s in scores if s.rater == "client"), default=None)
    # No earlier than the newest score read, whatever this machine's clock says.
    computed_at = max([now, *(s.administered_at for s in scores)])

    with transaction.atomic(), audit_batch():
        stage = _record_stage(episode, suggestion, len(attended), last_assessment)
        # Alerts for new findings; actioned alerts whose concern has passed are resolved.
        alerts: list[Alert] = []
        resolved: set[int] = set()
        if episode.status == EpisodeStatus.OPEN:
            unresolved = {a.kind for a in existing if a.status in UNRESOLVED}
            session_no = signal.get("session")
            for kind, present in findings.items():
                if present and kind not in unresolved:
                    key_session = (
                        unrepaired[-1]["start_session"] if kind == AlertKind.RUPTURE else session_no
                    )
                    alert = raise_alert(
                        episode,
                        kind,
                        f"{kind}:{episode.public_id}:{key_session}:{len(scores)}",
                        session_number=key_session,
                        detail=_alert_detail(
                            kind, signal, unrepaired, dropout, alliance["gap"], overdue
                        ),
                        actor=actor,
                    )
                    if alert:
                        alerts.append(alert)
            passed = {kind for kind, present in findings.items() if not present}
            resolved |= {
                a.pk for a in existing if a.status == AlertStatus.ACTIONED and a.kind in passed
            }
        resolved |= _safety_resolved(existing, scores)
        if resolved:
            Alert.objects.filter(pk__in=resolved, status=AlertStatus.ACTIONED).update(
                status=AlertStatus.RESOLVED
            )
        # The caseload ranks by alerts still waiting for the therapist (an action closes the
        # wait), except safety: an acted-on safety alert stays on top until a later check-in is
        # clear.
        open_kinds = {a.kind for a in existing if a.status in NEEDS_ATTENTION}
        open_kinds |= {a.kind for a in alerts}
        if any(
            a.kind == AlertKind.SAFETY and a.status == AlertStatus.ACTIONED and a.pk not in resolved
            for a in existing
        ):
            open_kinds.add(AlertKind.SAFETY)
        triage = _triage(
            signal["code"], open_kinds, bool(unrepaired), dropout["flag"], alliance["gap"], overdue
        )
        _store(
            episode.pk,
            seen,
            {
                "computed_at": computed_at,
                "engine_version": al.__version__,
                "triage": triage,
                "signal": signal,
                "outcome": outcome,
                "alliance": alliance,
                "dropout": dropout,
                "stage": stage,
                "checklist": checklist,
                "last_checkin_at": last_checkin,
                "overdue_checkins": overdue,
            },
        )
        if changed_scores:
            Score.objects.bulk_update(changed_scores, ["signal", "signal_detail"])
    return alerts


def _store(episode_id: int, seen: datetime | None, values: dict[str, Any]) -> None:
    """Write the snapshot if it is still the one read (``seen``); else raise :class:`Superseded`."""
    if seen is None:
        try:
            with transaction.atomic():
                EpisodeInsight.objects.create(episode_id=episode_id, **values)
        except IntegrityError:  # a check-in stored a placeholder meanwhile
            raise Superseded from None
        return
    if not EpisodeInsight.objects.filter(episode_id=episode_id, computed_at=seen).update(**values):
        raise Superseded


def _safety_resolved(existing: Sequence[_AlertRow], scores: Sequence[Score]) -> set[int]:
    """Close the loop on safety: an alert with a recorded action is resolved once a later check-in
    of the same measure no longer endorses the critical item."""
    resolved = set()
    for alert in existing:
        if alert.kind != AlertKind.SAFETY or alert.status != AlertStatus.ACTIONED:
            continue
        instrument = (alert.detail or {}).get("instrument")
        later = [
            s
            for s in scores
            if s.instrument == instrument
            and s.rater == "client"
            and s.administered_at > alert.created_at
        ]
        if later and not any("safety" in flag for flag in later[-1].flags or []):
            resolved.add(alert.pk)
    return resolved


def _normalised_subscales(inst: al.Instrument, latest: dict[str, Any] | None) -> dict[str, float]:
    if not latest:
        return {}
    out = {}
    for sub in inst.scoring.subscales:
        value = (latest.get("subscales") or {}).get(sub.id)
        if value is None:
            continue
        lo = sum(inst.item(i).value_range[0] for i in sub.items)
        hi = sum(inst.item(i).value_range[1] for i in sub.items)
        if inst.scoring.subscale_method == "mean":
            lo, hi = lo / len(sub.items), hi / len(sub.items)
        out[sub.id] = round((float(value) - lo) / (hi - lo), 4)
    return out


def _goals(episode: Episode) -> tuple[bool, float | None]:
    """Whether goals were agreed, and the mean of each goal's latest rating out of 10 (one query)."""
    latest: dict[int, int] = {}
    rows = list(
        Goal.objects.filter(episode=episode)
        .order_by("pk", "ratings__rated_at", "ratings__pk")
        .values_list("pk", "ratings__value")
    )
    for goal_id, value in rows:
        if value is not None:
            latest[goal_id] = value
    progress = round(sum(latest.values()) / (10 * len(latest)), 3) if latest else None
    return bool(rows), progress


def _record_stage(
    episode: Episode, s: al.StageSuggestion, sessions: int, last: StageAssessment | None
) -> dict[str, Any]:
    if last is None or last.suggested_stage != s.stage:
        last = StageAssessment.objects.create(
            episode=episode,
            session_number=sessions,
            suggested_stage=s.stage,
            reasons=list(s.reasons),
            method=s.method,
            confirmed_stage=last.confirmed_stage if last else None,
        )
    return {
        "suggested": s.stage,
        "name": s.label,
        "key": s.key,
        "reasons": list(s.reasons),
        "guidance": list(s.guidance),
        "method": s.method,
        "note": s.note,
        "confirmed": last.confirmed_stage,
        "assessment": last.pk,
    }


def off_track_detail(signal: dict[str, Any]) -> dict[str, Any]:
    return _alert_detail(AlertKind.OFF_TRACK, signal, [], {}, {}, 0)


def _alert_detail(
    kind: str,
    signal: dict[str, Any],
    unrepaired: list[dict[str, Any]],
    dropout: dict[str, Any],
    gap: dict[str, Any],
    overdue: int,
) -> dict[str, Any]:
    if kind in (AlertKind.OFF_TRACK, AlertKind.AT_RISK):
        return {
            "signal": signal["code"],
            "rule": signal["reason"],
            "method": signal["method"],
            "instrument": signal["instrument"],
        }
    if kind == AlertKind.RUPTURE:
        r = unrepaired[-1]
        return {
            "rule": "; ".join(r.get("reasons") or []),
            "method": r.get("method"),
            "start_session": r.get("start_session"),
            "signal": signal["code"],
        }
    if kind == AlertKind.DROPOUT:
        return {
            "rule": "; ".join(dropout["reasons"]),
            "method": dropout["method"],
            "signs": dropout.get("signs", []),
            "signal": signal["code"],
        }
    if kind == AlertKind.GAP:
        return {
            "rule": gap.get("reason", ""),
            "method": gap.get("method", ""),
            "signal": signal["code"],
        }
    return {"rule": f"{overdue} check-ins not completed", "signal": signal["code"]}


def _triage(
    code: str, open_kinds: set[str], rupture: bool, dropout: bool, gap: dict[str, Any], overdue: int
) -> int:
    if AlertKind.SAFETY in open_kinds:
        return TRIAGE["safety"]
    if code == Signal.OFF_TRACK:
        return TRIAGE["off_track"]
    if rupture:
        return TRIAGE["rupture"]
    if dropout:
        return TRIAGE["dropout"]
    if gap.get("flag"):
        return TRIAGE["gap"]
    if overdue:
        return TRIAGE["overdue"]
    return TRIAGE.get(code, TRIAGE["not_enough_data"])


def outcome(episode: Episode) -> dict[str, Any] | None:
    """The outcome classification when an episode closes: reliable and clinically significant change
    from the first to the last score of the primary instrument (Jacobson & Truax 1991, or the
    instrument's published threshold), plus dropout."""
    primary = signal_instrument(episode)
    if primary is None:
        return None
    totals = list(
        Score.objects.filter(
            episode=episode, instrument=primary, rater="client", total__isnull=False
        )
        .order_by("administered_at", "pk")
        .values_list("total", flat=True)
    )
    base = {
        "instrument": primary,
        "dropout": episode.end_reason == "dropout",
        "n_scores": len(totals),
    }
    if len(totals) < 2:
        return {
            **base,
            "category": None,
            "reason": "Fewer than two scores: change cannot be assessed.",
        }
    change = al.reliable_change(primary, totals[0], totals[-1])
    return {
        **base,
        "category": change.category,
        "pre": totals[0],
        "post": totals[-1],
        "rci": _finite(change.rci),
        "reliable": bool(change.reliable),
        "threshold": _finite(change.threshold),
        "method": change.method,
    }
