"""alliance.change: reliable change and clinical significance.

Validated against
* the worked example of Jacobson & Truax (1991) (reference-data/README.md: SE 3.354,
  S_diff 4.743, RC 3.16; cutoffs a 55, b 45, c 50);
* the suddengains reliable-change threshold for its example data (SD of bdi_s0 6.396073,
  reliability .931: threshold 4.65703, SEm 1.680111, S_diff 2.376036), the SD computed here from
  reference-data/rom/sgdata_suddengains_wide.csv;
* an independent base-R implementation of the published formulas (JT, Maassen,
  Gulliksen–Lord–Novick, Hageman–Arrindell), tests/engine/reference/reliable_change.R, whose
  outputs are committed next to it (a live comparison runs when Rscript is installed);
* hand-computed cases and hypothesis properties.
"""

from __future__ import annotations

import math
import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alliance as al
from alliance.change import (
    CATEGORIES,
    METHODS,
    MissingParameter,
    clinical_cutoffs,
    reliable_change,
    reliable_change_threshold,
)
from alliance.errors import InvalidParameter

REFERENCE = Path(__file__).parent / "reference"
SGDATA = Path("/work/shared/reference-data/rom/sgdata_suddengains_wide.csv")
JT = {
    "reliability": 0.80,
    "sd": 7.5,
    "clinical_mean": 40,
    "functional_mean": 60,
    "functional_sd": 7.5,
    "direction": "higher_is_better",
}


# -- Jacobson & Truax (1991) worked example ---------------------------------------------------
def test_the_jacobson_truax_worked_example() -> None:
    t = reliable_change_threshold(reliability=0.80, sd=7.5)
    assert round(t.se, 3) == 3.354
    assert round(t.s_diff, 3) == 4.743
    rc = reliable_change(None, 40, 55, **JT)
    assert round(rc.rci, 2) == 3.16
    assert rc.reliable
    assert rc.method == "jacobson_truax"


def test_the_jacobson_truax_cutoffs() -> None:
    cut = clinical_cutoffs(
        clinical_mean=40,
        clinical_sd=7.5,
        functional_mean=60,
        functional_sd=7.5,
        direction="higher_is_better",
    )
    assert (cut.a, cut.b, cut.c) == (55.0, 45.0, 50.0)
    for kind, value in (("a", 55.0), ("b", 45.0), ("c", 50.0)):
        assert reliable_change(None, 40, 55, cutoff=kind, **JT).cutoff == value


def test_cutoff_b_uses_the_functional_sd_as_jacobson_and_truax_define_it() -> None:
    # With unequal SDs the CRAN package clinicalsignificance 2.x (SD_clin for b) would give
    # 60 - 2 * 10 = 40; Jacobson & Truax (1991) use the functional SD: 60 - 2 * 5 = 50.
    cut = clinical_cutoffs(
        clinical_mean=40,
        clinical_sd=10,
        functional_mean=60,
        functional_sd=5,
        direction="higher_is_better",
    )
    assert cut.b == 50.0
    assert cut.a == 60.0
    assert cut.c == pytest.approx((10 * 60 + 5 * 40) / 15)


def test_cutoffs_mirror_when_higher_is_worse() -> None:
    cut = clinical_cutoffs(
        clinical_mean=30,
        clinical_sd=8,
        functional_mean=8,
        functional_sd=6,
        direction="higher_is_worse",
    )
    assert (cut.a, cut.b) == (30 - 16, 8 + 12)
    assert cut.c == pytest.approx((8 * 8 + 6 * 30) / 14)


# -- suddengains threshold ---------------------------------------------------------------------
@pytest.mark.skipif(not SGDATA.exists(), reason="reference-data/rom not present")
def test_the_suddengains_reliable_change_threshold() -> None:
    sd = pd.read_csv(SGDATA)["bdi_s0"].std()
    assert round(sd, 6) == 6.396073
    t = reliable_change_threshold(reliability=0.931, sd=sd)
    assert round(t.se, 6) == 1.680111
    assert round(t.s_diff, 6) == 2.376036
    assert round(t.points, 5) == 4.65703
    assert t.critical_value == 1.96


# -- the independent R implementation ----------------------------------------------------------
ROWS = pd.read_csv(REFERENCE / "reliable_change_rows.csv")
PARAMS = pd.read_csv(REFERENCE / "reliable_change_params.csv")


def params(dataset: str) -> dict[str, float]:
    p = PARAMS[PARAMS["dataset"] == dataset]
    return dict(zip(p["name"], p["value"].astype(float), strict=True))


def r_call(dataset: str, method: str, **extra: Any) -> pd.DataFrame:
    p = params(dataset)
    rows = ROWS[ROWS["dataset"] == dataset]
    return reliable_change(
        None,
        rows["pre"].to_numpy(float),
        rows["post"].to_numpy(float),
        method=method,
        reliability=p["reliability"],
        sd=p["sd_pre"],
        clinical_mean=p["clinical_mean"],
        clinical_sd=p["clinical_sd"],
        functional_mean=p["functional_mean"],
        functional_sd=p["functional_sd"],
        direction="higher_is_better" if p["direction"] > 0 else "higher_is_worse",
        cutoff="c",
        ids=list(rows["id"]),
        **extra,
    )


COLUMNS = {
    "jacobson_truax": ("rc_jt", "category_jt"),
    "maassen": ("rc_maassen", "category_maassen"),
    "gulliksen_lord_novick": ("rc_gln", "category_gln"),
    "hageman_arrindell": ("rc_ha", "category_ha"),
}


@pytest.mark.parametrize("dataset", ["sgdata", "jt1991"])
@pytest.mark.parametrize("method", list(COLUMNS))
def test_each_method_matches_the_independent_r_implementation(dataset: str, method: str) -> None:
    out = r_call(dataset, method)
    ref = ROWS[ROWS["dataset"] == dataset]
    rc_col, cat_col = COLUMNS[method]
    np.testing.assert_allclose(out["rci"], ref[rc_col], rtol=1e-10, atol=1e-12)
    assert out["category"].tolist() == ref[cat_col].tolist()
    assert out["id"].tolist() == ref["id"].tolist()


@pytest.mark.parametrize("dataset", ["sgdata", "jt1991"])
def test_thresholds_and_cutoffs_match_the_independent_r_implementation(dataset: str) -> None:
    p = params(dataset)
    ref = ROWS[ROWS["dataset"] == dataset]
    jt = r_call(dataset, "jacobson_truax")
    assert jt["threshold"].iloc[0] == pytest.approx(p["threshold_jt"], rel=1e-12)
    assert jt["cutoff"].iloc[0] == pytest.approx(p["cutoff_c"], rel=1e-12)
    assert jt.attrs["parameters"]["s_diff"] == pytest.approx(p["s_diff"], rel=1e-12)
    assert jt.attrs["parameters"]["se"] == pytest.approx(p["se"], rel=1e-12)
    maassen = r_call(dataset, "maassen")
    assert maassen["threshold"].iloc[0] == pytest.approx(p["threshold_maassen"], rel=1e-12)
    assert maassen.attrs["parameters"]["sd_post"] == pytest.approx(p["sd_post"], rel=1e-12)
    gln = r_call(dataset, "gulliksen_lord_novick")
    np.testing.assert_allclose(gln["threshold"], ref["threshold_gln"], rtol=1e-10)
    ha = r_call(dataset, "hageman_arrindell")
    assert ha["threshold"].iloc[0] == pytest.approx(p["threshold_ha"], rel=1e-10)
    assert ha["cutoff"].iloc[0] == pytest.approx(p["ha_cutoff_c"], rel=1e-12)
    np.testing.assert_allclose(ha["cs_indiv"], ref["cs_indiv"], rtol=1e-10, atol=1e-12)
    hp = ha.attrs["parameters"]
    assert (hp["mean_pre"], hp["mean_post"], hp["r_prepost"]) == pytest.approx(
        (p["mean_pre"], p["mean_post"], p["r_prepost"]), rel=1e-12
    )
    direction = "higher_is_better" if p["direction"] > 0 else "higher_is_worse"
    cut = clinical_cutoffs(
        clinical_mean=p["clinical_mean"],
        clinical_sd=p["clinical_sd"],
        functional_mean=p["functional_mean"],
        functional_sd=p["functional_sd"],
        direction=direction,
    )
    assert (cut.a, cut.b, cut.c) == pytest.approx((p["cutoff_a"], p["cutoff_b"], p["cutoff_c"]))
    true = clinical_cutoffs(
        clinical_mean=p["clinical_mean"],
        clinical_sd=p["clinical_sd"],
        functional_mean=p["functional_mean"],
        functional_sd=p["functional_sd"],
        direction=direction,
        method="hageman_arrindell",
        reliability=p["reliability"],
        sd=p["sd_pre"],
    )
    assert (true.a, true.b, true.c) == pytest.approx(
        (p["ha_cutoff_a"], p["ha_cutoff_b"], p["ha_cutoff_c"])
    )


@pytest.mark.r
@pytest.mark.skipif(shutil.which("Rscript") is None, reason="Rscript is not installed")
@pytest.mark.skipif(not SGDATA.exists(), reason="reference-data/rom not present")
def test_the_committed_r_values_are_what_the_r_script_produces(tmp_path: Path) -> None:
    root = Path(__file__).parents[2]
    work = tmp_path / "tests" / "engine" / "reference"
    work.mkdir(parents=True)
    script = REFERENCE / "reliable_change.R"
    subprocess.run(
        ["Rscript", str(script), str(SGDATA)], cwd=tmp_path, check=True, capture_output=True
    )
    fresh = pd.read_csv(work / "reliable_change_rows.csv")
    pd.testing.assert_frame_equal(fresh, ROWS)
    assert root.exists()


# -- published thresholds ----------------------------------------------------------------------
@pytest.mark.parametrize(
    ("pre", "post", "category", "reliable"),
    [
        (15, 9, "recovered", True),  # -6: reliable (6 or more), case -> not a case
        (18, 12, "improved", True),  # -6 but 12 is still a case
        (18, 13, "unchanged", False),  # -5: not reliable
        (18, 10, "improved", True),  # reliable but still a case (10 is caseness)
        (8, 1, "improved", True),  # not a case at the start: improved, not recovered
        (8, 14, "deteriorated", True),
        (8, 13, "unchanged", False),
    ],
)
def test_phq9_uses_the_published_six_point_threshold_and_caseness_ten(
    pre: float, post: float, category: str, reliable: bool
) -> None:
    rc = reliable_change("phq9", pre, post)
    assert (rc.method, rc.threshold, rc.cutoff) == ("published_threshold", 6.0, 10.0)
    assert (rc.category, rc.reliable) == (category, reliable)
    assert rc.rci == pytest.approx(1.96 * (post - pre) / 6)


def test_ors_is_direction_aware_with_its_five_point_threshold() -> None:
    rc = reliable_change("ors", 20, 26)
    assert (rc.direction, rc.threshold, rc.cutoff) == ("higher_is_better", 5.0, 25.0)
    assert (rc.clinical_pre, rc.clinical_post, rc.category) == (True, False, "recovered")
    assert reliable_change("ors", 26, 20).category == "deteriorated"
    assert reliable_change("ors", 20, 24).category == "unchanged"


def test_an_explicit_reliability_and_sd_override_the_published_threshold() -> None:
    rc = reliable_change("phq9", 18, 12, sd=5.0)  # reliability .89 from the PHQ-9 norms
    assert rc.method == "jacobson_truax"
    assert rc.threshold == pytest.approx(1.96 * math.sqrt(2) * 5 * math.sqrt(1 - 0.89))


def test_core10_defaults_come_from_its_norms() -> None:
    rc = reliable_change("core10", 20, 8)
    assert rc.method == "jacobson_truax"
    assert rc.threshold == pytest.approx(1.96 * math.sqrt(2) * 7.7 * math.sqrt(1 - 0.90))
    assert (rc.cutoff, rc.category) == (11.0, "recovered")  # the published cutoff by default
    assert reliable_change("core10", 20, 8, cutoff="c").cutoff == pytest.approx(
        (7.7 * 4.7 + 4.8 * 19.7) / (7.7 + 4.8)
    )


def test_maassen_reduces_to_jacobson_truax_when_the_sds_are_equal() -> None:
    a = reliable_change(None, [30, 25], [20, 24], method="maassen", sd_post=6, **_lower(6))
    b = reliable_change(None, [30, 25], [20, 24], method="jacobson_truax", **_lower(6))
    np.testing.assert_allclose(a["rci"], b["rci"])


def _lower(sd: float) -> dict[str, Any]:
    return {"reliability": 0.85, "sd": sd, "direction": "higher_is_worse"}


def test_gulliksen_lord_novick_expects_regression_to_the_mean() -> None:
    # pre far above the mean: part of a fall is expected, so the threshold is larger than
    # for a client at the mean
    far = reliable_change(None, 35, 25, method="gulliksen_lord_novick", mean_pre=20, **_lower(6))
    mean = reliable_change(None, 20, 10, method="gulliksen_lord_novick", mean_pre=20, **_lower(6))
    assert far.threshold > mean.threshold
    assert far.rci > mean.rci  # the same 10-point fall is less remarkable from far above
    se_pred = 6 * math.sqrt(1 - 0.85**2)
    assert mean.rci == pytest.approx(-10 / se_pred)


# -- one pair versus many, missing values -------------------------------------------------------
def test_one_pair_gives_a_frozen_result_and_arrays_give_a_frame() -> None:
    one = reliable_change(None, 40, 55, **JT)
    assert isinstance(one, al.ReliableChange)
    with pytest.raises(AttributeError):
        one.rci = 0  # type: ignore[misc]
    many = reliable_change(None, [40, 50], [55, 40], ids=["x", "y"], **JT)
    assert list(many.columns) == [
        "id", "pre", "post", "delta", "rci", "reliable", "improved", "deteriorated",
        "threshold", "cutoff", "clinical_pre", "clinical_post", "category", "method",
    ]  # fmt: skip
    assert many["id"].tolist() == ["x", "y"]
    assert many["rci"].iloc[0] == pytest.approx(one.rci)
    assert many.attrs["parameters"]["method"] == "jacobson_truax"


def test_a_missing_score_gives_no_category() -> None:
    out = reliable_change("phq9", [18, np.nan, 12], [9, 10, None])
    assert out["category"].tolist() == ["recovered", None, None]
    assert out["reliable"].isna().tolist() == [False, True, True]
    with pytest.raises(InvalidParameter, match="missing value"):
        reliable_change("phq9", 18, float("nan"))


def test_a_series_keeps_its_index_as_id() -> None:
    pre = pd.Series([18.0, 14.0], index=["c1", "c2"])
    out = reliable_change("phq9", pre, pre - 7)
    assert out["id"].tolist() == ["c1", "c2"]


# -- errors that say what to pass -------------------------------------------------------------
def test_a_custom_scale_needs_a_direction() -> None:
    with pytest.raises(MissingParameter, match="direction") as err:
        reliable_change("custom", 10, 5, reliability=0.8, sd=5)
    assert err.value.names == ("direction",)


def test_jacobson_truax_without_an_sd_names_the_sd() -> None:
    with pytest.raises(MissingParameter, match="jacobson_truax needs sd") as err:
        reliable_change("phq9", 18, 9, method="jacobson_truax")
    assert err.value.names == ("sd",)


def test_no_reliability_no_sd_and_no_threshold_names_all_three() -> None:
    with pytest.raises(MissingParameter) as err:
        reliable_change(None, 18, 9, direction="higher_is_worse")
    assert err.value.names == ("reliability", "sd", "threshold")


def test_a_cutoff_without_its_norms_names_them() -> None:
    with pytest.raises(MissingParameter, match="cutoff c needs functional_mean, functional_sd"):
        reliable_change("phq9", 18, 9, cutoff="c", clinical_mean=17, clinical_sd=5)


def test_hageman_arrindell_for_one_pair_needs_the_group_statistics() -> None:
    with pytest.raises(MissingParameter, match="mean_pre"):
        reliable_change(None, 40, 55, method="hageman_arrindell", **JT)
    rc = reliable_change(
        None, 40, 55, method="hageman_arrindell", mean_pre=40, mean_post=50, sd_post=8,
        r_prepost=0.5, **JT,
    )  # fmt: skip
    assert rc.method == "hageman_arrindell"
    assert rc.cs_indiv is not None


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"reliability": 1.2, "sd": 5}, "reliability must lie strictly between 0 and 1"),
        ({"reliability": 0.8, "sd": -5}, "sd must be a positive number"),
        ({"reliability": 0.8, "sd": 5, "method": "edwards"}, "unknown method 'edwards'"),
        ({"reliability": 0.8, "sd": 5, "cutoff": "d"}, "cutoff must be 'a', 'b', 'c'"),
        ({"reliability": 0.8, "sd": 5, "direction": "up"}, "direction must be"),
        ({"threshold": 0}, "threshold must be a positive number"),
    ],
)
def test_parameters_out_of_their_domain_are_refused(kwargs: dict[str, Any], message: str) -> None:
    kwargs.setdefault("direction", "higher_is_worse")
    with pytest.raises(InvalidParameter, match=message):
        reliable_change(None, 10, 5, **kwargs)


def test_pre_and_post_must_have_the_same_length() -> None:
    with pytest.raises(InvalidParameter, match="same length"):
        reliable_change("phq9", [1, 2, 3], [1, 2])


def test_a_threshold_for_a_method_that_depends_on_the_client_is_refused() -> None:
    with pytest.raises(InvalidParameter, match="depends on each client"):
        reliable_change_threshold(method="gulliksen_lord_novick", reliability=0.8, sd=5)


def test_the_method_identifiers_are_stable() -> None:
    assert METHODS == (
        "jacobson_truax",
        "gulliksen_lord_novick",
        "hageman_arrindell",
        "maassen",
        "published_threshold",
    )
    assert CATEGORIES == ("recovered", "improved", "unchanged", "deteriorated")


# -- properties ----------------------------------------------------------------------------------
score_st = st.integers(0, 60).map(float)
pairs = st.lists(st.tuples(score_st, score_st), min_size=1, max_size=25)
direction_st = st.sampled_from(["higher_is_worse", "higher_is_better"])
SETTINGS = settings(max_examples=60, deadline=None)
FIXED = {"reliability": 0.8, "sd": 7.5, "clinical_mean": 40, "clinical_sd": 7.5}


@SETTINGS
@given(pairs, direction_st, st.sampled_from(["jacobson_truax", "maassen", "published_threshold"]))
def test_swapping_pre_and_post_negates_the_index(
    xy: list[tuple[float, float]], direction: str, method: str
) -> None:
    pre, post = (np.array(v) for v in zip(*xy, strict=True))
    kw = {**FIXED, "direction": direction, "method": method, "sd_post": 6.0, "threshold": 5.0}
    fwd = reliable_change(None, pre, post, **kw)
    back = reliable_change(None, post, pre, **kw)
    np.testing.assert_allclose(fwd["rci"], -back["rci"], atol=1e-12)
    assert (fwd["improved"] == back["deteriorated"]).all()
    assert (fwd["reliable"] == back["reliable"]).all()


@SETTINGS
@given(pairs, direction_st, st.sampled_from([m for m in METHODS if m != "hageman_arrindell"]))
def test_categories_are_consistent_with_the_index_and_the_cutoff(
    xy: list[tuple[float, float]], direction: str, method: str
) -> None:
    pre, post = (np.array(v) for v in zip(*xy, strict=True))
    out = reliable_change(
        None, pre, post, direction=direction, method=method, threshold=5.0, sd_post=6.0,
        functional_mean=10 if direction == "higher_is_worse" else 60, functional_sd=6, **FIXED,
    )  # fmt: skip
    h = 1 if direction == "higher_is_better" else -1
    for r in out.itertuples():
        assert r.category in CATEGORIES
        assert r.reliable == (r.improved or r.deteriorated)
        assert not (r.improved and r.deteriorated)
        if r.category == "recovered":
            assert r.improved
            assert r.clinical_pre
            assert not r.clinical_post
        if r.category == "improved":
            assert r.improved
        if r.category == "unchanged":
            assert not r.reliable
        if r.category == "deteriorated":
            assert h * r.delta < 0
        if r.improved:
            assert h * r.delta >= r.threshold - 1e-9
        if method != "published_threshold":
            assert r.reliable == (abs(r.rci) > 1.96)


@SETTINGS
@given(pairs)
def test_mirroring_the_scale_mirrors_the_result(xy: list[tuple[float, float]]) -> None:
    pre, post = (np.array(v) for v in zip(*xy, strict=True))
    worse = reliable_change(
        None, pre, post, direction="higher_is_worse", reliability=0.8, sd=7.5, cutoff=30
    )
    better = reliable_change(
        None, -pre, -post, direction="higher_is_better", reliability=0.8, sd=7.5, cutoff=-30
    )
    assert worse["category"].tolist() == better["category"].tolist()
    np.testing.assert_allclose(worse["rci"], -better["rci"], atol=1e-12)


@pytest.mark.parametrize("dataset", ["sgdata", "jt1991"])
@pytest.mark.parametrize("method", ["gulliksen_lord_novick", "hageman_arrindell"])
def test_the_threshold_is_the_change_at_which_improvement_begins(dataset: str, method: str) -> None:
    out = r_call(dataset, method)
    h = 1 if params(dataset)["direction"] > 0 else -1
    gain = h * out["delta"] - out["threshold"]
    assert (out["improved"] == (gain > 0)).all()


def test_the_docstring_examples_run() -> None:
    import doctest

    import alliance.change

    failures, tried = doctest.testmod(alliance.change)
    assert tried > 0
    assert failures == 0


def test_group_statistics_from_the_data_use_complete_pairs_only() -> None:
    pre = np.array([30.0, 25, 28, 20, 40])
    post = np.array([20.0, 24, 15, 18, np.nan])
    out = reliable_change(None, pre, post, method="hageman_arrindell", **_lower(6))
    p = out.attrs["parameters"]
    assert p["mean_pre"] == pytest.approx(pre[:4].mean())
    assert p["mean_post"] == pytest.approx(post[:4].mean())
    assert p["r_prepost"] == pytest.approx(np.corrcoef(pre[:4], post[:4])[0, 1])
    assert out["category"].iloc[4] is None
