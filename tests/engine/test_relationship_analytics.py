"""Within- vs between-client alliance–outcome effects, checked against lme4.

``reference/within_between.R`` made ``within_between_data.csv`` (seeded) and fitted the same
models with ``lmer`` after doing the lagging, centring and detrending itself; its estimates are
in ``within_between_lme4.json``.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliance.errors import InsufficientData, InvalidResponse
from alliance.relationship import alliance_outcome_effects, within_between_frame

REF = Path(__file__).parent / "reference"
DATA = pd.read_csv(REF / "within_between_data.csv")
LME4 = json.loads((REF / "within_between_lme4.json").read_text())
CASES = [(d, a) for d in (True, False) for a in (True, False)]


def key(detrend, adjust):
    return f"detrend={str(detrend).upper()},adjust={str(adjust).upper()}"


@pytest.mark.parametrize(("detrend", "adjust"), CASES)
def test_fixed_effects_and_standard_errors_match_lme4(detrend, adjust):
    res = alliance_outcome_effects(DATA, detrend=detrend, adjust_current=adjust)
    ref = LME4[key(detrend, adjust)]
    for name, value in ref["fixed"].items():
        assert res.fixed_effects[name] == pytest.approx(value, rel=1e-5, abs=1e-7)
        assert res.standard_errors[name] == pytest.approx(ref["se"][name], rel=1e-4)


@pytest.mark.parametrize(("detrend", "adjust"), CASES)
def test_variance_components_and_reml_criterion_match_lme4(detrend, adjust):
    res = alliance_outcome_effects(DATA, detrend=detrend, adjust_current=adjust)
    ref = LME4[key(detrend, adjust)]
    assert res.intercept_var == pytest.approx(ref["intercept_var"], rel=1e-4)
    assert res.residual_var == pytest.approx(ref["residual_var"], rel=1e-5)
    assert res.reml_criterion == pytest.approx(ref["reml_criterion"], rel=1e-8)
    assert (res.n_obs, res.n_clients) == (ref["n_obs"], ref["n_clients"])


def test_the_within_effect_recovers_the_generating_value():
    # within_between.R generates next outcome with −0.3 per alliance point above the client's trait
    res = alliance_outcome_effects(DATA)
    assert abs(res.within - (-0.3)) < 2 * res.within_se


def test_centring_makes_the_within_part_average_zero_per_client():
    f = within_between_frame(DATA, detrend=False)
    np.testing.assert_allclose(f.groupby("client")["alliance_within"].mean(), 0, atol=1e-9)
    d = within_between_frame(DATA, detrend=True)
    slopes = d.groupby("client").apply(
        lambda g: np.polyfit(g["session"], g["alliance_within"], 1)[0] if len(g) >= 3 else 0.0,
        include_groups=False,
    )
    np.testing.assert_allclose(slopes, 0, atol=1e-9)


def test_the_result_is_json_serialisable():
    json.dumps(alliance_outcome_effects(DATA).to_dict())


def test_it_needs_several_clients_and_the_columns():
    with pytest.raises(InsufficientData):
        alliance_outcome_effects(DATA[DATA.client <= 2])
    with pytest.raises(InvalidResponse):
        alliance_outcome_effects(DATA.drop(columns="outcome"))


@pytest.mark.r
def test_live_lme4_agrees_when_rscript_is_installed(tmp_path):
    if shutil.which("Rscript") is None:
        pytest.skip("Rscript is not installed; the committed within_between_lme4.json is used")
    for name in ("within_between.R", "within_between_data.csv"):
        shutil.copy(REF / name, tmp_path / name)
    subprocess.run(["Rscript", "within_between.R"], cwd=tmp_path, check=True, capture_output=True)
    live = json.loads((tmp_path / "within_between_lme4.json").read_text())
    assert live[key(True, True)]["fixed"] == pytest.approx(LME4[key(True, True)]["fixed"])
