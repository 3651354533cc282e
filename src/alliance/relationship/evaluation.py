"""How well the relationship methods recover a simulated practice's known truth.

Used by the acceptance tests and by ``bench/relationship.py`` (figures in
``docs/algorithms/ruptures.md``, ``dropout.md`` and ``within_between.md``). Works on the
tables of :func:`alliance.simulate.simulate_practice` (any object with ``alliance``,
``ruptures``, ``sessions``, ``scores``, ``clients`` and ``params``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, Protocol

import pandas as pd

from alliance.relationship._common import to_dict
from alliance.relationship.analytics import WithinBetween, alliance_outcome_effects
from alliance.relationship.dropout import DropoutModel, auc, dropout_features, fit_dropout_model
from alliance.relationship.ruptures import (
    RUPTURE_METHODS,
    RuptureConfig,
    detect_ruptures,
    score_detection,
)
from alliance.relationship.series import scale_range

#: Depth (in SDs) from which a simulated rupture counts as clear: the stricter of the 1 and 2 SD
#: criteria Gumz et al. (2012) propose to report side by side.
CLEAR_SD = 2.0

__all__ = [
    "HoldoutReport",
    "MethodScore",
    "dropout_holdout",
    "dropout_sessions",
    "rupture_scores",
    "within_effect",
]


class Practice(Protocol):
    """The tables of a simulated practice that the evaluation reads (read-only)."""

    @property
    def alliance(self) -> pd.DataFrame: ...
    @property
    def ruptures(self) -> pd.DataFrame: ...
    @property
    def sessions(self) -> pd.DataFrame: ...
    @property
    def scores(self) -> pd.DataFrame: ...
    @property
    def clients(self) -> pd.DataFrame: ...


@dataclass(frozen=True, slots=True)
class MethodScore:
    """Recall and precision of one rupture method on one simulated practice."""

    method: str
    detected: int
    true_observed: int
    true_clear: int
    recall_all: float
    recall_clear: float
    precision: float
    repair_agreement: float | None
    caught_missed_by_absolute: int
    true_ceiling: int
    recall_ceiling: float | None
    precision_timely: float
    true_clear_generating: int | None
    recall_clear_generating: float | None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def rupture_scores(
    practice: Practice,
    methods: Sequence[str] = RUPTURE_METHODS,
    *,
    instrument: str = "wai_sr",
    config: RuptureConfig | None = None,
    subscales: Literal["auto"] | None = "auto",
) -> list[MethodScore]:
    """Recall (all observed ruptures, and clear ones) and precision of each method.

    Notes
    -----
    The truth is the simulator's ruptures that fall on an attended session (``observed``);
    ``clear`` ones show in the ratings: the rating at the rupture's lowest attended session is
    at least 2 observed within-client SDs below the client's usual level (the simulator's
    ``clear``; ``docs/algorithms/simulation.md``). ``recall_clear_generating`` uses the
    generating depth instead (``dip_sd`` ≥ 2 latent state SDs), for comparison.

    A true rupture is *found* when a detected episode of the same client starts between the
    true start and one session after the true low point (:func:`score_detection`).
    ``precision`` is the share of detected episodes that are real: found a true rupture in
    that window, or started while a true rupture of the client was still under way (a late
    alarm; ``credit_during``, Tatbul et al. 2018); a detected shallow rupture is not a false
    alarm. ``precision_timely`` counts only the episodes that found a rupture in the window.
    ``caught_missed_by_absolute``: clear ruptures the method finds that the absolute rule does
    not. ``recall_ceiling``: recall on the observed ruptures of clients who rated the alliance
    at the scale maximum in every session before it.
    """
    truth = practice.ruptures
    observed = truth[truth["observed"]] if "observed" in truth.columns else truth
    clear = observed[observed["clear"]] if "clear" in observed.columns else observed
    clear_gen = observed[observed["dip_sd"] >= CLEAR_SD] if "dip_sd" in observed.columns else None
    found: dict[str, Any] = {}
    for method in dict.fromkeys(["absolute", *methods]):
        found[method] = detect_ruptures(
            practice.alliance,
            method=method,
            instrument=instrument,
            config=config,
            subscales=subscales,
        )

    def matched(method: str) -> set[tuple[str, int]]:
        eps = found[method].episodes
        out = set()
        for _, row in clear.iterrows():
            c, s0, low = str(row["client"]), int(row["start_session"]), int(row["low_session"])
            if any(e.client == c and s0 <= e.start_session <= low + 1 for e in eps):
                out.add((c, s0))
        return out

    absolute = matched("absolute")
    top = scale_range(instrument).high
    al = practice.alliance
    at_top = []
    for _, row in observed.iterrows():
        prior = al[(al["client"] == row["client"]) & (al["session"] < row["start_session"])]
        at_top.append(len(prior) >= 2 and bool((prior["alliance"] >= top).all()))
    ceiling_truth = observed[at_top]
    scores = []
    for method in methods:
        s_all = score_detection(found[method], observed)
        s_fair = score_detection(found[method], observed, credit_during=True)
        s_clear = score_detection(found[method], clear)
        s_gen = None if clear_gen is None else score_detection(found[method], clear_gen)
        s_top = score_detection(found[method], ceiling_truth) if len(ceiling_truth) else None
        scores.append(
            MethodScore(
                method=method,
                detected=len(found[method]),
                true_observed=len(observed),
                true_clear=len(clear),
                recall_all=s_all.recall,
                recall_clear=s_clear.recall,
                precision=s_fair.precision,
                repair_agreement=s_all.repair_agreement,
                caught_missed_by_absolute=len(matched(method) - absolute),
                true_ceiling=len(ceiling_truth),
                recall_ceiling=None if s_top is None else s_top.recall,
                precision_timely=s_all.precision,
                true_clear_generating=None if clear_gen is None else len(clear_gen),
                recall_clear_generating=None if s_gen is None else s_gen.recall,
            )
        )
    return scores


def dropout_sessions(practice: Practice, *, outcome: str = "phq9") -> pd.DataFrame:
    """The practice in the ``alliance dropout`` input format (one row per scheduled session)."""
    s = practice.sessions[["client", "session", "status"]].copy()
    a = practice.alliance[["client", "session", "alliance"]]
    y = practice.scores
    y = y[y["instrument"].astype(str) == outcome][["client", "session", "score"]]
    out = s.merge(a, on=["client", "session"], how="left").merge(
        y, on=["client", "session"], how="left"
    )
    dropped = practice.clients.set_index("client")["dropped_out"].astype(float)
    out["dropped_out"] = out["client"].map(dropped)
    out["status"] = out["status"].astype(str)
    return out


@dataclass(frozen=True, slots=True)
class HoldoutReport:
    """The dropout model trained on one practice and tested on another."""

    model: DropoutModel
    holdout_auc: float
    holdout_n: int
    holdout_events: int
    rule_auc: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def dropout_holdout(
    train: Practice,
    test: Practice,
    *,
    rng: tuple[float, float] = (12.0, 60.0),
    window: int = 3,
    penalty: float = 1.0,
) -> HoldoutReport:
    """Train the dropout model on ``train`` and report its AUC on ``test``'s episodes.

    ``rule_auc`` is the AUC of the day-one rule's count of warning signs (computed from the
    same features with the default thresholds) on the test episodes, for comparison.
    """
    f_train = dropout_features(dropout_sessions(train), rng=rng, window=window)
    model = fit_dropout_model(f_train, penalty=penalty)
    f_test = dropout_features(dropout_sessions(test), rng=rng, window=window)
    f_test = f_test[f_test["reached_window"] & f_test["dropped_out"].notna()]
    p = model.predict_proba(f_test)
    y = f_test["dropped_out"].to_numpy(dtype=float)
    signs = (
        (f_test["early_alliance"] < 0.5).astype(float)
        + (f_test["missed_share"] > 0).astype(float)
        + (f_test["early_improvement"] <= 0).astype(float)
    )
    return HoldoutReport(
        model=model,
        holdout_auc=auc(y, p),
        holdout_n=int(y.size),
        holdout_events=int(y.sum()),
        rule_auc=auc(y, signs.to_numpy()),
    )


def within_effect(practice: Practice, *, outcome: str = "phq9") -> WithinBetween:
    """Within- and between-client effects of alliance on the next session's outcome."""
    y = practice.scores
    y = y[y["instrument"].astype(str) == outcome][["client", "session", "score"]]
    data = practice.alliance[["client", "session", "alliance"]].merge(
        y, on=["client", "session"], how="inner"
    )
    return alliance_outcome_effects(data, outcome="score")
