"""alliance.scoring: vectorised scoring against published values, hand-computed cases and
invariants.

External references: the PHQ-9 severity bands of Kroenke, Spitzer & Williams (2001) at their
edges (reference-data/README.md: sums 4/5, 9/10, 14/15, 19/20), the GAD-7 bands of Spitzer et
al. (2006) and the NHS Data Dictionary PHQ-9 proration rule (mean of the answered items for one
or two missing items, rounded; more than two missing: not scored). The rest are hand-computed
cases on small instruments defined here, and hypothesis properties.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import alliance as al
from alliance.errors import InstrumentError, InvalidResponse
from alliance.instruments import parse
from alliance.scoring import METHOD, Score, score, score_one

PHQ9_ITEMS = [f"phq9_{i}" for i in range(1, 10)]


def phq9(values: list[float | None], **extra: Any) -> dict[str, Any]:
    return {**dict(zip(PHQ9_ITEMS, values, strict=True)), **extra}


def items_summing_to(total: int, n_items: int = 9, top: int = 3) -> list[int]:
    """Answers (0..top) for n_items that sum to total, filled from the first item."""
    out = []
    for _ in range(n_items):
        v = min(top, total)
        out.append(v)
        total -= v
    assert total == 0
    return out


REFS = {"ref": "A reference."}


def small_instrument(**overrides: Any) -> al.Instrument:
    """A 4-item 0-4 instrument (item 2 reverse-keyed) for hand-computed cases."""
    data: dict[str, Any] = {
        "id": "toy",
        "name": "Toy scale",
        "short_name": "TOY",
        "kind": "outcome",
        "domain": "test",
        "direction": "higher_is_worse",
        "licence": {"name": "test", "text_included": False, "source": "ref"},
        "option_sets": {"five": [{"value": v} for v in range(5)]},
        "items": [
            {"id": "toy_1", "option_set": "five"},
            {"id": "toy_2", "option_set": "five", "reverse": True},
            {"id": "toy_3", "option_set": "five"},
            {"id": "toy_4", "option_set": "five"},
        ],
        "scoring": {"method": "sum", "range": [0, 16]},
        "references": REFS,
    }
    data.update(overrides)
    return parse(data)


def subscale_instrument(**proration: Any) -> al.Instrument:
    """Six 0-4 items in two subscales of three, proration within the subscale (like OQ-45)."""
    return small_instrument(
        items=[{"id": f"toy_s{i}", "option_set": "five"} for i in range(1, 7)],
        scoring={
            "method": "sum",
            "range": [0, 24],
            "proration": {
                "max_missing": 2,
                "method": "mean_substitute",
                "scope": "subscale",
                "source": "ref",
                **proration,
            },
            "subscales": [
                {
                    "id": "first",
                    "name": "First",
                    "items": ["toy_s1", "toy_s2", "toy_s3"],
                    "max_missing": 1,
                },
                {
                    "id": "second",
                    "name": "Second",
                    "items": ["toy_s4", "toy_s5", "toy_s6"],
                    "max_missing": 1,
                },
            ],
        },
    )


# -- published values: PHQ-9 and GAD-7 bands ------------------------------------------------
@pytest.mark.parametrize(
    ("total", "band", "clinical"),
    [
        (0, "minimal", False),
        (4, "minimal", False),
        (5, "mild", False),
        (9, "mild", False),
        (10, "moderate", True),
        (14, "moderate", True),
        (15, "moderately severe", True),
        (19, "moderately severe", True),
        (20, "severe", True),
        (27, "severe", True),
    ],
)
def test_phq9_band_edges_follow_kroenke_2001(total: int, band: str, clinical: bool) -> None:
    s = score_one("phq9", dict(zip(PHQ9_ITEMS, items_summing_to(total), strict=True)))
    assert (s.total, s.severity, s.clinical, s.error) == (total, band, clinical, None)


@pytest.mark.parametrize(
    ("total", "band"), [(4, "minimal"), (5, "mild"), (9, "mild"), (10, "moderate"), (15, "severe")]
)
def test_gad7_band_edges_follow_spitzer_2006(total: int, band: str) -> None:
    answers = dict(zip([f"gad7_{i}" for i in range(1, 8)], items_summing_to(total, 7), strict=True))
    assert score_one("gad7", answers).severity == band


def test_the_output_has_the_documented_columns_and_records_the_method() -> None:
    out = score("phq9", [phq9([1] * 9, id="x")])
    assert list(out.columns) == [
        "id", "instrument", "method", "total", "subscales", "derived", "severity",
        "clinical", "flags", "prorated", "n_missing", "error",
    ]  # fmt: skip
    row = out.iloc[0]
    assert (row["id"], row["instrument"], row["method"]) == ("x", "phq9", METHOD)
    assert METHOD == "alliance.scoring/1"


# -- proration (NHS Data Dictionary rule for the PHQ-9) -------------------------------------
@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # 8 answered, sum 13: 13 * 9 / 8 = 14.625 -> 15
        ([3, 3, 3, 2, 2, 0, 0, 0, None], 15.0),
        # 8 answered, sum 4: 4.5 rounds half up to 5 (not to the even 4)
        ([1, 1, 1, 1, 0, 0, 0, 0, None], 5.0),
        # 7 answered, sum 10: 10 * 9 / 7 = 12.857 -> 13
        ([None, 2, 2, 2, 2, 2, None, 0, 0], 13.0),
        # 7 answered, sum 7: exactly 9
        ([1, 1, 1, 1, 1, 1, 1, None, None], 9.0),
    ],
)
def test_phq9_prorates_one_or_two_missing_items_and_rounds_half_up(
    values: list[float | None], expected: float
) -> None:
    s = score_one("phq9", phq9(values))
    assert (s.total, s.prorated, s.n_missing, s.error) == (
        expected,
        True,
        sum(v is None for v in values),
        None,
    )


def test_three_missing_phq9_items_make_the_response_unscorable_with_a_message() -> None:
    s = score_one("phq9", phq9([1, None, 1, 1, None, 1, None, 1, 0]))
    assert s.total is None
    assert not s.prorated
    assert s.n_missing == 3
    assert s.error == "3 items missing (phq9_2, phq9_5, phq9_7); PHQ-9 allows at most 2"


def test_an_instrument_without_a_proration_rule_needs_every_item() -> None:
    answers = {f"gad7_{i}": 1 for i in range(1, 7)}
    s = score_one("gad7", answers)
    assert s.total is None
    assert s.error == "1 item missing (gad7_7); GAD-7 allows no missing items"


def test_a_response_with_no_answers_says_so() -> None:
    assert score_one("phq9", {}).error == "no items answered"
    toy = small_instrument(
        scoring={
            "method": "sum",
            "range": [0, 16],
            "proration": {"max_missing": 3, "method": "mean_substitute", "source": "ref"},
        }
    )
    assert score_one(toy, {}).error == "no items answered"


# -- validation ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("value", "message"),
    [
        (5, "phq9_4: 5 is not an answer option (0, 1, 2, 3)"),
        (-1, "phq9_4: -1 is not an answer option (0, 1, 2, 3)"),
        (1.5, "phq9_4: 1.5 is not an answer option (0, 1, 2, 3)"),
        ("x", "phq9_4: 'x' is not a number (answer options 0, 1, 2, 3)"),
        ("2,5", "phq9_4: '2,5' is not a number (answer options 0, 1, 2, 3)"),
        (math.inf, "phq9_4: inf is not an answer option (0, 1, 2, 3)"),
    ],
)
def test_a_value_outside_the_options_is_an_error_not_a_number(value: Any, message: str) -> None:
    s = score_one("phq9", phq9([0, 0, 0, value, 0, 0, 0, 0, 0]))
    assert s.total is None
    assert s.error == message
    assert s.severity is None
    assert s.clinical is None
    assert not s.prorated


def test_an_unknown_item_is_an_error_that_suggests_the_right_id() -> None:
    s = score_one("phq9", {**phq9([1] * 9), "phq9-4": 2})
    assert s.total is None
    assert s.error is not None
    assert s.error.startswith("unknown item 'phq9-4' (did you mean phq9_4? PHQ-9 items: ")


def test_several_problems_in_one_row_are_all_reported() -> None:
    s = score_one("phq9", phq9([7, 0, 0, 0, 0, 0, 0, 0, "no"]))
    assert s.error == (
        "phq9_9: 'no' is not a number (answer options 0, 1, 2, 3); "
        "phq9_1: 7 is not an answer option (0, 1, 2, 3)"
    )


def test_an_invalid_answer_is_not_counted_as_missing() -> None:
    s = score_one("phq9", phq9([9, "x", True, 0, 0, 0, 0, 0, 0]))
    assert s.n_missing == 0
    assert s.error is not None
    assert "missing" not in s.error


def test_an_unscored_item_is_validated_too() -> None:
    s = score_one("phq9", phq9([1] * 9, phq9_difficulty=4))
    assert s.error == "phq9_difficulty: 4 is not an answer option (0, 1, 2, 3)"
    assert score_one("phq9", phq9([1] * 9, phq9_difficulty=2)).total == 9.0


def test_a_scale_item_checks_its_range_and_step() -> None:
    s = score_one("ors", {"ors_1": 3.33, "ors_2": 11, "ors_3": 8.8, "ors_4": 8.8})
    assert s.error == (
        "ors_1: 3.33 is not on the scale (0 to 10 in steps of 0.1); "
        "ors_2: 11 is outside the scale (0 to 10)"
    )


def test_visual_analogue_totals_do_not_carry_float_noise_across_a_cutoff() -> None:
    # 3.3 + 4.1 + 8.8 + 8.8 is 24.999999999999996 in binary floating point; ORS cutoff 25
    s = score_one("ors", {"ors_1": 3.3, "ors_2": 4.1, "ors_3": 8.8, "ors_4": 8.8})
    assert s.total == 25.0
    assert s.clinical is True


# -- critical items --------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("values", "flags"),
    [
        ([0] * 9, ()),
        ([0] * 8 + [1], ("safety",)),
        ([3] * 8 + [3], ("safety",)),
        ([None] * 8 + [1], ("safety",)),  # eight missing: unscorable, still flagged
        ([5] + [0] * 7 + [2], ("safety",)),  # an invalid answer elsewhere: still flagged
        ([1] * 8 + [None], ()),
    ],
)
def test_phq9_item_9_above_0_always_raises_a_safety_flag(
    values: list[float | None], flags: tuple[str, ...]
) -> None:
    assert score_one("phq9", phq9(values)).flags == flags


def test_the_critical_rule_of_core10_flags_its_risk_item() -> None:
    answers = {f"core10_{i}": 0 for i in range(1, 11)}
    assert score_one("core10", answers).flags == ()
    assert score_one("core10", {**answers, "core10_6": 1}).flags == ("safety",)


# -- reverse keys, subscales, derived scores, other scoring rules ----------------------------
def test_reverse_keyed_items_are_scored_min_plus_max_minus_value() -> None:
    toy = small_instrument()
    assert score_one(toy, {"toy_1": 0, "toy_2": 0, "toy_3": 0, "toy_4": 0}).total == 4.0
    assert score_one(toy, {"toy_1": 1, "toy_2": 3, "toy_3": 2, "toy_4": 4}).total == 1 + 1 + 2 + 4


def test_core10_reverses_items_2_and_3() -> None:
    answers = {f"core10_{i}": 0 for i in range(1, 11)}
    assert score_one("core10", answers).total == 8.0


def test_subscale_scope_substitutes_the_subscale_mean_rounded_per_item() -> None:
    inst = subscale_instrument(round_total=True)
    # first: s1 missing, mean of (1, 2) = 1.5 -> 2; second: complete (4 + 4 + 3)
    s = score_one(inst, {"toy_s2": 1, "toy_s3": 2, "toy_s4": 4, "toy_s5": 4, "toy_s6": 3})
    assert s.subscales == {"first": 5.0, "second": 11.0}
    assert (s.total, s.prorated, s.n_missing) == (16.0, True, 1)
    # without rounding the substituted value stays 1.5
    s = score_one(
        subscale_instrument(), {"toy_s2": 1, "toy_s3": 2, "toy_s4": 4, "toy_s5": 4, "toy_s6": 3}
    )
    assert s.subscales == {"first": 4.5, "second": 11.0}
    assert s.total == 15.5


def test_subscale_scope_refuses_a_subscale_with_too_many_missing_items() -> None:
    s = score_one(subscale_instrument(), {"toy_s3": 2, "toy_s4": 4, "toy_s5": 4, "toy_s6": 3})
    assert s.total is None
    assert (
        s.error
        == "subscale first: 2 items missing (toy_s1, toy_s2); TOY allows at most 1 per subscale"
    )


def test_oq45_substitutes_within_the_subscale() -> None:
    inst = al.instrument("oq45")
    answers: dict[str, float | None] = {it.id: 2 for it in inst.items}
    full = score_one(inst, answers)
    answers["oq45_2"] = None
    answers["oq45_4"] = None
    part = score_one(inst, answers)
    assert (part.total, part.subscales, part.prorated) == (full.total, full.subscales, True)


def test_total_scope_subscales_have_their_own_missing_allowance() -> None:
    inst = small_instrument(
        scoring={
            "method": "sum",
            "range": [0, 16],
            "proration": {"max_missing": 1, "method": "mean_substitute", "source": "ref"},
            "subscales": [
                {"id": "ab", "name": "AB", "items": ["toy_1", "toy_2"]},
                {"id": "cd", "name": "CD", "items": ["toy_3", "toy_4"], "max_missing": 1},
            ],
        }
    )
    s = score_one(inst, {"toy_2": 4, "toy_3": 2, "toy_4": 3})
    assert s.subscales == {"ab": None, "cd": 5.0}
    assert s.total == pytest.approx((0 + 2 + 3) * 4 / 3)
    s = score_one(inst, {"toy_1": 1, "toy_2": 4, "toy_4": 3})
    assert s.subscales == {"ab": 1.0, "cd": 6.0}


def test_mean_scoring_with_a_multiplier() -> None:
    inst = small_instrument(
        scoring={
            "method": "mean",
            "multiplier": 10,
            "range": [0, 40],
            "proration": {"max_missing": 1, "method": "mean_substitute", "source": "ref"},
        }
    )
    assert score_one(inst, {"toy_1": 1, "toy_2": 4, "toy_3": 2, "toy_4": 3}).total == 15.0
    s = score_one(inst, {"toy_1": 1, "toy_2": 4, "toy_3": 2})
    assert s.total == pytest.approx(10.0)
    assert s.prorated


def test_who5_reports_the_percentage_score() -> None:
    s = score_one("who5", {f"who5_{i}": 3 for i in range(1, 6)})
    assert (s.total, s.derived, s.clinical) == (15.0, {"percentage": 60.0}, False)
    s = score_one("who5", {f"who5_{i}": 2 for i in range(1, 6)}, id="w")
    assert (s.id, s.total, s.derived["percentage"], s.clinical) == ("w", 10.0, 40.0, True)


def test_gbo_averages_the_goals_that_were_rated() -> None:
    s = score_one("gbo", {"gbo_1": 4, "gbo_2": 7})
    assert (s.total, s.n_missing, s.prorated, s.error) == (5.5, 0, False, None)
    assert score_one("gbo", {}).error == "no items answered"


def test_a_prorated_total_between_two_bands_takes_the_lower_band() -> None:
    # CORE-10, one missing: 5 * 10 / 9 = 5.56 lies between 'healthy' (0-5) and 'low' (6-10)
    answers: dict[str, float | None] = {f"core10_{i}": 0 for i in range(1, 11)}
    answers.update(core10_2=4, core10_3=4, core10_1=1, core10_4=4, core10_10=None)
    s = score_one("core10", answers)
    assert s.total == pytest.approx(50 / 9)
    assert s.severity == "healthy"


def test_a_custom_scorer_scores_the_phq_panic_module() -> None:
    yes = {f"phq_panic_{i}": 1 for i in range(1, 16)}
    s = score_one("phq_panic", yes)
    assert (s.total, s.severity, s.flags) == (11.0, "high", ("panic_syndrome",))
    assert s.method == "alliance.scoring/1:phq_panic_spitzer1999"
    s = score_one("phq_panic", {"phq_panic_1": 0})
    assert (s.total, s.severity, s.error) == (0.0, "low", None)
    s = score_one("phq_panic", {**yes, "phq_panic_3": 2})
    assert s.total is None
    assert s.severity is None
    assert s.error is not None
    assert s.error.startswith("phq_panic_3: 2 is not an answer option")


def test_text_items_are_accepted_and_ignored() -> None:
    inst = small_instrument(
        items=[
            {"id": "toy_1", "option_set": "five"},
            {"id": "toy_2", "option_set": "five"},
            {"id": "toy_note", "kind": "text"},
        ],
        scoring={"method": "sum", "range": [0, 8]},
    )
    assert score_one(inst, {"toy_1": 1, "toy_2": 2, "toy_note": "felt better"}).total == 3.0


# -- input forms ------------------------------------------------------------------------------
ROWS = [
    phq9([1, 2, 3, 0, 1, 2, 3, 0, 1]),
    phq9([0, 0, 0, 0, 0, 0, 0, 0, None]),
    phq9([3, 3, 3, 3, 3, 3, 3, 3, 3]),
]


def comparable(frame: pd.DataFrame) -> list[tuple[Any, ...]]:
    return [
        (r.total if not math.isnan(r.total) else None, r.severity, r.flags, r.prorated, r.error)
        for r in frame.itertuples()
    ]


def test_a_dataframe_an_array_and_a_list_of_mappings_score_the_same() -> None:
    records = score("phq9", ROWS)
    frame = score("phq9", pd.DataFrame(ROWS))
    matrix = np.array([[np.nan if v is None else v for v in r.values()] for r in ROWS])
    array = score("phq9", matrix)
    wide = score("phq9", np.column_stack([matrix, np.full(3, np.nan)]))
    assert comparable(records) == comparable(frame) == comparable(array) == comparable(wide)
    assert array["id"].tolist() == [0, 1, 2]


def test_strings_from_a_csv_file_are_read_as_numbers_and_blanks_as_missing() -> None:
    frame = pd.DataFrame([{k: ("" if v is None else f" {v} ") for k, v in r.items()} for r in ROWS])
    frame = frame.astype(str)
    assert comparable(score("phq9", frame)) == comparable(score("phq9", ROWS))


def test_the_id_column_is_echoed_and_otherwise_the_index_is_used() -> None:
    frame = pd.DataFrame(ROWS, index=[10, 20, 30])
    assert score("phq9", frame)["id"].tolist() == [10, 20, 30]
    with_ids = pd.DataFrame([{**r, "id": f"c{i}"} for i, r in enumerate(ROWS)])
    assert score("phq9", with_ids)["id"].tolist() == ["c0", "c1", "c2"]


def test_an_array_of_the_wrong_width_is_refused() -> None:
    with pytest.raises(InvalidResponse, match=r"PHQ-9 responses need 9 columns .* or 10 .*got 7"):
        score("phq9", np.zeros((2, 7)))
    with pytest.raises(InvalidResponse, match="2-D"):
        score("phq9", np.zeros(9))
    with pytest.raises(InvalidResponse, match="DataFrame, a 2-D array or a list of mappings"):
        score("phq9", "phq9_1,phq9_2")  # type: ignore[arg-type]


def test_no_rows_give_an_empty_frame() -> None:
    out = score("phq9", pd.DataFrame(columns=PHQ9_ITEMS))
    assert len(out) == 0
    assert "total" in out.columns


def test_an_unknown_instrument_names_the_known_ones() -> None:
    with pytest.raises(al.UnknownInstrument, match="unknown instrument 'phq10'; known"):
        score("phq9".replace("9", "10"), ROWS)


def test_score_one_matches_score_and_can_raise() -> None:
    one = score_one("phq9", ROWS[1], id="b")
    row = score("phq9", [{**ROWS[1], "id": "b"}]).iloc[0]
    assert (one.id, one.total, one.severity, one.prorated) == (
        row["id"],
        row["total"],
        row["severity"],
        row["prorated"],
    )
    assert one.ok
    assert one.raise_for_error() is one
    bad = score_one("phq9", phq9([5] * 9))
    assert not bad.ok
    with pytest.raises(InvalidResponse, match="phq9_1: 5 is not an answer option"):
        bad.raise_for_error()
    assert isinstance(bad, Score)


def test_subscale_scope_with_overlapping_subscales_is_an_instrument_error() -> None:
    inst = small_instrument(
        scoring={
            "method": "sum",
            "range": [0, 16],
            "proration": {
                "max_missing": 1,
                "method": "mean_substitute",
                "scope": "subscale",
                "source": "ref",
            },
            "subscales": [
                {"id": "a", "name": "A", "items": ["toy_1", "toy_2"]},
                {"id": "b", "name": "B", "items": ["toy_2", "toy_3"]},
            ],
        }
    )
    with pytest.raises(InstrumentError, match="do not share items"):
        score_one(inst, {"toy_1": 1})


# -- properties --------------------------------------------------------------------------------
answer = st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0]), st.just(np.nan))
noisy = st.one_of(answer, st.sampled_from([-1.0, 4.0, 1.5, 7.0]))
phq9_matrix = hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.just(9)), elements=answer)
noisy_matrix = hnp.arrays(np.float64, st.tuples(st.integers(1, 30), st.just(9)), elements=noisy)
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@FAST
@given(phq9_matrix)
def test_totals_always_lie_within_the_instruments_range(matrix: np.ndarray) -> None:
    out = score("phq9", matrix)
    totals = out["total"].dropna()
    assert ((totals >= 0) & (totals <= 27)).all()
    assert (totals == np.floor(totals)).all()  # rounded when prorated


@FAST
@given(
    hnp.arrays(
        np.float64,
        st.tuples(st.integers(1, 30), st.just(6)),
        elements=st.one_of(st.sampled_from([0.0, 1.0, 2.0, 3.0, 4.0]), st.just(np.nan)),
    )
)
def test_subscale_proration_stays_within_the_range(matrix: np.ndarray) -> None:
    for inst in (subscale_instrument(), subscale_instrument(round_total=True)):
        out = score(inst, matrix)
        totals = out["total"].dropna()
        assert ((totals >= 0) & (totals <= 24)).all()


@FAST
@given(noisy_matrix)
def test_the_safety_flag_is_raised_exactly_when_item_9_is_above_0(matrix: np.ndarray) -> None:
    out = score("phq9", matrix)
    flagged = np.array(["safety" in f for f in out["flags"]])
    with np.errstate(invalid="ignore"):
        assert (flagged == (matrix[:, 8] > 0)).all()


@FAST
@given(noisy_matrix)
def test_proration_never_exceeds_the_allowed_number_of_missing_items(matrix: np.ndarray) -> None:
    out = score("phq9", matrix)
    n_missing = np.isnan(matrix).sum(axis=1)
    assert (out["n_missing"].to_numpy() == n_missing).all()
    prorated = out["prorated"].to_numpy()
    assert (n_missing[prorated] >= 1).all()
    assert (n_missing[prorated] <= 2).all()
    assert out.loc[n_missing > 2, "total"].isna().all()
    # a total exists exactly when there is no error
    assert (out["total"].isna().to_numpy() == out["error"].notna().to_numpy()).all()


@settings(max_examples=25, deadline=None)
@given(noisy_matrix, st.randoms(use_true_random=False))
def test_permuting_rows_does_not_change_any_rows_result(matrix: np.ndarray, rnd: Any) -> None:
    order = list(range(matrix.shape[0]))
    rnd.shuffle(order)
    base = score("phq9", matrix)
    shuffled = score("phq9", matrix[order])
    assert comparable(shuffled) == [comparable(base)[i] for i in order]


def test_score_one_agrees_with_score_on_every_row_of_a_mixed_batch() -> None:
    rng = np.random.default_rng(7)
    matrix = rng.choice(
        [0.0, 1.0, 2.0, 3.0, np.nan, 5.0], size=(200, 9), p=[0.24, 0.24, 0.24, 0.2, 0.06, 0.02]
    )
    batch = score("phq9", matrix)
    for i in range(0, 200, 7):
        one = score_one(
            "phq9",
            {k: (None if np.isnan(v) else v) for k, v in zip(PHQ9_ITEMS, matrix[i], strict=True)},
        )
        row = batch.iloc[i]
        assert one.total == (None if np.isnan(row["total"]) else row["total"])
        assert (one.severity, one.flags, one.prorated, one.error) == (
            row["severity"],
            row["flags"],
            row["prorated"],
            row["error"],
        )


def test_the_docstring_examples_run() -> None:
    import doctest

    import alliance.scoring

    failures, tried = doctest.testmod(alliance.scoring)
    assert tried > 0
    assert failures == 0
