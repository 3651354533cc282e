"""``alliance ruptures`` and ``alliance dropout``: the contracts scripts rely on."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

from alliance.cli import cli

RUPTURES_CSV = """client,session,alliance,therapist_alliance
a,1,48,44
a,2,50,45
a,3,51,45
a,4,38,44
a,5,44,45
a,6,50,46
b,1,60,50
b,2,60,50
b,3,60,51
b,4,57,51
b,5,60,52
c,1,50,
c,2,50,
c,3,50,
c,4,38,
"""


@pytest.fixture
def runner():
    return CliRunner()


def write(tmp_path, text, name="data.csv"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


def test_ruptures_json_is_an_array_of_episodes_with_the_contract_fields(runner, tmp_path):
    result = runner.invoke(cli, ["ruptures", write(tmp_path, RUPTURES_CSV), "--json"])
    assert result.exit_code == 0, result.output
    episodes = json.loads(result.stdout)
    assert isinstance(episodes, list)
    assert episodes
    for ep in episodes:
        assert {"client", "start_session", "repair_session", "method"} <= set(ep)
    by = {(e["client"], e["method"]): e for e in episodes}
    assert by[("a", "relative_2sd")]["start_session"] == 4
    assert by[("a", "relative_2sd")]["repair_session"] == 6
    assert by[("c", "relative_2sd")]["repair_session"] is None
    assert by[("b", "ceiling_aware")]["start_session"] == 4
    assert ("b", "relative_2sd") not in by


def test_ruptures_method_option_selects_the_rules(runner, tmp_path):
    path = write(tmp_path, RUPTURES_CSV)
    result = runner.invoke(cli, ["ruptures", path, "--json", "--method", "relative_1sd"])
    assert {e["method"] for e in json.loads(result.stdout)} == {"relative_1sd"}


def test_ruptures_without_json_prints_a_table(runner, tmp_path):
    result = runner.invoke(cli, ["ruptures", write(tmp_path, RUPTURES_CSV)])
    assert result.exit_code == 0
    assert "Alliance ruptures" in result.output


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("client,session\na,1\n", "missing column"),
        ("client,session,alliance\na,1,high\n", "not a number"),
        ("client,session,alliance\na,1,70\n", "outside the scale"),
    ],
)
def test_ruptures_fails_clearly_on_bad_input(runner, tmp_path, text, message):
    result = runner.invoke(cli, ["ruptures", write(tmp_path, text), "--json"])
    assert result.exit_code == 1
    assert message in result.output


def test_ruptures_therapist_perspective_needs_the_column(runner, tmp_path):
    path = write(tmp_path, "client,session,alliance\na,1,50\n")
    result = runner.invoke(cli, ["ruptures", path, "--perspective", "therapist"])
    assert result.exit_code == 1
    assert "therapist_alliance" in result.output


def practice_csv(tmp_path, n=400, open_clients=20, seed=3):
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n + open_clients):
        a0 = rng.normal(46, 7)
        dropped = rng.random() < 1 / (1 + np.exp(1.5 + 0.15 * (a0 - 46)))
        for s in range(1, (4 if dropped else 10) + 1):
            missed = rng.random() < (0.2 if dropped else 0.05)
            rows.append(
                {
                    "client": f"c{c}",
                    "session": s,
                    "alliance": "" if missed else round(min(60, max(12, a0 + rng.normal(0, 3)))),
                    "status": "no_show" if missed else "attended",
                    "score": round(max(0, 15 - 0.5 * s + rng.normal(0, 2))),
                    "dropped_out": int(dropped) if c < n else "",
                }
            )
    path = tmp_path / "practice.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return str(path)


def test_dropout_json_reports_the_model_and_warnings_for_open_episodes(runner, tmp_path):
    result = runner.invoke(cli, ["dropout", practice_csv(tmp_path), "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["model"]["method"] == "l2_logistic"
    assert 0.5 < report["model"]["cv_auc"] <= 1
    assert report["model"]["calibration"]
    assert report["n_closed"] == 400
    assert len(report["warnings"]) == 20
    assert all(w["risk"] in ("low", "elevated", "high") for w in report["warnings"])
    assert all(0 < w["probability"] < 1 for w in report["warnings"])


def test_dropout_without_enough_closed_episodes_reports_why(runner, tmp_path):
    result = runner.invoke(cli, ["dropout", practice_csv(tmp_path, n=30), "--json"])
    assert result.exit_code == 0
    report = json.loads(result.stdout)
    assert report["model"] is None
    assert "early-warning rule" in report["model_error"]
    assert len(report["warnings"]) == 20


def test_dropout_fails_clearly_on_bad_status(runner, tmp_path):
    text = "client,session,alliance,status\na,1,40,late\n"
    result = runner.invoke(cli, ["dropout", write(tmp_path, text)])
    assert result.exit_code == 1
    assert "unknown value" in result.output
