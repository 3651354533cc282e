"""Acceptance on simulated practices with known truth (alliance.simulate).

The figures below are for fixed seeds; docs/algorithms/ruptures.md, dropout.md and
within_between.md give them over several seeds (``bench/bench_relationship.py``). The
single-practice assertions leave a margin below the observed values so that a retuned simulator
does not break them silently without a look: if one fails, rerun the bench and update the docs.
The rupture target of issue 4 is asserted on the bench's five practices (about 2 s).
"""

from __future__ import annotations

import pytest

simulate = pytest.importorskip("alliance.simulate", reason="the simulator is not in this build")

from alliance.relationship.evaluation import (  # noqa: E402
    dropout_holdout,
    rupture_scores,
    within_effect,
)
from alliance.relationship.ruptures import RuptureConfig  # noqa: E402


@pytest.fixture(scope="module")
def practice():
    return simulate.simulate_practice(simulate.SimulationConfig(n_clients=400, seed=1))


@pytest.fixture(scope="module")
def scores(practice):
    return {s.method: s for s in rupture_scores(practice)}


def test_the_2sd_method_finds_clear_ruptures_with_good_recall_and_precision(scores):
    # seed 1: recall 0.835, precision 0.80 (0.77 counting timely alarms only); over five seeds
    # the target is asserted below and documented in docs/algorithms/ruptures.md
    s = scores["relative_2sd"]
    assert s.recall_clear >= 0.75
    assert s.precision >= 0.75
    assert s.precision_timely <= s.precision
    # by the generating depth (latent SDs) recall is lower: a single session's rating carries
    # the client's ordinary fluctuation on top of the dip (docs: "Two definitions of clear")
    assert s.recall_clear_generating < s.recall_clear


def test_pooling_the_clients_sd_with_the_caseloads_finds_more_without_losing_precision(practice):
    pooled = {s.method: s for s in rupture_scores(practice, ("relative_2sd",))}["relative_2sd"]
    raw = rupture_scores(practice, ("relative_2sd",), config=RuptureConfig(intra_prior_df=0))[0]
    assert pooled.recall_clear > raw.recall_clear
    assert pooled.precision >= raw.precision - 0.02


def test_the_2sd_method_meets_the_target_on_clear_ruptures_over_five_practices():
    # Acceptance (issue 4): recall and precision >= 0.8 for relative_2sd on clear ruptures,
    # averaged over five simulated practices of 400 clients (seeds 1-5, as in the bench):
    # recall 0.83 (0.77-0.86), precision 0.83 (0.79-0.86).
    recall, precision = [], []
    for seed in range(1, 6):
        p = simulate.simulate_practice(simulate.SimulationConfig(n_clients=400, seed=seed))
        (s,) = rupture_scores(p, ("relative_2sd",))
        recall.append(s.recall_clear)
        precision.append(s.precision)
    assert sum(recall) / 5 >= 0.8
    assert sum(precision) / 5 >= 0.8


def test_the_1sd_method_trades_precision_for_recall(scores):
    assert scores["relative_1sd"].detected > scores["relative_2sd"].detected
    assert scores["relative_1sd"].precision < scores["relative_2sd"].precision


def test_relative_methods_catch_clear_ruptures_the_absolute_cutoff_misses(scores):
    assert scores["absolute"].recall_clear < 0.3
    assert scores["ceiling_aware"].caught_missed_by_absolute >= 50


@pytest.mark.slow
def test_the_ceiling_aware_method_catches_ruptures_of_clients_at_the_top():
    high = simulate.simulate_practice(
        simulate.SimulationConfig(n_clients=400, seed=1, alliance_mean=56.0, pilot_clients=2000)
    )
    s = {m.method: m for m in rupture_scores(high)}
    assert s["ceiling_aware"].true_ceiling >= 20
    assert s["ceiling_aware"].recall_ceiling >= 0.95
    assert s["ceiling_aware"].recall_ceiling > s["relative_2sd"].recall_ceiling
    assert s["absolute"].recall_ceiling == 0.0


@pytest.mark.slow
def test_the_dropout_model_predicts_held_out_simulated_episodes():
    train = simulate.simulate_practice(simulate.SimulationConfig(n_clients=2000, seed=11))
    test = simulate.simulate_practice(simulate.SimulationConfig(n_clients=1000, seed=12))
    report = dropout_holdout(train, test)
    assert report.holdout_auc > 0.62
    assert report.holdout_auc > report.rule_auc
    assert 0.7 < report.model.calibration_slope < 1.3


@pytest.mark.slow
def test_the_within_client_effect_of_the_simulator_is_recovered():
    big = simulate.simulate_practice(simulate.SimulationConfig(n_clients=3000, seed=13))
    true = big.params["within_effect"]["points_per_alliance_point"]
    est = within_effect(big)
    assert abs(est.within - true) < 3 * est.within_se
