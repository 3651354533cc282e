"""The instrument library: every shipped definition, the schema's checks, the custom scorers.

Expected keys (reverse items, subscales, LOINC codes) are written out here independently of the
YAML files, from the sources each definition cites, so that a typo in a definition fails a test.
"""

from __future__ import annotations

import copy
import doctest
import importlib
import itertools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

import alliance as al
from alliance.errors import InstrumentError, UnknownInstrument
from alliance.instruments import Library, load, parse
from alliance.instruments import custom as custom_module
from alliance.instruments.custom import SCORERS, CustomScores, get_scorer, score_phq_panic
from alliance.instruments.registry import DEFINITIONS

EXPECTED_IDS = {
    "apa_phobia", "core10", "fq", "gad7", "gbo", "k10", "mini_spin", "ocir", "oq45", "ors",
    "pdss_sr", "phq15", "phq9", "phq_panic", "sai", "srs", "wai_sr", "wai_sr_t", "who5",
}  # fmt: skip
DEFINITION_FILES = sorted(DEFINITIONS.glob("*.yaml"))


def raw(instrument_id: str) -> dict[str, Any]:
    """A shipped definition as a plain mapping (a fresh copy to break)."""
    data = yaml.safe_load((DEFINITIONS / f"{instrument_id}.yaml").read_text(encoding="utf-8"))
    return copy.deepcopy(data)


def numbers(prefix: str, ns: list[int]) -> tuple[str, ...]:
    return tuple(f"{prefix}_{n}" for n in ns)


# -- the library --------------------------------------------------------------------------------


def test_the_library_lists_exactly_the_shipped_ids():
    assert set(al.instruments()) == EXPECTED_IDS
    assert {p.stem for p in DEFINITION_FILES} == EXPECTED_IDS


@pytest.mark.parametrize("path", DEFINITION_FILES, ids=lambda p: p.stem)
def test_every_definition_loads_and_validates(path: Path):
    inst = load(path)
    assert inst.id == path.stem
    assert inst.scored_items, "an instrument needs scored items"


def test_instrument_and_instruments_are_the_public_way_in():
    assert al.instrument("gad7").short_name == "GAD-7"
    assert isinstance(al.instruments(), Library)
    with pytest.raises(UnknownInstrument, match="known instruments"):
        al.instrument("no_such_thing")


@pytest.mark.parametrize("inst", list(al.instruments().values()), ids=lambda i: i.id)
def test_every_item_id_follows_the_instrument_n_pattern(inst):
    scored_numbers = []
    for it in inst.items:
        assert it.id.startswith(f"{inst.id}_")
        suffix = it.id.removeprefix(f"{inst.id}_")
        if it.scored:
            assert suffix.isdigit(), f"{it.id}: a scored item is numbered"
            scored_numbers.append(int(suffix))
    assert scored_numbers == list(range(1, len(scored_numbers) + 1))


# -- sources ------------------------------------------------------------------------------------


def cited(inst) -> list[tuple[str, str | None]]:
    where: list[tuple[str, str | None]] = [("licence", inst.licence.source)]
    where += [(f"band {b.label}", b.source) for b in inst.severity_bands]
    if inst.clinical_cutoff:
        where.append(("clinical_cutoff", inst.clinical_cutoff.source))
    if inst.concern_threshold:
        where.append(("concern_threshold", inst.concern_threshold.source))
    n = inst.norms
    for name, norm in (
        ("reliability", n.reliability),
        ("clinical", n.clinical),
        ("functional", n.functional),
    ):
        if norm is not None:
            where.append((name, norm.source))
    if n.reliable_change_points is not None:
        where.append(("reliable_change", n.reliable_change_source))
    where += [(f"critical {c.item}", c.source) for c in inst.critical]
    if inst.scoring.proration.max_missing:
        where.append(("proration", inst.scoring.proration.source))
    where += [(f"subscale {s.id}", s.source) for s in inst.scoring.subscales]
    return where


@pytest.mark.parametrize("inst", list(al.instruments().values()), ids=lambda i: i.id)
def test_every_band_cutoff_norm_and_rule_cites_a_known_reference(inst):
    for where, key in cited(inst):
        assert key, f"{inst.id} {where}: no source"
        assert key in inst.references, f"{inst.id} {where}: {key!r} not in references"
        assert len(inst.references[key]) > 20, f"{inst.id}: reference {key!r} is not a citation"


@pytest.mark.parametrize("inst", list(al.instruments().values()), ids=lambda i: i.id)
def test_a_reliability_says_its_kind_and_sample(inst):
    rel = inst.norms.reliability
    if rel is not None:
        assert rel.kind in {"alpha", "test_retest", "icc", "omega"}
        assert rel.sample
        assert len(rel.sample) > 10


# -- ranges, keys and codes ---------------------------------------------------------------------


@pytest.mark.parametrize("inst", list(al.instruments().values()), ids=lambda i: i.id)
def test_the_total_range_agrees_with_the_items(inst):
    sc = inst.scoring
    lows = [it.value_range[0] for it in inst.scored_items]
    highs = [it.value_range[1] for it in inst.scored_items]
    if sc.method == "sum":
        assert sc.range == (sum(lows) * sc.multiplier, sum(highs) * sc.multiplier)
    elif sc.method == "mean":
        assert sc.range == (
            sum(lows) / len(lows) * sc.multiplier,
            sum(highs) / len(highs) * sc.multiplier,
        )
    else:  # custom: the PHQ panic total counts its 11 yes/no symptom items
        assert inst.id == "phq_panic"
        assert sc.range == (0.0, 11.0)
    # A reversed item keeps its range, so the bounds do not depend on the key.
    for band in inst.severity_bands:
        assert sc.range[0] <= band.min <= band.max <= sc.range[1]


@pytest.mark.parametrize("inst", list(al.instruments().values()), ids=lambda i: i.id)
def test_bands_cover_the_range_without_gaps_when_given(inst):
    bands = sorted(inst.severity_bands, key=lambda b: b.min)
    if not bands:
        return
    assert bands[0].min == inst.scoring.range[0]
    assert bands[-1].max == inst.scoring.range[1]
    for a, b in itertools.pairwise(bands):
        assert b.min == a.max + 1, f"{inst.id}: gap or overlap between {a.label} and {b.label}"


EXPECTED_REVERSE = {
    "oq45": numbers("oq45", [1, 12, 13, 20, 21, 24, 31, 37, 43]),  # OQ-45 scoring sheet
    "core10": numbers("core10", [2, 3]),  # CORE-10 positively worded items
}

EXPECTED_SUBSCALES = {
    # Marks & Mathews 1979: fq_n is the form's item n + 1.
    "fq": {
        "agoraphobia": numbers("fq", [4, 5, 7, 11, 14]),
        "blood_injury": numbers("fq", [1, 3, 9, 12, 15]),
        "social": numbers("fq", [2, 6, 8, 10, 13]),
    },
    # Hatcher & Gillaspy 2006.
    "wai_sr": {
        "task": numbers("wai_sr", [1, 2, 10, 12]),
        "bond": numbers("wai_sr", [3, 5, 7, 9]),
        "goal": numbers("wai_sr", [4, 6, 8, 11]),
    },
    "wai_sr_t": {
        "task": numbers("wai_sr_t", [1, 2, 10, 12]),
        "bond": numbers("wai_sr_t", [3, 5, 7, 9]),
        "goal": numbers("wai_sr_t", [4, 6, 8, 11]),
    },
    # Foa et al. 2002.
    "ocir": {
        "washing": numbers("ocir", [5, 11, 17]),
        "checking": numbers("ocir", [2, 8, 14]),
        "ordering": numbers("ocir", [3, 9, 15]),
        "obsessing": numbers("ocir", [6, 12, 18]),
        "hoarding": numbers("ocir", [1, 7, 13]),
        "neutralizing": numbers("ocir", [4, 10, 16]),
    },
    # OQ-45.2 scoring sheet (25 / 11 / 9 items).
    "oq45": {
        "symptom_distress": numbers(
            "oq45",
            [
                2,
                3,
                5,
                6,
                8,
                9,
                10,
                11,
                13,
                15,
                22,
                23,
                24,
                25,
                27,
                29,
                31,
                33,
                34,
                35,
                36,
                40,
                41,
                42,
                45,
            ],
        ),
        "interpersonal_relations": numbers("oq45", [1, 7, 16, 17, 18, 19, 20, 26, 30, 37, 43]),
        "social_role": numbers("oq45", [4, 12, 14, 21, 28, 32, 38, 39, 44]),
    },
}


@pytest.mark.parametrize("inst", list(al.instruments().values()), ids=lambda i: i.id)
def test_reverse_keyed_items_match_the_cited_key(inst):
    reversed_ids = tuple(it.id for it in inst.items if it.reverse)
    assert reversed_ids == EXPECTED_REVERSE.get(inst.id, ())


@pytest.mark.parametrize("inst", list(al.instruments().values()), ids=lambda i: i.id)
def test_subscales_match_the_cited_key(inst):
    got = {s.id: tuple(s.items) for s in inst.scoring.subscales}
    assert got == EXPECTED_SUBSCALES.get(inst.id, {})
    if got:  # these keys partition the items
        assert sorted(itertools.chain(*got.values())) == sorted(it.id for it in inst.scored_items)


def test_the_two_wai_perspectives_share_format_and_subscales():
    client, therapist = al.instrument("wai_sr"), al.instrument("wai_sr_t")
    assert (client.rater, therapist.rater) == ("client", "therapist")
    assert client.kind == therapist.kind == "alliance"
    assert client.scoring.range == therapist.scoring.range == (12.0, 60.0)
    assert [s.id for s in client.scoring.subscales] == [s.id for s in therapist.scoring.subscales]
    for a, b in zip(client.scored_items, therapist.scored_items, strict=True):
        assert a.values == b.values == (1, 2, 3, 4, 5)


GAD7_LOINC = ["69725-0", "68509-9", "69733-4", "69734-2", "69735-9", "69689-8", "69736-7"]


def test_gad7_carries_the_loinc_codes_of_panel_69737_5():
    gad7 = al.instrument("gad7")
    assert (gad7.loinc.panel, gad7.loinc.total) == ("69737-5", "70274-6")
    assert [it.loinc for it in gad7.items] == GAD7_LOINC


@pytest.mark.parametrize("item_index", range(7))
def test_gad7_answer_codes_follow_loinc_item_by_item(item_index):
    item = al.instrument("gad7").scored_items[item_index]
    value_two = "LA18938-3" if item.loinc == "68509-9" else "LA6570-1"
    assert [o.code for o in item.options] == ["LA6568-5", "LA6569-3", value_two, "LA6571-9"]
    assert item.values == (0, 1, 2, 3)


def test_who5_reports_a_percentage_of_four_times_the_raw_score():
    who5 = al.instrument("who5")
    assert who5.direction == "higher_is_better"
    assert dict(who5.scoring.derived) == {"percentage": 4}
    assert who5.scoring.range[1] * 4 == 100
    assert who5.is_clinical(12) is True
    assert who5.is_clinical(13) is False


@pytest.mark.parametrize(
    ("instrument_id", "total", "label"),
    [("gad7", 4, "minimal"), ("gad7", 5, "mild"), ("gad7", 14, "moderate"), ("gad7", 15, "severe"),
     ("phq15", 9, "low"), ("phq15", 10, "medium"), ("phq15", 15, "high"),
     ("core10", 10, "low"), ("core10", 11, "mild"), ("core10", 25, "severe"),
     ("k10", 15, "low"), ("k10", 16, "moderate"), ("k10", 30, "very high")],
)  # fmt: skip
def test_band_edges_land_where_the_sources_put_them(instrument_id, total, label):
    assert al.instrument(instrument_id).band_for(total) == label


def test_core10_norms_give_a_jacobson_truax_cutoff_near_its_clinical_cutoff():
    n = al.instrument("core10").norms
    assert n.clinical is not None
    assert n.functional is not None
    c = (n.clinical.sd * n.functional.mean + n.functional.sd * n.clinical.mean) / (
        n.clinical.sd + n.functional.sd
    )
    assert c == pytest.approx(10.46, abs=1e-9)  # consistent with the published cutoff of 11


@pytest.mark.parametrize("inst", list(al.instruments().values()), ids=lambda i: i.id)
def test_text_ships_only_where_the_licence_allows_it(inst):
    if inst.licence.text_included:
        assert inst.has_text
        assert inst.licence.notice, "free text keeps its attribution line"
    else:
        assert all(it.text is None for it in inst.items)
        assert all(o.label is None for it in inst.items for o in it.options)


def test_the_srs_concern_rules_are_a_total_threshold_and_a_low_item_flag():
    srs = al.instrument("srs")
    assert srs.concern_threshold is not None
    assert srs.concern_threshold.value == 36
    assert {c.item for c in srs.critical} == set(srs.item_ids)
    assert all(
        c.flag == "alliance_item_low" and c.hits(8.9) and not c.hits(9.0) for c in srs.critical
    )


def test_safety_items_flag_any_endorsement():
    assert [(c.item, c.flag) for c in al.instrument("core10").critical] == [("core10_6", "safety")]
    assert [(c.item, c.flag) for c in al.instrument("phq9").critical] == [("phq9_9", "safety")]


# -- the schema rejects broken definitions, naming the field --------------------------------------


def broken(instrument_id: str, change) -> str:
    data = raw(instrument_id)
    change(data)
    with pytest.raises(InstrumentError) as info:
        parse(data, origin=f"{instrument_id}.yaml")
    return str(info.value)


def _drop_band_source(d):
    del d["severity_bands"][0]["source"]


def _unknown_band_source(d):
    d["severity_bands"][0]["source"] = "nobody2024"


def _overlap_bands(d):
    d["severity_bands"][1]["min"] = 4


def _unknown_subscale_item(d):
    d["scoring"]["subscales"][0]["items"].append("fq_99")


def _drop_text(d):
    d["items"][0].pop("text")


def _wrong_range(d):
    d["scoring"]["range"] = [0, 20]


def _bad_item_prefix(d):
    d["items"][0]["id"] = "gad_1"


def _reverse_unscored(d):
    d["items"][-1]["reverse"] = True


def _unknown_critical_item(d):
    d["critical"][0]["item"] = "phq9_10"


def _custom_without_name(d):
    d["scoring"].pop("custom")


def _proration_without_source(d):
    d["scoring"]["proration"].pop("source")


def _cutoff_outside_range(d):
    d["clinical_cutoff"]["value"] = 22


def _unknown_reliability_source(d):
    d["norms"]["reliability"]["source"] = "nowhere"


def _reliability_without_kind(d):
    d["norms"]["reliability"].pop("kind")


def _unknown_field(d):
    d["cutoff"] = 10


def _band_outside_range(d):
    d["severity_bands"][-1]["max"] = 30


@pytest.mark.parametrize(
    ("instrument_id", "change", "message"),
    [
        ("gad7", _drop_band_source, "severity_bands.0.source"),
        ("gad7", _unknown_band_source, "source 'nobody2024' is not in references"),
        ("gad7", _overlap_bands, "severity bands 'minimal' and 'mild' overlap"),
        ("fq", _unknown_subscale_item, "subscale agoraphobia: unknown items ['fq_99']"),
        ("gad7", _drop_text, "item gad7_1: text is missing but licence.text_included is true"),
        ("gad7", _wrong_range, "scoring.range [0.0, 20.0] does not match the items"),
        ("gad7", _bad_item_prefix, "item gad_1: item ids must start with 'gad7_'"),
        (
            "phq9",
            _reverse_unscored,
            "item phq9_difficulty: only a scored item can be reverse-keyed",
        ),
        ("phq9", _unknown_critical_item, "critical rule: unknown item 'phq9_10'"),
        ("phq_panic", _custom_without_name, "scoring.method custom needs scoring.custom"),
        ("phq9", _proration_without_source, "a proration rule needs a source"),
        ("gad7", _cutoff_outside_range, "clinical_cutoff: value 22 lies outside scoring.range"),
        (
            "core10",
            _unknown_reliability_source,
            "norms.reliability: source 'nowhere' is not in references",
        ),
        ("core10", _reliability_without_kind, "norms.reliability.kind"),
        ("gad7", _unknown_field, "cutoff: Extra inputs are not permitted"),
        ("gad7", _band_outside_range, "severity band 'severe' lies outside scoring.range"),
    ],
    ids=lambda v: v.__name__.strip("_") if callable(v) else None,
)
def test_the_schema_rejects_a_broken_definition_naming_the_field(instrument_id, change, message):
    error = broken(instrument_id, change)
    assert message in error
    assert f"{instrument_id}.yaml" in error


def test_a_file_must_be_named_after_its_id(tmp_path):
    data = raw("gad7")
    path = tmp_path / "anxiety.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(InstrumentError, match=r"file name must be the instrument id \(gad7.yaml\)"):
        load(path)


def test_a_custom_scoring_rule_must_name_a_registered_scorer():
    for inst in al.instruments().values():
        if inst.scoring.method == "custom":
            assert inst.scoring.custom in SCORERS
    with pytest.raises(InstrumentError, match="no custom scorer named 'nope'"):
        get_scorer("nope")


# -- the PHQ panic rule -------------------------------------------------------------------------

PANIC = al.instrument("phq_panic")


def panic_row(initial: list[float], symptoms: int | list[float]) -> list[float]:
    if isinstance(symptoms, int):
        symptoms = [1.0] * symptoms + [0.0] * (11 - symptoms)
    return [*initial, *symptoms]


def reference_panic(row: list[float]) -> tuple[float, str | None]:
    """A plain, row-by-row reading of the rule (independent of the vectorised scorer)."""
    if math.isnan(row[0]) or any(not math.isnan(v) and v not in (0, 1) for v in row):
        return math.nan, None
    if row[0] == 0:
        return 0.0, "low"
    if any(math.isnan(v) for v in row[1:]):
        return math.nan, None
    others = sum(v == 1 for v in row[1:4])
    s = float(sum(v == 1 for v in row[4:]))
    if others == 3 and s >= 4:
        return s, "high"
    if others >= 1 and s >= 3:
        return s, "moderate"
    return s, "low"


@pytest.mark.parametrize(
    ("row", "total", "severity", "flags"),
    [
        (panic_row([1, 1, 1, 1], 4), 4, "high", ("panic_syndrome",)),
        (panic_row([1, 1, 1, 1], 11), 11, "high", ("panic_syndrome",)),
        (panic_row([1, 1, 1, 1], 3), 3, "moderate", ()),  # one symptom short of the syndrome
        (panic_row([1, 1, 1, 0], 10), 10, "moderate", ()),  # not all initial questions yes
        (panic_row([1, 0, 0, 1], 3), 3, "moderate", ()),
        (panic_row([1, 0, 0, 0], 11), 11, "low", ()),  # gate alone is not enough
        (panic_row([1, 1, 0, 0], 2), 2, "low", ()),
        (panic_row([0, 1, 1, 1], 11), 0, "low", ()),  # gate 'no': the rest is skipped
        ([0.0] + [math.nan] * 14, 0, "low", ()),
    ],
)
def test_the_phq_panic_rule_classifies_each_response(row, total, severity, flags):
    res = score_phq_panic(PANIC, np.array([row], dtype=float))
    assert isinstance(res, CustomScores)
    assert res.total[0] == total
    assert res.severity[0] == severity
    assert res.flags == [flags]
    assert res.error[0] is None
    assert res.method == "phq_panic_spitzer1999"


@pytest.mark.parametrize(
    ("row", "error"),
    [
        ([math.nan] * 15, "gate question (item 1) is not answered"),
        (panic_row([1, 1, math.nan, 1], 5), "follow-up answers are missing"),
        (panic_row([1, 1, 1, 1], [1.0] * 10 + [math.nan]), "follow-up answers are missing"),
        (panic_row([1, 2, 1, 1], 5), "answers must be 0 (no) or 1 (yes)"),
    ],
)
def test_an_unscorable_panic_response_says_why(row, error):
    res = score_phq_panic(PANIC, np.array([row], dtype=float))
    assert math.isnan(res.total[0])
    assert res.severity[0] is None
    assert res.flags == [()]
    assert error in res.error[0]


def test_the_panic_scorer_rejects_the_wrong_number_of_items():
    with pytest.raises(InstrumentError, match=r"expected an array of shape \(n, 15\)"):
        score_phq_panic(PANIC, np.zeros((2, 14)))


def test_the_vectorised_panic_scorer_matches_a_row_by_row_reading():
    rng = np.random.default_rng(20240601)
    values = rng.choice([0.0, 1.0, np.nan], p=[0.4, 0.55, 0.05], size=(2000, 15))
    values[rng.random(2000) < 0.02, 3] = 2.0  # a few invalid answers
    res = SCORERS["phq_panic"](PANIC, values)
    for i, row in enumerate(values.tolist()):
        total, severity = reference_panic(row)
        assert (math.isnan(res.total[i]) and math.isnan(total)) or res.total[i] == total
        assert res.severity[i] == severity
        assert res.flags[i] == (("panic_syndrome",) if severity == "high" else ())
        assert (res.error[i] is None) == (severity is not None)


def test_the_examples_in_the_instrument_modules_run():
    # alliance.instruments (the function) shadows the subpackage as an attribute: import by name.
    for module in (custom_module, importlib.import_module("alliance.instruments")):
        failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
        assert tried > 0
        assert failures == 0
