"""Instruments as FHIR R4 ``Questionnaire`` resources, both ways.

:func:`questionnaire_from_instrument` writes an instrument as a Questionnaire;
:func:`instrument_from_questionnaire` reads one back, either recognising a known instrument
(and linking each questionnaire item to the instrument's item) or building a scoring-only custom
instrument from it. Both are pure: JSON-like dicts in, dicts and frozen dataclasses out.
"""

from __future__ import annotations

import hashlib
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Literal

from alliance.errors import FHIRError, InstrumentError
from alliance.fhir._resources import (
    ALLIANCE_NS,
    CALCULATED_EXPRESSION,
    DEFAULT_BASE_URL,
    ITEM_CONTROL,
    ITEM_WEIGHT,
    LOINC,
    MAX_VALUE,
    MIN_VALUE,
    ORDINAL_VALUE,
    SLIDER_STEP,
    JSONDict,
    _as_number,
    _model_errors,
    check_resource,
    coding_key,
    ext_value,
    fhir_number,
    iter_items,
    loinc_codes,
    looks_like_loinc,
    score_from_extensions,
)
from alliance.instruments import Instrument, Item, default_library
from alliance.instruments.registry import parse as parse_definition

__all__ = [
    "DIRECTION_EXTENSION",
    "SCORED_EXTENSION",
    "AnswerMap",
    "LinkedItem",
    "QuestionnaireMatch",
    "canonical_url",
    "instrument_from_questionnaire",
    "questionnaire_from_instrument",
]

METHOD_IMPORT = "fhir_r4_questionnaire_import"

DIRECTION_EXTENSION = f"{ALLIANCE_NS}/StructureDefinition/instrument-direction"
"""Alliance extension on a Questionnaire: ``valueCode`` higher_is_worse / higher_is_better."""

SCORED_EXTENSION = f"{ALLIANCE_NS}/StructureDefinition/item-scored"
"""Alliance extension on an item: ``valueBoolean`` false for an item asked but not summed."""

LOINC_NOTICE = (
    "This material contains content from LOINC (http://loinc.org). LOINC is copyright "
    "Regenstrief Institute, Inc. and the Logical Observation Identifiers Names and Codes (LOINC) "
    "Committee and is available at no cost under the license at http://loinc.org/license."
)

ScoreExtension = Literal["ordinalValue", "itemWeight"]
_SCORE_URL = {"ordinalValue": ORDINAL_VALUE, "itemWeight": ITEM_WEIGHT}


# ---------------------------------------------------------------------------------------------
# Export
# ---------------------------------------------------------------------------------------------
def fhir_id(instrument_id: str) -> str:
    """The FHIR resource id of an instrument (FHIR ids allow ``-`` but not ``_``)."""
    return instrument_id.replace("_", "-")


def canonical_url(instrument: Instrument | str, base_url: str = DEFAULT_BASE_URL) -> str:
    """The canonical URL of an instrument's Questionnaire.

    Examples
    --------
    >>> canonical_url("wai_sr")
    'http://alliance.invalid/fhir/Questionnaire/wai-sr'
    """
    iid = instrument if isinstance(instrument, str) else instrument.id
    return f"{base_url.rstrip('/')}/Questionnaire/{fhir_id(iid)}"


def _computable_name(short_name: str) -> str:
    name = re.sub(r"[^A-Za-z0-9_]", "", unicodedata.normalize("NFKD", short_name))
    if not name:
        return "Questionnaire"
    if not name[0].isalpha():
        name = "Q" + name
    return name[0].upper() + name[1:]


def _answer_system(instrument: Instrument) -> str:
    return f"{ALLIANCE_NS}/CodeSystem/{fhir_id(instrument.id)}-answers"


def _value_code(value: float) -> str:
    return str(fhir_number(value))


def _export_item(instrument: Instrument, item: Item, score_url: str) -> JSONDict:
    out: JSONDict = {"linkId": item.id}
    if item.loinc:
        out["code"] = [{"system": LOINC, "code": item.loinc}]
    if item.prefix:
        out["prefix"] = item.prefix
    if item.text:
        out["text"] = item.text
    extensions: list[JSONDict] = []
    if item.kind == "choice":
        out["type"] = "choice"
        lo, hi = item.value_range
        options = []
        for opt in item.options:
            coding: JSONDict = {
                "system": opt.system or (LOINC if opt.code else _answer_system(instrument)),
                "code": opt.code or _value_code(opt.value),
            }
            if opt.label:
                coding["display"] = opt.label
            # The score an option contributes: reverse-keyed items are scored lo + hi - value.
            weight = lo + hi - opt.value if item.reverse else opt.value
            options.append(
                {
                    "extension": [{"url": score_url, "valueDecimal": fhir_number(weight)}],
                    "valueCoding": coding,
                }
            )
        out["answerOption"] = options
    elif item.kind == "scale":
        lo, hi = item.value_range
        whole = all(float(v).is_integer() for v in (lo, hi, item.step or 0.5))
        out["type"] = "integer" if whole else "decimal"
        key = "valueInteger" if whole else "valueDecimal"
        extensions += [
            {"url": MIN_VALUE, key: fhir_number(lo)},
            {"url": MAX_VALUE, key: fhir_number(hi)},
        ]
        if whole and item.step:
            extensions += [
                {
                    "url": ITEM_CONTROL,
                    "valueCodeableConcept": {
                        "coding": [
                            {
                                "system": "http://hl7.org/fhir/questionnaire-item-control",
                                "code": "slider",
                            }
                        ]
                    },
                },
                {"url": SLIDER_STEP, "valueInteger": int(item.step)},
            ]
    else:
        out["type"] = "text"
    if not item.scored or item.kind == "text":
        extensions.append({"url": SCORED_EXTENSION, "valueBoolean": False})
    if extensions:
        out["extension"] = extensions
    out["required"] = bool(item.required and item.scored)
    return out


def questionnaire_from_instrument(
    instrument: Instrument,
    *,
    base_url: str = DEFAULT_BASE_URL,
    score_extension: ScoreExtension = "ordinalValue",
    validate: bool = True,
) -> JSONDict:
    """Write an instrument as a FHIR R4 ``Questionnaire``.

    Parameters
    ----------
    instrument
        Any instrument (shipped, custom or imported).
    base_url
        Base of the canonical URL (``<base>/Questionnaire/<id>``); Alliance's own code systems
        and extensions always use the fixed namespace ``http://alliance.invalid/fhir``.
    score_extension
        ``"ordinalValue"`` (R4 core, read by SDC 3.0's ``ordinal()`` and written by LHC-Forms for
        R4) or ``"itemWeight"`` (its R5 successor in the FHIR extensions pack).
    validate
        Check the result against the ``fhir.resources`` R4B ``Questionnaire`` model.

    Returns
    -------
    dict
        The Questionnaire as JSON-ready data.

    Notes
    -----
    Choice items list their options as ``answerOption.valueCoding`` (the LOINC answer code where
    the definition has one, otherwise the code system ``…/CodeSystem/<id>-answers`` whose codes
    are the response values) with the option's score in the ``ordinalValue`` extension. The
    score is what the option contributes to the total, so a reverse-keyed item's options carry
    ``min + max - value``. Scale items are ``integer`` or ``decimal`` with ``minValue`` and
    ``maxValue``. Items that are asked but not summed carry the Alliance extension
    ``item-scored = false``. Scoring-only (licensed) instruments are exported as item shells:
    codes, options and scores without text, and a description that says so. No total-score item
    is written: Alliance recomputes totals and never trusts a stored one.

    References
    ----------
    HL7 FHIR R4 (4.0.1), Questionnaire; extension ordinalValue. HL7 Structured Data Capture
    IG 3.0.0, "FHIRPath supplements" (``ordinal()``). FHIR Extensions Pack, itemWeight.

    Examples
    --------
    >>> import alliance as al
    >>> q = questionnaire_from_instrument(al.instrument("phq9"))
    >>> q["url"], q["code"][0]["code"], len(q["item"])
    ('http://alliance.invalid/fhir/Questionnaire/phq9', '44249-1', 11)
    >>> option = q["item"][1]["answerOption"][3]
    >>> option["valueCoding"]["code"], option["extension"][0]["valueDecimal"]
    ('LA6571-9', 3)
    """
    if score_extension not in _SCORE_URL:
        raise FHIRError(
            f"score_extension must be ordinalValue or itemWeight, not {score_extension!r}"
        )
    score_url = _SCORE_URL[score_extension]
    lic = instrument.licence
    scoring_only = not instrument.has_text
    description = f"{instrument.name} ({instrument.short_name})"
    if instrument.recall_period:
        description += f"; recall period: {instrument.recall_period}"
    description += ". Exported from the Alliance instrument library."
    if scoring_only:
        description += (
            f" Scoring-only definition: the item text is licensed ({lic.name}) and is not "
            "included. A practice holding a licence imports its own text by importing a "
            "Questionnaire with the same codes or structure."
        )
    copyright_text = lic.notice or lic.name
    uses_loinc = bool(instrument.loinc.panel) or any(
        it.loinc or any((o.system in (None, LOINC)) and o.code for o in it.options)
        for it in instrument.items
    )
    if uses_loinc:
        copyright_text = f"{copyright_text}\n\n{LOINC_NOTICE}"
    q: JSONDict = {
        "resourceType": "Questionnaire",
        "id": fhir_id(instrument.id),
        "extension": [{"url": DIRECTION_EXTENSION, "valueCode": instrument.direction}],
        "url": canonical_url(instrument, base_url),
        "version": instrument.version,
        "name": _computable_name(instrument.short_name),
        "title": instrument.name,
        "status": "active",
        "subjectType": ["Patient"],
        "description": description,
        "copyright": copyright_text,
    }
    if instrument.loinc.panel:
        q["code"] = [{"system": LOINC, "code": instrument.loinc.panel, "display": instrument.name}]
    items: list[JSONDict] = []
    if instrument.instructions and not scoring_only:
        link = "instructions"
        while link in instrument.item_ids:
            link = "_" + link if not link.startswith("_") else link + "_"
        items.append({"linkId": link, "type": "display", "text": instrument.instructions})
    items += [_export_item(instrument, it, score_url) for it in instrument.items]
    q["item"] = items
    if validate:
        errors = _model_errors(q)
        if errors:  # a bug in this module, not bad input
            raise FHIRError(
                f"exported Questionnaire for {instrument.id} is not valid R4B: " + "; ".join(errors)
            )
    return q


# ---------------------------------------------------------------------------------------------
# Reading a questionnaire
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _QOption:
    system: str | None
    code: str | None
    display: str | None
    value: float | None
    source: str  # where the value came from


@dataclass(frozen=True)
class _QItem:
    link_id: str
    type: str
    text: str | None
    prefix: str | None
    loinc: tuple[str, ...]
    required: bool
    options: tuple[_QOption, ...]
    option_note: str | None
    min: float | None
    max: float | None
    step: float | None
    is_total: bool
    scored_flag: bool | None  # Alliance's item-scored extension, when present
    depth: int

    @property
    def is_question(self) -> bool:
        return self.type not in ("group", "display") and not self.is_total

    @property
    def codes(self) -> tuple[str, ...]:
        """LOINC codes of the item, including one spelled in the linkId (``/44250-9``)."""
        tail = self.link_id.rsplit("/", 1)[-1]
        extra = (tail,) if looks_like_loinc(tail) and tail not in self.loinc else ()
        return self.loinc + extra


def _norm_label(text: str | None) -> str:
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold()
    return re.sub(r"[^0-9a-z]+", " ", text).strip()


def _norm_name(text: str | None) -> str:
    return re.sub(r"[^0-9a-z]+", "", (text or "").casefold())


def _contained(q: Mapping[str, Any]) -> dict[str, JSONDict]:
    out = {}
    for res in q.get("contained") or ():
        if isinstance(res, dict) and isinstance(res.get("id"), str):
            out[res["id"]] = res
    return out


def _valueset_options(vs: Mapping[str, Any], contained: Mapping[str, JSONDict]) -> list[_QOption]:
    """Options of a contained ValueSet (compose or expansion), with scores where given."""
    options: list[_QOption] = []
    where = f"contained ValueSet #{vs.get('id')}"
    for include in (vs.get("compose") or {}).get("include") or ():
        system = include.get("system")
        concepts = include.get("concept")
        if not concepts and isinstance(system, str) and system.startswith("#"):
            cs = contained.get(system[1:], {})
            concepts, system = cs.get("concept"), cs.get("url", system)
        elif not concepts:  # a whole code system: look for a contained CodeSystem with its url
            for res in contained.values():
                if res.get("resourceType") == "CodeSystem" and res.get("url") == system:
                    concepts = res.get("concept")
        for concept in concepts or ():
            found = score_from_extensions(concept) or _property_score(concept)
            options.append(
                _QOption(
                    system=system,
                    code=concept.get("code"),
                    display=concept.get("display"),
                    value=found[0] if found else None,
                    source=f"{found[1].rsplit('/', 1)[-1]} in {where}" if found else where,
                )
            )
    if not options:
        for entry in (vs.get("expansion") or {}).get("contains") or ():
            found = score_from_extensions(entry)
            options.append(
                _QOption(
                    system=entry.get("system"),
                    code=entry.get("code"),
                    display=entry.get("display"),
                    value=found[0] if found else None,
                    source=f"{found[1].rsplit('/', 1)[-1]} in {where} expansion"
                    if found
                    else where,
                )
            )
    return options


def _property_score(concept: Mapping[str, Any]) -> tuple[float, str] | None:
    """A CodeSystem concept's ``itemWeight`` / ``weight`` / ``ordinal`` property (R5 style)."""
    for prop in concept.get("property") or ():
        if isinstance(prop, dict) and prop.get("code") in ("itemWeight", "weight", "ordinal"):
            number = _as_number(prop.get("valueDecimal", prop.get("valueInteger")))
            if number is not None:
                return number, f"property {prop['code']}"
    return None


def _item_options(
    item: Mapping[str, Any], contained: Mapping[str, JSONDict]
) -> tuple[tuple[_QOption, ...], str | None]:
    options: list[_QOption] = []
    note = None
    for opt in item.get("answerOption") or ():
        if not isinstance(opt, dict):
            continue
        coding = opt.get("valueCoding")
        if isinstance(coding, dict):
            found = score_from_extensions(opt, coding)
            options.append(
                _QOption(
                    system=coding.get("system"),
                    code=coding.get("code"),
                    display=coding.get("display"),
                    value=found[0] if found else None,
                    source=f"{found[1].rsplit('/', 1)[-1]} on answerOption" if found else "",
                )
            )
        elif "valueInteger" in opt:
            found = score_from_extensions(opt)
            number = _as_number(opt["valueInteger"])
            options.append(
                _QOption(
                    system=None,
                    code=str(opt["valueInteger"]),
                    display=str(opt["valueInteger"]),
                    value=found[0] if found else number,
                    source="ordinalValue on answerOption" if found else "valueInteger",
                )
            )
        elif "valueString" in opt:
            found = score_from_extensions(opt)
            options.append(
                _QOption(
                    system=None,
                    code=None,
                    display=str(opt["valueString"]),
                    value=found[0] if found else None,
                    source="ordinalValue on answerOption" if found else "",
                )
            )
    vs_ref = item.get("answerValueSet")
    if not options and isinstance(vs_ref, str):
        if vs_ref.startswith("#") and vs_ref[1:] in contained:
            options = _valueset_options(contained[vs_ref[1:]], contained)
        else:
            note = (
                f"item {item.get('linkId')}: answer value set {vs_ref} is not contained in the "
                "Questionnaire, so its scores cannot be read"
            )
    return tuple(options), note


def _read_items(q: Mapping[str, Any], total_codes: frozenset[str]) -> list[_QItem]:
    contained = _contained(q)
    out = []
    for item, ancestors in iter_items(q.get("item")):
        itype = str(item.get("type", ""))
        options, note = _item_options(item, contained)
        codes = loinc_codes(item)
        tail = str(item.get("linkId", "")).rsplit("/", 1)[-1]
        calculated = ext_value(item, CALCULATED_EXPRESSION) is not None
        numeric = itype in ("integer", "decimal", "quantity")
        is_total = (
            calculated
            or bool(total_codes & {*codes, tail})
            or (numeric and bool(item.get("readOnly")) and not options)
        )
        scored = ext_value(item, SCORED_EXTENSION)
        out.append(
            _QItem(
                link_id=str(item["linkId"]),
                type=itype,
                text=item.get("text") if isinstance(item.get("text"), str) else None,
                prefix=item.get("prefix") if isinstance(item.get("prefix"), str) else None,
                loinc=codes,
                required=bool(item.get("required", False)),
                options=options,
                option_note=note,
                min=_as_number(ext_value(item, MIN_VALUE)),
                max=_as_number(ext_value(item, MAX_VALUE)),
                step=_as_number(ext_value(item, SLIDER_STEP)),
                is_total=is_total,
                scored_flag=scored if isinstance(scored, bool) else None,
                depth=len(ancestors),
            )
        )
    return out


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class AnswerMap:
    """How the coded answers of one questionnaire item translate into response values.

    Built per item, never per code system: the same LOINC answer code may stand for different
    values in different answer lists (the GAD-7 pitfall), so a code is only looked up among the
    options of the item it answers.
    """

    by_coding: Mapping[str, float] = field(default_factory=dict)
    """``system|code`` → value."""
    by_code: Mapping[str, float] = field(default_factory=dict)
    """``code`` → value, for codings sent without a system (only codes unique in the item)."""
    by_label: Mapping[str, float] = field(default_factory=dict)
    """Normalised display label → value (last resort; only labels unique in the item)."""

    def lookup(
        self, system: str | None, code: str | None, display: str | None
    ) -> tuple[float | None, str | None]:
        """The value of an answer and, when it was matched loosely, a note saying how."""
        if code is not None:
            if system and coding_key(system, code) in self.by_coding:
                return self.by_coding[coding_key(system, code)], None
            if code in self.by_code:
                note = None if not system else f"code {code!r} matched without its system {system}"
                return self.by_code[code], note
        label = _norm_label(display)
        if label and label in self.by_label:
            return self.by_label[label], f"answer matched by its display text {display!r}"
        return None, None


def _answer_map(pairs: Iterable[tuple[str | None, str | None, str | None, float]]) -> AnswerMap:
    by_coding: dict[str, float] = {}
    codes: dict[str, set[float]] = {}
    labels: dict[str, set[float]] = {}
    for system, code, display, value in pairs:
        if code is not None:
            by_coding.setdefault(coding_key(system, code), value)
            codes.setdefault(code, set()).add(value)
        if display:
            labels.setdefault(_norm_label(display), set()).add(value)
    return AnswerMap(
        by_coding=MappingProxyType(by_coding),
        by_code=MappingProxyType({c: next(iter(v)) for c, v in codes.items() if len(v) == 1}),
        by_label=MappingProxyType(
            {lab: next(iter(v)) for lab, v in labels.items() if len(v) == 1 and lab}
        ),
    )


@dataclass(frozen=True)
class LinkedItem:
    """One questionnaire item linked to one instrument item."""

    link_id: str
    item_id: str
    answers: AnswerMap
    how: str
    """How the link was made: ``linkId``, ``LOINC code``, ``position`` or ``created``."""
    codes: tuple[str, ...] = ()
    """LOINC codes of the questionnaire item (for tolerant matching of flat responses)."""


@dataclass(frozen=True)
class QuestionnaireMatch:
    """What :func:`instrument_from_questionnaire` made of a Questionnaire.

    Attributes
    ----------
    status
        ``"matched"`` (a known instrument) or ``"created"`` (a new scoring-only custom one).
    instrument
        The instrument to score with: the known one (with imported text merged in when it is a
        scoring-only instrument and the questionnaire carries text) or the new custom one.
    reason
        Why it matched, or why nothing matched.
    links
        Questionnaire item → instrument item, with the answer codes of each item.
    total_link_ids
        Items that hold a stored or calculated total (compared with, never trusted).
    warnings
        Everything read loosely or assumed.
    text_merged
        Whether imported item text was merged into a scoring-only instrument.
    questionnaire_url
        The questionnaire's canonical URL (without ``|version``), if any.
    method
        Stable identifier of the procedure, stored with results.
    """

    status: Literal["matched", "created"]
    instrument: Instrument
    reason: str
    links: tuple[LinkedItem, ...]
    total_link_ids: tuple[str, ...] = ()
    warnings: tuple[str, ...] = ()
    text_merged: bool = False
    questionnaire_url: str | None = None
    method: str = METHOD_IMPORT

    @property
    def matched(self) -> bool:
        """True when a known instrument was recognised."""
        return self.status == "matched"

    def link_for(self, link_id: str) -> LinkedItem | None:
        """The link of a questionnaire item, or ``None``."""
        for link in self.links:
            if link.link_id == link_id:
                return link
        return None

    def summary(self) -> dict[str, Any]:
        """A JSON-ready summary (what the CLI prints)."""
        return {
            "status": self.status,
            "instrument": self.instrument.id,
            "name": self.instrument.name,
            "custom": self.instrument.custom,
            "reason": self.reason,
            "text_merged": self.text_merged,
            "questionnaire_url": self.questionnaire_url,
            "items": [
                {"linkId": link.link_id, "item": link.item_id, "how": link.how}
                for link in self.links
            ],
            "total_items": list(self.total_link_ids),
            "warnings": list(self.warnings),
            "method": self.method,
        }


# ---------------------------------------------------------------------------------------------
# Import
# ---------------------------------------------------------------------------------------------
def _strip_version(url: Any) -> str | None:
    return url.split("|", 1)[0] if isinstance(url, str) and url else None


def _value_profile(item: Item) -> tuple[float, ...]:
    if item.kind == "choice":
        lo, hi = item.value_range
        vals = (lo + hi - v for v in item.values) if item.reverse else iter(item.values)
        return tuple(sorted(vals))
    lo, hi = item.value_range
    return (lo, hi)


def _qitem_profile(q: _QItem) -> tuple[float, ...] | None:
    if q.options:
        if any(o.value is None for o in q.options):
            return None
        return tuple(sorted({o.value for o in q.options if o.value is not None}))
    if q.min is not None and q.max is not None:
        return (q.min, q.max)
    return None


def _name_evidence(
    inst: Instrument, q: Mapping[str, Any], qitems: list[_QItem]
) -> tuple[int, str] | None:
    """Whether the questionnaire names this instrument, as ``(strength, how)``.

    Strength orders rival candidates: the title or name equal to the instrument's name beats a
    name that merely contains its short name, and a longer short name beats a shorter one
    (``WAI-SR-T`` over ``WAI-SR``).
    """
    haystacks = [
        _norm_name(q.get(key)) for key in ("name", "title", "id") if isinstance(q.get(key), str)
    ]
    url = _strip_version(q.get("url"))
    if url:
        haystacks.append(_norm_name(url.rsplit("/", 1)[-1]))
    short = _norm_name(inst.short_name)
    full = _norm_name(inst.name)
    if full and full in haystacks:
        return 1000, f"its title is {inst.name!r}"
    if short and short in haystacks:
        return 900, f"its name is {inst.short_name!r}"
    contained = [h for h in haystacks if short and short in h]
    if contained:
        # Penalise the extra characters around the short name.
        extra = min(len(h) - len(short) for h in contained)
        return 500 + len(short) - extra, f"its name contains {inst.short_name!r}"
    if inst.loinc.total and any(inst.loinc.total in it.codes for it in qitems):
        return 100, (
            f"it has an item coded with the {inst.short_name} total LOINC {inst.loinc.total}"
        )
    return None


def _link_items(
    inst: Instrument, qitems: list[_QItem]
) -> tuple[dict[str, tuple[_QItem, str]], str | None]:
    """Link instrument items to questionnaire items; ``(links, problem)``."""
    questions = [q for q in qitems if q.is_question]
    by_link = {q.link_id: q for q in questions}
    by_code: dict[str, _QItem] = {}
    for q in questions:
        for code in q.codes:
            by_code.setdefault(code, q)
    links: dict[str, tuple[_QItem, str]] = {}
    used: set[str] = set()
    for it in inst.items:
        if it.id in by_link:
            links[it.id] = (by_link[it.id], "linkId")
        elif it.loinc and it.loinc in by_code:
            links[it.id] = (by_code[it.loinc], "LOINC code")
        if it.id in links:
            used.add(links[it.id][0].link_id)
    scored = [it for it in inst.items if it.scored and it.kind != "text"]
    if not links:
        # Position: the questions in order, either every item or only the scored ones.
        if len(questions) == len(inst.items):
            pairs = list(zip(inst.items, questions, strict=True))
        elif len(questions) == len(scored):
            pairs = list(zip(scored, questions, strict=True))
        else:
            return {}, (
                f"{len(questions)} question item(s) against {len(scored)} scored item(s) of "
                f"{inst.short_name}, and no linkId or LOINC code in common"
            )
        for it, q in pairs:
            if it.scored and it.kind != "text":
                profile = _qitem_profile(q)
                if profile is not None and profile != _value_profile(it):
                    return {}, (
                        f"question {q.link_id} (position of {it.id}) scores "
                        f"{list(profile)}, {inst.short_name} expects {list(_value_profile(it))}"
                    )
            links[it.id] = (q, "position")
    missing = [it.id for it in scored if it.id not in links]
    if missing:
        return {}, f"no question for {', '.join(missing)} of {inst.short_name}"
    return links, None


def _option_key(opt: _QOption) -> str:
    return coding_key(opt.system, opt.code) if opt.code else "label:" + _norm_label(opt.display)


def _reverse_encodings(
    inst: Instrument, linked: Mapping[str, tuple[_QItem, str]]
) -> dict[str, str]:
    """How a questionnaire scores each reverse-keyed item: ``raw`` or ``contribution``.

    A score on an option may be the value printed on the form (``raw``) or what the option adds
    to the total after reverse keying (``contribution``, the reading of ``itemWeight``: "adding
    up components of a score"). The same answer (code or label) on a plainly keyed item settles
    it: the same score means raw, the mirrored score means contribution.
    """
    plain: dict[str, set[float]] = {}
    for item_id, (qi, _) in linked.items():
        if not inst.item(item_id).reverse:
            for opt in qi.options:
                if opt.value is not None:
                    plain.setdefault(_option_key(opt), set()).add(opt.value)
    out = {}
    for item_id, (qi, _) in linked.items():
        it = inst.item(item_id)
        if not it.reverse or it.kind != "choice":
            continue
        lo, hi = it.value_range
        raw = mirrored = 0
        for opt in qi.options:
            same = plain.get(_option_key(opt), set())
            if opt.value is None or len(same) != 1:
                continue
            value = next(iter(same))
            if opt.value == value and value != lo + hi - value:
                raw += 1
            elif opt.value == lo + hi - value and opt.value != value:
                mirrored += 1
        out[item_id] = "raw" if raw > mirrored else "contribution"
    return out


def _matched_answer_map(
    inst: Instrument,
    it: Item,
    q: _QItem,
    encoding: str | None,
    warnings: list[str],
    unreversed: list[str],
) -> AnswerMap:
    """Answer codes of a linked item: the definition's codes first, then the questionnaire's."""
    pairs: list[tuple[str | None, str | None, str | None, float]] = []
    for own_opt in it.options:
        system = own_opt.system or (LOINC if own_opt.code else None)
        pairs.append((system, own_opt.code, own_opt.label, own_opt.value))
        # The codes Alliance itself writes for options without a code.
        pairs.append((_answer_system(inst), _value_code(own_opt.value), None, own_opt.value))
    own = _answer_map(pairs)
    lo, hi = it.value_range if it.kind == "choice" else (0.0, 0.0)
    allowed = set(it.values)
    for opt in q.options:
        known, _ = own.lookup(opt.system, opt.code, None)
        if known is not None:
            expected = {known, lo + hi - known} if it.reverse else {known}
            if opt.value is not None and opt.value not in expected:
                warnings.append(
                    f"item {q.link_id}: the questionnaire scores answer {opt.code} as "
                    f"{fhir_number(opt.value)}, the {inst.short_name} definition as "
                    f"{fhir_number(known)}; the definition's value is used"
                )
            continue
        by_label, _ = own.lookup(None, None, opt.display)
        if by_label is not None:
            value: float | None = by_label
        elif opt.value is not None:
            value = opt.value
            if it.reverse and encoding == "contribution":
                value = lo + hi - opt.value
                unreversed.append(it.id)
        else:
            value = None
        if value is None or value not in allowed:
            warnings.append(
                f"item {q.link_id}: answer {opt.code or opt.display!r} has no value that "
                f"{inst.short_name} item {it.id} accepts; such an answer is reported as invalid"
            )
            continue
        pairs.append((opt.system, opt.code, opt.display, value))
    return _answer_map(pairs)


def _merge_text(
    inst: Instrument,
    linked: Mapping[str, tuple[_QItem, str]],
    maps: Mapping[str, AnswerMap],
    q: Mapping[str, Any],
    qitems: list[_QItem],
) -> Instrument | None:
    """A new instrument with the questionnaire's item and option text (None if incomplete)."""
    data = inst.model_dump(mode="python")
    items = []
    for it, raw in zip(inst.items, data["items"], strict=True):
        raw = dict(raw)
        if it.id in linked:
            qi = linked[it.id][0]
            if raw.get("text") is None and qi.text:
                raw["text"] = qi.text
            if raw.get("prefix") is None and qi.prefix:
                raw["prefix"] = qi.prefix
            labels: dict[float, str] = {}
            for qo in qi.options:
                value, _ = maps[it.id].lookup(qo.system, qo.code, qo.display)
                if value is not None and qo.display:
                    labels.setdefault(value, qo.display)
            raw["options"] = [
                {**opt, "label": opt.get("label") or labels.get(opt["value"])}
                for opt in raw.get("options") or ()
            ]
        items.append(raw)
    if any(r.get("text") is None for r, it in zip(items, inst.items, strict=True) if it.scored):
        return None
    if data.get("instructions") is None:
        for qi in qitems:
            if qi.type in ("group", "display") and qi.text and qi.depth == 0:
                data["instructions"] = qi.text
                break
    source = _strip_version(q.get("url")) or q.get("id") or q.get("title") or "a Questionnaire"
    licence = dict(data["licence"])
    licence["text_included"] = True
    note = f"Item text imported from {source} under the practice's own licence."
    licence["notice"] = f"{licence['notice']} {note}" if licence.get("notice") else note
    data.update(items=items, licence=licence)
    data["notes"] = (*data.get("notes", ()), note)
    try:
        return parse_definition(data, origin=f"{inst.id} with imported text")
    except InstrumentError:
        return None


def _slug(text: str) -> str:
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return re.sub(r"_+", "_", re.sub(r"[^a-z0-9]+", "_", text.lower())).strip("_")


def _custom_id(q: Mapping[str, Any], library: Mapping[str, Instrument]) -> str:
    for key in ("name", "title", "id"):
        value = q.get(key)
        if isinstance(value, str) and _slug(value):
            base = _slug(value)
            break
    else:
        url = _strip_version(q.get("url"))
        base = _slug(url.rsplit("/", 1)[-1]) if url else ""
    if not base:
        digest = hashlib.sha256(json.dumps(q, sort_keys=True, default=str).encode()).hexdigest()
        base = digest[:10]
    cid = (base if base.startswith("custom_") else "custom_" + base)[:48].rstrip("_")
    n, out = 2, cid
    while out in library:
        out, n = f"{cid}_{n}", n + 1
    return out


def _create(
    q: Mapping[str, Any],
    qitems: list[_QItem],
    library: Mapping[str, Instrument],
    direction: str | None,
    loinc_answers: Mapping[str, float],
    warnings: list[str],
) -> tuple[Instrument, list[LinkedItem]]:
    iid = _custom_id(q, library)
    notes: list[str] = []
    questions = [qi for qi in qitems if qi.is_question]
    if not questions:
        raise FHIRError(
            "the Questionnaire has no question items that could be scored (only groups, "
            "display text or calculated totals)"
        )
    items: list[JSONDict] = []
    links: list[LinkedItem] = []
    for n, qi in enumerate(questions, start=1):
        item_id = f"{iid}_{n}"  # the schema wants ids prefixed by the instrument id
        raw: JSONDict = {"id": item_id, "required": qi.required}
        if qi.text:
            raw["text"] = qi.text
        if qi.prefix:
            raw["prefix"] = qi.prefix
        if qi.loinc:
            raw["loinc"] = qi.loinc[0]
        pairs: list[tuple[str | None, str | None, str | None, float]] = []
        if qi.option_note:
            warnings.append(qi.option_note)
        if qi.options:
            options: list[JSONDict] = []
            seen: dict[float, str] = {}
            sources = set()
            for opt in qi.options:
                value, source = opt.value, opt.source
                if value is None and opt.code and opt.code in loinc_answers:
                    value, source = loinc_answers[opt.code], "LOINC answer code"
                if value is None:
                    continue
                sources.add(source)
                pairs.append((opt.system, opt.code, opt.display, value))
                label = opt.display or opt.code or ""
                if value in seen:
                    warnings.append(
                        f"item {qi.link_id}: answers {seen[value]!r} and {label!r} share the "
                        f"value {fhir_number(value)}"
                    )
                    continue
                seen[value] = label
                options.append(
                    {"value": value, "label": opt.display, "code": opt.code, "system": opt.system}
                )
            if len(pairs) < len(qi.options):
                warnings.append(
                    f"item {qi.link_id}: {len(qi.options) - len(pairs)} of {len(qi.options)} "
                    "answer options have no score (no ordinalValue/itemWeight, no contained "
                    "ValueSet score, no known LOINC answer code); answering them is an error"
                )
            if options:
                raw.update(kind="choice", options=options)
                notes.append(f"{item_id}: values from {', '.join(sorted(sources))}")
            else:
                raw.update(kind="text", scored=False, required=False)
                warnings.append(
                    f"item {qi.link_id}: no answer option carries a score; imported as not scored"
                )
        elif (
            qi.type in ("integer", "decimal", "quantity")
            and qi.min is not None
            and (qi.max is not None and qi.min < qi.max)
        ):
            raw.update(kind="scale", min=qi.min, max=qi.max)
            if qi.step:
                raw["step"] = qi.step
        else:
            raw.update(kind="text", scored=False, required=False)
            if qi.type in ("integer", "decimal", "quantity"):
                warnings.append(
                    f"item {qi.link_id}: a number without minValue/maxValue; imported as not scored"
                )
        if qi.scored_flag is False:
            raw["scored"] = False
        items.append(raw)
        links.append(
            LinkedItem(
                link_id=qi.link_id,
                item_id=item_id,
                answers=_answer_map(pairs),
                how="created",
                codes=qi.codes,
            )
        )
    scored = [r for r in items if r.get("scored", True) and r.get("kind") != "text"]
    if not scored:
        raise FHIRError(
            "no item of the Questionnaire can be scored: choice items need a score on each "
            "answer (ordinalValue/itemWeight on answerOption or valueCoding, or in a contained "
            "ValueSet), numbers need minValue and maxValue"
        )
    lo = sum(
        min(o["value"] for o in r["options"]) if r["kind"] == "choice" else r["min"] for r in scored
    )
    hi = sum(
        max(o["value"] for o in r["options"]) if r["kind"] == "choice" else r["max"] for r in scored
    )
    if lo >= hi:
        raise FHIRError("the scored items of the Questionnaire have no spread (total min = max)")
    declared = ext_value(q, DIRECTION_EXTENSION)
    if direction is None and declared in ("higher_is_worse", "higher_is_better"):
        direction = str(declared)
    elif direction is None:
        direction = "higher_is_worse"
        notes.append(
            "Direction is not stated in the Questionnaire; higher_is_worse was assumed. "
            "Set it explicitly if higher totals are better."
        )
        warnings.append("direction not stated; higher_is_worse assumed")
    url = _strip_version(q.get("url"))
    title = q.get("title") or q.get("name") or url or q.get("id") or iid
    described = f"FHIR Questionnaire {url or q.get('id') or '(no url)'}"
    if q.get("version"):
        described += f", version {q['version']}"
    if q.get("publisher"):
        described += f", published by {q['publisher']}"
    described += f": {title}"
    has_text = all(r.get("text") for r in scored)
    instructions = next(
        (qi.text for qi in qitems if qi.type in ("group", "display") and qi.text and qi.depth == 0),
        None,
    )
    notes += [
        "Imported from a FHIR Questionnaire: no severity bands, cutoffs or norms (none can be "
        "read from a Questionnaire).",
        "Missing items: none may be missing (no proration rule is known for this questionnaire).",
    ]
    data: JSONDict = {
        "id": iid,
        "version": str(q.get("version") or "1"),
        "name": str(title),
        "short_name": str(q.get("name") or title)[:40],
        "kind": "outcome",
        "domain": "imported",
        "direction": direction,
        "instructions": instructions,
        "licence": {
            "name": "imported",
            "text_included": has_text,
            "notice": q.get("copyright") if isinstance(q.get("copyright"), str) else None,
            "source": "questionnaire",
        },
        "items": items,
        "scoring": {"method": "sum", "range": [lo, hi]},
        "references": {"questionnaire": described},
        "notes": notes,
        "custom": True,
    }
    codes = loinc_codes(q)
    if codes:
        data["loinc"] = {"panel": codes[0], "source": "questionnaire"}
    try:
        inst = parse_definition(data, origin=f"Questionnaire {url or q.get('id') or ''}".strip())
    except InstrumentError as exc:
        raise FHIRError(f"cannot build an instrument from the Questionnaire: {exc}") from None
    return inst, links


def _loinc_answer_values(library: Mapping[str, Instrument]) -> dict[str, float]:
    """LOINC answer codes whose value is the same in every shipped definition that uses them."""
    seen: dict[str, set[float]] = {}
    for inst in library.values():
        for it in inst.items:
            if it.reverse:
                continue
            for opt in it.options:
                if opt.code and (opt.system in (None, LOINC)):
                    seen.setdefault(opt.code, set()).add(opt.value)
    return {code: next(iter(v)) for code, v in seen.items() if len(v) == 1}


def instrument_from_questionnaire(
    questionnaire: Mapping[str, Any],
    library: Mapping[str, Instrument] | None = None,
    *,
    base_url: str = DEFAULT_BASE_URL,
    direction: Literal["higher_is_worse", "higher_is_better"] | None = None,
    merge_text: bool = True,
    strict: bool = False,
) -> QuestionnaireMatch:
    """Recognise a FHIR ``Questionnaire`` as a known instrument, or build a custom one from it.

    Parameters
    ----------
    questionnaire
        The Questionnaire as parsed JSON (R4; validated with the R4B models, read tolerantly
        with a warning when those reject it for details that do not affect scoring).
    library
        Instruments to match against (default: the shipped library).
    base_url
        Base of Alliance canonical URLs to recognise (the default base is always recognised).
    direction
        Direction of a newly created instrument (default: the Alliance direction extension if
        present, else ``higher_is_worse`` with a warning).
    merge_text
        When the questionnaire matches a scoring-only instrument and carries item text, return
        that instrument with the text merged in (a new object; the library is not changed).
    strict
        Refuse a Questionnaire the R4B model rejects.

    Returns
    -------
    QuestionnaireMatch

    Notes
    -----
    Matching, in order: the canonical URL of an Alliance export; the LOINC panel code
    (``Questionnaire.code`` or a LOINC ``identifier``); the LOINC codes of the items (every
    scored item of the instrument must be present); the structure (same number of scored
    questions with the same answer scores, position by position) *and* a name that says so.
    A candidate is accepted only if each scored item links to a question (by linkId, LOINC item
    code, or position), so a questionnaire that merely claims a panel code is not trusted.

    Answer values of a new instrument come, per item, from ``ordinalValue``/``itemWeight`` on
    the ``answerOption`` or its ``valueCoding``; from a contained ``ValueSet`` named by
    ``answerValueSet`` (SDC style, scores on the concepts); from ``valueInteger`` options; and,
    as a last resort, from LOINC answer codes whose value is the same in every shipped
    definition. Items holding a calculated or stored total (``calculatedExpression``, a
    read-only number, or an instrument's total LOINC code) are never scored.

    Examples
    --------
    >>> import alliance as al
    >>> q = al.questionnaire_from_instrument(al.instrument("phq9"))
    >>> match = instrument_from_questionnaire(q)
    >>> match.status, match.instrument.id, match.reason
    ('matched', 'phq9', 'canonical url http://alliance.invalid/fhir/Questionnaire/phq9')
    """
    q, notes = check_resource(questionnaire, ("Questionnaire",), strict=strict)
    lib: Mapping[str, Instrument] = library if library is not None else default_library()
    warnings: list[str] = list(notes)
    total_codes = frozenset(i.loinc.total for i in lib.values() if i.loinc.total)
    qitems = _read_items(q, total_codes)
    url = _strip_version(q.get("url"))
    panel_codes = set(loinc_codes(q))
    for ident in q.get("identifier") or ():
        if isinstance(ident, dict) and ident.get("system") == LOINC and ident.get("value"):
            panel_codes.add(str(ident["value"]))
    question_codes = {c for qi in qitems if qi.is_question for c in qi.codes}

    candidates: list[tuple[Instrument, str]] = []
    bases = {base_url.rstrip("/"), DEFAULT_BASE_URL}
    for inst in lib.values():
        if url and url in {canonical_url(inst, b) for b in bases}:
            candidates.append((inst, f"canonical url {url}"))
    for inst in lib.values():
        if inst.loinc.panel and inst.loinc.panel in panel_codes:
            candidates.append((inst, f"LOINC panel code {inst.loinc.panel}"))
    for inst in lib.values():
        codes = {it.loinc for it in inst.scored_items}
        if None not in codes and codes and codes <= question_codes:
            candidates.append((inst, f"LOINC codes of all {len(codes)} scored items"))
    n_questions = sum(1 for qi in qitems if qi.is_question and qi.scored_flag is not False)
    named: list[tuple[int, Instrument, str]] = []
    for inst in lib.values():
        if n_questions in (len(inst.scored_items), len(inst.items)):
            evidence = _name_evidence(inst, q, qitems)
            if evidence:
                named.append((evidence[0], inst, f"structure and name ({evidence[1]})"))
    named.sort(key=lambda t: -t[0])
    candidates += [(inst, reason) for _, inst, reason in named]

    tried: set[str] = set()
    for inst, reason in candidates:
        if inst.id in tried:
            continue
        tried.add(inst.id)
        linked, problem = _link_items(inst, qitems)
        if problem:
            warnings.append(f"looks like {inst.id} ({reason}) but does not line up: {problem}")
            continue
        encodings = _reverse_encodings(inst, linked)
        unreversed: list[str] = []
        maps = {
            item_id: _matched_answer_map(
                inst, inst.item(item_id), qi, encodings.get(item_id), warnings, unreversed
            )
            for item_id, (qi, _) in linked.items()
        }
        if unreversed:
            warnings.append(
                "reverse-keyed items "
                + ", ".join(sorted(set(unreversed)))
                + ": answer scores not found in the definition are read as what the answer "
                "adds to the total (reverse keying already applied)"
            )
        links = tuple(
            LinkedItem(
                link_id=qi.link_id,
                item_id=item_id,
                answers=maps[item_id],
                how=how,
                codes=qi.codes,
            )
            for item_id, (qi, how) in linked.items()
        )
        result_inst, merged = inst, False
        if merge_text and not inst.has_text and any(qi.text for qi, _ in linked.values()):
            with_text = _merge_text(inst, linked, maps, q, qitems)
            if with_text is None:
                warnings.append(
                    f"{inst.id} ships without text and this questionnaire has text for only "
                    "some of its items; nothing was merged"
                )
            else:
                result_inst, merged = with_text, True
        totals = tuple(qi.link_id for qi in qitems if qi.is_total)
        return QuestionnaireMatch(
            status="matched",
            instrument=result_inst,
            reason=reason,
            links=links,
            total_link_ids=totals,
            warnings=tuple(warnings),
            text_merged=merged,
            questionnaire_url=url,
        )

    inst, created_links = _create(q, qitems, lib, direction, _loinc_answer_values(lib), warnings)
    reason = (
        "no known instrument matched (by canonical url, LOINC panel code, LOINC item codes, or "
        "structure and name); created a scoring-only custom instrument"
    )
    return QuestionnaireMatch(
        status="created",
        instrument=inst,
        reason=reason,
        links=tuple(created_links),
        total_link_ids=tuple(qi.link_id for qi in qitems if qi.is_total),
        warnings=tuple(warnings),
        questionnaire_url=url,
    )
