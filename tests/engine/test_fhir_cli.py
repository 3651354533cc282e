"""``alliance fhir export | import | score`` (SPEC §5), run through click's test runner."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from fhir.resources.R4B.questionnaire import Questionnaire

from alliance.cli import cli
from alliance.instruments import load

DATA = Path(__file__).parent / "data" / "fhir"


def run(*args: str):
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def test_export_prints_a_valid_questionnaire():
    result = run("fhir", "export", "gad7")
    assert result.exit_code == 0
    q = json.loads(result.stdout)
    Questionnaire.model_validate(q)
    assert q["code"][0]["code"] == "69737-5"


def test_export_writes_a_file_with_another_base_and_item_weight(tmp_path):
    out = tmp_path / "phq9.json"
    result = run(
        "fhir",
        "export",
        "phq9",
        "--out",
        str(out),
        "--base-url",
        "https://p.example/fhir",
        "--score-extension",
        "itemWeight",
    )
    assert result.exit_code == 0
    q = json.loads(out.read_text(encoding="utf-8"))
    assert q["url"] == "https://p.example/fhir/Questionnaire/phq9"
    assert "itemWeight" in json.dumps(q)


def test_import_says_matched_with_the_instrument_and_its_items():
    result = run("fhir", "import", str(DATA / "sdc280_Questionnaire-PHQ9.json"))
    assert result.exit_code == 0
    assert result.stdout.startswith("Matched phq9 (Patient Health Questionnaire-9): structure")
    assert "H1/T1/Q9" in result.stdout


def test_import_json_reports_the_tolerant_reading_of_the_lhc_forms_file():
    result = run("fhir", "import", str(DATA / "lhcforms_R4_phq9_loinc.json"), "--json")
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["status"] == "matched"
    assert summary["instrument"] == "phq9"
    assert summary["total_items"] == ["/44261-6"]
    assert "R4B model" in summary["warnings"][0]


def test_import_writes_a_custom_definition_that_loads_again(tmp_path):
    q = json.loads((DATA / "rkof_Questionnaire-GAD7.json").read_text(encoding="utf-8"))
    q["title"] = "Practice worry form"
    del q["url"]
    src = tmp_path / "q.json"
    src.write_text(json.dumps(q), encoding="utf-8")
    out = tmp_path / "custom_practice_worry_form.yaml"
    result = run("fhir", "import", str(src), "--json", "--out", str(out))
    assert result.exit_code == 0
    summary = json.loads(result.stdout)
    assert summary["status"] == "created"
    assert summary["instrument"] == "custom_practice_worry_form"
    assert summary["written"] == str(out)
    inst = load(out)
    assert inst.custom
    assert inst.scoring.range == (0.0, 21.0)


def test_score_recomputes_and_warns_about_the_stored_total():
    result = run(
        "fhir",
        "score",
        str(DATA / "sdc280_QuestionnaireResponse-PHQ9.json"),
        "--questionnaire",
        str(DATA / "sdc280_Questionnaire-PHQ9.json"),
        "--json",
    )
    assert result.exit_code == 0
    (row,) = json.loads(result.stdout)
    assert row["total"] == 10
    assert row["stored_total"] == 13
    assert row["total_mismatch"] is True
    assert row["flags"] == ["safety"]


def test_score_prints_a_table_and_the_warnings():
    result = run(
        "fhir",
        "score",
        str(DATA / "sdc280_QuestionnaireResponse-PHQ9.json"),
        "--questionnaire",
        str(DATA / "sdc280_Questionnaire-PHQ9.json"),
    )
    assert result.exit_code == 0
    assert "moderate" in result.stdout
    assert "disagrees with the recomputed total 10" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("fhir", "export", "nope"), "unknown instrument 'nope'"),
        (("fhir", "import", "missing.json"), "cannot read the file"),
        (("fhir", "import", "{bad}"), "not valid JSON"),
        (("fhir", "import", "{patient}"), "expected a FHIR Questionnaire"),
        (("fhir", "score", "{sdc_response}"), "give the Questionnaire"),
    ],
)
def test_bad_input_exits_non_zero_with_a_message(tmp_path, args, message):
    bad = tmp_path / "bad.json"
    bad.write_text("{", encoding="utf-8")
    patient = tmp_path / "patient.json"
    patient.write_text('{"resourceType": "Patient"}', encoding="utf-8")
    names = {
        "{bad}": str(bad),
        "{patient}": str(patient),
        "{sdc_response}": str(DATA / "sdc280_QuestionnaireResponse-PHQ9.json"),
        "missing.json": str(tmp_path / "missing.json"),
    }
    result = run(*(names.get(a, a) for a in args))
    assert result.exit_code == 1
    assert message in result.stderr
