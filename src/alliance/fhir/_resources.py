"""Reading and checking FHIR JSON: the R4B models, a tolerant fallback, extension helpers.

FHIR R4 (4.0.1) and R4B (4.3.0) define ``Questionnaire``, ``QuestionnaireResponse``, ``Bundle``
and ``ValueSet`` the same way for everything Alliance reads or writes, so the models of
``fhir.resources.R4B`` validate R4 JSON (the package's default models are R5, which renamed and
retyped several Questionnaire elements). Some R4 JSON in the wild is rejected by those models for
details that do not touch scoring (LHC-Forms names FHIRPath variables ``q1_value``, which the
``id`` type of ``Expression.name`` forbids in R4 and R4B; R5 relaxed it). Such a resource is read
as plain JSON instead, and the caller gets a note that says so and why.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any

from alliance.errors import FHIRError

__all__ = [
    "ALLIANCE_NS",
    "CALCULATED_EXPRESSION",
    "DEFAULT_BASE_URL",
    "ITEM_WEIGHT",
    "LOINC",
    "MAX_VALUE",
    "MIN_VALUE",
    "ORDINAL_VALUE",
    "SCORE_EXTENSIONS",
    "JSONDict",
    "check_resource",
    "coding_key",
    "ext_value",
    "fhir_number",
    "iter_items",
    "load_json",
    "score_from_extensions",
]

JSONDict = dict[str, Any]

LOINC = "http://loinc.org"
"""The LOINC code system URI."""

DEFAULT_BASE_URL = "http://alliance.invalid/fhir"
"""Base of canonical URLs when none is configured (``.invalid`` never resolves, RFC 2606)."""

ALLIANCE_NS = "http://alliance.invalid/fhir"
"""Fixed namespace of Alliance's own code systems and extensions (independent of the base URL)."""

ORDINAL_VALUE = "http://hl7.org/fhir/StructureDefinition/ordinalValue"
"""R4/R4B core extension: the score of a coded answer (SDC 3.0 ``ordinal()`` reads it)."""

ITEM_WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
"""Its successor in the FHIR extensions pack (R5; "used to be called ordinalValue")."""

SCORE_EXTENSIONS = (
    ORDINAL_VALUE,
    ITEM_WEIGHT,
    "http://hl7.org/fhir/StructureDefinition/questionnaire-ordinalValue",  # STU3 / R4 ballots
    "http://hl7.org/fhir/StructureDefinition/valueset-ordinalValue",  # STU3 ValueSet concepts
    "http://hl7.org/fhir/StructureDefinition/iso21090-CO-value",  # DSTU2/STU3 coded ordinal
)
"""Extensions read as an answer's score on import, in order of preference."""

MIN_VALUE = "http://hl7.org/fhir/StructureDefinition/minValue"
MAX_VALUE = "http://hl7.org/fhir/StructureDefinition/maxValue"
SLIDER_STEP = "http://hl7.org/fhir/StructureDefinition/questionnaire-sliderStepValue"
ITEM_CONTROL = "http://hl7.org/fhir/StructureDefinition/questionnaire-itemControl"
CALCULATED_EXPRESSION = (
    "http://hl7.org/fhir/uv/sdc/StructureDefinition/sdc-questionnaire-calculatedExpression"
)

_RESOURCE_MODELS = {
    "Questionnaire": ("fhir.resources.R4B.questionnaire", "Questionnaire"),
    "QuestionnaireResponse": (
        "fhir.resources.R4B.questionnaireresponse",
        "QuestionnaireResponse",
    ),
    "Bundle": ("fhir.resources.R4B.bundle", "Bundle"),
    "ValueSet": ("fhir.resources.R4B.valueset", "ValueSet"),
}


def load_json(text: str | bytes, origin: str = "<data>") -> Any:
    """Parse JSON text, raising :class:`FHIRError` with the position of a syntax error."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise FHIRError(
            f"{origin}: not valid JSON (line {exc.lineno}, column {exc.colno}: {exc.msg})"
        ) from None
    except UnicodeDecodeError:
        raise FHIRError(f"{origin}: not UTF-8 text; save the file as UTF-8 JSON") from None


def _model_errors(resource: Mapping[str, Any]) -> list[str]:
    """Problems the fhir.resources R4B model finds (empty when the resource validates)."""
    import importlib

    from pydantic import ValidationError

    module_name, cls_name = _RESOURCE_MODELS[str(resource.get("resourceType"))]
    model = getattr(importlib.import_module(module_name), cls_name)
    try:
        model.model_validate(dict(resource))
    except ValidationError as exc:
        out = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or resource.get("resourceType", "?")
            out.append(f"{where}: {err['msg']}")
        return out
    return []


def _structure_problems(resource: Mapping[str, Any]) -> list[str]:
    """What makes a resource unreadable even tolerantly (wrong shapes of the parts we use)."""
    problems: list[str] = []
    rtype = resource.get("resourceType")

    def check_items(items: Any, where: str) -> None:
        if items is None:
            return
        if not isinstance(items, list):
            problems.append(f"{where}.item must be a list")
            return
        for i, item in enumerate(items):
            here = f"{where}.item[{i}]"
            if not isinstance(item, dict):
                problems.append(f"{here} must be an object")
                continue
            if not isinstance(item.get("linkId"), str) or not item["linkId"]:
                problems.append(f"{here} has no linkId")
            check_items(item.get("item"), here)
            answers = item.get("answer")
            if answers is not None:
                if not isinstance(answers, list):
                    problems.append(f"{here}.answer must be a list")
                    continue
                for j, ans in enumerate(answers):
                    if not isinstance(ans, dict):
                        problems.append(f"{here}.answer[{j}] must be an object")
                    else:
                        check_items(ans.get("item"), f"{here}.answer[{j}]")
            options = item.get("answerOption")
            if options is not None and not isinstance(options, list):
                problems.append(f"{here}.answerOption must be a list")

    if rtype in ("Questionnaire", "QuestionnaireResponse"):
        check_items(resource.get("item"), str(rtype))
    if rtype == "Questionnaire":
        contained = resource.get("contained")
        if contained is not None and not isinstance(contained, list):
            problems.append("Questionnaire.contained must be a list")
    if rtype == "Bundle":
        entries = resource.get("entry")
        if entries is not None and not isinstance(entries, list):
            problems.append("Bundle.entry must be a list")
    return problems


def check_resource(
    resource: Any, expected: Sequence[str], *, strict: bool = False, model: bool = True
) -> tuple[JSONDict, tuple[str, ...]]:
    """Check a FHIR resource given as JSON-like data against the R4B models.

    Parameters
    ----------
    resource
        A mapping (parsed JSON) with a ``resourceType``.
    expected
        Accepted resource types, e.g. ``("Questionnaire",)``.
    strict
        Raise when the R4B model rejects the resource, instead of reading it tolerantly.
    model
        Check against the R4B model at all (``False`` for the entries of a Bundle that was
        already checked as a whole).

    Returns
    -------
    (dict, notes)
        The resource as a plain ``dict`` (unchanged) and notes about tolerant reading.

    Raises
    ------
    FHIRError
        Not a mapping, the wrong resource type, or parts Alliance reads have the wrong shape.
    """
    if not isinstance(resource, Mapping):
        raise FHIRError(
            f"expected a FHIR {' or '.join(expected)} as a JSON object, got {type(resource).__name__}"
        )
    rtype = resource.get("resourceType")
    if rtype not in expected:
        raise FHIRError(
            f"expected a FHIR {' or '.join(expected)}, got resourceType {rtype!r}"
            if rtype
            else "not a FHIR resource: the JSON object has no resourceType"
        )
    data = dict(resource)
    problems = _structure_problems(data)
    if problems:
        raise FHIRError(f"malformed {rtype}: " + "; ".join(problems[:5]))
    notes: tuple[str, ...] = ()
    if model and rtype in _RESOURCE_MODELS:
        errors = _model_errors(data)
        if errors:
            shown = "; ".join(errors[:3]) + (
                f"; and {len(errors) - 3} more" if len(errors) > 3 else ""
            )
            if strict:
                raise FHIRError(f"{rtype} is not valid FHIR R4B: {shown}")
            label = data.get("url") or data.get("id") or data.get("title") or "(no id)"
            notes = (
                f"{rtype} {label!r} does not validate under the fhir.resources R4B model "
                f"({len(errors)} problem(s): {shown}); read tolerantly as R4 JSON (only the "
                "parts Alliance uses, items, answers and scores, were checked)",
            )
    return data, notes


def iter_items(
    items: Any, path: tuple[str, ...] = ()
) -> Iterator[tuple[JSONDict, tuple[str, ...]]]:
    """Every item in a (Questionnaire or QuestionnaireResponse) item tree, depth first.

    Yields ``(item, ancestors)`` where ``ancestors`` are the linkIds of the enclosing items.
    Descends into ``item`` and, for responses, into ``answer[].item``.
    """
    for item in items or ():
        if not isinstance(item, dict):
            continue
        yield item, path
        here = (*path, str(item.get("linkId")))
        yield from iter_items(item.get("item"), here)
        for ans in item.get("answer") or ():
            if isinstance(ans, dict):
                yield from iter_items(ans.get("item"), here)


def ext_value(element: Mapping[str, Any] | None, url: str) -> Any:
    """The ``value[x]`` of the first extension with this URL on an element (``None`` if absent)."""
    if not element:
        return None
    for ext in element.get("extension") or ():
        if isinstance(ext, dict) and ext.get("url") == url:
            for key, value in ext.items():
                if key.startswith("value"):
                    return value
    return None


def _as_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float, Decimal)):
        out = float(value)
        return out if math.isfinite(out) else None
    if isinstance(value, str):
        try:
            out = float(value)
        except ValueError:
            return None
        return out if math.isfinite(out) else None
    if isinstance(value, dict) and "value" in value:  # valueQuantity
        return _as_number(value["value"])
    return None


def score_from_extensions(*elements: Mapping[str, Any] | None) -> tuple[float, str] | None:
    """The first score found on the elements, as ``(value, extension url)``.

    Looks at each element in turn for each of :data:`SCORE_EXTENSIONS` (``ordinalValue`` first),
    so ``score_from_extensions(answer_option, answer_option["valueCoding"])`` reads the score on
    the option or, failing that, on its coding.
    """
    for element in elements:
        for url in SCORE_EXTENSIONS:
            number = _as_number(ext_value(element, url))
            if number is not None:
                return number, url
    return None


def fhir_number(value: float) -> int | float:
    """A number as FHIR JSON writes it: ``3`` rather than ``3.0`` for whole numbers."""
    return int(value) if float(value).is_integer() else float(value)


def coding_key(system: str | None, code: str | None) -> str:
    """A lookup key for a coding: ``system|code`` (an absent system gives ``|code``)."""
    return f"{system or ''}|{code or ''}"


_LOINC_CODE = re.compile(r"^\d{1,7}-\d$")


def loinc_codes(element: Mapping[str, Any]) -> tuple[str, ...]:
    """LOINC codes in an element's ``code`` list (codings without a system count if LOINC-shaped)."""
    out = []
    for coding in element.get("code") or ():
        if not isinstance(coding, dict):
            continue
        code = coding.get("code")
        system = coding.get("system")
        if isinstance(code, str) and (system == LOINC or (not system and _LOINC_CODE.match(code))):
            out.append(code)
    return tuple(out)


def looks_like_loinc(code: str) -> bool:
    """Whether a string has the shape of a LOINC term code (``44250-9``)."""
    return bool(_LOINC_CODE.match(code))
