"""Dropout: the day-one rule, the L2 logistic model (vs R glm and statsmodels) and its report.

``reference/dropout_glm.R`` made ``dropout_features.csv`` (seeded) and fitted R's ``glm``;
its coefficients, log-likelihood and the AUC of its fitted values are in
``dropout_glm_results.csv``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alliance.errors import InsufficientData, InvalidParameter, InvalidResponse
from alliance.relationship import (
    DROPOUT_FEATURES,
    DropoutRuleConfig,
    auc,
    dropout_features,
    dropout_warning,
    fit_dropout_model,
    fit_l2_logistic,
)

REF = Path(__file__).parent / "reference"
FEATURES = pd.read_csv(REF / "dropout_features.csv")
GLM = pd.read_csv(REF / "dropout_glm_results.csv").set_index("term")["value"]
X = FEATURES[list(DROPOUT_FEATURES)]
Y = FEATURES["dropped_out"]


# -- the model ------------------------------------------------------------------------------
@pytest.mark.parametrize("term", ["(Intercept)", *DROPOUT_FEATURES])
def test_unpenalised_fit_matches_r_glm(term):
    fit = fit_l2_logistic(X, Y, penalty=0.0)
    ours = fit.intercept if term == "(Intercept)" else fit.coefficients[term]
    assert ours == pytest.approx(GLM[term], rel=1e-7, abs=1e-9)


def test_unpenalised_log_likelihood_matches_r_glm():
    assert fit_l2_logistic(X, Y, penalty=0.0).loglik == pytest.approx(GLM["logLik"], rel=1e-9)


def test_auc_matches_the_mann_whitney_statistic_in_r():
    fit = fit_l2_logistic(X, Y, penalty=0.0)
    coef = np.array([fit.coefficients[f] for f in DROPOUT_FEATURES])
    p = fit.intercept + X.to_numpy() @ coef
    assert auc(Y, p) == pytest.approx(GLM["auc"], rel=1e-9)


@pytest.mark.parametrize("penalty", [0.5, 5.0, 50.0])
def test_penalised_fit_matches_statsmodels_ridge(penalty):
    sm = pytest.importorskip("statsmodels.api")
    z = (X - X.mean()) / X.std(ddof=0)
    design = sm.add_constant(z)
    alpha = np.r_[0.0, np.full(z.shape[1], penalty / len(Y))]
    ref = sm.GLM(Y, design, family=sm.families.Binomial()).fit_regularized(
        alpha=alpha, L1_wt=0.0, cnvrg_tol=1e-12, maxiter=1000
    )
    fit = fit_l2_logistic(X, Y, penalty=penalty)
    ours = np.array([fit.coefficients[f] for f in DROPOUT_FEATURES]) * X.std(ddof=0).to_numpy()
    # statsmodels solves it by coordinate descent, accurate to about 1e-3 relative
    np.testing.assert_allclose(ours, np.asarray(ref.params)[1:], rtol=5e-3, atol=1e-6)


@pytest.mark.parametrize("penalty", [0.5, 5.0, 50.0])
def test_penalised_fit_solves_the_penalised_score_equations(penalty):
    fit = fit_l2_logistic(X, Y, penalty=penalty)
    sd = X.std(ddof=0).to_numpy()
    b = np.array([fit.coefficients[f] for f in DROPOUT_FEATURES])
    p = 1 / (1 + np.exp(-(fit.intercept + X.to_numpy() @ b)))
    z = (X - X.mean()).to_numpy() / sd
    # d/dβ_z [loglik − λ/2 Σ β_z²] = zᵀ(y − p) − λ β_z = 0, with β_z = β·sd; intercept: Σ(y − p) = 0
    np.testing.assert_allclose(z.T @ (Y - p) - penalty * b * sd, 0, atol=1e-8)
    assert abs(float((Y - p).sum())) < 1e-8


def test_the_penalty_shrinks_the_coefficients():
    small = fit_l2_logistic(X, Y, penalty=0.1)
    big = fit_l2_logistic(X, Y, penalty=100.0)
    norm = lambda f: np.linalg.norm(list(f.coefficients.values()))  # noqa: E731
    assert norm(big) < norm(small)


def test_auc_counts_ties_as_one_half():
    assert auc([0, 1], [0.5, 0.5]) == 0.5
    y = np.r_[np.zeros(20), np.ones(30)]
    s = np.random.default_rng(1).normal(size=50) + y
    u = stats.mannwhitneyu(s[y == 1], s[y == 0]).statistic
    assert auc(y, s) == pytest.approx(u / (20 * 30))


def test_the_practice_model_reports_cross_validated_auc_and_calibration():
    model = fit_dropout_model(FEATURES, folds=5, seed=1, min_events_per_feature=5)
    assert model.n == len(FEATURES)
    assert model.n_events == int(Y.sum())
    assert 0.5 < model.cv_auc < 0.8
    assert len(model.cv_auc_folds) == 5
    assert 0 < model.brier < 0.25
    assert sum(b.n for b in model.calibration) == model.n
    assert 0.3 < model.calibration_slope < 2.0
    json.dumps(model.to_dict())
    p = model.predict_proba(FEATURES.head(3))
    assert p.shape == (3,)
    assert ((p > 0) & (p < 1)).all()


def test_the_model_refuses_to_fit_with_too_few_events():
    with pytest.raises(InsufficientData, match="early-warning rule"):
        fit_dropout_model(FEATURES.head(40))


def test_open_episodes_and_clients_short_of_the_window_are_not_trained_on():
    f = FEATURES.copy()
    f["reached_window"] = True
    f.loc[:9, "dropped_out"] = np.nan
    f.loc[10:19, "reached_window"] = False
    model = fit_dropout_model(f, min_events_per_feature=5)
    assert model.n == len(f) - 20


@pytest.mark.parametrize(
    ("x", "y", "error"),
    [
        ([[0.0], [1.0]], [0, 2], InvalidResponse),
        ([[0.0], [np.nan]], [0, 1], InvalidResponse),
        ([[0.0], [1.0]], [0, 1, 1], InvalidResponse),
    ],
)
def test_the_fitter_rejects_bad_input(x, y, error):
    with pytest.raises(error):
        fit_l2_logistic(x, y)


# -- features from session data -------------------------------------------------------------
def test_features_come_from_the_first_window_of_sessions_only():
    sessions = pd.DataFrame(
        {
            "client": ["a"] * 5 + ["b"] * 2,
            "session": [1, 2, 3, 4, 5, 1, 2],
            "alliance": [36, 48, None, 12, 12, 60, 60],
            "status": ["attended", "attended", "no_show", "attended", "attended", "attended", ""],
            "score": [20, 18, None, 10, 5, 10, None],
            "dropped_out": [0, 0, 0, 0, 0, 1, 1],
        }
    )
    f = dropout_features(sessions, rng=(12, 60), window=3)
    a = f.loc["a"]
    assert a["early_alliance"] == pytest.approx(0.625)
    assert a["early_alliance_min"] == pytest.approx(0.5)
    assert a["missed_share"] == pytest.approx(1 / 3)
    assert a["early_improvement"] == 2
    assert a["intake"] == 20
    assert bool(a["reached_window"])
    assert a["dropped_out"] == 0
    assert not bool(f.loc["b"]["reached_window"])


def test_features_reject_unknown_statuses_and_mixed_labels():
    base = {"client": ["a", "a"], "session": [1, 2], "alliance": [40, 40]}
    with pytest.raises(InvalidResponse, match="unknown"):
        dropout_features(pd.DataFrame({**base, "status": ["came", "attended"]}), rng=(12, 60))
    with pytest.raises(InvalidResponse, match="differs"):
        dropout_features(pd.DataFrame({**base, "dropped_out": [0, 1]}), rng=(12, 60))


# -- the day-one rule -----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("kwargs", "risk", "signs"),
    [
        ({"alliance": [50, 52], "rng": (12, 60)}, "low", ()),
        ({"alliance": [30, 28], "rng": (12, 60)}, "elevated", ("low_early_alliance",)),
        ({"statuses": ["attended", "no_show"]}, "elevated", ("missed_sessions",)),
        ({"missed_checkins": 1}, "elevated", ("missed_sessions",)),
        ({"outcome": [15, 15, 16]}, "elevated", ("no_early_change",)),
        ({"outcome": [15, 13], "reliable_change": 6}, "elevated", ("no_early_change",)),
        ({"outcome": [15, 11], "reliable_change": 6}, "low", ()),
        ({"outcome": [10, 14], "outcome_direction": "higher_is_better"}, "low", ()),
        (
            {"alliance": [30], "rng": (12, 60), "statuses": ["no_show"], "outcome": [15, 16]},
            "high",
            ("low_early_alliance", "missed_sessions", "no_early_change"),
        ),
    ],
)
def test_the_early_warning_rule_counts_warning_signs(kwargs, risk, signs):
    w = dropout_warning(**kwargs)
    assert (w.risk, w.signs) == (risk, signs)
    assert len(w.reasons) == len(signs)


def test_the_rule_uses_the_srs_concern_threshold_when_given():
    w = dropout_warning([35, 36], rng=(0, 40), concern_threshold=36)
    assert w.signs == ("low_early_alliance",)
    assert "concern threshold" in w.reasons[0]


def test_the_rule_looks_only_at_the_early_window():
    w = dropout_warning(
        [50, 50, 50, 20],
        rng=(12, 60),
        statuses=["attended"] * 3 + ["no_show"],
        config=DropoutRuleConfig(early_sessions=3),
    )
    assert w.risk == "low"


def test_the_rule_adds_the_model_probability_when_a_model_is_given():
    model = fit_dropout_model(FEATURES, min_events_per_feature=5)
    w = dropout_warning([30, 35], rng=(12, 60), outcome=[15, 14], model=model)
    assert 0 < w.probability < 1
    json.dumps(w.to_dict())


@pytest.mark.parametrize(
    "kwargs",
    [
        {"alliance": [40]},
        {"statuses": ["late"]},
        {"outcome_direction": "up"},
    ],
)
def test_the_rule_rejects_bad_input(kwargs):
    with pytest.raises((InvalidParameter, InvalidResponse)):
        dropout_warning(**kwargs)
