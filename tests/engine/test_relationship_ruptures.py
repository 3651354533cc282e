"""Rupture and repair detection on hand-made series whose answer is known by construction."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from alliance.errors import InvalidParameter, InvalidResponse
from alliance.relationship import (
    RUPTURE_METHODS,
    RuptureConfig,
    detect_ruptures,
    reference_sd,
    score_detection,
)

WAI = (12, 60)


def episodes(values, method="relative_2sd", **kw):
    kw.setdefault("rng", WAI)
    return [
        (e.start_session, e.low_session, e.repair_session, e.status)
        for e in detect_ruptures(values, method=method, **kw)
    ]


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # a simple V: drop of 12 points (3 SD of 4), back two sessions later
        ([48, 50, 51, 38, 44, 50], [(4, 4, 6, "repaired")]),
        # a decline over two sessions, then a sudden repair (Gumz et al.'s second pattern)
        ([50, 50, 50, 40, 36, 50], [(4, 5, 6, "repaired")]),
        # a drop that never comes back within the window
        ([50, 50, 50, 40, 40, 40, 40, 40, 40, 40, 40], [(4, 4, None, "unrepaired")]),
        # data end before the window passes: ongoing
        ([50, 50, 50, 40, 40], [(4, 4, None, "ongoing")]),
        # noise of one SD is not a rupture at 2 SD
        ([50, 46, 50, 47, 50, 46], []),
    ],
)
def test_relative_2sd_finds_v_shapes_and_their_repair(values, expected):
    assert episodes(values, reference=4.0) == expected


def test_one_sd_is_looser_than_two_sd():
    values = [50, 50, 50, 45, 50, 50]
    assert episodes(values, "relative_1sd", reference=4.0) == [(4, 4, 5, "repaired")]
    assert episodes(values, "relative_2sd", reference=4.0) == []


def test_the_stricter_of_intra_and_inter_individual_sd_is_used():
    # a fluctuating client: own SD ≈ 7 > reference 2, so a drop of 8 is not 2 SD
    values = [40, 54, 42, 55, 38]
    res = detect_ruptures(
        values, rng=WAI, reference=2.0, config=RuptureConfig(baseline_window=None)
    )
    assert len(res) == 0
    # a stable client: own SD 0 < reference 4, so the reference governs
    res = detect_ruptures([50, 50, 50, 41], rng=WAI, reference=4.0)
    (ep,) = res.episodes
    assert ep.sd_source == "inter"
    assert ep.sd == 4.0
    assert ep.depth == pytest.approx(9.0)
    assert ep.depth_sd == pytest.approx(2.25)


def test_after_an_unrepaired_rupture_the_baseline_restarts():
    values = [50, 50, 50, 40, 40, 40, 40, 40, 40, 40, 40, 41, 40, 40]
    res = detect_ruptures(values, rng=WAI, reference=3.0)
    assert [e.status for e in res] == ["unrepaired"]
    assert res.episodes[0].end_session == 10


def test_the_ceiling_rule_catches_a_step_down_that_sd_rules_and_the_cutoff_miss():
    values = [60, 60, 60, 60, 57, 60, 60]
    assert episodes(values, "relative_2sd", reference=4.0) == []
    assert episodes(values, "absolute", config=RuptureConfig(concern_threshold=36)) == []
    res = detect_ruptures(values, method="ceiling_aware", rng=WAI, reference=4.0)
    (ep,) = res.episodes
    assert (ep.start_session, ep.repair_session, ep.ceiling) == (5, 6, True)


def test_the_ceiling_rule_names_the_items_that_stepped_down():
    items = [f"wai_sr_{i}" for i in range(1, 13)]
    rows = []
    for s in range(1, 6):
        r = {"client": "c1", "session": s, **dict.fromkeys(items, 5)}
        if s == 4:
            r["wai_sr_3"] = 4
            r["wai_sr_7"] = 3
        r["alliance"] = sum(r[i] for i in items)
        rows.append(r)
    res = detect_ruptures(
        pd.DataFrame(rows), method="ceiling_aware", instrument="wai_sr", items=items, reference=4.0
    )
    (ep,) = res.episodes
    assert ep.items_down == ("wai_sr_3", "wai_sr_7")
    assert ep.start_session == 4


def test_a_client_not_at_the_ceiling_is_judged_by_the_2sd_rule():
    values = [50, 52, 51, 49, 50]
    res = detect_ruptures(values, method="ceiling_aware", rng=WAI, reference=4.0)
    assert len(res) == 0


def test_absolute_rule_uses_the_srs_concern_threshold_from_the_library():
    res = detect_ruptures([40, 35, 33, 38], method="absolute", instrument="srs")
    (ep,) = res.episodes
    assert (ep.start_session, ep.low_session, ep.repair_session) == (2, 3, 4)
    assert ep.threshold == 36


def test_absolute_rule_flags_an_item_below_the_floor():
    frame = pd.DataFrame(
        {
            "session": [1, 2, 3],
            "srs_1": [10, 8, 10],
            "srs_2": [10, 10, 10],
            "srs_3": [10, 10, 10],
            "srs_4": [10, 10, 10],
        }
    )
    frame["alliance"] = frame[["srs_1", "srs_2", "srs_3", "srs_4"]].sum(axis=1)
    res = detect_ruptures(
        frame, method="absolute", instrument="srs", items=["srs_1", "srs_2", "srs_3", "srs_4"]
    )
    (ep,) = res.episodes
    assert ep.items_down == ("srs_1",)
    assert ep.start_session == 2


def test_absolute_rule_falls_back_to_the_midpoint_without_a_published_cutoff():
    res = detect_ruptures([50, 30, 50], method="absolute", instrument="wai_sr")
    assert res.episodes[0].threshold == 36
    assert any("midpoint" in n for n in res.notes)


def test_a_caseload_frame_gives_episodes_per_client_with_a_reference_sd():
    frame = pd.DataFrame(
        {
            "client": ["a"] * 6 + ["b"] * 6,
            "session": list(range(1, 7)) * 2,
            "alliance": [48, 50, 51, 38, 44, 50, 40, 41, 40, 42, 41, 40],
        }
    )
    res = detect_ruptures(frame, method="relative_1sd", rng=WAI)
    assert res.reference_sd == pytest.approx(reference_sd(frame))
    assert {e.client for e in res} == {"a"}
    json.dumps(res.to_dict())
    assert list(res.to_frame()["start_session"]) == [4]


def test_missing_sessions_are_skipped_and_session_numbers_kept():
    res = detect_ruptures([48, None, 50, 51, 38, 50], rng=WAI, reference=4.0)
    assert [(e.start_session, e.repair_session) for e in res] == [(5, 6)]


@pytest.mark.parametrize("method", RUPTURE_METHODS)
def test_every_method_is_recorded_on_its_episodes(method):
    values = [50, 50, 50, 30, 50]
    res = detect_ruptures(values, method=method, rng=WAI, reference=4.0)
    assert res.method == method
    assert all(e.method == method for e in res)


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"method": "magic"}, InvalidParameter),
        ({"method": "ceiling_aware", "rng": None}, InvalidParameter),
        ({"rng": (12, 40)}, InvalidResponse),
    ],
)
def test_it_rejects_bad_arguments(kwargs, error):
    kwargs.setdefault("rng", WAI)
    with pytest.raises(error):
        detect_ruptures([50, 50, 50, 41], **kwargs)


def test_it_rejects_non_numeric_and_duplicate_sessions():
    with pytest.raises(InvalidResponse, match="not a number"):
        detect_ruptures(pd.DataFrame({"session": [1, 2], "alliance": ["50", "high"]}), rng=WAI)
    with pytest.raises(InvalidResponse, match="two ratings"):
        detect_ruptures(pd.DataFrame({"session": [1, 1], "alliance": [50, 51]}), rng=WAI)


@pytest.mark.parametrize(
    "kwargs",
    [{"min_baseline": 0}, {"repair_window": 0}, {"ceiling_share": 0}, {"baseline_window": 1}],
)
def test_the_config_rejects_impossible_thresholds(kwargs):
    with pytest.raises(InvalidParameter):
        RuptureConfig(**kwargs)


def test_reference_sd_pools_within_client_variance_or_takes_the_total():
    f = pd.DataFrame({"client": [1, 1, 2, 2], "alliance": [40, 44, 50, 54]})
    assert reference_sd(f) == pytest.approx(math.sqrt((4 * 2**2) / 2))
    assert reference_sd(f, kind="total") == pytest.approx(pd.Series([40, 44, 50, 54]).std())


def test_detection_is_scored_against_known_ruptures():
    frame = pd.DataFrame(
        {
            "client": ["a"] * 6 + ["b"] * 6,
            "session": list(range(1, 7)) * 2,
            "alliance": [48, 50, 51, 38, 44, 50, 50, 50, 50, 49, 50, 36],
        }
    )
    truth = pd.DataFrame(
        {
            "client": ["a", "b", "b"],
            "start_session": [4, 2, 6],
            "low_session": [4, 2, 6],
            "repair_session": [6, 3, math.nan],
        }
    )
    score = score_detection(detect_ruptures(frame, rng=WAI, reference=4.0), truth)
    assert (score.true_positives, score.false_positives, score.false_negatives) == (2, 0, 1)
    assert score.recall == pytest.approx(2 / 3)
    assert score.precision == 1.0
    assert score.repair_agreement == 1.0


def caseload_with_a_bond_rupture():
    rng = np.random.default_rng(0)
    rows = []
    for c in range(30):
        for s in range(1, 9):
            bond, task, goal = (int(np.clip(round(15 + rng.normal(0, 1)), 4, 20)) for _ in "btg")
            if c == 0 and s == 6:
                bond, task, goal = 10, 16, 16  # a strain in the bond; the total hardly moves
            rows.append(
                {
                    "client": f"c{c}",
                    "session": s,
                    "alliance_bond": bond,
                    "alliance_task": task,
                    "alliance_goal": goal,
                    "alliance": bond + task + goal,
                }
            )
    return pd.DataFrame(rows)


def test_a_strain_in_one_subscale_is_found_through_that_subscale():
    frame = caseload_with_a_bond_rupture()
    res = detect_ruptures(frame, instrument="wai_sr")
    eps = [e for e in res if e.client == "c0"]
    assert [(e.start_session, e.subscales_down) for e in eps] == [(6, ("alliance_bond",))]
    total_only = detect_ruptures(frame, instrument="wai_sr", subscales=None)
    assert not [e for e in total_only if e.client == "c0" and e.start_session == 6]


def test_subscales_are_tested_at_the_bonferroni_equivalent_of_the_total_rule():
    from alliance.relationship.ruptures import _family_k

    assert _family_k(2.0, 1) == 2.0
    assert _family_k(2.0, 4) == pytest.approx(2.5310, abs=1e-4)


@pytest.mark.parametrize("bad", [-1.0, math.nan])
def test_the_config_rejects_a_negative_prior_weight_for_the_caseload_sd(bad):
    with pytest.raises(InvalidParameter, match="intra_prior_df"):
        RuptureConfig(intra_prior_df=bad)


@pytest.mark.parametrize(
    ("prior_df", "expected_sd", "fires"),
    [
        # raw client SD of 40, 52, 44 (variance 112/3, 2 df): too wide for a drop to 34
        (0.0, math.sqrt(112 / 3), False),
        # default: pooled with the caseload SD 2 at 4 prior df (Smyth 2004)
        (4.0, math.sqrt((2 * 112 / 3 + 4 * 2.0**2) / 6), True),
        # the caseload SD only
        (math.inf, 2.0, True),
    ],
)
def test_a_clients_sd_from_few_sessions_is_pooled_with_the_caseloads(prior_df, expected_sd, fires):
    cfg = RuptureConfig(intra_prior_df=prior_df)
    res = detect_ruptures([40, 52, 44, 34], rng=WAI, reference=2.0, config=cfg)
    assert bool(res.episodes) is fires
    if fires:
        (ep,) = res.episodes
        assert ep.sd == pytest.approx(expected_sd)
        assert ep.sd_source == ("intra" if math.isfinite(prior_df) else "inter")
        assert ep.threshold == pytest.approx(np.mean([40, 52, 44]) - 2 * expected_sd)


def test_pooling_never_lowers_the_sd_below_the_caseloads():
    # a stable client (own SD 0.58 < 4): pooling pulls it up, the caseload's 4 still governs
    (ep,) = detect_ruptures([50, 51, 50, 41], rng=WAI, reference=4.0).episodes
    assert (ep.sd, ep.sd_source) == (4.0, "inter")


def test_a_late_alarm_during_a_true_rupture_is_not_a_false_alarm():
    frame_truth = pd.DataFrame(
        {
            "client": ["client"],
            "start_session": [4],
            "low_session": [4],
            "repair_session": [math.nan],
        }
    )
    found = detect_ruptures([50] * 3 + [48] + [44] * 9 + [38], rng=WAI, reference=2.0)
    assert [(e.start_session, e.status) for e in found] == [(5, "unrepaired"), (14, "ongoing")]
    strict = score_detection(found, frame_truth)
    fair = score_detection(found, frame_truth, credit_during=True)
    assert (strict.true_positives, strict.false_positives, strict.precision) == (1, 1, 0.5)
    assert (fair.true_positives, fair.false_positives, fair.during, fair.precision) == (
        1,
        0,
        1,
        1.0,
    )
    assert fair.recall == strict.recall == 1.0
    # after a repair the rupture is over: an alarm then is false
    repaired = frame_truth.assign(repair_session=[6.0])
    assert score_detection(found, repaired, credit_during=True).during == 0


def test_subscales_follow_their_rows_whatever_the_frame_index():
    import numpy as np
    import pandas as pd

    from alliance import detect_ruptures

    rng = np.random.default_rng(3)
    rows = []
    for client in ("a", "b", "c"):
        for session in range(1, 11):
            total = 50 + rng.normal(0, 1.5) - (9 if (client == "b" and session == 7) else 0)
            rows.append(
                {
                    "client": client,
                    "session": session,
                    "alliance": float(np.clip(round(total), 12, 60)),
                    "alliance_bond": float(np.clip(round(total / 3), 4, 20)),
                }
            )
    frame = pd.DataFrame(rows)
    shuffled = frame.sample(frac=1, random_state=1)
    shuffled.index = shuffled.index * 7 + 100  # labels unrelated to positions
    expected = detect_ruptures(
        frame, "relative_2sd", rng=(12, 60), subscales={"alliance_bond": (4, 20)}
    )
    got = detect_ruptures(
        shuffled, "relative_2sd", rng=(12, 60), subscales={"alliance_bond": (4, 20)}
    )
    key = lambda e: (e.client, e.start_session, e.method)  # noqa: E731
    assert sorted(map(key, got.episodes)) == sorted(map(key, expected.episodes))
