"""Rescoring FHIR QuestionnaireResponses (alliance.fhir.response).

Validated against the reference files in tests/engine/data/fhir (see its README): the HL7 SDC
PHQ-9 example response (answers sum to 10, stored total 13), the Spezi flat response (all
"Nearly every day": 27), and responses built here for LHC-Forms' LOINC PHQ-9 (LA6568-5..LA6571-9
= 0..3; its own rule counts missing items as 0) and ResearchKitOnFHIR's GAD-7 (UUID linkIds).
Totals are checked against alliance.scoring applied to the same answers (an independent path
that never sees FHIR) and, where the source states one, the published total.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import alliance as al
from alliance.errors import FHIRError
from alliance.fhir import (
    questionnaire_from_instrument,
    responses_from_fhir,
    responses_from_file,
    score_fhir_response,
)

DATA = Path(__file__).parent / "data" / "fhir"
LOINC = "http://loinc.org"
PHQ9_LA = ["LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9"]
LHC_LINKS = [
    "/44250-9",
    "/44255-8",
    "/44259-0",
    "/44254-1",
    "/44251-7",
    "/44258-2",
    "/44252-5",
    "/44253-3",
    "/44260-8",
]
RKOF_LINKS = [
    "2bab9480-5251-4997-8a2e-937a1701cfe9",
    "d8c78a49-c02c-4986-800c-b076a5bb3553",
    "9756848f-1360-4e72-8884-a3bdc08799ed",
    "4158b3d6-c218-42f4-8e83-42932e590100",
    "1c05b1f1-763d-44cc-bb72-0a833b581aba",
    "2f0858ee-23d0-4cd0-86f7-a63609b62f6a",
    "8c6a877a-3867-4b36-c097-2b342649cadb",
]
FREQ = ["Not-at-all", "Several-days", "More than half the days", "Nearly every day"]


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def coded(link_id: str, code: str, system: str | None = LOINC) -> dict:
    coding = {"code": code} if system is None else {"system": system, "code": code}
    return {"linkId": link_id, "answer": [{"valueCoding": coding}]}


def response(items: list[dict], rid: str = "r1", questionnaire: str | None = None) -> dict:
    qr = {"resourceType": "QuestionnaireResponse", "id": rid, "status": "completed", "item": items}
    if questionnaire:
        qr["questionnaire"] = questionnaire
    return qr


def lhc_response(values: list[int | None], stored: float | None = None) -> dict:
    items = [
        coded(link, PHQ9_LA[v]) for link, v in zip(LHC_LINKS, values, strict=True) if v is not None
    ]
    if stored is not None:
        items.append({"linkId": "/44261-6", "answer": [{"valueDecimal": stored}]})
    return response(items, rid="lhc")


# -- the reference responses ------------------------------------------------------------------
def test_the_sdc_example_is_recomputed_as_10_and_its_stored_13_is_reported():
    (result,) = score_fhir_response(
        load("sdc280_QuestionnaireResponse-PHQ9.json"), load("sdc280_Questionnaire-PHQ9.json")
    )
    assert (
        result.total
        == 10
        == al.score_one(
            "phq9",
            {
                "phq9_1": 0,
                "phq9_2": 0,
                "phq9_3": 0,
                "phq9_4": 1,
                "phq9_5": 2,
                "phq9_6": 1,
                "phq9_7": 3,
                "phq9_8": 2,
                "phq9_9": 1,
            },
        ).total
    )
    assert result.stored_total == 13
    assert result.total_mismatch
    assert result.score.severity == "moderate"
    assert result.score.flags == ("safety",)  # item 9 = "Several days"
    assert result.id == "questionnaireresponse-sdc-profile-example-PHQ9"
    assert any(
        "stored total 13 disagrees with the recomputed total 10" in w for w in result.warnings
    )


def test_the_spezi_flat_response_to_the_sdc_phq9_scores_27():
    (result,) = score_fhir_response(
        load("spezi_QuestionnaireResponse-PHQ9-flat.json"), load("sdc280_Questionnaire-PHQ9.json")
    )
    assert result.total == 27
    assert result.score.severity == "severe"
    assert result.error is None
    assert result.warnings == ()
    assert result.id == "FC9C73DF-7F18-499A-A740-EB7529FB3B54"


def test_the_spezi_response_without_its_questionnaire_is_not_guessed():
    (result,) = score_fhir_response(
        load("spezi_QuestionnaireResponse-PHQ9-flat.json"), instrument="phq9"
    )
    assert result.total is None
    assert result.error
    assert any("give the Questionnaire these linkIds come from" in w for w in result.warnings)


def test_the_same_answers_nested_or_flat_give_the_same_frame():
    q = load("sdc280_Questionnaire-PHQ9.json")
    nested = load("sdc280_QuestionnaireResponse-PHQ9.json")
    flat = json.loads(json.dumps(nested))
    flat["item"] = flat["item"][0]["item"]
    a, _ = responses_from_fhir(nested, q)
    b, _ = responses_from_fhir(flat, q)
    assert a.equals(b)
    assert list(a.columns) == ["id", *al.instrument("phq9").item_ids]


@pytest.mark.parametrize(
    ("values", "total"),
    [
        ([0] * 9, 0),
        ([3] * 9, 27),
        ([1, 2, 3, 0, 1, 2, 3, 0, 1], 13),
        ([0, 1, 1, 1, 1, 0, 0, 0, 0], 4),
    ],
)
def test_lhc_forms_loinc_answers_score_0_to_3(values, total):
    (result,) = score_fhir_response(lhc_response(values), load("lhcforms_R4_phq9_loinc.json"))
    assert result.total == total
    assert (
        result.total
        == al.score_one("phq9", {f"phq9_{i}": v for i, v in enumerate(values, 1)}).total
    )


def test_one_missing_lhc_item_is_prorated_where_lhc_forms_would_count_it_as_0():
    values = [1, 1, 1, 1, 1, 1, 1, 1, None]  # LHC-Forms: 8; PHQ-9 rule: 8 + mean 1 = 9
    (result,) = score_fhir_response(
        lhc_response(values, stored=8), load("lhcforms_R4_phq9_loinc.json")
    )
    assert result.total == 9
    assert result.score.prorated
    assert result.score.n_missing == 1
    assert result.stored_total == 8
    assert any(
        "counts the 1 missing item(s) as 0, Alliance prorates them" in w for w in result.warnings
    )


def test_three_missing_lhc_items_are_refused_where_lhc_forms_would_give_a_number():
    values = [2, 2, 2, 2, 2, 2, None, None, None]
    (result,) = score_fhir_response(
        lhc_response(values, stored=12), load("lhcforms_R4_phq9_loinc.json")
    )
    assert result.total is None
    assert "3 items missing" in result.error
    assert any("stored total 12 not checked" in w for w in result.warnings)


def test_the_researchkit_gad7_response_scores_through_uuid_link_ids_and_ordinal_values():
    system = "http://biodesign.stanford.edu/fhir/uv/sdc/CodeSystem/CSGAD7"
    values = [0, 1, 2, 3, 2, 1, 3]
    group = {
        "linkId": "a2ae9518-55b5-41cc-928d-00132d1a3c1e",
        "item": [coded(link, FREQ[v], system) for link, v in zip(RKOF_LINKS, values, strict=True)],
    }
    (result,) = score_fhir_response(response([group]), load("rkof_Questionnaire-GAD7.json"))
    assert result.score.instrument == "gad7"
    assert (
        result.total
        == 12
        == al.score_one("gad7", {f"gad7_{i}": v for i, v in enumerate(values, 1)}).total
    )
    assert result.score.severity == "moderate"


# -- the GAD-7 LOINC pitfall ------------------------------------------------------------------
def loinc_gad7() -> dict:
    q = questionnaire_from_instrument(al.instrument("gad7"))
    del q["url"]  # a LOINC-generated form, recognised by its panel code
    for it in q["item"]:
        if it["type"] != "display":
            it["linkId"] = "/" + it["code"][0]["code"]
    return q


def test_answer_la18938_3_on_item_68509_9_scores_2():
    answers = [coded("/69725-0", "LA6568-5"), coded("/68509-9", "LA18938-3")]
    frame, _ = responses_from_fhir(response(answers), loinc_gad7())
    assert frame.loc[0, "gad7_2"] == 2
    assert frame.loc[0, "gad7_1"] == 0


def test_la18938_3_on_another_gad7_item_is_an_error_not_a_silent_2():
    answers = [
        coded(f"/{code}", "LA6569-3")
        for code in ("69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8")
    ]
    answers.append(coded("/69736-7", "LA18938-3"))
    (result,) = score_fhir_response(response(answers), loinc_gad7())
    assert result.total is None
    assert "gad7_7" in result.error
    assert "LA18938-3" in result.error
    assert any("not an answer option of this item" in w for w in result.warnings)


# -- bundles, lists, stored totals, bad answers --------------------------------------------------
def phq9_items(values: list[int]) -> list[dict]:
    return [coded(f"phq9_{i}", PHQ9_LA[v]) for i, v in enumerate(values, start=1)]


PHQ9_URL = "http://alliance.invalid/fhir/Questionnaire/phq9"


def test_a_bundle_of_responses_with_its_questionnaire_is_scored_in_order():
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [
            {"resource": load("sdc280_Questionnaire-PHQ9.json")},
            {"resource": load("sdc280_QuestionnaireResponse-PHQ9.json")},
            {"resource": {"resourceType": "Patient", "id": "p"}},
            {
                "fullUrl": "urn:uuid:b",
                "resource": load("spezi_QuestionnaireResponse-PHQ9-flat.json"),
            },
        ],
    }
    results = score_fhir_response(bundle)
    assert [r.total for r in results] == [10, 27]
    assert [r.total_mismatch for r in results] == [True, False]


def test_a_list_of_responses_to_an_alliance_questionnaire_needs_no_questionnaire():
    qrs = [response(phq9_items([v] * 9), rid=f"r{v}", questionnaire=PHQ9_URL) for v in range(4)]
    frame, warnings = responses_from_fhir(qrs)
    assert frame["id"].tolist() == ["r0", "r1", "r2", "r3"]
    assert warnings == ()
    assert [r.total for r in score_fhir_response(qrs)] == [0, 9, 18, 27]


def test_responses_to_two_instruments_score_together_but_do_not_share_a_frame():
    gad = response(
        [coded(f"gad7_{i}", "LA6569-3") for i in range(1, 8)],
        rid="g",
        questionnaire="http://alliance.invalid/fhir/Questionnaire/gad7",
    )
    phq = response(phq9_items([2] * 9), rid="p", questionnaire=PHQ9_URL)
    assert [(r.id, r.score.instrument, r.total) for r in score_fhir_response([phq, gad])] == [
        ("p", "phq9", 18),
        ("g", "gad7", 7),
    ]
    with pytest.raises(FHIRError, match="more than one instrument"):
        responses_from_fhir([phq, gad])


def test_answers_nested_under_an_answer_are_found():
    items = phq9_items([1] * 8)
    items[0]["answer"][0]["item"] = [coded("phq9_9", "LA6571-9")]
    (result,) = score_fhir_response(response(items, questionnaire=PHQ9_URL))
    assert result.total == 11
    assert result.score.flags == ("safety",)


def test_a_stored_total_that_agrees_raises_no_warning():
    items = [*phq9_items([1] * 9), {"linkId": "total", "answer": [{"valueInteger": 9}]}]
    q = questionnaire_from_instrument(al.instrument("phq9"))
    q["item"].append(
        {
            "linkId": "total",
            "type": "integer",
            "readOnly": True,
            "code": [{"system": LOINC, "code": "44261-6"}],
        }
    )
    (result,) = score_fhir_response(response(items), q)
    assert result.stored_total == 9
    assert not result.total_mismatch
    assert result.warnings == ()


def test_an_unknown_answer_code_makes_the_row_invalid_instead_of_missing():
    items = phq9_items([1] * 9)
    items[3] = coded("phq9_4", "LA9999-9")
    frame, warnings = responses_from_fhir(response(items, questionnaire=PHQ9_URL))
    assert frame.loc[0, "phq9_4"] == "answer code http://loinc.org|LA9999-9"
    assert any("LA9999-9 is not an answer option" in w for w in warnings)
    (result,) = score_fhir_response(response(items, questionnaire=PHQ9_URL))
    assert result.total is None
    assert "phq9_4" in result.error


@pytest.mark.parametrize(
    ("answer", "expected"),
    [
        (
            [
                {"valueCoding": {"system": LOINC, "code": "LA6570-1"}},
                {"valueCoding": {"system": LOINC, "code": "LA6571-9"}},
            ],
            "2 answers",
        ),
        ([{"valueBoolean": True}], "answer of type valueBoolean"),
        ([{"valueString": "often"}], "answer text 'often'"),
    ],
)
def test_answers_that_cannot_be_one_value_are_errors(answer, expected):
    items = phq9_items([1] * 9)
    items[0] = {"linkId": "phq9_1", "answer": answer}
    frame, _ = responses_from_fhir(response(items, questionnaire=PHQ9_URL))
    assert frame.loc[0, "phq9_1"] == expected


def test_an_item_answered_twice_is_an_error():
    items = [*phq9_items([1] * 9), coded("phq9_1", "LA6568-5")]
    (result,) = score_fhir_response(response(items, questionnaire=PHQ9_URL))
    assert result.total is None
    assert "answered twice" in result.error


def test_a_coding_without_system_and_a_display_only_answer_are_matched_within_the_item():
    items = phq9_items([0] * 9)
    items[0] = coded("phq9_1", "LA6571-9", system=None)
    items[1] = {"linkId": "phq9_2", "answer": [{"valueString": "Nearly every day"}]}
    frame, warnings = responses_from_fhir(response(items, questionnaire=PHQ9_URL))
    assert frame.loc[0, ["phq9_1", "phq9_2"]].tolist() == [3, 3]
    assert any("matched by its display text" in w for w in warnings)


def test_scale_items_take_numbers_and_a_mean_scored_instrument_scores_them():
    items = [
        {"linkId": "gbo_1", "answer": [{"valueInteger": 4}]},
        {"linkId": "gbo_2", "answer": [{"valueDecimal": 6}]},
    ]
    (result,) = score_fhir_response(response(items), instrument="gbo")
    assert result.total == al.score_one("gbo", {"gbo_1": 4, "gbo_2": 6}).total == 5


def test_a_response_to_another_instrument_than_the_one_named_is_refused():
    gad = response(
        [coded("gad7_1", "LA6569-3")],
        questionnaire="http://alliance.invalid/fhir/Questionnaire/gad7",
    )
    with pytest.raises(FHIRError, match="answers 'gad7'"):
        responses_from_fhir(gad, load("rkof_Questionnaire-GAD7.json"), instrument="phq9")


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ({"resourceType": "Bundle", "type": "collection", "entry": []}, "no QuestionnaireResponse"),
        ({"resourceType": "Observation"}, "got resourceType 'Observation'"),
        (
            response(phq9_items([1] * 9), questionnaire="http://example.org/Questionnaire/x"),
            "not an Alliance questionnaire",
        ),
        (
            {
                "resourceType": "QuestionnaireResponse",
                "status": "completed",
                "item": [{"answer": []}],
            },
            "has no linkId",
        ),
    ],
)
def test_bad_responses_are_refused_with_a_clear_message(resource, message):
    with pytest.raises(FHIRError, match=message):
        score_fhir_response(resource)


def test_a_custom_questionnaire_imports_and_its_responses_score():
    q = {
        "resourceType": "Questionnaire",
        "status": "active",
        "title": "Practice mood check",
        "url": "https://practice.example/Questionnaire/mood",
        "item": [
            {
                "linkId": f"m{i}",
                "type": "choice",
                "text": f"Mood {i}",
                "answerOption": [
                    {
                        "valueCoding": {"system": "urn:p", "code": c},
                        "extension": [
                            {
                                "url": "http://hl7.org/fhir/StructureDefinition/ordinalValue",
                                "valueDecimal": v,
                            }
                        ],
                    }
                    for c, v in (("no", 0), ("some", 2), ("yes", 4))
                ],
            }
            for i in (1, 2, 3)
        ],
    }
    qr = response(
        [coded("m1", "yes", "urn:p"), coded("m2", "some", "urn:p"), coded("m3", "no", "urn:p")],
        questionnaire="https://practice.example/Questionnaire/mood",
    )
    (result,) = score_fhir_response(
        {
            "resourceType": "Bundle",
            "type": "collection",
            "entry": [{"resource": q}, {"resource": qr}],
        }
    )
    assert result.matched == "created"
    assert result.score.instrument == "custom_practice_mood_check"
    assert result.total == 6
    assert result.as_dict()["matched"] == "created"


# -- files --------------------------------------------------------------------------------------
def test_responses_from_file_reads_a_bundle_for_the_score_command(tmp_path):
    path = tmp_path / "responses.json"
    bundle = {
        "resourceType": "Bundle",
        "type": "collection",
        "entry": [{"resource": response(phq9_items([2] * 9), questionnaire=PHQ9_URL)}],
    }
    path.write_text(json.dumps(bundle), encoding="utf-8")
    frame = responses_from_file(path, "phq9")
    assert frame.loc[0, "phq9_5"] == 2
    assert frame.attrs["fhir_warnings"] == ()
    assert al.score("phq9", frame).loc[0, "total"] == 18


def test_responses_from_file_explains_a_file_that_is_not_json(tmp_path):
    path = tmp_path / "broken.json"
    path.write_text('{"resourceType": ', encoding="utf-8")
    with pytest.raises(FHIRError, match=r"not valid JSON \(line 1"):
        responses_from_file(path, "phq9")
    with pytest.raises(FHIRError, match="cannot read the file"):
        responses_from_file(tmp_path / "missing.json", "phq9")


# -- property: FHIR round trip == direct scoring --------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.integers(0, 3)), min_size=9, max_size=9),
    nested=st.booleans(),
)
def test_scoring_through_fhir_equals_scoring_the_answers_directly(values, nested):
    items = [coded(f"phq9_{i}", PHQ9_LA[v]) for i, v in enumerate(values, 1) if v is not None]
    if nested and items:
        items = [{"linkId": "group", "item": items}]
    (result,) = score_fhir_response(response(items, questionnaire=PHQ9_URL))
    direct = al.score_one("phq9", {f"phq9_{i}": v for i, v in enumerate(values, 1)})
    assert (result.total, result.score.prorated, result.score.flags) == (
        direct.total,
        direct.prorated,
        direct.flags,
    )
    assert (result.error is None) == (direct.error is None)


def test_reading_against_another_questionnaire_than_the_one_named_is_said():
    spezi = load("spezi_QuestionnaireResponse-PHQ9-flat.json")
    _, warnings = responses_from_fhir(spezi, instrument="phq9")
    assert warnings[0].startswith(
        "FC9C73DF-7F18-499A-A740-EB7529FB3B54: the response names questionnaire "
        "http://hl7.org/fhir/uv/sdc/Questionnaire/questionnaire-sdc-profile-example-PHQ9"
    )


def test_the_answer_table_notes_a_stored_total_it_does_not_use():
    _, warnings = responses_from_fhir(
        load("sdc280_QuestionnaireResponse-PHQ9.json"), load("sdc280_Questionnaire-PHQ9.json")
    )
    assert warnings == (
        "questionnaireresponse-sdc-profile-example-PHQ9: stored total 13 not used (totals are "
        "recomputed from the answers)",
    )
