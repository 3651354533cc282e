"""The four-stage heuristic: each rule, its reasons, its guidance, and that it says it is one."""

from __future__ import annotations

import json

import pytest

from alliance.errors import InvalidParameter
from alliance.relationship import STAGES, StageConfig, suggest_stage


@pytest.mark.parametrize(
    ("kwargs", "stage"),
    [
        ({"sessions": 1}, 1),
        ({"sessions": 3, "bond": 0.9}, 1),
        ({"sessions": 8, "bond": 0.4}, 1),
        ({"sessions": 5, "bond": 0.8, "goals_agreed": False}, 2),
        ({"sessions": 5, "bond": 0.8, "goal": 0.5, "task": 0.7}, 2),
        ({"sessions": 5, "bond": 0.8, "goal": 0.7, "task": 0.7, "goals_agreed": True}, 3),
        ({"sessions": 5}, 3),
        ({"sessions": 2, "planned_ending": True}, 4),
        ({"sessions": 10, "sessions_left": 2, "bond": 0.9}, 4),
        ({"sessions": 8, "progress": 0.85, "bond": 0.9}, 4),
        ({"sessions": 4, "progress": 0.85, "bond": 0.9}, 3),
    ],
)
def test_the_stage_follows_the_documented_rules(kwargs, stage):
    assert suggest_stage(**kwargs).stage == stage


def test_every_suggestion_has_reasons_guidance_and_the_heuristic_note():
    for kwargs in ({"sessions": 1}, {"sessions": 5, "goals_agreed": False}, {"sessions": 9}):
        s = suggest_stage(**kwargs)
        assert s.reasons
        assert s.guidance
        assert "heuristic" in s.note
        assert s.method == "stage_heuristic_v1"
        assert (s.stage, s.key, s.label) in STAGES
        json.dumps(s.to_dict())


def test_thresholds_are_configurable():
    cfg = StageConfig(engagement_sessions=5)
    assert suggest_stage(4, config=cfg).stage == 1
    assert suggest_stage(4).stage == 3


@pytest.mark.parametrize(
    "kwargs", [{"sessions": -1}, {"sessions": 3, "bond": 1.5}, {"sessions": 3, "progress": -0.1}]
)
def test_it_rejects_impossible_inputs(kwargs):
    with pytest.raises(InvalidParameter):
        suggest_stage(**kwargs)
