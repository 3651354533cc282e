"""A clinical support checklist for a client who is off track, in rupture or at risk of dropout.

Feedback helps most for clients who are not on track, and more when the therapist also gets
support on what to check (clinical support tools; SCIENCE.md B5: g ≈ .36–.53 vs ≈ .15 for
feedback alone). The checklist covers the domains named in SPEC §2 — alliance, motivation,
social support, life events and treatment fit, which resemble the domains of published clinical
support tools (the item content of those tools was not retrieved, so nothing is copied from
them) — and orders them by what this client's own data point to, each line with its evidence.
The weights are *heuristic*.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from alliance.errors import InvalidParameter
from alliance.relationship._common import check_fraction, to_dict
from alliance.relationship.dropout import DropoutWarning
from alliance.relationship.gap import PerspectiveGap
from alliance.relationship.ruptures import RuptureEpisode
from alliance.signals import SIGNALS

__all__ = ["CHECKLIST_DOMAINS", "ChecklistItem", "SupportChecklist", "support_checklist"]

#: Domains in their default order (used to break ties), with label and what to ask.
CHECKLIST_DOMAINS: dict[str, tuple[str, tuple[str, ...]]] = {
    "alliance": (
        "The relationship",
        (
            "How are our sessions going for you? Is there anything I do that does not help?",
            "Do we agree on what we are working on and how?",
        ),
    ),
    "motivation": (
        "Motivation and readiness",
        (
            "How important is this change to you right now, and how confident are you?",
            "What gets in the way of coming to sessions or doing the tasks between them?",
        ),
    ),
    "social_support": (
        "Social support",
        (
            "Who in your life knows about this and supports you?",
            "Is anyone making things harder at the moment?",
        ),
    ),
    "life_events": (
        "Life events",
        (
            "Has anything happened recently — at home, at work, with health or money?",
            "Is something coming up that worries you?",
        ),
    ),
    "treatment_fit": (
        "Treatment fit",
        (
            "Is this approach the right one for what you came with? Should we change the plan, "
            "the frequency or add something (medication review, another service)?",
            "Does the diagnosis or problem list still fit?",
        ),
    ),
}

_TRIGGER_SIGNALS = ("off_track", "at_risk")


@dataclass(frozen=True, slots=True)
class ChecklistItem:
    """One line of the checklist: a domain, why it is placed here, and what to ask."""

    rank: int
    domain: str
    label: str
    weight: float
    evidence: tuple[str, ...]
    questions: tuple[str, ...]

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


@dataclass(frozen=True, slots=True)
class SupportChecklist:
    """The checklist (empty when nothing triggered it) and what triggered it."""

    triggered: bool
    triggers: tuple[str, ...]
    items: tuple[ChecklistItem, ...]
    method: str = "support_checklist_v1"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def support_checklist(
    *,
    signal: str | None = None,
    rupture: RuptureEpisode | bool | None = None,
    dropout: DropoutWarning | str | None = None,
    gap: PerspectiveGap | None = None,
    alliance: float | None = None,
    alliance_items: Mapping[str, float] | None = None,
    bond: float | None = None,
    task: float | None = None,
    goal: float | None = None,
    missed: int = 0,
    goal_progress: float | None = None,
    social_support: float | None = None,
    life_events: Sequence[str] = (),
    outcome_worsened: bool = False,
    no_early_change: bool = False,
    sessions: int | None = None,
    low: float = 0.6,
    force: bool = False,
) -> SupportChecklist:
    """The support checklist for one client, ordered by this client's data.

    Parameters
    ----------
    signal
        The recovery signal (``off_track`` and ``at_risk`` trigger the checklist).
    rupture
        A current rupture episode (or True).
    dropout
        The dropout warning (or its risk: ``elevated``/``high`` trigger).
    gap
        The perspective gap (its flags add alliance evidence).
    alliance, alliance_items, bond, task, goal
        Latest alliance total, items and subscales, on the 0–1 scale.
    missed
        Missed sessions or check-ins recently.
    goal_progress
        Mean goal rating on 0–1.
    social_support
        A 0–1 rating of social support, where the practice measures one (higher = better).
    life_events
        Life events reported by the client or noted by the therapist.
    outcome_worsened
        The outcome got reliably worse (e.g. since the previous sessions).
    no_early_change
        No early change in the outcome (from the dropout rule).
    sessions
        Sessions so far.
    low
        Ratings below this (0–1) count as low (*heuristic*, 0.6).
    force
        Produce the list even when nothing triggered it.

    Returns
    -------
    SupportChecklist
        Five lines, highest weight first (ties in the default order: alliance, motivation,
        social support, life events, treatment fit); every line lists its evidence, or says
        that no data pointed there.

    Notes
    -----
    Weights (*heuristic*): alliance — rupture 3, therapist rates markedly higher 2, diverging
    trends 1, low total 2, each low item 1 (at most 2), low bond 1; motivation — each missed
    session 1 (at most 3), dropout risk high 2 / elevated 1, low goal progress 1; social
    support — low rating 2; life events — each event 2 (at most 4), outcome worsened 2;
    treatment fit — off track 2 / at risk 1, no early change 2, low task or goal agreement 1
    each.

    Examples
    --------
    >>> c = support_checklist(signal="off_track", alliance_items={"bond_1": 0.25}, alliance=0.5)
    >>> [i.domain for i in c.items][:2]
    ['alliance', 'treatment_fit']
    """
    check_fraction(low, "low")
    for name, v in (
        ("alliance", alliance),
        ("bond", bond),
        ("task", task),
        ("goal", goal),
        ("goal_progress", goal_progress),
        ("social_support", social_support),
    ):
        if v is not None:
            check_fraction(v, name)
    if missed < 0:
        raise InvalidParameter("missed cannot be negative")
    if signal is not None and signal not in (*SIGNALS, "no_signal"):
        raise InvalidParameter(f"unknown signal {signal!r}")

    triggers: list[str] = []
    if signal in _TRIGGER_SIGNALS:
        triggers.append(signal)
    if rupture:
        triggers.append("rupture")
    risk = dropout.risk if isinstance(dropout, DropoutWarning) else dropout
    if risk in ("elevated", "high"):
        triggers.append(f"dropout_risk_{risk}")
    if not triggers and not force:
        return SupportChecklist(triggered=False, triggers=(), items=())

    ev: dict[str, list[tuple[float, str]]] = {d: [] for d in CHECKLIST_DOMAINS}

    # alliance
    if isinstance(rupture, RuptureEpisode):
        ev["alliance"].append(
            (3, f"alliance rupture since session {rupture.start_session} ({rupture.method})")
        )
    elif rupture:
        ev["alliance"].append((3, "an alliance rupture was detected"))
    if gap is not None:
        if gap.therapist_higher:
            ev["alliance"].append((2, "you rate the relationship markedly higher than the client"))
        if gap.diverging:
            ev["alliance"].append((1, "the client's rating is falling while yours is not"))
    if alliance is not None and alliance < low:
        ev["alliance"].append((2, f"alliance rated {100 * alliance:.0f}/100"))
    lows = sorted((v, k) for k, v in (alliance_items or {}).items() if v < low)
    for v, k in lows[:2]:
        check_fraction(v, f"alliance item {k}")
        ev["alliance"].append((1, f"item {k} rated {100 * v:.0f}/100"))
    if bond is not None and bond < low:
        ev["alliance"].append((1, f"bond rated {100 * bond:.0f}/100"))

    # motivation
    if missed:
        ev["motivation"].append((min(missed, 3), f"{missed} missed session(s) or check-in(s)"))
    if risk == "high":
        ev["motivation"].append((2, "high dropout risk"))
    elif risk == "elevated":
        ev["motivation"].append((1, "elevated dropout risk"))
    if goal_progress is not None and goal_progress < low:
        ev["motivation"].append((1, f"goal progress {100 * goal_progress:.0f}/100"))

    # social support
    if social_support is not None and social_support < low:
        ev["social_support"].append((2, f"social support rated {100 * social_support:.0f}/100"))

    # life events
    for e in list(life_events)[:2]:
        ev["life_events"].append((2, f"reported: {e}"))
    if outcome_worsened:
        ev["life_events"].append((2, "the outcome got reliably worse — ask what happened"))

    # treatment fit
    if signal == "off_track":
        ev["treatment_fit"].append((2, "off track against the expected recovery"))
    elif signal == "at_risk":
        ev["treatment_fit"].append((1, "at risk against the expected recovery"))
    if no_early_change:
        ev["treatment_fit"].append((2, "no early change in the outcome measure"))
    for name, v in (("task", task), ("goal", goal)):
        if v is not None and v < low:
            ev["treatment_fit"].append((1, f"{name} agreement rated {100 * v:.0f}/100"))
    if sessions is not None and signal == "off_track" and sessions >= 6:
        ev["treatment_fit"].append((1, f"{sessions} sessions without getting on track"))

    order = list(CHECKLIST_DOMAINS)
    scored = sorted(order, key=lambda d: (-sum(w for w, _ in ev[d]), order.index(d)))
    items = []
    for rank, d in enumerate(scored, start=1):
        label, questions = CHECKLIST_DOMAINS[d]
        evidence = tuple(t for _, t in ev[d]) or ("no data pointed here — ask briefly",)
        items.append(
            ChecklistItem(
                rank=rank,
                domain=d,
                label=label,
                weight=float(sum(w for w, _ in ev[d])),
                evidence=evidence,
                questions=questions,
            )
        )
    return SupportChecklist(triggered=bool(triggers), triggers=tuple(triggers), items=tuple(items))
