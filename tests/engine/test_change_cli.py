"""``alliance change``: the JSON contract of issue 2 part 7, tables and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from alliance.cli import cli

PAIRS = "id,pre,post\na,18,9\nb,14,12\nc,8,16\nd,12,\n"


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def pairs(tmp_path: Path) -> str:
    path = tmp_path / "pairs.csv"
    path.write_text(PAIRS, encoding="utf-8")
    return str(path)


def test_change_json_follows_the_contract(pairs: str) -> None:
    code, out, _ = run("change", "phq9", pairs, "--json")
    assert code == 0
    rows = json.loads(out)
    for r in rows:
        assert {"id", "rci", "reliable", "threshold", "cutoff", "category", "method"} <= set(r)
    assert [r["id"] for r in rows] == ["a", "b", "c", "d"]
    assert [r["category"] for r in rows] == ["recovered", "unchanged", "deteriorated", None]
    assert rows[0]["reliable"] is True
    assert (rows[0]["threshold"], rows[0]["cutoff"], rows[0]["method"]) == (
        6,
        10,
        "published_threshold",
    )
    assert rows[3]["rci"] is None


def test_a_custom_scale_takes_its_norms_from_the_options(tmp_path: Path) -> None:
    path = tmp_path / "jt.csv"
    path.write_text("pre,post\n40,55\n40,45\n50,40\n", encoding="utf-8")
    code, out, _ = run(
        "change", "custom", str(path), "--json", "--reliability", "0.8", "--sd", "7.5",
        "--clinical-mean", "40", "--functional-mean", "60", "--functional-sd", "7.5",
        "--cutoff", "c", "--direction", "higher_is_better",
    )  # fmt: skip
    assert code == 0
    rows = json.loads(out)
    assert rows[0]["rci"] == pytest.approx(3.162, abs=1e-3)  # Jacobson & Truax (1991)
    assert rows[0]["cutoff"] == 50
    assert [r["category"] for r in rows] == ["recovered", "unchanged", "deteriorated"]
    assert [r["id"] for r in rows] == [1, 2, 3]


@pytest.mark.parametrize("method", ["gulliksen_lord_novick", "hageman_arrindell", "maassen"])
def test_every_method_can_be_chosen(pairs: str, method: str) -> None:
    code, out, err = run(
        "change", "phq9", pairs, "--json", "--method", method, "--sd", "5",
        "--clinical-mean", "15",
    )  # fmt: skip
    assert code == 0, err
    assert {r["method"] for r in json.loads(out)} == {method}


def test_change_prints_a_table_without_json(pairs: str) -> None:
    code, out, _ = run("change", "phq9", pairs)
    assert code == 0
    assert "published_threshold" in out
    assert "recovered" in out


@pytest.mark.parametrize(
    ("text", "args", "message"),
    [
        (PAIRS, ("custom",), "direction is needed"),
        (
            PAIRS,
            ("custom", "--direction", "higher_is_worse"),
            "Add --reliability, --sd, --threshold",
        ),
        (PAIRS, ("phq9", "--method", "jacobson_truax"), "Add --sd."),
        (PAIRS, ("phq9", "--cutoff", "z"), "--cutoff must be a, b, c or a number"),
        (PAIRS, ("phq9", "--reliability", "1.5", "--sd", "5"), "reliability must lie strictly"),
        ("id,before,after\na,1,2\n", ("phq9",), "missing column(s) pre, post"),
        ("pre,post\n18,nine\n", ("phq9",), "post must be a number (or empty when missing): row 1"),
        (PAIRS, ("phq10",), "unknown instrument 'phq10'"),
    ],
)
def test_bad_input_fails_with_a_message_that_says_what_to_fix(
    tmp_path: Path, text: str, args: tuple[str, ...], message: str
) -> None:
    path = tmp_path / "in.csv"
    path.write_text(text, encoding="utf-8")
    code, out, err = run("change", args[0], str(path), "--json", *args[1:])
    assert code == 1
    assert message in err
    assert "Traceback" not in out + err
