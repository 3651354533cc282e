"""The engine's view of one episode, stored as an :class:`EpisodeInsight` snapshot.

:func:`refresh` runs inside the transaction of every change to an episode's data (a check-in, a
therapist rating, attendance); it reads the episode's rows once, calls the engine, stores the
snapshot, and raises alerts for new findings (deduplicated by cause). Pages only read snapshots.

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
from collections.abc import Sequence
from typing import Any

import pandas as pd
from django.db.models import Prefetch
from django.utils import timezone

import alliance as al
from alliance_web.audit.trail import Actor
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
    GoalRating,
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


def signal_instrument(episode: Episode) -> str | None:
    """The instrument whose course gives the episode its signal: the first of the measure plan that
    has reliable-change norms or a calibrated model (signals need one or the other)."""
    for inst_id in episode.measure_plan:
        try:
            al.reliable_change_threshold(inst_id)
            return str(inst_id)
        except al.AllianceError:
            if PracticeModel.objects.filter(
                practice_id=episode.practice_id, instrument=inst_id, active=True
            ).exists():
                return str(inst_id)
    return episode.primary_instrument


def outcome_series(episode: Episode, scores: Sequence[Score]) -> dict[str, Any]:
    primary = signal_instrument(episode)
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


def active_model(practice_id: int, instrument: str) -> al.ETRModel | None:
    """The practice's calibrated recovery model for an instrument, if it has one."""
    row = PracticeModel.objects.filter(
        practice_id=practice_id, instrument=instrument, active=True
    ).first()
    if row is None:
        return None
    try:
        return al.ETRModel.from_dict(row.model)
    except al.AllianceError:
        log.warning("stored model %s could not be loaded; using the rational rule", row.pk)
        return None


def _finite(x: Any) -> float | None:
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def _signals_for(
    episode: Episode, instrument: str, scores: list[Score], model: al.ETRModel | None
) -> list[al.SignalResult]:
    if not scores:
        return []
    results = al.course_signals(
        [s.session_number or i + 1 for i, s in enumerate(scores)],
        [s.total for s in scores],
        instrument,
        model=model,
        flags=[tuple(s.flags or ()) for s in scores],
    )
    changed = []
    for score, result in zip(scores, results, strict=True):
        detail = {
            "method": result.method,
            "reason": result.reason,
            "expected": _finite(result.expected),
            "at_risk_limit": _finite(result.at_risk_limit),
            "off_track_limit": _finite(result.off_track_limit),
            "change": _finite(result.change),
            "reliable_change": _finite(result.reliable_change),
            "model": result.model,
        }
        if score.signal != result.signal or score.signal_detail != detail:
            score.signal, score.signal_detail = result.signal, detail
            changed.append(score)
    if changed:
        Score.objects.bulk_update(changed, ["signal", "signal_detail"])
    return results


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


def refresh(episode: Episode, *, actor: Actor, new_scores: Sequence[Score] = ()) -> list[Alert]:
    """Recompute the snapshot; return alerts raised for new findings.

    With ``new_scores`` (a check-in just arrived) only what those scores can change is recomputed:
    the signals of their instruments, and ruptures and the perspective gap only when they are
    alliance ratings; the rest is carried over from the previous snapshot. Without it (attendance,
    an alert action, the nightly run) everything is recomputed.
    """
    from alliance_web.care.analysis import raise_alert

    episode = load_episode(episode.pk)
    previous = getattr(episode, "insight", None)
    changed = {s.instrument for s in new_scores} if (new_scores and previous is not None) else None
    scores = list(episode.scores.all())
    sessions = list(episode.sessions.all())
    now = timezone.now()
    outcome = outcome_series(episode, scores)
    alliance = alliance_series(episode, scores)
    primary = signal_instrument(episode)

    # Recovery signals, per outcome instrument; the primary one speaks for the episode.
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
    results: list[al.SignalResult] = []
    model = None
    for inst_id in episode.measure_plan:
        mine = [
            s
            for s in scores
            if s.instrument == inst_id and s.rater == "client" and s.total is not None
        ]
        if changed is not None and inst_id not in changed:
            continue  # unchanged: its scores keep their stored signals
        inst_model = active_model(episode.practice_id, inst_id)
        try:
            inst_results = _signals_for(episode, inst_id, mine, inst_model)
        except al.InvalidParameter:
            continue  # no reliable-change norms and no model: this measure is shown, not signalled
        if inst_id == primary:
            results, model = inst_results, inst_model
    if not results and changed is not None and primary not in changed and previous is not None:
        signal = dict(previous.signal or signal)
        outcome["method"] = (previous.outcome or {}).get("method", "")
        outcome["expected"] = (previous.outcome or {}).get("expected", [])
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
        outcome = outcome_series(episode, scores)  # points now carry the signals
        outcome["method"] = last.method
        intake = results[0].score if results[0].session == 1 else None
        outcome["expected"] = _expected_band(model, intake, int(last.session))

    # The relationship: ruptures, the two perspectives, dropout risk, stage, checklist.
    raters = {episode.alliance_instrument, episode.therapist_alliance_instrument}
    if changed is not None and not (changed & raters) and previous is not None:
        alliance["ruptures"] = (previous.alliance or {}).get("ruptures", [])
        alliance["gap"] = (previous.alliance or {}).get("gap", alliance["gap"])
    else:
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
    goal_progress = _goal_progress(episode)
    planned_left = (
        episode.planned_end_session - len(attended) if episode.planned_end_session else None
    )
    suggestion = al.suggest_stage(
        len(attended),
        bond=sub.get("bond"),
        task=sub.get("task"),
        goal=sub.get("goal"),
        goals_agreed=episode.goals.exists(),
        progress=goal_progress,
        sessions_left=planned_left,
        planned_ending=episode.status == EpisodeStatus.CLOSED,
    )
    stage = _record_stage(episode, suggestion, len(attended))
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

    # Alerts for new findings; actioned alerts whose concern has passed are resolved.
    alerts: list[Alert] = []
    if episode.status == EpisodeStatus.OPEN:
        unresolved = set(
            Alert.objects.filter(episode=episode, status__in=UNRESOLVED).values_list(
                "kind", flat=True
            )
        )
        session_no = signal.get("session")
        findings = {
            AlertKind.OFF_TRACK: signal["code"] == Signal.OFF_TRACK,
            AlertKind.RUPTURE: bool(unrepaired),
            AlertKind.DROPOUT: dropout["flag"],
            AlertKind.GAP: bool(alliance["gap"].get("flag")),
            AlertKind.MISSED: overdue >= 2,
        }
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
        passed = [kind for kind, present in findings.items() if not present]
        if passed:
            Alert.objects.filter(
                episode=episode, status=AlertStatus.ACTIONED, kind__in=passed
            ).update(status=AlertStatus.RESOLVED)

    _resolve_safety(episode, scores)
    # The caseload ranks by alerts still waiting for the therapist (an action closes the wait),
    # except safety: an acted-on safety alert stays on top until a later check-in is clear.
    open_kinds = set(
        Alert.objects.filter(episode=episode, status__in=NEEDS_ATTENTION).values_list(
            "kind", flat=True
        )
    )
    if Alert.objects.filter(
        episode=episode, kind=AlertKind.SAFETY, status=AlertStatus.ACTIONED
    ).exists():
        open_kinds.add(AlertKind.SAFETY)
    triage = _triage(
        signal["code"], open_kinds, bool(unrepaired), dropout["flag"], alliance["gap"], overdue
    )
    last_checkin = max((s.administered_at for s in scores if s.rater == "client"), default=None)
    EpisodeInsight.objects.update_or_create(
        episode=episode,
        defaults={
            "computed_at": now,
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
    return alerts


def _resolve_safety(episode: Episode, scores: Sequence[Score]) -> None:
    """Close the loop on safety: an alert with a recorded action is resolved once a later check-in
    of the same measure no longer endorses the critical item."""
    for alert in Alert.objects.filter(
        episode=episode, kind=AlertKind.SAFETY, status=AlertStatus.ACTIONED
    ):
        instrument = (alert.detail or {}).get("instrument")
        later = [
            s
            for s in scores
            if s.instrument == instrument
            and s.rater == "client"
            and s.administered_at > alert.created_at
        ]
        if later and not any("safety" in flag for flag in later[-1].flags or []):
            Alert.objects.filter(pk=alert.pk, status=AlertStatus.ACTIONED).update(
                status=AlertStatus.RESOLVED
            )


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


def _goal_progress(episode: Episode) -> float | None:
    latest: dict[int, int] = {}
    for goal_id, value in (
        GoalRating.objects.filter(goal__episode=episode)
        .order_by("rated_at", "pk")
        .values_list("goal_id", "value")
    ):
        latest[goal_id] = value
    return round(sum(latest.values()) / (10 * len(latest)), 3) if latest else None


def _record_stage(episode: Episode, s: al.StageSuggestion, sessions: int) -> dict[str, Any]:
    last = StageAssessment.objects.filter(episode=episode).order_by("-created_at", "-pk").first()
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
