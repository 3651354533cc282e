"""The server-rendered SVG charts: shapes for signals, escaping, empty states, geometry."""

from __future__ import annotations

import itertools

import pytest

from alliance_web.workspace import charts

OUTCOME = {
    "instrument": "phq9",
    "short_name": "PHQ-9",
    "direction": "higher_is_worse",
    "range": [0, 27],
    "cutoff": 10,
    "points": [
        {
            "session": 1,
            "total": 18,
            "severity": "moderately severe",
            "signal": "not_enough_data",
            "flags": [],
        },
        {
            "session": 2,
            "total": 16,
            "severity": "moderately severe",
            "signal": "on_track",
            "flags": [],
        },
        {
            "session": 3,
            "total": 19,
            "severity": "moderately severe",
            "signal": "off_track",
            "flags": ["safety"],
        },
    ],
    "expected": [
        {"session": s, "median": 18 - s, "low": 14 - s, "high": 22 - s} for s in range(1, 7)
    ],
}


def test_each_point_is_focusable_with_score_severity_and_change_since_intake():
    svg = str(charts.outcome_chart(OUTCOME))
    assert svg.count('tabindex="0"') == 3
    assert "Session 2 · PHQ-9 16. Moderately severe. -2 since intake" in svg
    assert "Session 3 · PHQ-9 19" in svg
    assert "+1 since intake" in svg
    assert "⚠ Safety item endorsed" in svg
    assert 'class="safety-ring"' in svg


@pytest.mark.parametrize(
    ("signal", "needle"),
    [
        ("off_track", "polygon"),
        ("on_track", "circle"),
        ("at_risk", "polygon"),
        ("improved", "polygon"),
        ("recovered", "polygon"),
        ("", "hollow"),
    ],
)
def test_every_signal_has_its_own_shape(signal, needle):
    mark = str(charts.shape(signal, 10, 10))
    assert needle in mark
    assert f"sig-{signal or 'none'}" in mark


def test_the_expected_band_median_and_cutoff_are_drawn_and_labelled_in_place():
    svg = str(charts.outcome_chart(OUTCOME))
    assert 'class="band"' in svg
    assert 'class="median"' in svg
    assert 'class="cutoff"' in svg
    assert ">expected<" in svg
    assert ">clinical cutoff 10<" in svg
    assert ">↓ better<" in svg


def test_better_points_up_for_scales_where_higher_is_better():
    svg = str(
        charts.outcome_chart(
            {**OUTCOME, "direction": "higher_is_better", "cutoff": None, "expected": []}
        )
    )
    assert ">↑ better<" in svg
    assert 'class="cutoff"' not in svg


def test_an_empty_outcome_says_when_it_will_fill_in():
    svg = str(charts.outcome_chart({**OUTCOME, "points": [], "expected": []}))
    assert "No scores yet" in svg


ALLIANCE = {
    "range": [12, 60],
    "therapist_range": [12, 60],
    "client": [
        {"session": s, "total": t, "normalised": (t - 12) / 48}
        for s, t in zip(range(1, 6), [50, 51, 40, 50, 52], strict=True)
    ],
    "therapist": [
        {"session": s, "total": t, "normalised": (t - 12) / 48}
        for s, t in zip(range(1, 6), [55, 56, 57, 57, 58], strict=True)
    ],
    "ruptures": [{"start_session": 2, "low_session": 3, "repair_session": 4}],
    "gap": {"flag": True},
}


def test_the_alliance_chart_labels_both_lines_in_place_and_marks_the_repair():
    svg = str(charts.alliance_chart(ALLIANCE))
    assert 'class="al-client"' in svg
    assert 'class="al-ther"' in svg
    assert ">Client<" in svg and ">Therapist<" in svg  # noqa: PT018
    assert 'class="repair-arc"' in svg
    assert "repaired by session 4" in svg
    assert 'class="gap-fill"' in svg


def test_an_unrepaired_rupture_is_a_filled_marker():
    svg = str(
        charts.alliance_chart(
            {**ALLIANCE, "ruptures": [{"low_session": 3, "repair_session": None}], "gap": {}}
        )
    )
    assert 'class="rupture-mark rupture"' in svg
    assert "not yet repaired" in svg
    assert "gap-fill" not in svg


def test_alliance_scales_that_differ_are_shown_as_a_share_of_the_scale():
    svg = str(
        charts.alliance_chart(
            {
                **ALLIANCE,
                "therapist_range": [0, 10],
                "therapist": [{"session": 1, "total": 8, "normalised": 0.8}],
            }
        )
    )
    assert "% of scale" in svg


@pytest.mark.parametrize("text", ["<script>alert(1)</script>", '"><img src=x onerror=alert(1)>'])
def test_every_string_in_a_chart_is_escaped(text):
    svg = str(charts.outcome_chart({**OUTCOME, "short_name": text}))
    assert "<script>" not in svg
    assert "<img" not in svg
    assert "&lt;" in svg
    bars = str(charts.stacked_bars([(text, [("safety", 1)])], {"safety": text}))
    assert "<script>" not in bars and "<img" not in bars  # noqa: PT018
    forest = str(charts.interval_chart([(text, 0.5, 0.2, 0.8, text)]))
    assert "<script>" not in forest and "<img" not in forest  # noqa: PT018


def test_sparklines_say_what_they_show():
    spark = str(charts.outcome_sparkline(OUTCOME, "off_track"))
    assert 'aria-label="PHQ-9 from 18 to 19 over 3 check-ins (lower is better)"' in spark
    assert "sig-off_track" in spark
    assert "no scores yet" in str(charts.outcome_sparkline({"points": []}))
    assert "no ratings yet" in str(charts.alliance_sparkline({}))
    assert "client 83%" in str(charts.alliance_sparkline(ALLIANCE))


def test_a_single_rating_is_a_dot_not_an_invisible_line():
    spark = str(
        charts.alliance_sparkline({**ALLIANCE, "client": ALLIANCE["client"][:1], "therapist": []})
    )
    assert "spark-client-dot" in spark


def test_interval_rows_without_an_estimate_say_why():
    svg = str(charts.interval_chart([("Therapist B", None, None, None, "needs 3+ clients")]))
    assert "needs 3+ clients" in svg


@pytest.mark.parametrize(("lo", "hi"), [(0, 27), (12, 60), (0, 1), (0, 120), (10, 50)])
def test_nice_ticks_are_round_and_inside_the_range(lo, hi):
    ticks = charts.nice_ticks(lo, hi)
    assert 3 <= len(ticks) <= 9
    assert all(lo <= t <= hi for t in ticks)
    steps = {round(b - a, 6) for a, b in itertools.pairwise(ticks)}
    assert len(steps) == 1
