"""FHIR Questionnaire export and import (alliance.fhir.questionnaire).

Validated against: the fhir.resources R4B Questionnaire model (every export), and three
questionnaires written by others (tests/engine/data/fhir/README.md): the HL7 SDC 2.8.0 PHQ-9
example (no LOINC, scores in a contained ValueSet, nested group), LHC-Forms' LOINC PHQ-9
(LOINC panel 44249-1, linkIds /44250-9 …, answers LA6568-5..LA6571-9 = 0..3, total 44261-6)
and ResearchKitOnFHIR's GAD-7 (UUID linkIds, scores only from ordinalValue).
"""

from __future__ import annotations

import copy
import doctest
import json
from pathlib import Path

import pytest
from fhir.resources.R4B.questionnaire import Questionnaire

import alliance as al
import alliance.fhir
import alliance.fhir._resources
import alliance.fhir.questionnaire
import alliance.fhir.response
from alliance.errors import FHIRError
from alliance.fhir import (
    ITEM_WEIGHT,
    ORDINAL_VALUE,
    instrument_from_questionnaire,
    questionnaire_from_instrument,
)
from alliance.fhir.questionnaire import canonical_url

DATA = Path(__file__).parent / "data" / "fhir"
LOINC = "http://loinc.org"
SHIPPED = sorted(al.instruments())


def load(name: str) -> dict:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def items_by_link(q: dict) -> dict[str, dict]:
    out = {}

    def walk(items):
        for it in items or ():
            out[it["linkId"]] = it
            walk(it.get("item"))

    walk(q.get("item"))
    return out


def score_of(option: dict, url: str = ORDINAL_VALUE) -> float:
    return next(e["valueDecimal"] for e in option["extension"] if e["url"] == url)


# -- export ------------------------------------------------------------------------------------
@pytest.mark.parametrize("instrument_id", SHIPPED)
def test_every_shipped_instrument_exports_as_a_questionnaire_valid_under_the_r4b_model(
    instrument_id,
):
    q = questionnaire_from_instrument(al.instrument(instrument_id))
    text = json.dumps(q)
    model = Questionnaire.model_validate_json(text)
    assert model.status == "active"
    assert (
        model.url == f"http://alliance.invalid/fhir/Questionnaire/{instrument_id.replace('_', '-')}"
    )
    linked = {it.linkId for it in model.item}
    assert set(al.instrument(instrument_id).item_ids) <= linked


@pytest.mark.parametrize("instrument_id", SHIPPED)
def test_export_then_import_matches_the_same_instrument_for_every_shipped_instrument(
    instrument_id,
):
    inst = al.instrument(instrument_id)
    q = json.loads(json.dumps(questionnaire_from_instrument(inst)))
    match = instrument_from_questionnaire(q)
    assert match.status == "matched"
    assert match.instrument == inst
    assert match.reason.startswith("canonical url")
    assert {link.item_id for link in match.links} == set(inst.item_ids)
    assert match.warnings == ()


@pytest.mark.parametrize("instrument_id", SHIPPED)
def test_an_export_without_its_url_is_still_recognised_by_codes_or_structure_and_name(
    instrument_id,
):
    q = questionnaire_from_instrument(al.instrument(instrument_id))
    del q["url"]
    match = instrument_from_questionnaire(q)
    assert (match.status, match.instrument.id) == ("matched", instrument_id)
    assert not match.reason.startswith("canonical")


def test_the_phq9_export_carries_the_loinc_panel_item_and_answer_codes_with_their_scores():
    q = questionnaire_from_instrument(al.instrument("phq9"))
    assert q["code"] == [
        {"system": LOINC, "code": "44249-1", "display": "Patient Health Questionnaire-9"}
    ]
    item1 = items_by_link(q)["phq9_1"]
    assert item1["code"] == [{"system": LOINC, "code": "44250-9"}]
    assert item1["type"] == "choice"
    assert item1["required"] is True
    codes = [(o["valueCoding"]["code"], score_of(o)) for o in item1["answerOption"]]
    assert codes == [("LA6568-5", 0), ("LA6569-3", 1), ("LA6570-1", 2), ("LA6571-9", 3)]
    assert "LOINC" in q["copyright"]
    assert "Pfizer" in q["copyright"]


def test_the_gad7_export_keeps_the_item_specific_loinc_answer_for_68509_9():
    q = questionnaire_from_instrument(al.instrument("gad7"))
    item2 = items_by_link(q)["gad7_2"]
    assert item2["code"][0]["code"] == "68509-9"
    assert [o["valueCoding"]["code"] for o in item2["answerOption"]][2] == "LA18938-3"
    assert [o["valueCoding"]["code"] for o in items_by_link(q)["gad7_1"]["answerOption"]][
        2
    ] == "LA6570-1"


def test_the_score_extension_can_be_the_r5_item_weight():
    q = questionnaire_from_instrument(al.instrument("phq9"), score_extension="itemWeight")
    option = items_by_link(q)["phq9_1"]["answerOption"][3]
    assert score_of(option, ITEM_WEIGHT) == 3
    Questionnaire.model_validate(q)


def test_an_unknown_score_extension_is_refused():
    with pytest.raises(FHIRError, match="ordinalValue or itemWeight"):
        questionnaire_from_instrument(al.instrument("phq9"), score_extension="weight")  # type: ignore[arg-type]


def test_a_reverse_keyed_item_exports_what_each_answer_adds_to_the_total():
    oq = al.instrument("oq45")
    q = questionnaire_from_instrument(oq)
    reverse = items_by_link(q)["oq45_1"]
    plain = items_by_link(q)["oq45_2"]
    assert [score_of(o) for o in plain["answerOption"]] == [0, 1, 2, 3, 4]
    assert [score_of(o) for o in reverse["answerOption"]] == [4, 3, 2, 1, 0]
    assert [o["valueCoding"]["code"] for o in reverse["answerOption"]] == ["0", "1", "2", "3", "4"]


def test_scale_items_export_as_numbers_with_min_and_max_extensions():
    q = questionnaire_from_instrument(al.instrument("gbo"))
    item = items_by_link(q)["gbo_1"]
    assert item["type"] == "integer"
    ext = {e["url"].rsplit("/", 1)[-1]: e for e in item["extension"]}
    assert ext["minValue"]["valueInteger"] == 0
    assert ext["maxValue"]["valueInteger"] == 10
    assert ext["questionnaire-sliderStepValue"]["valueInteger"] == 1


def test_an_item_that_is_asked_but_not_summed_is_marked_not_scored():
    q = questionnaire_from_instrument(al.instrument("phq9"))
    difficulty = items_by_link(q)["phq9_difficulty"]
    assert {
        "url": alliance.fhir.questionnaire.SCORED_EXTENSION,
        "valueBoolean": False,
    } in difficulty["extension"]
    assert difficulty["required"] is False


def test_a_scoring_only_instrument_exports_item_shells_without_text_and_says_why():
    oq = al.instrument("oq45")
    assert not oq.has_text
    q = questionnaire_from_instrument(oq)
    assert all("text" not in it for it in q["item"])
    assert all(
        "display" not in o["valueCoding"] for it in q["item"] for o in it.get("answerOption", [])
    )
    assert "Scoring-only definition" in q["description"]
    assert q["copyright"].startswith(oq.licence.notice)


def test_the_canonical_url_base_is_configurable_and_recognised_on_import():
    base = "https://practice.example/fhir"
    q = questionnaire_from_instrument(al.instrument("wai_sr"), base_url=base)
    assert (
        q["url"]
        == "https://practice.example/fhir/Questionnaire/wai-sr"
        == canonical_url("wai_sr", base)
    )
    match = instrument_from_questionnaire(q, base_url=base)
    assert match.reason == f"canonical url {q['url']}"


# -- import: the reference questionnaires --------------------------------------------------------
def test_the_sdc_phq9_matches_phq9_through_its_nested_items_and_contained_value_set():
    match = instrument_from_questionnaire(load("sdc280_Questionnaire-PHQ9.json"))
    assert (match.status, match.instrument.id) == ("matched", "phq9")
    assert match.reason == "structure and name (its name contains 'PHQ-9')"
    assert [(link.link_id, link.item_id) for link in match.links] == [
        (f"H1/T1/Q{i}", f"phq9_{i}") for i in range(1, 10)
    ]
    assert match.total_link_ids == ("H1/TS",)
    sys = "http://hl7.org/fhir/uv/sdc/CodeSystem/CSPHQ9"
    answers = match.link_for("H1/T1/Q5").answers
    assert answers.lookup(sys, "More than half the days", None) == (2.0, None)
    assert answers.lookup(None, "Not-at-all", None) == (0.0, None)
    assert match.warnings == ()


def test_the_lhc_forms_phq9_matches_by_its_loinc_panel_and_is_read_tolerantly():
    match = instrument_from_questionnaire(load("lhcforms_R4_phq9_loinc.json"))
    assert (match.status, match.instrument.id) == ("matched", "phq9")
    assert match.reason == "LOINC panel code 44249-1"
    assert {link.link_id: link.item_id for link in match.links}["/44260-8"] == "phq9_9"
    assert {link.how for link in match.links} == {"LOINC code"}
    assert match.total_link_ids == ("/44261-6",)
    (note,) = match.warnings
    assert "does not validate under the fhir.resources R4B model" in note
    assert "valueExpression.name" in note


def test_the_lhc_forms_phq9_is_refused_in_strict_mode():
    with pytest.raises(FHIRError, match="not valid FHIR R4B"):
        instrument_from_questionnaire(load("lhcforms_R4_phq9_loinc.json"), strict=True)


def test_the_researchkit_gad7_with_uuid_link_ids_matches_gad7_by_structure_and_name():
    match = instrument_from_questionnaire(load("rkof_Questionnaire-GAD7.json"))
    assert (match.status, match.instrument.id) == ("matched", "gad7")
    assert match.link_for("d8c78a49-c02c-4986-800c-b076a5bb3553").item_id == "gad7_2"
    answers = match.link_for("8c6a877a-3867-4b36-c097-2b342649cadb").answers
    system = "http://biodesign.stanford.edu/fhir/uv/sdc/CodeSystem/CSGAD7"
    assert answers.lookup(system, "Nearly every day", None) == (3.0, None)


def test_the_researchkit_gad7_without_its_names_becomes_a_custom_instrument_scored_by_ordinal_value():
    q = load("rkof_Questionnaire-GAD7.json")
    for key in ("title", "url"):
        del q[key]
    match = instrument_from_questionnaire(q)
    inst = match.instrument
    assert match.status == "created"
    assert inst.custom
    assert inst.id.startswith("custom_")
    assert len(inst.id) == len("custom_") + 10
    assert inst.licence.name == "imported"
    assert inst.licence.source == "questionnaire"
    assert "questionnaire" in inst.references
    assert inst.scoring.range == (0.0, 21.0)
    assert [it.values for it in inst.scored_items] == [(0.0, 1.0, 2.0, 3.0)] * 7
    assert inst.instructions.startswith("How often have you been bothered")
    assert any("ordinalValue in contained ValueSet #VSGAD7" in n for n in inst.notes)
    assert "direction not stated; higher_is_worse assumed" in match.warnings
    assert al.score_one(inst, {it.id: 3 for it in inst.items}).total == 21


def test_a_questionnaire_that_only_resembles_phq9_is_not_matched_silently():
    q = load("sdc280_Questionnaire-PHQ9.json")
    for key in ("name", "title", "url", "id"):
        q.pop(key, None)
    q["item"][0]["item"][-1]["code"] = []  # drop the PHQ-9 total LOINC code as well
    match = instrument_from_questionnaire(q)
    assert match.status == "created"
    assert len(match.instrument.scored_items) == 9
    assert match.total_link_ids == ("H1/TS",)  # the calculated total is still not an item


def test_a_questionnaire_claiming_a_panel_code_whose_items_do_not_line_up_is_not_trusted():
    q = questionnaire_from_instrument(al.instrument("phq9"))
    del q["url"]
    q["item"] = [it for it in q["item"] if it["linkId"] in ("phq9_1", "phq9_2", "phq9_3")]
    match = instrument_from_questionnaire(q)
    assert match.status == "created"
    assert any(
        "looks like phq9 (LOINC panel code 44249-1) but does not line up" in w
        for w in match.warnings
    )


# -- import: custom questionnaires ---------------------------------------------------------------
def custom_questionnaire(score_on: str = "answerOption", url: str = ORDINAL_VALUE) -> dict:
    def option(code: str, label: str, value: int) -> dict:
        ext = [{"url": url, "valueDecimal": value}]
        opt = {"valueCoding": {"system": "urn:example:sleep", "code": code, "display": label}}
        if score_on == "answerOption":
            opt["extension"] = ext
        else:
            opt["valueCoding"]["extension"] = ext
        return opt

    options = [
        option("never", "Never", 0),
        option("some", "Some nights", 1),
        option("most", "Most nights", 2),
    ]
    return {
        "resourceType": "Questionnaire",
        "status": "active",
        "name": "SleepCheck",
        "title": "Sleep check (practice form)",
        "version": "2024-01",
        "publisher": "A practice",
        "copyright": "© A practice",
        "item": [
            {"linkId": "intro", "type": "display", "text": "About your sleep this week."},
            {
                "linkId": "1",
                "type": "choice",
                "text": "Trouble falling asleep",
                "required": True,
                "answerOption": options,
            },
            {"linkId": "2", "type": "choice", "text": "Waking too early", "answerOption": options},
            {
                "linkId": "3",
                "type": "integer",
                "text": "Hours slept last night",
                "extension": [
                    {"url": "http://hl7.org/fhir/StructureDefinition/minValue", "valueInteger": 0},
                    {"url": "http://hl7.org/fhir/StructureDefinition/maxValue", "valueInteger": 12},
                ],
            },
            {"linkId": "4", "type": "string", "text": "Anything else?"},
        ],
    }


@pytest.mark.parametrize(
    ("score_on", "url"),
    [
        ("answerOption", ORDINAL_VALUE),
        ("valueCoding", ORDINAL_VALUE),
        ("answerOption", ITEM_WEIGHT),
        ("valueCoding", "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value"),
    ],
)
def test_a_custom_questionnaire_imports_as_a_custom_instrument_wherever_its_scores_sit(
    score_on, url
):
    match = instrument_from_questionnaire(custom_questionnaire(score_on, url))
    inst = match.instrument
    assert match.status == "created"
    assert inst.id == "custom_sleepcheck"
    assert inst.custom
    assert inst.name == "Sleep check (practice form)"
    assert inst.version == "2024-01"
    assert [(it.id, it.kind, it.scored) for it in inst.items] == [
        ("custom_sleepcheck_1", "choice", True),
        ("custom_sleepcheck_2", "choice", True),
        ("custom_sleepcheck_3", "scale", True),
        ("custom_sleepcheck_4", "text", False),
    ]
    assert inst.scoring.range == (0.0, 16.0)
    assert inst.licence.notice == "© A practice"
    assert inst.licence.text_included
    assert "A practice" in inst.references["questionnaire"]
    assert inst.instructions == "About your sleep this week."
    answers = {"custom_sleepcheck_1": 2, "custom_sleepcheck_2": 1, "custom_sleepcheck_3": 7}
    assert al.score_one(inst, answers).total == 10


def test_a_custom_id_never_collides_with_a_library_id():
    q = custom_questionnaire()
    first = instrument_from_questionnaire(q).instrument
    library = al.instruments().with_instruments(first)
    second = instrument_from_questionnaire(q, library)
    assert second.status == "matched"  # the same questionnaire matches what it created
    q2 = copy.deepcopy(q)
    q2["item"] = q2["item"][:2]  # a different form with the same name
    third = instrument_from_questionnaire(q2, library).instrument
    assert third.id == "custom_sleepcheck_2"


def test_the_direction_of_a_custom_instrument_can_be_given():
    match = instrument_from_questionnaire(custom_questionnaire(), direction="higher_is_better")
    assert match.instrument.direction == "higher_is_better"
    assert not any("direction" in w for w in match.warnings)


def test_loinc_answer_codes_are_a_last_resort_for_values_and_only_when_unambiguous():
    q = {
        "resourceType": "Questionnaire",
        "status": "active",
        "title": "Mood items",
        "item": [
            {
                "linkId": f"m{i}",
                "type": "choice",
                "text": f"Mood item {i}",
                "answerOption": [
                    {"valueCoding": {"system": LOINC, "code": code}}
                    for code in ("LA6568-5", "LA6569-3", "LA6570-1", "LA6571-9")
                ],
            }
            for i in (1, 2)
        ],
    }
    match = instrument_from_questionnaire(q)
    assert match.status == "created"
    assert match.instrument.scored_items[0].values == (0.0, 1.0, 2.0, 3.0)
    assert any("LOINC answer code" in n for n in match.instrument.notes)


def test_options_without_any_score_make_an_item_unscored_and_a_form_of_only_those_is_refused():
    q = {
        "resourceType": "Questionnaire",
        "status": "active",
        "title": "Unscored",
        "item": [
            {
                "linkId": "a",
                "type": "choice",
                "answerOption": [{"valueString": "Yes"}, {"valueString": "No"}],
            }
        ],
    }
    with pytest.raises(FHIRError, match="no item of the Questionnaire can be scored"):
        instrument_from_questionnaire(q)


def test_a_licensed_practice_merges_its_own_text_into_a_scoring_only_instrument():
    oq = al.instrument("oq45")
    q = questionnaire_from_instrument(oq)
    labels = ["Never", "Rarely", "Sometimes", "Frequently", "Almost always"]
    for it in q["item"]:
        it["text"] = f"Licensed wording of {it['linkId']}"
        for option, label in zip(it["answerOption"], labels, strict=True):
            option["valueCoding"]["display"] = label
    match = instrument_from_questionnaire(q)
    merged = match.instrument
    assert match.status == "matched"
    assert match.text_merged
    assert merged.id == "oq45"
    assert merged.has_text
    assert merged.licence.text_included
    assert merged.item("oq45_1").text == "Licensed wording of oq45_1"
    assert [o.label for o in merged.item("oq45_1").options] == labels
    assert merged.scoring == oq.scoring
    assert merged.items[0].reverse
    assert not al.instrument("oq45").has_text  # nothing global changed


@pytest.mark.parametrize("encoding", ["contribution", "raw"])
def test_third_party_scores_of_reverse_keyed_items_are_read_either_way(encoding):
    oq = al.instrument("oq45")
    labels = ["never", "rarely", "sometimes", "frequently", "almost-always"]
    items = []
    for it in oq.items:
        scores = [4, 3, 2, 1, 0] if it.reverse and encoding == "contribution" else [0, 1, 2, 3, 4]
        items.append(
            {
                "linkId": f"q{it.id}",
                "type": "choice",
                "text": f"Licensed wording {it.id}",
                "answerOption": [
                    {
                        "valueCoding": {"system": "urn:practice:oq", "code": code, "display": code},
                        "extension": [{"url": ORDINAL_VALUE, "valueDecimal": s}],
                    }
                    for code, s in zip(labels, scores, strict=True)
                ],
            }
        )
    q = {"resourceType": "Questionnaire", "status": "active", "title": "OQ-45.2", "item": items}
    match = instrument_from_questionnaire(q)
    assert (match.status, match.instrument.id, match.text_merged) == ("matched", "oq45", True)
    # "never" on reverse-keyed item 1 is the value 0 on the form, whatever the encoding.
    assert match.link_for("qoq45_1").answers.lookup("urn:practice:oq", "never", None)[0] == 0
    assert match.link_for("qoq45_2").answers.lookup("urn:practice:oq", "never", None)[0] == 0
    assert match.instrument.item("oq45_1").options[0].label == "never"


# -- bad input --------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("data", "message"),
    [
        ([1, 2], "expected a FHIR Questionnaire as a JSON object"),
        ({"resourceType": "Patient"}, "got resourceType 'Patient'"),
        ({"status": "active"}, "no resourceType"),
        (
            {"resourceType": "Questionnaire", "status": "active", "item": [{"type": "choice"}]},
            "has no linkId",
        ),
        (
            {"resourceType": "Questionnaire", "status": "active", "item": {"linkId": "a"}},
            "must be a list",
        ),
        (
            {
                "resourceType": "Questionnaire",
                "status": "active",
                "item": [{"linkId": "g", "type": "group"}],
            },
            "no question items",
        ),
    ],
)
def test_malformed_questionnaires_are_refused_with_a_clear_message(data, message):
    with pytest.raises(FHIRError, match=message):
        instrument_from_questionnaire(data)


@pytest.mark.parametrize(
    "module",
    [alliance.fhir, alliance.fhir._resources, alliance.fhir.questionnaire, alliance.fhir.response],
)
def test_the_docstring_examples_run(module):
    result = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert result.failed == 0


def test_a_custom_instrument_survives_export_and_import_without_its_library():
    q = load("rkof_Questionnaire-GAD7.json")
    del q["title"], q["url"]
    custom = instrument_from_questionnaire(q).instrument
    exported = questionnaire_from_instrument(custom)
    again = instrument_from_questionnaire(exported)  # a library without the custom instrument
    assert again.status == "created"
    assert again.instrument.id == custom.id
    assert [it.values for it in again.instrument.items] == [it.values for it in custom.items]
    assert again.instrument.scoring.range == custom.scoring.range
    assert again.warnings == ()  # the direction travels in Alliance's extension
    known = instrument_from_questionnaire(exported, al.instruments().with_instruments(custom))
    assert known.status == "matched"
    assert known.instrument == custom
