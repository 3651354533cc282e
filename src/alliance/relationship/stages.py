"""Four stages of the therapeutic relationship — a suggestion the therapist confirms.

Engagement and trust → shared goals and tasks → working and challenge → consolidation and
ending. The literature offers phase descriptions (Horvath & Luborsky 1993: an initial formation
phase, then a challenge phase; Peplau 1952: orientation, identification, exploitation,
resolution) but **no validated numeric criteria** for any stage model (SCIENCE.md B6). The rules
here are therefore documented, configurable *heuristics*; every threshold in
:class:`StageConfig` is one, and the result always says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from alliance.errors import InvalidParameter
from alliance.relationship._common import check_fraction, to_dict

__all__ = ["STAGES", "StageConfig", "StageSuggestion", "suggest_stage"]

#: (number, key, label) of the four stages.
STAGES: tuple[tuple[int, str, str], ...] = (
    (1, "engagement", "Engagement and trust"),
    (2, "shared_goals", "Shared goals and tasks"),
    (3, "working", "Working and challenge"),
    (4, "consolidation", "Consolidation and ending"),
)

GUIDANCE: dict[str, tuple[str, ...]] = {
    "engagement": (
        "Explain how therapy and the check-ins work, and what to expect in the next sessions.",
        "Check that the client feels heard and understood; ask what would make sessions easier.",
        "Agree how you will notice and talk about anything in the relationship that is not "
        "working.",
    ),
    "shared_goals": (
        "Agree up to three goals in the client's own words and how progress will be rated.",
        "Explain the method and check that the tasks make sense to the client.",
        "Ask directly whether the plan fits what the client came for.",
    ),
    "working": (
        "Expect strain when you challenge or expose: watch the alliance after demanding sessions.",
        "If the client's rating drops, name it and explore it without defending (rupture repair).",
        "Review goal progress regularly and adjust tasks that are not helping.",
    ),
    "consolidation": (
        "Review what has changed and what helped, in the client's words.",
        "Plan for setbacks: early signs, what the client will do, when to come back.",
        "Talk about the ending itself and how the client feels about it.",
    ),
}

NOTE = (
    "A suggestion from documented heuristics: no validated numeric criteria for relationship "
    "stages exist in the literature. Confirm or correct it."
)


@dataclass(frozen=True, slots=True)
class StageConfig:
    """Thresholds of the stage heuristics (all *heuristic*; ratings on the 0–1 scale).

    Parameters
    ----------
    engagement_sessions
        Up to this many sessions the relationship is still forming (default 3; Horvath &
        Luborsky 1993 describe an initial phase of roughly the first sessions — the exact
        number is unverified, SCIENCE.md B6).
    bond_threshold
        A bond rating below this keeps the suggestion at engagement (default 0.6).
    agreement_threshold
        Goal or task ratings below this mean goals and tasks are not yet shared (default 0.6).
    ending_horizon
        With this many sessions or fewer left, suggest consolidation (default 3).
    progress_threshold
        Progress (0–1, e.g. mean goal rating / 10) at or above this, after ``min_working``
        sessions, suggests consolidation (default 0.8).
    min_working
        Sessions before progress alone can suggest consolidation (default 6).
    """

    engagement_sessions: int = 3
    bond_threshold: float = 0.6
    agreement_threshold: float = 0.6
    ending_horizon: int = 3
    progress_threshold: float = 0.8
    min_working: int = 6

    def __post_init__(self) -> None:
        for name in ("bond_threshold", "agreement_threshold", "progress_threshold"):
            check_fraction(getattr(self, name), name)
        if self.engagement_sessions < 0 or self.ending_horizon < 0 or self.min_working < 0:
            raise InvalidParameter("session counts cannot be negative")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


@dataclass(frozen=True, slots=True)
class StageSuggestion:
    """A suggested relationship stage with the reasons and what to do in it."""

    stage: int
    key: str
    label: str
    reasons: tuple[str, ...]
    guidance: tuple[str, ...]
    note: str = NOTE
    method: str = "stage_heuristic_v1"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def _make(stage: int, reasons: list[str]) -> StageSuggestion:
    _, key, label = STAGES[stage - 1]
    return StageSuggestion(stage, key, label, tuple(reasons), GUIDANCE[key])


def suggest_stage(
    sessions: int,
    *,
    bond: float | None = None,
    task: float | None = None,
    goal: float | None = None,
    goals_agreed: bool | None = None,
    progress: float | None = None,
    sessions_left: int | None = None,
    planned_ending: bool = False,
    config: StageConfig | None = None,
) -> StageSuggestion:
    """Suggest the relationship stage from what is known about this client so far.

    Parameters
    ----------
    sessions
        Sessions held so far.
    bond, task, goal
        Latest alliance subscale ratings on the 0–1 scale (e.g. WAI-SR bond, task, goal via
        :func:`alliance.relationship.normalise`); ``None`` when not measured.
    goals_agreed
        Whether therapy goals have been agreed and recorded.
    progress
        Progress towards the goals on 0–1 (e.g. mean goal rating / 10, or the share of the
        expected improvement reached).
    sessions_left
        Sessions left in the plan, if known.
    planned_ending
        True when an ending has been planned.
    config
        :class:`StageConfig`.

    Returns
    -------
    StageSuggestion
        ``stage`` (1–4), ``key``, ``label``, ``reasons``, stage-specific ``guidance``, and a
        ``note`` that this is a heuristic suggestion.

    Notes
    -----
    Checked in this order (first match wins):

    4. consolidation — ``planned_ending``, or ``sessions_left ≤ ending_horizon``, or
       ``progress ≥ progress_threshold`` after at least ``min_working`` sessions;
    1. engagement — ``sessions ≤ engagement_sessions``, or ``bond < bond_threshold``;
    2. shared goals — goals not agreed, or ``goal`` or ``task < agreement_threshold``;
    3. working — otherwise.

    Examples
    --------
    >>> suggest_stage(2).key
    'engagement'
    >>> s = suggest_stage(8, bond=0.8, task=0.75, goal=0.7, goals_agreed=True)
    >>> s.stage, s.label
    (3, 'Working and challenge')
    """
    cfg = config or StageConfig()
    if sessions < 0:
        raise InvalidParameter("sessions cannot be negative")
    for name, v in (("bond", bond), ("task", task), ("goal", goal), ("progress", progress)):
        if v is not None:
            check_fraction(v, name)

    if planned_ending:
        return _make(4, ["an ending has been planned"])
    if sessions_left is not None and sessions_left <= cfg.ending_horizon:
        return _make(4, [f"{sessions_left} session(s) left in the plan"])
    if progress is not None and progress >= cfg.progress_threshold and sessions >= cfg.min_working:
        return _make(
            4,
            [
                f"progress {100 * progress:.0f}/100 after {sessions} sessions "
                f"(≥ {100 * cfg.progress_threshold:.0f})"
            ],
        )

    reasons: list[str] = []
    if sessions <= cfg.engagement_sessions:
        reasons.append(f"{sessions} session(s) so far: the relationship is still forming")
    if bond is not None and bond < cfg.bond_threshold:
        reasons.append(
            f"bond rated {100 * bond:.0f}/100 (below {100 * cfg.bond_threshold:.0f}): "
            "trust is not yet established"
        )
    if reasons:
        return _make(1, reasons)

    if goals_agreed is False:
        reasons.append("no goals have been agreed yet")
    for name, v in (("goal", goal), ("task", task)):
        if v is not None and v < cfg.agreement_threshold:
            reasons.append(
                f"{name} agreement rated {100 * v:.0f}/100 "
                f"(below {100 * cfg.agreement_threshold:.0f})"
            )
    if reasons:
        return _make(2, reasons)

    reasons.append(f"{sessions} sessions, bond established and goals and tasks shared")
    if goals_agreed is None and goal is None and task is None:
        reasons.append("goal and task agreement not measured: assumed shared")
    return _make(3, reasons)
