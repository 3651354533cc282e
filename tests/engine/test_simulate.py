"""The practice simulator: determinism, shapes and ranges, consistency of the tables, the
effect sizes of SCIENCE.md B3–B5 on large practices, and recovery of the latent course.

Effect-size targets and their sources (see docs/algorithms/simulation.md):
alliance–outcome r = .278 (Flückiger et al. 2018); client–therapist r = .36, d = .63 (Tryon,
Blackwell & Hammel 2007); therapist share .05 (Wampold & Brown 2005; Johns et al. 2019); dropout
19.7 % (Swift & Greenberg 2012) with completer−dropout early-alliance d = .55 (Sharf et al. 2010).
The tolerances are about three standard errors of the pilot calibration and the test sample
together. The latent course is recovered by pooled least squares (cluster-robust SEs), by
statsmodels' MixedLM (an independent REML implementation) and by alliance.mixed.fit_lmm.
"""

from __future__ import annotations

import dataclasses
import doctest
import json
import math
import time

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import alliance as al
from alliance.errors import InvalidParameter
from alliance.simulate import (
    CONCERNS,
    TABLES,
    TRAJECTORIES,
    SimulatedPractice,
    SimulationConfig,
    clients_for_observations,
    core,
    items,
    model,
    practice,
    simulate_practice,
)
from alliance.simulate import config as config_module

SMALL = SimulationConfig(n_therapists=3, n_clients=60, seed=1)
# Tests that need no precise effect sizes calibrate on a small pilot (faster).
QUICK = {"pilot_clients": 2000}
# A practice with the default population (dropout, no-shows): dropout and agreement effect sizes.
LARGE = SimulationConfig(n_therapists=800, n_clients=40_000, seed=2024, item_level=False)
# Complete data (nobody leaves, everyone is planned for 20 sessions): outcome effect sizes and
# recovery of the latent course.
COMPLETE = dataclasses.replace(
    LARGE, n_therapists=1000, seed=7, dropout_rate=0.0, planned_sessions=(20, 20)
)


@pytest.fixture(scope="module")
def small() -> SimulatedPractice:
    return simulate_practice(SMALL)


@pytest.fixture(scope="module")
def large() -> SimulatedPractice:
    return simulate_practice(LARGE)


@pytest.fixture(scope="module")
def complete() -> SimulatedPractice:
    return simulate_practice(COMPLETE)


# --------------------------------------------------------------------------------------------
# Determinism and the public API
# --------------------------------------------------------------------------------------------
def test_the_same_seed_gives_the_same_practice(small):
    again = simulate_practice(SMALL)
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(small, name), getattr(again, name))
    assert dict(small.params) == dict(again.params)


def test_another_seed_gives_another_practice(small):
    other = simulate_practice(dataclasses.replace(SMALL, seed=2))
    assert not small.scores["score"].equals(other.scores["score"])
    assert not small.clients["intake"].equals(other.clients["intake"])


def test_without_a_seed_the_entropy_is_recorded_and_reproduces_the_practice():
    cfg = dataclasses.replace(SMALL, n_clients=12, seed=None)
    first = simulate_practice(cfg)
    again = simulate_practice(dataclasses.replace(cfg, seed=first.params["seed"]))
    pd.testing.assert_frame_equal(first.scores, again.scores)


def test_switching_items_off_leaves_every_score_unchanged(small):
    lean = simulate_practice(dataclasses.replace(SMALL, item_level=False))
    pd.testing.assert_frame_equal(small.scores, lean.scores)
    pd.testing.assert_frame_equal(small.alliance, lean.alliance)
    assert lean.items.empty
    assert list(lean.items.columns) == ["client", "session", "instrument", "item", "value"]


def test_the_package_reexports_the_simulator():
    assert al.SimulationConfig is SimulationConfig
    assert al.simulate_practice is simulate_practice
    assert al.SimulatedPractice is SimulatedPractice


@pytest.mark.parametrize("module", [config_module, core, items, model, practice, al.simulate])
def test_the_docstring_examples_run(module):
    failures, _ = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert failures == 0


# --------------------------------------------------------------------------------------------
# Shapes, ranges and consistency
# --------------------------------------------------------------------------------------------
def test_the_tables_have_the_documented_columns(small):
    assert list(small.therapists.columns) == ["therapist", "therapist_effect"]
    assert list(small.clients.columns) == [
        "client",
        "therapist",
        "concern",
        "intake",
        "trajectory",
        "planned_sessions",
        "last_session",
        "dropped_out",
        "dropout_session",
        "poor_outcome",
        "truly_off_track",
        "early_alliance",
    ]
    assert list(small.sessions.columns) == ["client", "therapist", "session", "week", "status"]
    assert list(small.scores.columns) == [
        "client",
        "therapist",
        "session",
        "instrument",
        "score",
        "latent",
    ]
    assert list(small.items.columns) == ["client", "session", "instrument", "item", "value"]
    assert list(small.alliance.columns) == [
        "client",
        "therapist",
        "session",
        "alliance",
        "therapist_alliance",
        "alliance_bond",
        "alliance_task",
        "alliance_goal",
    ]
    assert list(small.ruptures.columns)[:6] == [
        "client",
        "start_session",
        "low_session",
        "repair_session",
        "depth_sd",
        "clear",
    ]


def test_the_practice_has_the_configured_size(small):
    assert len(small.therapists) == 3
    assert len(small.clients) == 60
    assert small.clients["therapist"].value_counts().tolist() == [20, 20, 20]
    assert set(small.clients["concern"].cat.categories) == set(CONCERNS)
    assert set(small.clients["trajectory"].cat.categories) == set(TRAJECTORIES)
    assert small.sessions["session"].max() <= SMALL.max_sessions


def test_appointments_run_from_session_one_to_the_end_of_the_episode(small):
    s = small.sessions
    per_client = s.groupby("client")["session"]
    assert (per_client.min() == 1).all()
    assert (per_client.count() == per_client.max()).all()  # no gaps
    assert (s[s["session"] == 1]["status"] == "attended").all()
    c = small.clients.set_index("client")
    end = per_client.max()
    dropped = c["dropped_out"]
    assert (end[dropped] == c.loc[dropped, "dropout_session"]).all()
    assert (end[~dropped] == c.loc[~dropped, "planned_sessions"]).all()
    last = s.sort_values("session").groupby("client").tail(1).set_index("client")["status"]
    assert (last[dropped[dropped].index] == "no_show").all()
    assert (s.groupby("client")["week"].apply(lambda w: w.is_monotonic_increasing)).all()


def test_scores_exist_only_for_attended_sessions(small):
    attended = small.sessions.query("status == 'attended'")[["client", "session"]]
    keys = small.scores[["client", "session"]].drop_duplicates()
    assert len(keys) == len(attended)
    assert len(keys.merge(attended)) == len(attended)
    last = attended.groupby("client")["session"].max()
    assert (last == small.clients.set_index("client")["last_session"]).all()


@pytest.mark.parametrize(
    "instrument", ["phq9", "gad7", "ocir", "pdss_sr", "apa_phobia", "mini_spin"]
)
def test_scores_lie_in_the_instrument_range(large, instrument):
    lo, hi = al.instrument(instrument).scoring.range
    values = large.scores.loc[large.scores["instrument"] == instrument, "score"]
    assert len(values) > 0
    assert values.between(lo, hi).all()
    assert (values == np.round(values)).all()
    assert not (np.signbit(values) & (values == 0)).any()  # no negative zeros


def test_everyone_completes_phq9_and_gad7_and_their_concern_measure_only(small):
    n_attended = (small.sessions["status"] == "attended").sum()
    counts = small.scores["instrument"].value_counts()
    assert counts["phq9"] == counts["gad7"] == n_attended
    concern = small.clients.set_index("client")["concern"]
    by_concern = dict(SMALL.concern_instruments)
    for inst, frame in small.scores.groupby("instrument"):
        if inst in by_concern.values():
            assert set(concern[frame["client"].unique()]) <= {
                c for c, i in by_concern.items() if i == inst
            }


def test_intake_is_the_primary_score_at_session_one(small):
    first = small.scores.query("instrument == 'phq9' and session == 1").set_index("client")
    assert (first["score"] == small.clients.set_index("client")["intake"]).all()


def test_latent_scores_are_unrounded_and_unclipped(large):
    phq = large.scores[large.scores["instrument"] == "phq9"]
    assert (phq["latent"] < 0).any()  # the floor clips the observed score only
    assert (phq["score"] == np.clip(np.rint(phq["latent"]), 0, 27)).all()


@pytest.mark.parametrize("instrument", ["phq9", "gad7", "ocir", "pdss_sr", "wai_sr", "wai_sr_t"])
def test_item_answers_use_the_library_items_and_sum_to_the_totals(small, instrument):
    inst = al.instrument(instrument)
    answers = small.items[small.items["instrument"] == instrument]
    assert len(answers) > 0
    assert set(answers["item"].astype(str)) <= {it.id for it in inst.scored_items}
    lo, hi = (
        min(min(it.values) for it in inst.scored_items),
        max(max(it.values) for it in inst.scored_items),
    )
    assert answers["value"].between(lo, hi).all()
    sums = answers.groupby(["client", "session"])["value"].sum().rename("sum").reset_index()
    if inst.kind == "alliance":
        column = "alliance" if instrument == "wai_sr" else "therapist_alliance"
        totals = small.alliance[["client", "session", column]].rename(columns={column: "total"})
    else:
        totals = small.scores[small.scores["instrument"] == instrument][
            ["client", "session", "score"]
        ]
        totals = totals.rename(columns={"score": "total"})
    merged = totals.merge(sums, on=["client", "session"], how="left")
    assert merged["sum"].notna().all()
    assert (merged["sum"] == merged["total"]).all()


def test_every_administration_answers_every_item_once(small):
    per = small.items.groupby(["client", "session", "instrument"], observed=True)["item"]
    n_items = {i: len(al.instrument(i).scored_items) for i in small.items["instrument"].unique()}
    counts = per.count().reset_index()
    assert (counts["item"] == counts["instrument"].map(n_items).astype(int)).all()
    assert (per.nunique() == per.count()).all()


def test_alliance_subscales_are_the_sums_of_their_items(small):
    inst = al.instrument("wai_sr")
    answers = small.items[small.items["instrument"] == "wai_sr"]
    for sub in inst.scoring.subscales:
        part = answers[answers["item"].isin(sub.items)]
        sums = part.groupby(["client", "session"])["value"].sum().rename("s").reset_index()
        merged = small.alliance.merge(sums, on=["client", "session"])
        assert (merged[f"alliance_{sub.id}"] == merged["s"]).all()


def test_alliance_ratings_lie_in_range_with_a_ceiling(large):
    a = large.alliance
    assert a["alliance"].between(12, 60).all()
    assert a["therapist_alliance"].between(12, 60).all()
    assert 0.03 < (a["alliance"] == 60).mean() < 0.25  # many clients at the top
    assert (a["alliance"] >= 55).mean() > 0.15
    growth = a.groupby("session")["alliance"].mean()
    assert growth.iloc[-1] > growth.iloc[0] + 1  # the alliance grows over sessions


def test_the_client_columns_agree_with_the_session_tables(small):
    c = small.clients.set_index("client")
    alliance = small.alliance[small.alliance["session"] <= 3]
    early = alliance.groupby("client")["alliance"].mean()
    assert np.allclose(early, c.loc[early.index, "early_alliance"])
    phq = small.scores[small.scores["instrument"] == "phq9"].set_index(["client", "session"])
    final = phq["score"].loc[list(zip(c.index, c["last_session"], strict=True))].to_numpy()
    rc = al.instrument("phq9").norms.reliable_change_points
    assert ((c["intake"] - final < rc).to_numpy() == c["poor_outcome"].to_numpy()).all()
    assert (c["dropped_out"] == c["dropout_session"].notna()).all()


def test_the_truth_about_courses_is_consistent(large):
    c = large.clients
    off = c.groupby("trajectory", observed=True)["truly_off_track"].mean()
    assert off["responder"] < off["slow_responder"] < off["non_responder"] <= off["deteriorator"]
    assert off["deteriorator"] > 0.95
    # Ground truth predicts the observed poor outcome, but noise and dropout blur it.
    poor = pd.crosstab(c["truly_off_track"], c["poor_outcome"], normalize="index")
    assert poor.loc[True, True] > 0.75
    assert poor.loc[False, True] < 0.35


def test_some_clients_endorse_phq9_item_9_sometimes(small):
    nine = small.items[small.items["item"] == "phq9_9"]
    share = (nine["value"] > 0).mean()
    assert 0.02 < share < 0.3
    ever = nine.groupby("client")["value"].max() > 0
    assert 0.05 < ever.mean() < 0.8


def test_ruptures_are_v_shaped_episodes_within_the_treatment(large):
    r = large.ruptures
    c = large.clients.set_index("client")
    assert len(r) > 0
    assert (r["start_session"] >= LARGE.rupture_first_session).all()
    assert (r["low_session"] >= r["start_session"]).all()
    assert (r["low_session"] <= r["start_session"] + 2).all()
    repaired = r[r["repair_session"].notna()]
    assert (repaired["repair_session"] > repaired["low_session"]).all()
    assert (repaired["repair_session"] <= repaired["start_session"] + 3).all()
    assert (r["start_session"].to_numpy() <= c.loc[r["client"], "last_session"].to_numpy()).all()
    assert r["dip_sd"].between(*LARGE.rupture_depth).all()
    assert (r["clear"] == (r["depth_sd"].fillna(-math.inf) >= 2)).all()
    assert (r["depth_sd"].isna() == ~r["observed"]).all()
    assert 0.4 < r["repair_session"].notna().mean() < LARGE.repair_prob + 0.02
    # About half the clients have a rupture (46 %, McLaughlin et al. 2014; 50 %, Stevens 2007).
    assert 0.3 < r["client"].nunique() / len(c) < 0.6


def test_a_ruptures_depth_is_measured_on_the_observed_scale(large):
    # depth_sd: the usual level minus the rating at the deepest attended dip session, in
    # observed within-client SDs of rupture-free ratings. The yardstick is a little above the
    # latent state SD (growth and rounding add to it; the ceiling takes a little away).
    sd_obs = large.params["alliance"]["within_sd_observed"]
    sigma = large.params["alliance"]["within_sd"]
    assert sigma < sd_obs < 1.15 * sigma
    # Rupture-free clients of the sample fluctuate by about that much.
    ruptured = set(large.ruptures["client"])
    free = large.alliance[~large.alliance["client"].isin(ruptured)]
    dev = free["alliance"] - free.groupby("client")["alliance"].transform("mean")
    dof = (free.groupby("client").size() - 1).clip(lower=0).sum()
    assert math.sqrt((dev**2).sum() / dof) == pytest.approx(sd_obs, abs=0.15)
    # One-session repaired ruptures have one dip session: its rating is the usual level minus
    # the dip plus the client's state (mean zero, SD sigma), so the observed depth scatters
    # around the generating depth with the state's SD.
    r = large.ruptures
    one = r[
        r["observed"]
        & (r["low_session"] == r["start_session"])
        & (r["repair_session"] == r["start_session"] + 1)
    ]
    gap = one["depth_sd"] * sd_obs - one["dip_sd"] * sigma
    assert len(one) > 2000
    assert abs(gap.mean()) < 4 * gap.std() / math.sqrt(len(one))
    assert gap.std() == pytest.approx(sigma, rel=0.1)
    # So the two definitions of a clear rupture overlap but differ.
    obs = r[r["observed"]]
    generating_clear = obs["dip_sd"] >= 2
    assert 0.6 < (generating_clear & obs["clear"]).sum() / generating_clear.sum() < 0.85


def test_a_rupture_lowers_the_alliance_from_the_clients_own_level(small):
    a = small.alliance.set_index(["client", "session"])["alliance"]
    drops = []
    for row in small.ruptures[small.ruptures["clear"] & small.ruptures["observed"]].itertuples():
        before = [a.get((row.client, s)) for s in range(row.start_session - 2, row.start_session)]
        before = [v for v in before if v is not None]
        low = a.get((row.client, row.low_session))
        if before and low is not None:
            drops.append(np.mean(before) - low)
    assert len(drops) >= 5
    assert np.median(drops) >= 3


def test_no_shows_and_cancellations_happen(large):
    share = large.sessions["status"].value_counts(normalize=True)
    assert 0.05 < share["no_show"] < 0.2
    assert 0.03 < share["cancelled"] < 0.12


# --------------------------------------------------------------------------------------------
# Effect sizes (SCIENCE.md B5) on large practices
# --------------------------------------------------------------------------------------------
def _residual_at(practice_: SimulatedPractice, session: int, column: str = "score") -> pd.DataFrame:
    phq = practice_.scores[
        (practice_.scores["instrument"] == "phq9") & (practice_.scores["session"] == session)
    ]
    frame = phq.merge(practice_.clients[["client", "intake", "early_alliance"]], on="client")
    slope, intercept = np.polyfit(frame["intake"], frame[column], 1)
    frame["resid"] = frame[column] - (intercept + slope * frame["intake"])
    return frame


def _icc1(values: np.ndarray, groups: np.ndarray) -> float:
    """One-way ANOVA ICC(1) for unbalanced groups (Shrout & Fleiss 1979, with k0)."""
    df = pd.DataFrame({"y": values, "g": groups})
    g = df.groupby("g")["y"]
    k = g.size()
    n, a = len(df), len(k)
    msb = float((k * (g.mean() - df["y"].mean()) ** 2).sum() / (a - 1))
    msw = float(((df["y"] - g.transform("mean")) ** 2).sum() / (n - a))
    k0 = (n - float((k**2).sum()) / n) / (a - 1)
    between = (msb - msw) / k0
    return between / (between + msw)


def test_early_alliance_correlates_with_improvement_as_flueckiger_2018(complete):
    frame = _residual_at(complete, COMPLETE.reference)
    r = np.corrcoef(frame["early_alliance"], -frame["resid"])[0, 1]
    assert r == pytest.approx(0.278, abs=0.025)


def test_therapists_hold_five_percent_of_the_outcome_variance(complete):
    frame = _residual_at(complete, COMPLETE.reference)
    icc = _icc1(frame["resid"].to_numpy(), frame["therapist"].to_numpy())
    assert icc == pytest.approx(0.05, abs=0.015)
    assert complete.params["therapist_share"] == 0.05
    assert complete.params["therapist_share_latent"] > 0.05  # rounding and the floor attenuate


@pytest.mark.parametrize("which", ["large", "complete"])
def test_clients_rate_the_alliance_higher_than_therapists_as_tryon_2007(which, request):
    frame = request.getfixturevalue(which).alliance
    at = frame[frame["session"] == LARGE.alliance_reference]
    r = at["alliance"].corr(at["therapist_alliance"])
    pooled = math.sqrt((at["alliance"].var() + at["therapist_alliance"].var()) / 2)
    d = (at["alliance"].mean() - at["therapist_alliance"].mean()) / pooled
    assert r == pytest.approx(0.36, abs=0.025)
    assert d == pytest.approx(0.63, abs=0.04)


def test_dropout_rate_and_its_link_to_early_alliance_follow_swift_2012_and_sharf_2010(large):
    c = large.clients
    assert c["dropped_out"].mean() == pytest.approx(0.197, abs=0.012)
    drop = c.loc[c["dropped_out"], "early_alliance"]
    stay = c.loc[~c["dropped_out"], "early_alliance"]
    pooled = math.sqrt(((len(drop) - 1) * drop.var() + (len(stay) - 1) * stay.var()) / (len(c) - 2))
    assert (stay.mean() - drop.mean()) / pooled == pytest.approx(0.55, abs=0.05)


def test_dropout_hazard_rises_with_unrepaired_ruptures_missed_sessions_and_no_early_change(large):
    c = large.clients.set_index("client")
    r = large.ruptures
    unrepaired = r[r["repair_session"].isna()]["client"].unique()
    repaired_only = np.setdiff1d(r["client"].unique(), unrepaired)
    assert c.loc[unrepaired, "dropped_out"].mean() > c.loc[repaired_only, "dropped_out"].mean()
    # Discrete-time hazard: leaving before the next appointment, after a no-show or a visit.
    s = large.sessions.merge(c["dropout_session"].reset_index(), on="client")
    s = s[s["session"] != s["dropout_session"]]
    leaves_next = (s["session"] + 1 == s["dropout_session"]).to_numpy()
    after_no_show = leaves_next[(s["status"] == "no_show").to_numpy()].mean()
    after_visit = leaves_next[(s["status"] == "attended").to_numpy()].mean()
    assert after_no_show > 1.5 * after_visit
    phq = large.scores[large.scores["instrument"] == "phq9"]
    at4 = phq[phq["session"] == 4].set_index("client")["score"]
    change = c.loc[at4.index, "intake"] - at4
    alive = c.loc[at4.index]
    late = alive["dropout_session"].isna() | (alive["dropout_session"] > 5)
    stuck = (change < 3) & late
    moving = (change >= 3) & late
    assert alive.loc[stuck, "dropped_out"].mean() > alive.loc[moving, "dropped_out"].mean()


def test_the_within_client_effect_of_alliance_on_next_session_outcome_is_recovered(complete):
    """Regress the next latent score on the alliance, both detrended within client on
    (1, log session): the within-client estimate recovers params' truth."""
    phq = complete.scores[
        (complete.scores["instrument"] == "phq9") & (complete.scores["session"] >= 2)
    ]
    prev = complete.alliance[["client", "session", "alliance"]].assign(
        session=lambda f: f["session"] + 1
    )
    frame = phq.merge(prev, on=["client", "session"])
    frame = frame[frame.groupby("client")["session"].transform("size") >= 4]
    frame["L"] = np.log(frame["session"])

    def detrend(column: str) -> np.ndarray:
        g = frame.groupby("client")
        lc = frame["L"] - g["L"].transform("mean")
        vc = frame[column] - g[column].transform("mean")
        slope = (lc * vc).groupby(frame["client"]).transform("sum") / (lc**2).groupby(
            frame["client"]
        ).transform("sum")
        return (vc - slope * lc).to_numpy()

    y, a = detrend("latent"), detrend("alliance")
    estimate = float(y @ a / (a @ a))
    truth = complete.params["within_effect"]["points_per_alliance_point"]
    assert truth < 0
    assert estimate == pytest.approx(truth, abs=0.02)


# --------------------------------------------------------------------------------------------
# Recovery of the latent course (loglinear_intake)
# --------------------------------------------------------------------------------------------
def _design(practice_: SimulatedPractice) -> tuple[pd.DataFrame, np.ndarray]:
    phq = practice_.scores[
        (practice_.scores["instrument"] == "phq9") & (practice_.scores["session"] >= 2)
    ]
    frame = phq.merge(practice_.clients[["client", "intake"]], on="client")
    L = np.log(frame["session"].to_numpy(dtype=float))
    x = frame["intake"].to_numpy(dtype=float)
    return frame, np.column_stack([np.ones_like(L), L, x, L * x])


def test_pooled_least_squares_recovers_the_fixed_effects_of_the_latent_course(complete):
    frame, X = _design(complete)
    y = frame["latent"].to_numpy()
    beta, *_ = np.linalg.lstsq(X, y, rcond=None)
    resid = y - X @ beta
    # Cluster-robust (by therapist: clients of a therapist share its effect) sandwich SEs.
    bread = np.linalg.inv(X.T @ X)
    groups = frame["therapist"].to_numpy()
    scores = pd.DataFrame(X * resid[:, None]).groupby(groups).sum().to_numpy()
    se = np.sqrt(np.diag(bread @ scores.T @ scores @ bread))
    truth = np.array(list(complete.params["fixed_effects"].values()))
    assert np.all(np.abs(beta - truth) < 4 * se), (beta, truth, se)


def test_mixed_model_recovers_the_exact_loglinear_intake_model_as_statsmodels_fits_it():
    sm = pytest.importorskip("statsmodels.formula.api")
    cfg = SimulationConfig(
        n_therapists=10,
        n_clients=300,
        max_sessions=10,
        seed=5,
        planned_sessions=(10, 10),
        dropout_rate=0.0,
        no_show_rate=0.0,
        cancel_rate=0.0,
        therapist_share=0.0,
        within_alliance_effect=0.0,
        item_level=False,
        **QUICK,
    )
    p = simulate_practice(cfg)
    frame, _ = _design(p)
    frame["log_session"] = np.log(frame["session"])
    fit = sm.mixedlm(
        "latent ~ log_session * intake", frame, groups=frame["client"], re_formula="~log_session"
    ).fit(reml=True)
    truth = p.params["fixed_effects"]
    names = {
        "(Intercept)": "Intercept",
        "log_session": "log_session",
        "intake": "intake",
        "log_session:intake": "log_session:intake",
    }
    for ours, theirs in names.items():
        assert abs(fit.fe_params[theirs] - truth[ours]) < 3.5 * fit.bse_fe[theirs], ours
    cov = np.asarray(fit.cov_re)
    expected = np.asarray(p.params["expected_fit"]["re_cov"])
    assert cov[0, 0] == pytest.approx(expected[0, 0], rel=0.3)
    assert cov[1, 1] == pytest.approx(expected[1, 1], rel=0.3)
    assert fit.scale == pytest.approx(p.params["expected_fit"]["residual_var"], rel=0.1)


def test_the_engines_reml_fit_recovers_the_expected_fit_on_a_large_practice(complete):
    frame, X = _design(complete)
    keep = (frame["client"] <= 10_000).to_numpy()
    frame, X = frame[keep], X[keep]
    fit = al.fit_lmm(
        frame["latent"].to_numpy(),
        X,
        X[:, :2],
        frame["client"].to_numpy(),
        fixed_names=("(Intercept)", "log_session", "intake", "log_session:intake"),
    )
    truth = complete.params["expected_fit"]
    for name, value in truth["fixed_effects"].items():
        assert fit.fixed_effects[name] == pytest.approx(value, abs=0.15), name
    cov = np.asarray(fit.re_cov)
    expected = np.asarray(truth["re_cov"])
    assert cov[0, 0] == pytest.approx(expected[0, 0], rel=0.1)
    assert cov[1, 1] == pytest.approx(expected[1, 1], rel=0.1)
    assert cov[0, 1] == pytest.approx(expected[0, 1], abs=0.15)
    # The lagged alliance state is autocorrelated, so the residual is close, not exact.
    assert fit.residual_var == pytest.approx(truth["residual_var"], rel=0.05)


def test_params_hold_the_generating_parameters(small):
    params = small.params
    assert params["method"] == core.METHOD
    assert params["outcome_model"] == "loglinear_intake"
    assert set(params["fixed_effects"]) == {
        "(Intercept)",
        "log_session",
        "intake",
        "log_session:intake",
    }
    cov = np.asarray(params["re_cov"])
    assert cov.shape == (2, 2)
    assert np.allclose(cov, cov.T)
    assert np.all(np.linalg.eigvalsh(cov) > 0)
    assert params["residual_sd"] == SMALL.residual_sd
    assert params["within_effect"]["standardized"] == -SMALL.within_alliance_effect
    achieved = params["calibration"]["achieved_on_pilot"]
    for key in ("alliance_outcome_r", "agreement_r", "client_therapist_d", "dropout_alliance_d"):
        assert achieved[key] == pytest.approx(params["targets"][key], abs=1e-3)
    json.dumps(dict(params))  # JSON-serialisable
    with pytest.raises(TypeError):
        params["seed"] = 3  # type: ignore[index]


# --------------------------------------------------------------------------------------------
# Configuration errors
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"n_clients": 0}, "n_clients"),
        ({"n_therapists": 5, "n_clients": 3}, "n_therapists cannot exceed"),
        ({"max_sessions": 3}, "max_sessions"),
        ({"planned_sessions": (8, 4)}, "planned_sessions"),
        ({"planned_sessions": (30, 30)}, "exceeds max_sessions"),
        ({"concern_shares": {"grief": 1.0}}, "unknown concern"),
        ({"trajectory_shares": (0.5, 0.5, 0.5, 0.0)}, "trajectory_shares"),
        ({"residual_sd": -1.0}, "residual_sd"),
        ({"therapist_share": 1.0}, "therapist_share"),
        ({"re_corr": 1.0}, "re_corr"),
        ({"rupture_depth": (3.0, 1.0)}, "rupture_depth"),
        ({"rupture_duration_probs": (0.5, 0.5, 0.5)}, "rupture_duration_probs"),
        ({"dropout_rate": 0.95}, "dropout_rate"),
        ({"seed": -1}, "seed"),
        ({"alliance_mean": float("nan")}, "alliance_mean"),
        ({"item_level": "yes"}, "item_level"),
        ({"fixed_effects": (1.0, 2.0)}, "fixed_effects"),
    ],
)
def test_nonsense_configurations_are_refused_with_a_clear_message(changes, message):
    with pytest.raises(InvalidParameter, match=message):
        SimulationConfig(**changes)


def test_an_unknown_instrument_is_refused_with_the_known_ones():
    with pytest.raises(al.UnknownInstrument, match="known instruments"):
        simulate_practice(SimulationConfig(n_clients=5, n_therapists=1, primary_instrument="bdi"))


def test_an_unreachable_effect_size_is_refused():
    cfg = SimulationConfig(
        n_clients=5, n_therapists=1, agreement_r=0.95, alliance_within_sd=6.0, **QUICK
    )
    with pytest.raises(InvalidParameter, match="agreement_r"):
        simulate_practice(cfg)


def test_mappings_are_accepted_and_stored_as_pairs():
    cfg = SimulationConfig(concern_shares={"depression": 1.0}, **QUICK)
    assert cfg.concern_shares == (("depression", 1.0),)
    hash(cfg)
    p = simulate_practice(dataclasses.replace(cfg, n_clients=10, n_therapists=1, seed=3))
    assert set(p.clients["concern"]) == {"depression"}


# --------------------------------------------------------------------------------------------
# Writing and the command line
# --------------------------------------------------------------------------------------------
def test_write_produces_every_table_and_params(small, tmp_path):
    written = small.write(tmp_path, formats=("csv", "parquet"))
    names = {p.name for p in written.paths}
    assert {f"{t}.csv" for t in TABLES} <= names
    assert "params.json" in names
    params = json.loads((tmp_path / "params.json").read_text())
    assert params["fixed_effects"] == dict(small.params["fixed_effects"])
    scores = pd.read_csv(tmp_path / "scores.csv")
    assert len(scores) == len(small.scores)
    assert np.allclose(scores["latent"], small.scores["latent"])
    clients = pd.read_csv(tmp_path / "clients.csv")
    assert clients["dropped_out"].dtype == bool
    if practice.parquet_available():
        items_ = pd.read_parquet(tmp_path / "items.parquet")
        assert len(items_) == len(small.items)
        assert not written.skipped


def test_write_says_when_parquet_cannot_be_written(small, tmp_path, monkeypatch):
    monkeypatch.setattr(practice, "parquet_available", lambda: False)
    written = small.write(tmp_path, formats=("csv", "parquet"))
    assert any("pyarrow" in note for note in written.skipped)
    assert not any(p.suffix == ".parquet" for p in written.paths)


@pytest.mark.parametrize("formats", [("xlsx",), ()])
def test_write_refuses_unknown_formats(small, tmp_path, formats):
    with pytest.raises(InvalidParameter, match="format"):
        small.write(tmp_path, formats=formats)


def test_clients_for_observations_aims_at_the_number_of_attended_sessions():
    cfg = SimulationConfig(max_sessions=12, seed=4, item_level=False, pilot_clients=5000)
    n = clients_for_observations(20_000, cfg)
    p = simulate_practice(dataclasses.replace(cfg, n_clients=n))
    assert p.n_observations == pytest.approx(20_000, rel=0.03)
    with pytest.raises(InvalidParameter):
        clients_for_observations(0, cfg)


def test_the_command_writes_a_practice_and_summarises_it(tmp_path):
    from alliance.cli import cli

    out = tmp_path / "sim"
    result = CliRunner().invoke(
        cli,
        ["simulate", "--clients", "30", "--therapists", "2", "--seed", "3", "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    assert {p.name for p in out.iterdir()} >= {f"{t}.csv" for t in TABLES} | {"params.json"}
    assert "Simulated practice" in result.stderr
    clients = pd.read_csv(out / "clients.csv")
    assert len(clients) == 30


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--clients", "10", "--observations", "100"], "either --clients or --observations"),
        (["--clients", "0"], "--clients"),
        (["--therapists", "50", "--clients", "10"], "cannot exceed"),
        (["--sessions", "2"], "--sessions"),
        (["--format", "xlsx"], "--format"),
    ],
)
def test_the_command_refuses_bad_arguments_clearly(tmp_path, args, message):
    from alliance.cli import cli

    result = CliRunner().invoke(cli, ["simulate", "--out", str(tmp_path / "o"), *args])
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_the_command_refuses_an_output_path_that_is_a_file(tmp_path):
    from alliance.cli import cli

    target = tmp_path / "file.txt"
    target.write_text("x")
    result = CliRunner().invoke(cli, ["simulate", "--clients", "5", "--out", str(target)])
    assert result.exit_code != 0
    assert "not a folder" in result.output or "file" in result.output


@pytest.mark.slow
def test_a_million_observations_are_generated_in_seconds(capsys):
    cfg = SimulationConfig(n_therapists=500, n_clients=500, seed=1)
    cfg = dataclasses.replace(cfg, n_clients=clients_for_observations(1_000_000, cfg))
    simulate_practice(dataclasses.replace(cfg, n_clients=50, n_therapists=5))  # calibrates
    for item_level in (False, True):
        started = time.perf_counter()
        p = simulate_practice(dataclasses.replace(cfg, item_level=item_level))
        elapsed = time.perf_counter() - started
        with capsys.disabled():
            print(
                f"\n{p.n_observations:,} observations, {len(p.items):,} item answers "
                f"(item_level={item_level}): {elapsed:.2f} s"
            )
        assert p.n_observations == pytest.approx(1_000_000, rel=0.02)
