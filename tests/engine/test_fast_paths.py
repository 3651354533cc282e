"""Fast paths for one client's course give exactly what the general (DataFrame) paths give.

The web app calls the engine for one client on every check-in, so these calls skip pandas
(``bench/bench_engine_calls.py`` times them). Each fast path is checked here against the general
path it shortcuts, or against the implementation it replaced (kept inline as the oracle), on
random inputs: courses with ties, ceiling series, a single session, no intake, missed
administrations (NaN), every reliable-change method and each kind of expected-recovery model.
Equality is exact (same floats, same strings, same errors), not approximate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from functools import cache
from typing import Any
from unittest import mock

import numpy as np
import pandas as pd
import pytest
from hypothesis import event, given, settings
from hypothesis import strategies as st
from scipy import stats

import alliance as al
from alliance.change import _threshold
from alliance.errors import AllianceError
from alliance.instruments.registry import default_library
from alliance.recovery import ETRModel
from alliance.relationship import ruptures as ruptures_module
from alliance.relationship._common import as_float_array
from alliance.relationship.series import _subscale_ranges, subscale_ranges
from alliance.signals import (
    SignalRules,
    _change_columns,
    _change_columns_fast,
    _fmt,
)

#: ``ALLIANCE_FAST_PATH_EXAMPLES=5000`` for a longer search than the suite's default.
SETTINGS = settings(
    max_examples=int(os.environ.get("ALLIANCE_FAST_PATH_EXAMPLES", "150")), deadline=None
)

#: Instruments with reliable-change norms (published points or reliability) in both directions.
INSTRUMENTS = ("phq9", "gad7", "ors", "who5", "k10", "core10", "oq45", "ocir")

CHANGE_OPTIONS: tuple[tuple[tuple[str, Any], ...], ...] = (
    (),
    (("threshold", 3.0),),
    (("threshold", 3.0), ("cutoff", 12.5)),
    (("method", "jacobson_truax"), ("sd", 5.5)),
    (("method", "maassen"),),
    (("method", "maassen"), ("sd_post", 4.0)),
    (("method", "gulliksen_lord_novick"), ("mean_pre", 18.0)),
    (("method", "hageman_arrindell"), ("r_prepost", 0.4), ("sd_post", 6.0), ("mean_post", 9.0)),
    (("ids", None),),  # not a parameter option: the fast path hands over to the general one
)

CUSTOM_OPTIONS: tuple[tuple[tuple[str, Any], ...], ...] = (
    (("threshold", 5.0),),
    (("reliability", 0.85), ("sd", 6.0)),
    (
        ("reliability", 0.85),
        ("sd", 6.0),
        ("clinical_mean", 25.0),
        ("functional_mean", 10.0),
        ("functional_sd", 5.0),
    ),
    (),  # no norms at all: both paths must refuse alike
)


@cache
def models() -> dict[str, ETRModel]:
    """One model per ETR method (PHQ-9) and one for a higher-is-better measure (WHO-5)."""
    data = al.recovery.example_data()
    out: dict[str, ETRModel] = {
        f"phq9:{m}": al.fit_etr(data, m, instrument="phq9") for m in al.recovery.METHODS
    }
    who5 = data.assign(score=(27 - data["score"]) * 25 / 27)
    out["who5:loglinear_intake"] = al.fit_etr(who5, instrument="who5")
    return out


def outcome(call: Any) -> tuple[str, Any]:
    """The result, or the error's type and message (both paths must fail alike)."""
    try:
        return "ok", call()
    except (
        AllianceError,
        LookupError,
        ValueError,
        TypeError,
        ArithmeticError,
        RuntimeWarning,
    ) as exc:
        return "error", (type(exc).__name__, str(exc))


def same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return a == b or (math.isnan(a) and math.isnan(b))


# --------------------------------------------------------------------------------------------
# Courses
@st.composite
def courses(draw: st.DrawFn) -> dict[str, Any]:
    """One client's course: instrument or custom scale, sessions, scores (NaN = missed)."""
    custom = draw(st.integers(0, 4)) == 0
    inst = None if custom else draw(st.sampled_from(["phq9", "phq9", *INSTRUMENTS]))
    low, high = (0.0, 40.0) if inst is None else al.instrument(inst).scoring.range
    n = draw(st.integers(1, 25))
    first = draw(st.sampled_from([1, 1, 1, 2, 3]))
    pool = draw(st.sampled_from(["consecutive", "gaps"]))
    if pool == "consecutive":
        sessions = list(range(first, first + n))
    else:
        sessions = sorted(draw(st.sets(st.integers(first, first + 3 * n), min_size=n, max_size=n)))
        if first == 1:
            sessions[0] = 1
    shape = draw(st.sampled_from(["ceiling", "floor", "ties", "integers", "halves", "floats"]))
    value = {
        "integers": st.integers(int(low), int(high)).map(float),
        "halves": st.integers(int(20 * low), int(20 * high)).map(lambda k: k / 20),
        "floats": st.floats(low, high, allow_nan=False),
    }
    if shape == "ceiling":
        scores = [
            high if draw(st.integers(0, 4)) else high - draw(st.sampled_from([1, 2, 5]))
            for _ in sessions
        ]
    elif shape == "floor":
        scores = [low] * n
    elif shape == "ties":
        scores = [draw(value["integers"])] * n
    else:
        scores = [draw(value[shape]) for _ in sessions]
    missed = draw(st.lists(st.integers(0, 7), min_size=n, max_size=n))  # 0: missed
    scores = [math.nan if m == 0 else y for m, y in zip(missed, scores, strict=True)]
    kw: dict[str, Any] = {}
    if inst is None:
        kw["direction"] = draw(st.sampled_from(["higher_is_worse", "higher_is_better"]))
        kw["rules"] = SignalRules(change_options=draw(st.sampled_from(CUSTOM_OPTIONS)))
    else:
        variant = draw(st.integers(0, 5))
        if variant == 0:
            kw["rules"] = SignalRules(change_options=draw(st.sampled_from(CHANGE_OPTIONS)))
        elif variant == 1:
            kw["rules"] = SignalRules(
                off_track_percentile=draw(st.sampled_from([80.0, 90.0, 95.0, 97.5])),
                at_risk_percentile=draw(st.sampled_from([51.0, 60.0, 75.0])),
                at_risk_session=draw(st.integers(2, 8)),
            )
    model = None
    if inst == "phq9" and draw(st.integers(0, 2)):
        model = models()[f"phq9:{draw(st.sampled_from(al.recovery.METHODS))}"]
    elif inst == "who5" and draw(st.booleans()):
        model = models()["who5:loglinear_intake"]
    order = draw(st.permutations(range(n)))
    return {
        "instrument": inst,
        "sessions": [sessions[i] for i in order],
        "scores": [scores[i] for i in order],
        "model": model,
        **kw,
    }


@SETTINGS
@given(courses())
def test_course_signals_equal_the_dataframe_path_on_random_courses(course: dict[str, Any]) -> None:
    kept = [
        (s, y)
        for s, y in zip(course["sessions"], course["scores"], strict=True)
        if not math.isnan(y)
    ]
    options = {k: course[k] for k in ("model", "rules", "direction") if k in course}
    fast = outcome(
        lambda: al.course_signals(
            [s for s, _ in kept], [y for _, y in kept], course["instrument"], **options
        )
    )
    frame = pd.DataFrame(
        {"client": "c", "session": course["sessions"], "score": course["scores"]}
    )  # the missed administrations (NaN) stay in: signals_frame drops them itself
    general = outcome(lambda: al.signals_frame(frame, course["instrument"], **options))
    assert fast[0] == general[0], (fast, general)
    event(f"outcome: {fast[0]}" + (f" {fast[1][0]}" if fast[0] == "error" else ""))
    if fast[0] == "error":
        assert fast[1] == general[1]
        return
    results = sorted(fast[1], key=lambda r: r.session)
    for r in results:
        event(f"signal: {r.signal} ({r.method})")
    rows = general[1].sort_values("session").to_dict("records")
    assert len(results) == len(rows)
    for r, row in zip(results, rows, strict=True):
        assert (r.session, r.score) == (row["session"], row["score"])
        assert (r.signal, r.method, r.reason) == (row["signal"], row["method"], row["reason"])
        assert same_float(r.intake, None if math.isnan(row["intake"]) else row["intake"])
        for name in ("change", "reliable_change", "expected", "at_risk_limit", "off_track_limit"):
            value = row[name]
            assert same_float(getattr(r, name), None if math.isnan(value) else value), name
        assert r.model == row["model"]


def test_course_signals_equal_the_dataframe_path_for_every_client_of_a_caseload() -> None:
    data = al.recovery.example_data(120)
    for model in (None, models()["phq9:loglinear_intake"]):
        frame = al.signals_frame(data, "phq9", model=model)
        for client, rows in frame.groupby("client", sort=False):
            mine = data[data["client"] == client]
            out = al.course_signals(mine["session"], mine["score"], "phq9", model=model)
            got = [(r.session, r.signal, r.reason, r.expected) for r in out]
            want = [
                (s, sig, why, None if math.isnan(e) else e)
                for s, sig, why, e in rows[["session", "signal", "reason", "expected"]].itertuples(
                    index=False
                )
            ]
            assert sorted(got) == sorted(want)


def test_course_signals_keep_the_order_given_and_pass_flags_through() -> None:
    out = al.course_signals([3, 1, 2], [12, 20, 19], "phq9", flags=[("safety",), (), ("other",)])
    assert [r.session for r in out] == [3.0, 1.0, 2.0]
    assert [r.safety for r in out] == [True, False, False]
    assert out[2].flags == ("other",)
    assert out[1].signal == "not_enough_data"
    assert out[0].intake == 20.0


# --------------------------------------------------------------------------------------------
# Reliable change without the DataFrame
pairs = st.lists(
    st.tuples(
        st.one_of(st.floats(0, 27, allow_nan=False), st.just(math.nan)),
        st.one_of(st.floats(0, 27, allow_nan=False), st.just(math.nan), st.just(27.0)),
    ),
    min_size=1,
    max_size=20,
)


@SETTINGS
@given(
    pairs,
    st.sampled_from([*CHANGE_OPTIONS, (("bogus", 1),)]),
    st.sampled_from(["phq9", "who5", "k10"]),
)
def test_reliable_change_columns_equal_reliable_changes_dataframe(
    values: list[tuple[float, float]], options: tuple[tuple[str, Any], ...], inst_id: str
) -> None:
    inst = al.instrument(inst_id)
    pre = np.array([p for p, _ in values])
    post = np.array([q for _, q in values])
    rules = SignalRules(change_options=options)
    fast = outcome(lambda: _change_columns_fast(inst, inst.direction, pre, post, rules))
    general = outcome(lambda: _change_columns(inst, inst.direction, pre, post, rules))
    assert fast[0] == general[0]
    if fast[0] == "error":
        assert fast[1] == general[1]
        return
    (cat_f, thr_f, cut_f), (cat_g, thr_g, cut_g) = fast[1], general[1]
    assert cat_f.tolist() == cat_g.tolist()
    np.testing.assert_array_equal(thr_f, thr_g)
    np.testing.assert_array_equal(cut_f, cut_g)


# --------------------------------------------------------------------------------------------
# Numbers in reasons
def fmt_numpy(x: float) -> str:
    """The formatting the signals used before: NumPy scalars rounded by NumPy."""
    r = round(np.float64(x), 1)
    return f"{r:.0f}" if abs(r - round(r)) < 1e-9 else f"{r:.1f}"


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(
        st.floats(-1e12, 1e12, allow_nan=False),
        st.integers(-(10**6), 10**6).map(lambda k: k / 20),  # halves of the first decimal
        st.integers(-(10**6), 10**6).map(lambda k: k / 200),
        st.sampled_from([0.35, 0.25, 2.675, -0.04, -0.0, 0.05, -0.05, 1e15 + 0.05]),
    )
)
def test_numbers_in_reasons_are_rounded_as_numpy_rounds(x: float) -> None:
    assert _fmt(x) == fmt_numpy(x)
    assert _fmt(np.float64(x)) == fmt_numpy(x)


# --------------------------------------------------------------------------------------------
# Expected-recovery curves
def curve_reference(
    model: ETRModel, intake: float, sessions: Sequence[int], percentiles: Sequence[float]
) -> pd.DataFrame:
    """ETRModel.curve as it was: the frame grown one percentile column at a time."""
    s = np.asarray(list(sessions), dtype=float)
    mean, var = model._evaluate(s, intake)
    out = pd.DataFrame({"session": s.astype(int), "expected": mean, "sd": np.sqrt(var)})
    z = stats.norm.ppf(np.asarray(percentiles, dtype=float) / 100.0)
    for p, zp in zip(percentiles, z, strict=True):
        out[f"p{p:g}"] = mean + zp * np.sqrt(var)
    return out


@SETTINGS
@given(
    st.sampled_from(sorted(al.recovery.METHODS)),
    st.floats(0, 27, allow_nan=False),
    st.lists(st.integers(1, 60), min_size=1, max_size=30),
    st.lists(st.sampled_from([2.5, 10.0, 10, 25.0, 50.0, 75.0, 90.0, 97.5]), max_size=5),
)
def test_curves_equal_the_column_by_column_frame(
    method: str, intake: float, sessions: list[int], percentiles: list[float]
) -> None:
    model = models()[f"phq9:{method}"]
    got = model.curve(intake, sessions=sessions, percentiles=percentiles)
    pd.testing.assert_frame_equal(
        got, curve_reference(model, intake, sessions, percentiles), check_exact=True
    )


@pytest.mark.parametrize(
    ("sessions", "percentiles", "message"),
    [([0, 1], (10.0, 90.0), "session numbers start at 1"), ([1, 2], (0.0, 50.0), "percentiles")],
)
def test_curves_refuse_what_they_refused_before(
    sessions: list[int], percentiles: tuple[float, ...], message: str
) -> None:
    with pytest.raises(al.InvalidParameter, match=message):
        models()["phq9:loglinear_intake"].curve(10.0, sessions=sessions, percentiles=percentiles)


# --------------------------------------------------------------------------------------------
# Cached instrument lookups
@pytest.mark.parametrize("inst_id", sorted(default_library()))
def test_a_shipped_instruments_threshold_is_the_one_computed_afresh(inst_id: str) -> None:
    inst = default_library()[inst_id]
    cached = outcome(lambda: al.reliable_change_threshold(inst_id))
    fresh = outcome(lambda: _threshold(inst, None, None, None, None, None))
    copy = outcome(lambda: al.reliable_change_threshold(inst.model_copy()))  # not cached
    assert cached == fresh == copy


def test_an_edited_copy_of_a_shipped_instrument_is_not_served_from_the_cache() -> None:
    phq9 = al.instrument("phq9")
    assert phq9.norms is not None
    edited = phq9.model_copy(
        update={"norms": phq9.norms.model_copy(update={"reliable_change_points": 4.0})}
    )
    assert al.reliable_change_threshold(phq9).points == 6.0
    assert al.reliable_change_threshold(edited).points == 4.0
    assert al.reliable_change_threshold(phq9).points == 6.0


@pytest.mark.parametrize(
    "inst_id", sorted(i for i, inst in default_library().items() if inst.scoring.subscales)
)
def test_a_shipped_instruments_subscale_ranges_are_the_ones_computed_afresh(inst_id: str) -> None:
    inst = default_library()[inst_id]
    got = subscale_ranges(inst_id)
    assert got == _subscale_ranges(inst) == subscale_ranges(inst.model_copy())
    got.clear()  # a caller may change its dict; the cache keeps its own
    assert subscale_ranges(inst_id) == _subscale_ranges(inst)


# --------------------------------------------------------------------------------------------
# Plain arrays for the relationship functions
def as_float_array_reference(values: Any, name: str) -> np.ndarray[Any, np.dtype[np.float64]]:
    """as_float_array as it was: element by element, always."""
    try:
        return np.asarray(
            [np.nan if v is None else v for v in np.asarray(values, dtype=object).ravel()],
            dtype=float,
        )
    except (TypeError, ValueError) as exc:
        raise al.InvalidResponse(f"{name}: every value must be a number or empty ({exc})") from exc


plain_values = st.lists(
    st.one_of(
        st.none(),
        st.integers(-100, 100),
        st.floats(allow_nan=True, allow_infinity=True),
        st.booleans(),
        st.sampled_from(["3.5", "x", ""]),
        st.floats(-5, 5).map(np.float64),
    ),
    max_size=15,
)


@SETTINGS
@given(
    st.one_of(
        plain_values,
        plain_values.map(tuple),
        st.lists(st.floats(-100, 100), max_size=15).map(np.array),
        st.lists(st.integers(-100, 100), max_size=15).map(lambda v: np.array(v, dtype=np.int16)),
        st.lists(st.booleans(), max_size=15).map(np.array),
        st.lists(st.integers(0, 9), min_size=4, max_size=4).map(lambda v: np.reshape(v, (2, 2))),
    )
)
def test_float_arrays_are_converted_as_element_by_element(values: Any) -> None:
    got = outcome(lambda: as_float_array(values, "alliance"))
    want = outcome(lambda: as_float_array_reference(values, "alliance"))
    assert got[0] == want[0]
    if got[0] == "error":
        assert got[1] == want[1]
        return
    assert got[1].dtype == want[1].dtype
    assert got[1].shape == want[1].shape
    np.testing.assert_array_equal(got[1], want[1])
    if isinstance(values, np.ndarray):
        assert not np.shares_memory(got[1], values)


# --------------------------------------------------------------------------------------------
# Ruptures of one client
RUPTURE_METHODS = ("absolute", "relative_1sd", "relative_2sd", "ceiling_aware")


@st.composite
def alliance_courses(draw: st.DrawFn) -> dict[str, Any]:
    """One client's WAI-SR ratings with items and subscales, as the web app's frame has them."""
    n = draw(st.integers(1, 20))
    sessions = list(range(1, n + 1))
    if draw(st.booleans()):
        sessions = sorted(draw(st.sets(st.integers(1, 3 * n), min_size=n, max_size=n)))
    shape = draw(st.sampled_from(["ceiling", "typical", "ties", "dip"]))
    item_values: list[list[float]] = []
    for t in range(n):
        if shape == "ceiling":
            row = [
                5.0 if draw(st.integers(0, 9)) else draw(st.sampled_from([3.0, 4.0]))
                for _ in range(12)
            ]
        elif shape == "ties":
            row = [4.0] * 12
        else:
            row = [
                float(draw(st.integers(2 if shape == "dip" and t == n // 2 else 3, 5)))
                for _ in range(12)
            ]
            if shape == "dip" and t == n // 2:
                row = [max(1.0, v - 2) for v in row]
        item_values.append(row)
    subs = {"bond": (0, 4, 8, 11), "task": (1, 3, 6, 9), "goal": (2, 5, 7, 10)}
    frame = pd.DataFrame(
        {
            "client": "c",
            "session": sessions,
            "alliance": [sum(r) for r in item_values],
            **{
                f"alliance_{k}": [sum(r[i] for i in idx) for r in item_values]
                for k, idx in subs.items()
            },
            **{f"wai_sr_{j + 1}": [r[j] for r in item_values] for j in range(12)},
        }
    )
    for col in draw(
        st.lists(st.sampled_from(["alliance", "wai_sr_3", "alliance_task"]), max_size=2)
    ):
        rows = draw(st.lists(st.integers(0, n - 1), max_size=2))
        frame.loc[rows, col] = np.nan  # missed ratings and unanswered items
    variant = draw(
        st.sampled_from(
            [
                "plain",
                "int_client",
                "no_client",
                "shuffled",
                "duplicate",
                "out_of_scale",
                "int_columns",
                "index",
            ]
        )
    )
    if variant == "int_client":
        frame["client"] = 7
    elif variant == "no_client":
        frame = frame.drop(columns="client")
    elif variant == "shuffled":
        frame = frame.sample(frac=1.0, random_state=draw(st.integers(0, 1000)))
    elif variant == "duplicate" and n > 1:
        frame.loc[n - 1, "session"] = frame.loc[0, "session"]
    elif variant == "out_of_scale":
        frame.loc[0, "alliance"] = 61.0
    elif variant == "int_columns" and not frame.isna().any().any():
        frame = frame.astype({c: "int64" for c in frame.columns if c != "client"})
    elif variant == "index":
        frame.index = frame.index * 3 + 100
    kw: dict[str, Any] = {
        "method": draw(st.sampled_from(RUPTURE_METHODS)),
        "instrument": "wai_sr",
        "items": draw(
            st.sampled_from(
                [None, [f"wai_sr_{j + 1}" for j in range(12)], ["wai_sr_1", "wai_sr_3"]]
            )
        ),
        "subscales": draw(
            st.sampled_from(["auto", None, (), ["alliance_bond"], {"alliance_goal": (4, 20)}])
        ),
        "reference": draw(st.sampled_from([None, None, 2.5, 0.0])),
    }
    return {"frame": frame, **kw}


@SETTINGS
@given(alliance_courses())
def test_ruptures_of_one_client_equal_the_dataframe_path(course: dict[str, Any]) -> None:
    frame = course.pop("frame")
    taken: list[bool] = []
    real = ruptures_module._one_client

    def spy(*args: Any, **kwargs: Any) -> Any:
        result = real(*args, **kwargs)
        taken.append(result is not None)
        return result

    with mock.patch.object(ruptures_module, "_one_client", spy):
        fast = outcome(lambda: al.detect_ruptures(frame, **course))
    event(f"fast path taken: {taken == [True]}")
    with mock.patch.object(ruptures_module, "_one_client", return_value=None):
        general = outcome(lambda: al.detect_ruptures(frame, **course))
    event(f"outcome: {fast[0]}")
    assert fast == general
    if fast[0] == "ok":
        event(f"episodes: {min(len(fast[1].episodes), 2)}")
