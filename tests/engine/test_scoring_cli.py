"""``alliance instruments`` and ``alliance score``: the JSON contracts of issue 2 part 7, tables,
and bad input (non-zero exit, one message that says what to fix, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from alliance.cli import cli

PHQ9_HEADER = "id," + ",".join(f"phq9_{i}" for i in range(1, 10))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, list(args))
    return result.exit_code, result.stdout, result.stderr


def write(tmp_path: Path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


# -- alliance instruments ----------------------------------------------------------------------
def test_instruments_json_follows_the_contract() -> None:
    code, out, _ = run("instruments", "--json")
    assert code == 0
    data = json.loads(out)
    assert isinstance(data, list)
    assert len(data) >= 1
    for inst in data:
        assert {"id", "name", "direction", "range", "licence", "has_text", "items"} <= set(inst)
        assert inst["direction"] in ("higher_is_worse", "higher_is_better")
        assert len(inst["range"]) == 2
        assert inst["range"][0] < inst["range"][1]
        assert isinstance(inst["has_text"], bool)
        for item in inst["items"]:
            assert "id" in item
            assert all("value" in o for o in item["options"])
    phq9 = next(i for i in data if i["id"] == "phq9")
    assert phq9["range"] == [0, 27]
    assert phq9["items"][0]["options"][3] == {
        "value": 3,
        "label": "Nearly every day",
        "code": "LA6571-9",
    }
    assert phq9["critical"] == [{"item": "phq9_9", "op": ">", "value": 0, "flag": "safety"}]


def test_instruments_without_json_prints_a_table() -> None:
    code, out, _ = run("instruments")
    assert code == 0
    assert "phq9" in out
    assert "PHQ-9" in out
    assert not out.lstrip().startswith("[")


# -- alliance score ----------------------------------------------------------------------------
def test_score_json_follows_the_contract(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        "phq9.csv",
        f"{PHQ9_HEADER}\na,1,1,1,1,1,1,1,1,0\nb,2,2,2,2,2,2,2,2,\nc,0,0,0,5,0,0,0,0,1\n",
    )
    code, out, _ = run("score", "phq9", path, "--json")
    assert code == 0
    rows = json.loads(out)
    assert [r["id"] for r in rows] == ["a", "b", "c"]
    for r in rows:
        assert {"id", "total", "subscales", "severity", "flags", "prorated", "error"} <= set(r)
        assert isinstance(r["flags"], list)
        assert isinstance(r["prorated"], bool)
    assert (rows[0]["total"], rows[0]["severity"], rows[0]["error"]) == (8, "mild", None)
    assert (rows[1]["total"], rows[1]["prorated"]) == (18, True)
    assert rows[2]["total"] is None
    assert rows[2]["error"] == "phq9_4: 5 is not an answer option (0, 1, 2, 3)"
    assert any("safety" in f for f in rows[2]["flags"])


def test_score_without_an_id_column_numbers_the_rows(tmp_path: Path) -> None:
    header = ",".join(f"gad7_{i}" for i in range(1, 8))
    path = write(tmp_path, "gad7.csv", f"{header}\n1,1,1,1,1,1,1\n3,3,3,3,3,3,3\n")
    code, out, _ = run("score", "gad7", path, "--json")
    assert code == 0
    assert [(r["id"], r["total"], r["severity"]) for r in json.loads(out)] == [
        (1, 7, "mild"),
        (2, 21, "severe"),
    ]


def test_score_prints_a_table_without_json(tmp_path: Path) -> None:
    path = write(tmp_path, "phq9.csv", f"{PHQ9_HEADER}\na,1,1,1,1,1,1,1,1,1\n")
    code, out, _ = run("score", "phq9", path)
    assert code == 0
    assert "PHQ-9: 1 responses" in out
    assert "safety" in out


def test_score_reads_fhir_json_through_alliance_fhir(tmp_path: Path) -> None:
    qr = {
        "resourceType": "QuestionnaireResponse",
        "id": "r1",
        "status": "completed",
        "item": [
            {
                "linkId": f"phq9_{i}",
                "answer": [{"valueCoding": {"system": "http://loinc.org", "code": "LA6571-9"}}],
            }
            for i in range(1, 10)
        ],
    }
    path = write(tmp_path, "qr.json", json.dumps(qr))
    code, out, _ = run("score", "phq9", path, "--json")
    assert code == 0
    row = json.loads(out)[0]
    assert (row["id"], row["total"], row["severity"]) == ("r1", 27, "severe")


def test_score_says_what_to_do_when_the_fhir_module_is_missing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "alliance.fhir", None)
    path = write(tmp_path, "qr.json", "{}")
    code, _, err = run("score", "phq9", path, "--json")
    assert code == 1
    assert "reading FHIR JSON needs the alliance.fhir module" in err
    assert "Give a CSV file" in err


@pytest.mark.parametrize(
    ("content", "args", "message"),
    [
        (None, ("score", "phq10", "{path}"), "unknown instrument 'phq10'"),
        (None, ("score", "phq9", "{missing}"), "no such file"),
        (
            "id,phq9-1,phq9_2\nx,1,1\n",
            ("score", "phq9", "{path}"),
            "column 'phq9-1' (did you mean phq9_1?) is not a PHQ-9 item",
        ),
        ("id\nx\n", ("score", "phq9", "{path}"), "no column names a PHQ-9 item"),
        ("", ("score", "phq9", "{path}"), "not a readable CSV file"),
    ],
)
def test_bad_input_fails_with_one_message_and_no_traceback(
    tmp_path: Path, content: str | None, args: tuple[str, ...], message: str
) -> None:
    path = write(tmp_path, "in.csv", content if content is not None else f"{PHQ9_HEADER}\n")
    argv = [a.format(path=path, missing=str(tmp_path / "nope.csv")) for a in args]
    code, out, err = run(*argv)
    assert code == 1
    assert message in err
    assert "Traceback" not in err + out
    assert err.startswith("Error: ")


def test_python_dash_m_alliance_runs_the_command_line_in_a_real_process(tmp_path: Path) -> None:
    path = write(tmp_path, "phq9.csv", f"{PHQ9_HEADER}\na,3,3,3,3,3,3,3,3,3\n")
    done = subprocess.run(
        [sys.executable, "-m", "alliance", "score", "phq9", path, "--json"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["total"] == 27
