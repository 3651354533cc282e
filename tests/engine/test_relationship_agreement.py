"""ICC forms of Shrout & Fleiss (1979), checked against the paper's Table 1 and R's psych::ICC.

``reference/shrout_fleiss_1979_wide.csv`` is a copy of shared/reference-data/icc (facts from
Shrout & Fleiss 1979, Table 1); ``reference/icc.R`` wrote ``icc_psych_results.csv``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.errors import InsufficientData, InvalidParameter, InvalidResponse
from alliance.relationship import icc

REF = Path(__file__).parent / "reference"
WIDE = pd.read_csv(REF / "shrout_fleiss_1979_wide.csv")
MATRIX = WIDE[["J1", "J2", "J3", "J4"]].to_numpy()
PAIRS = pd.read_csv(REF / "icc_alliance_pairs.csv")
PSYCH = pd.read_csv(REF / "icc_psych_results.csv")
DATASETS = {
    "shrout_fleiss_1979": MATRIX,
    "alliance_pairs": PAIRS[["client", "therapist"]].to_numpy(),
}


@pytest.mark.parametrize(
    ("method", "expected"),
    [
        ("icc1_1", 0.166),
        ("icc2_1", 0.290),
        ("icc3_1", 0.715),
        ("icc1_k", 0.443),
        ("icc2_k", 0.620),
        ("icc3_k", 0.909),
    ],
)
def test_it_reproduces_shrout_and_fleiss_table_2(method, expected):
    assert round(icc(MATRIX)[method].icc, 3) == pytest.approx(expected, abs=1e-9)


@pytest.mark.parametrize(("method", "f"), [("icc1_1", 1.795), ("icc3_1", 11.027)])
def test_it_reproduces_the_published_f_ratios(method, f):
    row = icc(MATRIX)[method]
    assert round(row.f, 3) == pytest.approx(f, abs=1e-9)
    assert (row.df1, row.df2) == ((5, 18) if method == "icc1_1" else (5, 15))


@pytest.mark.parametrize("dataset", sorted(DATASETS))
@pytest.mark.parametrize("column", ["icc", "f", "df1", "df2", "p", "ci_low", "ci_high"])
def test_every_form_and_interval_matches_r_psych_icc(dataset, column):
    ours = icc(DATASETS[dataset]).to_frame().set_index("psych_name")
    ref = PSYCH[PSYCH.dataset == dataset].set_index("psych_name")
    np.testing.assert_allclose(ours.loc[ref.index, column], ref[column], rtol=1e-7, atol=1e-10)


def test_long_data_gives_the_same_result_as_wide_data():
    long = WIDE.melt(id_vars="target", var_name="rater", value_name="rating")
    a = icc(long, targets="target", raters="rater", ratings="rating")
    b = icc(MATRIX)
    assert a.to_dict()["rows"] == b.to_dict()["rows"]


def test_targets_with_a_missing_rating_are_dropped_and_counted():
    m = np.vstack([MATRIX, [[1.0, np.nan, 2.0, 3.0]]])
    res = icc(m)
    assert res.dropped_targets == 1
    assert res.n_targets == 6


def test_the_result_is_json_serialisable():
    json.dumps(icc(MATRIX).to_dict())


@pytest.mark.parametrize(
    ("data", "error"),
    [
        ([[1, 2]], InsufficientData),
        ([[1], [2]], InsufficientData),
        ([[1, 1], [1, 1]], InsufficientData),
        ([["a", "b"], ["c", "d"]], InvalidResponse),
        ([1, 2, 3], InvalidResponse),
    ],
)
def test_it_rejects_unusable_ratings(data, error):
    with pytest.raises(error):
        icc(data)


def test_it_rejects_an_alpha_outside_zero_one():
    with pytest.raises(InvalidParameter):
        icc(MATRIX, alpha=1.5)


@pytest.mark.r
def test_live_r_agrees_when_rscript_is_installed(tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed; the committed icc_psych_results.csv is used instead")
    for name in ("icc.R", "shrout_fleiss_1979_wide.csv", "icc_alliance_pairs.csv"):
        shutil.copy(REF / name, tmp_path / name)
    subprocess.run(["Rscript", "icc.R"], cwd=tmp_path, check=True, capture_output=True)
    live = pd.read_csv(tmp_path / "icc_psych_results.csv")
    np.testing.assert_allclose(live["icc"], PSYCH["icc"], rtol=1e-10)
