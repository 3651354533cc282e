"""The support checklist: when it appears, how it is ordered, and the evidence on each line."""

from __future__ import annotations

import json

import pytest

from alliance.errors import InvalidParameter
from alliance.relationship import (
    CHECKLIST_DOMAINS,
    detect_ruptures,
    dropout_warning,
    perspective_gap,
    support_checklist,
)


def test_nothing_is_produced_when_nothing_triggered_it():
    c = support_checklist(signal="on_track", alliance=0.4)
    assert not c.triggered
    assert c.items == ()


@pytest.mark.parametrize(
    ("kwargs", "trigger"),
    [
        ({"signal": "off_track"}, "off_track"),
        ({"signal": "at_risk"}, "at_risk"),
        ({"rupture": True}, "rupture"),
        ({"dropout": "high"}, "dropout_risk_high"),
    ],
)
def test_it_is_triggered_by_off_track_rupture_or_dropout_risk(kwargs, trigger):
    c = support_checklist(**kwargs)
    assert c.triggered
    assert trigger in c.triggers
    assert [i.domain for i in c.items] != []
    assert sorted(i.domain for i in c.items) == sorted(CHECKLIST_DOMAINS)


def test_low_alliance_items_put_the_relationship_first():
    c = support_checklist(signal="off_track", alliance_items={"wai_sr_3": 0.25, "wai_sr_7": 0.5})
    assert c.items[0].domain == "alliance"
    assert any("wai_sr_3" in e for e in c.items[0].evidence)


def test_life_events_come_first_when_the_client_reports_them():
    c = support_checklist(signal="at_risk", life_events=["lost job"], outcome_worsened=True)
    assert c.items[0].domain == "life_events"
    assert "reported: lost job" in c.items[0].evidence


def test_missed_sessions_point_to_motivation():
    w = dropout_warning(statuses=["attended", "no_show", "cancelled"])
    c = support_checklist(dropout=w, missed=2)
    assert c.items[0].domain == "motivation"


def test_a_rupture_episode_and_a_gap_are_evidence_for_the_relationship():
    (ep,) = detect_ruptures([50, 50, 50, 38], rng=(12, 60), reference=4.0).episodes
    gap = perspective_gap([40, 38, 36], [50, 50, 51], client_rng=(12, 60))
    c = support_checklist(rupture=ep, gap=gap)
    first = c.items[0]
    assert first.domain == "alliance"
    assert any("session 4" in e for e in first.evidence)
    assert any("higher" in e for e in first.evidence)


def test_lines_without_data_say_so_and_ranks_are_in_order():
    c = support_checklist(signal="off_track")
    assert [i.rank for i in c.items] == [1, 2, 3, 4, 5]
    assert c.items[0].domain == "treatment_fit"
    assert "no data pointed here" in c.items[-1].evidence[0]
    assert all(i.questions for i in c.items)
    json.dumps(c.to_dict())


@pytest.mark.parametrize(
    "kwargs", [{"signal": "purple"}, {"alliance": 2.0}, {"missed": -1}, {"low": 3.0}]
)
def test_it_rejects_impossible_inputs(kwargs):
    with pytest.raises(InvalidParameter):
        support_checklist(**kwargs)
