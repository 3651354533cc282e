"""The therapist–client perspective gap and its two flags, on hand-made pairs."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from alliance.errors import InsufficientData, InvalidParameter, InvalidResponse
from alliance.relationship import GapConfig, GapNorms, gap_norms, perspective_gap

WAI = (12, 60)


def test_a_therapist_who_rates_markedly_higher_is_flagged():
    g = perspective_gap([40, 40, 40], [50, 50, 50], client_rng=WAI)
    assert g.mean_gap_pomp == pytest.approx(10 / 48)
    assert g.therapist_higher
    assert not g.diverging
    assert g.method == "pomp_gap"


def test_the_usual_gap_clients_higher_is_not_flagged():
    g = perspective_gap([52, 53, 54], [46, 47, 48], client_rng=WAI)
    assert not g.flagged
    assert g.reasons == ()


def test_with_caseload_norms_the_gap_is_standardised_within_each_perspective():
    norms = GapNorms(client_mean=0.8, client_sd=0.1, therapist_mean=0.7, therapist_sd=0.1)
    # client at its mean, therapist 1.5 SD above its mean: z gap 1.5
    client, therapist = [12 + 0.8 * 48] * 3, [12 + 0.85 * 48] * 3
    g = perspective_gap(client, therapist, client_rng=WAI, norms=norms)
    assert g.mean_gap_z == pytest.approx(1.5)
    assert g.therapist_higher
    assert g.method == "standardised_gap"


def test_diverging_trends_are_flagged_when_the_client_falls_and_the_therapist_does_not():
    g = perspective_gap([54, 52, 49, 46, 44], [48, 48, 49, 49, 50], client_rng=WAI)
    assert g.client_slope < 0 < g.therapist_slope
    assert g.diverging
    assert "falling" in g.reasons[-1]


def test_both_falling_together_is_not_divergence():
    g = perspective_gap([54, 52, 50, 48], [50, 48, 46, 44], client_rng=WAI)
    assert not g.diverging


def test_sessions_rated_by_only_one_side_are_skipped():
    g = perspective_gap(
        [50, None, 48, 47], [45, 46, None, 44], client_rng=WAI, sessions=[1, 2, 3, 4]
    )
    assert g.sessions == (1, 4)


def test_norms_come_from_a_caseload_of_paired_ratings():
    f = pd.DataFrame({"alliance": [50, 54, 46, 52], "therapist_alliance": [44, 48, 46, 40]})
    n = gap_norms(f, client_rng=WAI)
    assert n.client_mean == pytest.approx((sum([50, 54, 46, 52]) / 4 - 12) / 48)
    assert n.n == 4
    json.dumps(n.to_dict())


def test_the_result_is_json_serialisable():
    json.dumps(perspective_gap([40, 41, 42], [50, 50, 50], client_rng=WAI).to_dict())


@pytest.mark.parametrize(
    ("args", "kwargs", "error"),
    [
        (([40], [40, 41]), {}, InvalidResponse),
        (([None], [40]), {}, InsufficientData),
        (([70], [40]), {}, InvalidResponse),
        (([40], [40]), {"sessions": [1, 2]}, InvalidResponse),
    ],
)
def test_it_rejects_unusable_ratings(args, kwargs, error):
    with pytest.raises(error):
        perspective_gap(*args, client_rng=WAI, **kwargs)


def test_the_config_rejects_impossible_thresholds():
    with pytest.raises(InvalidParameter):
        GapConfig(trend_sessions=2)
    with pytest.raises(InvalidParameter):
        GapNorms(0.5, 0.0, 0.5, 0.1)
