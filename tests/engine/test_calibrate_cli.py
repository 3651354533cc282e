"""``alliance calibrate``: the JSON contract of issue 3 part 4, the model file and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import alliance as al
from alliance import recovery
from alliance.cli import cli

REFERENCE = Path(__file__).parent / "reference"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(scope="module")
def course_csv(tmp_path_factory: pytest.TempPathFactory) -> str:
    data = recovery.example_data(150, seed=2).assign(instrument="phq9", therapist="t1")
    path = tmp_path_factory.mktemp("calibrate") / "course.csv"
    data.to_csv(path, index=False)
    return str(path)


def write(tmp_path: Path, frame: pd.DataFrame | str) -> str:
    path = tmp_path / "data.csv"
    if isinstance(frame, str):
        path.write_text(frame, encoding="utf-8")
    else:
        frame.to_csv(path, index=False)
    return str(path)


def test_calibrate_json_follows_the_contract(course_csv: str) -> None:
    code, out, _ = run("calibrate", course_csv, "--json", "--folds", "3")
    assert code == 0
    result = json.loads(out)
    model = result["model"]
    assert model["method"] == "loglinear_intake"
    assert list(model["fixed_effects"]) == [
        "(Intercept)",
        "log_session",
        "intake",
        "log_session:intake",
    ]
    assert np.asarray(model["re_cov"]).shape == (2, 2)
    for key in ("residual_var", "reml_criterion", "n_obs", "n_clients"):
        assert isinstance(model[key], (int, float))
    validation = result["validation"]
    assert validation["folds"] == 3
    assert validation["window"] == [2, 5]
    methods = {r["method"] for r in validation["rates"]}
    assert methods == {"empirical_etr", "rational_reliable_change"}
    for r in validation["rates"]:
        for key in ("sensitivity", "specificity", "ppv", "flagged_share"):
            assert r[key] is None or 0 <= r[key] <= 1


def test_the_json_model_is_the_lmer_fit(tmp_path: Path) -> None:
    # lmer(score ~ log(session) * intake + (1 + log(session) | client)), reference/lmm_reference.R
    ref = next(
        f
        for f in json.loads((REFERENCE / "lmm_reference.json").read_text())["fits"]
        if f["dataset"] == "etr_unbalanced" and f["reml"] and f["control"] == "tight"
    )
    path = str(REFERENCE / "lmm_data" / "etr_unbalanced.csv")
    code, out, _ = run("calibrate", path, "--json", "--no-validate")
    assert code == 0
    model = json.loads(out)["model"]
    assert model["fixed_effects"]["log_session:intake"] == pytest.approx(
        ref["fixef"]["log(session):intake"], rel=1e-5
    )
    np.testing.assert_allclose(model["re_cov"], ref["re_cov"], rtol=1e-4)
    assert model["reml_criterion"] == pytest.approx(ref["criterion"], rel=1e-9)
    assert (model["n_obs"], model["n_clients"]) == (ref["n_obs"], ref["n_groups"])
    assert json.loads(out)["validation"] is None


def test_out_writes_a_model_the_app_can_load(course_csv: str, tmp_path: Path) -> None:
    target = tmp_path / "model.json"
    code, _, _ = run("calibrate", course_csv, "--no-validate", "--out", str(target))
    assert code == 0
    model = al.ETRModel.from_dict(json.loads(target.read_text()))
    direct = al.fit_etr(pd.read_csv(course_csv), instrument="phq9")
    assert model.instrument == "phq9"
    assert model.expected(5, 17) == pytest.approx(direct.expected(5, 17), rel=1e-9)


def test_the_table_output_names_both_methods(course_csv: str) -> None:
    code, out, _ = run("calibrate", course_csv, "--folds", "2")
    assert code == 0
    assert "empirical" in out
    assert "rational" in out
    assert "log_session:intake" in out


@pytest.mark.parametrize("method", ["intake_stratified", "nearest_neighbours"])
def test_the_alternative_methods_calibrate_too(course_csv: str, method: str) -> None:
    code, out, _ = run("calibrate", course_csv, "--method", method, "--json", "--no-validate")
    assert code == 0
    assert json.loads(out)["model"]["method"] == method


def test_truth_columns_add_rows_next_to_the_observed_outcome(
    course_csv: str, tmp_path: Path
) -> None:
    clients = pd.read_csv(course_csv)["client"].unique()
    truth = tmp_path / "clients.csv"
    pd.DataFrame(
        {"client": clients, "truly_off_track": np.arange(clients.size) % 2 == 0, "concern": "x"}
    ).to_csv(truth, index=False)
    code, out, _ = run("calibrate", course_csv, "--json", "--folds", "2", "--truth", str(truth))
    assert code == 0
    targets = {r["target"] for r in json.loads(out)["validation"]["rates"]}
    assert targets == {"poor_outcome", "truth:truly_off_track"}


@pytest.mark.parametrize(
    ("content", "options", "message"),
    [
        ("client,score\n1,3\n", ["--instrument", "phq9"], "missing column(s) session"),
        (
            "client,session,score\n1,1,12\n1,2,abc\n",
            ["--instrument", "phq9"],
            "score must be numeric; found row 2: 'abc'",
        ),
        (
            "client,session,score\n1,1,12\n2,1,9\n3,1,15\n",
            ["--instrument", "phq9"],
            "single session",
        ),
        ("client,session,score\n1,0,12\n1,1,9\n", ["--instrument", "phq9"], "start at 1"),
        (
            "client,session,score,instrument\n1,1,12,phq9\n1,2,9,gad7\n",
            [],
            "choose one with --instrument",
        ),
        ("client,session,score\n1,1,12\n1,2,9\n", [], "add --instrument"),
    ],
)
def test_bad_input_gives_a_message_not_a_traceback(
    tmp_path: Path, content: str, options: list[str], message: str
) -> None:
    code, _, err = run("calibrate", write(tmp_path, content), *options)
    assert code == 1
    assert message in err
    assert "Traceback" not in err


def test_a_singular_fit_gives_a_message(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    s = np.tile(np.arange(1, 9), 150)
    frame = pd.DataFrame(
        {
            "client": np.repeat(np.arange(150), 8),
            "session": s,
            "score": np.round(15 - 3 * np.log(s) + rng.normal(0, 2, s.size), 1),
        }
    )
    code, _, err = run("calibrate", write(tmp_path, frame), "--instrument", "phq9")
    assert code == 1
    assert "Singular fit" in err


def test_an_unknown_instrument_is_named(course_csv: str) -> None:
    code, _, err = run("calibrate", course_csv, "--instrument", "nope")
    assert code == 1
    assert "nope" in err
