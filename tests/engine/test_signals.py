"""alliance.signals: the empirical and rational rules, safety pass-through, and validation.

The rules are checked against hand-computed expectations: for the empirical method a model
with known parameters (expected score = intake, predictive SD 2) so that the percentile limits
are ``intake + Φ⁻¹(p)·2``; for the rational method the PHQ-9's published reliable-change
threshold (6 points, IAPT) and caseness cutoff (10).
"""

from __future__ import annotations

import doctest
import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

import alliance as al
from alliance import recovery, signals
from alliance.errors import InsufficientData, InvalidParameter


def known_model(direction: str = "higher_is_worse") -> recovery.LogLinearIntake:
    """Expected score = intake at every session; predictive variance 4 (SD 2)."""
    zero4 = tuple(tuple(0.0 for _ in range(4)) for _ in range(4))
    return recovery.LogLinearIntake(
        direction=direction,
        instrument=None,
        n_obs=1,
        n_clients=1,
        coef=(0.0, 0.0, 1.0, 0.0),
        coef_cov=zero4,
        re_cov=((0.0, 0.0), (0.0, 0.0)),
        residual_var=4.0,
        reml_criterion=math.nan,
        session_range=(2.0, 20.0),
        intake_range=(0.0, 27.0),
    )


P90 = stats.norm.ppf(0.90) * 2  # 2.563
P75 = stats.norm.ppf(0.75) * 2  # 1.349


@pytest.mark.parametrize(
    ("intake", "score", "signal"),
    [
        (15, 15 + P90 + 0.01, "off_track"),
        (15, 15 + P90 - 0.01, "at_risk"),
        (15, 15 + P75 + 0.01, "at_risk"),
        (15, 15 + P75 - 0.01, "on_track"),
        (15, 12, "on_track"),  # 3 better than expected, not a reliable change (6)
        (20, 14, "improved"),  # −6 from intake, still ≥ 10
        (15, 9, "recovered"),  # −6 from intake and below the cutoff 10
        (12, 22, "off_track"),  # far above the band
    ],
)
def test_the_empirical_rule_compares_the_score_with_the_bands(intake, score, signal):
    out = al.course_signals([1, 4], [intake, score], "phq9", model=known_model())
    assert out[0].signal == "not_enough_data"
    res = out[1]
    assert (res.signal, res.method, res.model) == (signal, "empirical_etr", "loglinear_intake")
    assert res.expected == pytest.approx(intake)
    assert res.off_track_limit == pytest.approx(intake + P90)
    assert res.at_risk_limit == pytest.approx(intake + P75)


def test_the_empirical_reason_reads_like_a_sentence():
    out = al.course_signals([1, 4], [11, 19], "phq9", model=known_model())
    assert out[1].reason == (
        "8 points above the expected 11 at session 4; outside the 90th percentile band (limit 13.6)"
    )
    out = al.course_signals([1, 4], [11, 12.5], "phq9", model=known_model())
    assert out[1].reason == (
        "1.5 points above the expected 11 at session 4; beyond the 75th percentile (12.3), "
        "within the 90th (13.6)"
    )


def test_the_empirical_bands_follow_the_direction_of_a_higher_is_better_scale():
    model = known_model("higher_is_better")
    rules = al.SignalRules(change_options=(("threshold", 3.0),))
    out = al.course_signals(
        [1, 3, 3.5], [15, 15 - P90 - 0.01, 15 + 5], "who5", model=model, rules=rules
    )
    assert [o.signal for o in out] == ["not_enough_data", "off_track", "improved"]
    assert out[1].off_track_limit == pytest.approx(15 - P90)
    assert "below the expected 15" in out[1].reason


@pytest.mark.parametrize(
    ("scores", "signals_expected"),
    [
        # intake 18 (clinical); PHQ-9 reliable change 6 points, caseness 10
        ([18, 17, 24, 18, 12, 9], ["on_track", "off_track", "at_risk", "improved", "recovered"]),
        ([18, 12, 13, 13, 14, 15], ["improved", "on_track", "at_risk", "at_risk", "at_risk"]),
        ([8, 3, 2, 8, 14, 9], ["on_track", "improved", "at_risk", "off_track", "at_risk"]),
    ],
)
def test_the_rational_rule_uses_reliable_change_from_intake(scores, signals_expected):
    out = al.course_signals([1, 2, 3, 4, 5, 6], scores, "phq9")
    assert out[0].signal == "not_enough_data"
    assert [o.signal for o in out[1:]] == signals_expected
    assert {o.method for o in out} == {"rational_reliable_change"}
    assert all(o.reliable_change == 6 for o in out[1:])


def test_a_client_below_caseness_at_intake_improves_but_does_not_recover():
    # Recovery needs a clinical intake (Jacobson & Truax 1991); intake 8 < 10 is not clinical.
    out = al.course_signals([1, 2], [8, 2], "phq9")
    assert out[1].signal == "improved"


def test_the_at_risk_session_is_configurable():
    rules = al.SignalRules(at_risk_session=6)
    out = al.course_signals([1, 2, 3, 4, 5, 6], [18, 17, 17, 16, 16, 16], "phq9", rules=rules)
    assert [o.signal for o in out[1:]] == ["on_track"] * 4 + ["at_risk"]
    assert out[5].reason == "no reliable improvement by session 6: 2 points below intake, 6 needed"


def test_safety_is_passed_through_from_the_scorer_flags():
    out = al.course_signals([1, 2, 3], [18, 17, 12], "phq9", flags=[(), ("safety",), ()])
    assert [o.safety for o in out] == [False, True, False]
    assert out[1].flags == ("safety",)
    assert out[1].signal == "on_track"  # safety does not change the recovery signal


def test_the_scorer_flags_feed_safety_end_to_end():
    phq9 = al.instrument("phq9")
    items = [i.id for i in phq9.scored_items]
    answers = [dict.fromkeys(items, 2) | {"phq9_9": 0}, dict.fromkeys(items, 2) | {"phq9_9": 1}]
    scored = [al.score_one("phq9", a) for a in answers]
    out = al.course_signals(
        [1, 2], [s.total for s in scored], "phq9", flags=[s.flags for s in scored]
    )
    assert [o.safety for o in out] == [False, True]


def test_sessions_without_an_intake_score_have_not_enough_data():
    out = al.course_signals([2, 3], [18, 25], "phq9")
    assert [o.signal for o in out] == ["not_enough_data"] * 2
    assert out[0].reason == "no intake (session 1) score to compare with"


def test_method_auto_picks_empirical_with_a_model_and_rational_without():
    assert al.course_signals([1, 2], [18, 17], "phq9")[1].method == "rational_reliable_change"
    out = al.course_signals([1, 2], [18, 17], "phq9", model=known_model())
    assert out[1].method == "empirical_etr"
    forced = al.course_signals(
        [1, 2], [18, 17], "phq9", model=known_model(), method="rational_reliable_change"
    )
    assert forced[1].method == "rational_reliable_change"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "empirical_etr"}, "needs an expected-recovery model"),
        ({"method": "magic"}, "unknown signal method"),
        ({"model": known_model("higher_is_better")}, "fitted for higher_is_better"),
        ({"instrument": None}, "change_options"),
        ({"flags": [()]}, "one entry per administration"),
    ],
)
def test_bad_signal_requests_are_refused_with_a_reason(kwargs, message):
    args = {"instrument": "phq9"} | kwargs
    with pytest.raises(InvalidParameter, match=message):
        al.course_signals([1, 2], [18, 17], **args)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"off_track_percentile": 101},
        {"at_risk_percentile": 40},
        {"at_risk_percentile": 95},
        {"at_risk_session": 1},
    ],
)
def test_signal_rules_reject_values_out_of_range(kwargs):
    with pytest.raises(InvalidParameter):
        al.SignalRules(**kwargs)


def test_a_custom_scale_works_with_explicit_change_options():
    rules = al.SignalRules(change_options={"threshold": 5.0, "cutoff": 20.0})
    out = al.course_signals([1, 2, 3], [30, 24, 18], None, rules=rules, direction="higher_is_worse")
    assert [o.signal for o in out[1:]] == ["improved", "recovered"]


def test_the_batch_form_agrees_with_the_per_client_form():
    data = recovery.example_data(40)
    model = al.fit_etr(data, instrument="phq9")
    batch = al.signals_frame(data, "phq9", model=model)
    for cid, course in data.groupby("client"):
        one = al.course_signals(course["session"], course["score"], "phq9", model=model)
        got = batch[batch["client"] == cid]
        assert got["signal"].tolist() == [o.signal for o in one]
        assert got["reason"].tolist() == [o.reason for o in one]


def test_the_batch_form_reads_a_flags_column():
    data = pd.DataFrame(
        {
            "client": ["a", "a", "b"],
            "session": [1, 2, 1],
            "score": [18, 20, 9],
            "flags": [(), ("safety",), ()],
        }
    )
    out = al.signals_frame(data, "phq9", flags="flags")
    assert out["safety"].tolist() == [False, True, False]


def test_hit_rates_are_the_proportions_of_the_two_by_two_table():
    flagged = np.array([1, 1, 1, 0, 0, 0, 0, 1], bool)
    poor = np.array([1, 1, 0, 1, 0, 0, 0, 0], bool)
    r = signals.HitRates.compute("m", ("off_track",), "poor_outcome", flagged, poor)
    # TP 2, FP 2, FN 1, TN 3
    assert (r.true_positives, r.flagged, r.positives, r.n) == (2, 4, 3, 8)
    assert r.sensitivity == pytest.approx(2 / 3)
    assert r.specificity == pytest.approx(3 / 5)
    assert r.ppv == pytest.approx(2 / 4)
    assert r.npv == pytest.approx(3 / 4)
    assert r.flagged_share == pytest.approx(4 / 8)


def test_validation_reports_both_methods_and_agrees_with_a_direct_count():
    data = recovery.example_data(250, seed=3)
    seen = []
    report = al.validate_signals(data, "phq9", folds=4, progress=lambda *a: seen.append(a))
    assert seen[-1][:2] == (6, 6)
    frame = report.to_frame()
    assert set(frame["method"]) == {"empirical_etr", "rational_reliable_change"}
    assert len(frame) == 4
    # The rational rows need no model: recount them directly from signals_frame.
    sig = al.signals_frame(data, "phq9")
    tidy = recovery.prepare_course_data(data)
    last = tidy.groupby("client").tail(1).set_index("client")
    window = sig[(sig["session"] >= 2) & (sig["session"] <= 5)]
    eligible = last.index[(last["session"] > 5) & last.index.isin(window["client"])]
    assert report.n_evaluated == len(eligible)
    end = last.loc[eligible]
    poor = end["intake"] - end["score"] < 6  # PHQ-9: reliable improvement is a drop of ≥ 6
    assert report.n_poor == int(poor.sum())
    flagged = eligible.isin(window.loc[window["signal"] == "off_track", "client"])
    row = frame[(frame["method"] == "rational_reliable_change") & (frame["flag_on"].str.len() == 1)]
    assert row["flagged"].item() == int(flagged.sum())
    assert row["true_positives"].item() == int((flagged & poor.to_numpy()).sum())


def test_validation_compares_against_known_truth_when_given():
    data = recovery.example_data(120, seed=4)
    truth = pd.DataFrame({"client": data["client"].unique()})
    truth["poor_outcome"] = np.arange(len(truth)) % 3 == 0
    report = al.validate_signals(data, "phq9", folds=3, truth=truth)
    targets = set(report.to_frame()["target"])
    assert targets == {"poor_outcome", "truth:poor_outcome"}


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [({"folds": 1}, InvalidParameter), ({"window": (1, 5)}, InvalidParameter)],
)
def test_validation_refuses_meaningless_settings(kwargs, error):
    with pytest.raises(error):
        al.validate_signals(recovery.example_data(30), "phq9", **kwargs)


def test_validation_needs_clients_followed_past_the_window():
    short = recovery.example_data(60)
    short = short[short["session"] <= 5]
    with pytest.raises(InsufficientData, match="later last session"):
        al.validate_signals(short, "phq9")


def test_the_examples_in_the_module_run():
    failures, tried = doctest.testmod(signals)
    assert tried > 0
    assert failures == 0


def test_on_a_simulated_practice_every_flag_beats_chance_against_the_truth():
    cfg = al.SimulationConfig(n_clients=1500, seed=5, item_level=False, pilot_clients=3000)
    practice = al.simulate_practice(cfg)
    phq9 = practice.scores[practice.scores["instrument"] == "phq9"]
    truth = practice.clients[["client", "poor_outcome", "truly_off_track"]]
    report = al.validate_signals(phq9, "phq9", folds=3, truth=truth)
    frame = report.to_frame()
    # the simulator's poor_outcome uses the same definition as the observed outcome
    observed = frame[frame["target"] == "poor_outcome"].reset_index(drop=True)
    simulated = frame[frame["target"] == "truth:poor_outcome"].reset_index(drop=True)
    assert observed["true_positives"].tolist() == simulated["true_positives"].tolist()
    for _, row in frame.iterrows():
        assert row["ppv"] > row["positives"] / row["n"], row.to_dict()
