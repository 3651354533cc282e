"""The supervisor view's statistics, checked against independent implementations.

Expected values come from R (``prop.test(correct = FALSE)`` for the Wilson interval,
``metafor::escalc(measure = "SMCR")`` for the pre–post effect size), produced by
``tests/web/reference/workspace_stats.R`` and committed as CSV next to it; statsmodels and NumPy
give a second check. The SMCR example from metafor's own test suite (Morris 2008 data) is a third.
"""

import csv
import math
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
from statsmodels.stats.proportion import proportion_confint

from alliance_web.workspace import stats

REFERENCE = Path(__file__).parent / "reference"


def _rows(name):
    with (REFERENCE / name).open(newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.mark.parametrize(
    "row", _rows("workspace_stats_wilson.csv"), ids=lambda r: f"{r['k']}of{r['n']}"
)
def test_the_wilson_interval_matches_r_prop_test(row):
    result = stats.wilson(int(row["k"]), int(row["n"]))
    assert result.low == pytest.approx(float(row["low"]), abs=1e-12)
    assert result.high == pytest.approx(float(row["high"]), abs=1e-12)


@pytest.mark.parametrize(("k", "n"), [(0, 1), (3, 7), (50, 100), (99, 100), (1000, 1000)])
def test_the_wilson_interval_matches_statsmodels(k, n):
    low, high = proportion_confint(k, n, alpha=0.05, method="wilson")
    result = stats.wilson(k, n)
    assert (result.low, result.high) == pytest.approx((low, high), abs=1e-12)
    assert result.estimate == k / n


@pytest.mark.parametrize(("k", "n"), [(1, 0), (-1, 5), (6, 5)])
def test_the_wilson_interval_refuses_impossible_counts(k, n):
    with pytest.raises(ValueError):
        stats.wilson(k, n)


@pytest.mark.parametrize("row", _rows("workspace_stats_smcr.csv"), ids=lambda r: r["group"])
def test_the_prepost_effect_size_matches_metafor_smcr(row):
    pre = [float(x) for x in row["pre"].split()]
    post = [float(x) for x in row["post"].split()]
    result = stats.prepost_effect(pre, post, direction=row["direction"])
    assert result.d == pytest.approx(float(row["d"]), abs=1e-10)
    assert result.low == pytest.approx(float(row["low"]), abs=1e-10)
    assert result.high == pytest.approx(float(row["high"]), abs=1e-10)
    assert result.r == pytest.approx(float(row["r"]), abs=1e-12)
    assert result.n == len(pre)


# metafor's tests/testthat/test_analysis_example_morris2008.r, treatment groups: yi and vi for
# escalc(measure="SMCR", m1i=m_post, m2i=m_pre, sd1i=sd_pre, ni, ri), to 4 decimals.
MORRIS_2008 = [
    # m_pre, m_post, sd_pre, n, r, yi, vi
    (30.6, 38.5, 15.0, 20, 0.47, 0.5056, 0.0594),
    (23.5, 26.8, 3.1, 50, 0.64, 1.0481, 0.0254),
    (0.5, 0.7, 0.1, 9, 0.77, 1.8054, 0.2322),
    (53.4, 75.9, 14.5, 10, 0.89, 1.4181, 0.1225),
    (35.6, 36.0, 4.7, 14, 0.44, 0.0801, 0.0802),
]


@pytest.mark.parametrize(("m_pre", "m_post", "sd_pre", "n", "r", "yi", "vi"), MORRIS_2008)
def test_the_bias_correction_and_variance_match_metafors_morris_example(
    m_pre, m_post, sd_pre, n, r, yi, vi
):
    d = stats._bias_correction(n - 1) * (m_post - m_pre) / sd_pre
    v = 2 * (1 - r) / n + d * d / (2 * n)
    assert d == pytest.approx(yi, abs=5e-5)
    assert v == pytest.approx(vi, abs=5e-5)


def test_improvement_is_positive_whichever_way_the_scale_points():
    worse_down = stats.prepost_effect([20, 18, 16, 14], [10, 9, 9, 7], direction="higher_is_worse")
    better_up = stats.prepost_effect([5, 7, 9, 11], [15, 16, 16, 18], direction="higher_is_better")
    assert worse_down.d > 0
    assert better_up.d > 0


@pytest.mark.parametrize(
    ("pre", "post"),
    [([10, 12], [5, 6]), ([10, 10, 10], [5, 6, 7]), ([], [])],
    ids=["two clients", "no spread at intake", "nobody"],
)
def test_the_effect_size_is_none_when_it_cannot_be_estimated(pre, post):
    assert stats.prepost_effect(pre, post, direction="higher_is_worse") is None


def test_the_effect_size_refuses_an_unknown_direction():
    with pytest.raises(ValueError):
        stats.prepost_effect([1, 2, 3], [1, 2, 3], direction="up")


@pytest.mark.parametrize("q", [0, 0.1, 0.5, 0.9, 1])
@pytest.mark.parametrize("values", [[3.0], [1.0, 2.0], [5.0, 1.0, 9.0, 2.5, 7.0, 7.0, 0.25]])
def test_the_percentile_matches_numpys_default(values, q):
    assert stats.percentile(values, q) == pytest.approx(float(np.percentile(values, q * 100)))


def test_the_percentile_of_nothing_is_none():
    assert stats.percentile([], 0.5) is None


@pytest.mark.r
def test_the_committed_reference_values_are_what_r_produces_now(tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed; the committed CSVs are used instead")
    probe = subprocess.run(["Rscript", "-e", "library(metafor)"], capture_output=True, check=False)
    if probe.returncode != 0:
        pytest.skip("R's metafor package is not installed")
    script = tmp_path / "workspace_stats.R"
    shutil.copy(REFERENCE / "workspace_stats.R", script)
    subprocess.run(["Rscript", str(script)], check=True, capture_output=True)
    for name in ("workspace_stats_wilson.csv", "workspace_stats_smcr.csv"):
        with (tmp_path / name).open(newline="") as fh:
            fresh = list(csv.DictReader(fh))
        committed = _rows(name)
        assert len(fresh) == len(committed)
        for a, b in zip(fresh, committed, strict=True):
            for key, value in a.items():
                try:
                    assert math.isclose(float(value), float(b[key]), abs_tol=1e-12)
                except ValueError:
                    assert value == b[key]
