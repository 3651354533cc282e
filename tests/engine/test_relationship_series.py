"""Alliance series on the instruments' ranges, and the examples in the relationship docstrings."""

from __future__ import annotations

import doctest
import importlib

import pandas as pd
import pytest

from alliance.errors import InvalidParameter, InvalidResponse
from alliance.relationship import alliance_series, normalise, scale_range

MODULES = [
    "series",
    "ruptures",
    "agreement",
    "gap",
    "dropout",
    "stages",
    "checklist",
    "analytics",
]


@pytest.mark.parametrize("name", MODULES)
def test_the_docstring_examples_run(name):
    module = importlib.import_module(f"alliance.relationship.{name}")
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


@pytest.mark.parametrize(("instrument", "rng"), [("wai_sr", (12, 60)), ("srs", (0, 40))])
def test_ranges_come_from_the_instrument_library(instrument, rng):
    r = scale_range(instrument)
    assert (r.low, r.high) == rng


def test_client_and_therapist_forms_and_subscales_are_normalised():
    f = pd.DataFrame(
        {
            "client": ["b", "a", "a"],
            "session": [1, 2, 1],
            "alliance": [60, 36, 12],
            "therapist_alliance": [12, 60, 36],
            "alliance_bond": [20, 12, 4],
        }
    )
    out = alliance_series(f, instrument="wai_sr", therapist_instrument="wai_sr_t")
    assert list(out["client"]) == ["a", "a", "b"]
    assert list(out["alliance_norm"]) == [0.0, 0.5, 1.0]
    assert list(out["therapist_alliance_norm"]) == [0.5, 1.0, 0.0]
    assert list(out["alliance_bond_norm"]) == [0.0, 0.5, 1.0]


def test_values_outside_the_range_are_rejected():
    with pytest.raises(InvalidResponse):
        normalise([61], (12, 60))
    with pytest.raises(InvalidParameter):
        scale_range(rng=(5, 5))
    with pytest.raises(InvalidParameter):
        scale_range()
