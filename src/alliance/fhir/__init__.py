"""FHIR R4 questionnaires: export instruments, import questionnaires, score responses again.

Three jobs, all pure functions on JSON-like data (dicts in, dicts and frozen dataclasses out),
so that the command line and the web app's FHIR facade share them:

* :func:`questionnaire_from_instrument` writes an instrument as a ``Questionnaire`` (LOINC
  codes where they exist, each answer's score in the ``ordinalValue`` extension);
* :func:`instrument_from_questionnaire` recognises a ``Questionnaire`` as a known instrument or
  builds a scoring-only custom instrument from it, and says which and why
  (:class:`QuestionnaireMatch`);
* :func:`responses_from_fhir` and :func:`score_fhir_response` read ``QuestionnaireResponse``
  resources (alone, in lists or Bundles) against their questionnaire and recompute the totals
  with :mod:`alliance.scoring`, reporting any stored total that disagrees (:class:`FHIRScore`).

Resources are checked with the ``fhir.resources`` R4B models, which match R4 for the four
resources used here (Questionnaire, QuestionnaireResponse, Bundle, ValueSet); the package's
default models are R5. See ``docs/fhir.md``.

Examples
--------
>>> import alliance as al
>>> q = al.questionnaire_from_instrument(al.instrument("gad7"))
>>> al.instrument_from_questionnaire(q).instrument.id
'gad7'
"""

from __future__ import annotations

from alliance.fhir._resources import DEFAULT_BASE_URL, ITEM_WEIGHT, ORDINAL_VALUE
from alliance.fhir.questionnaire import (
    AnswerMap,
    LinkedItem,
    QuestionnaireMatch,
    canonical_url,
    instrument_from_questionnaire,
    questionnaire_from_instrument,
)
from alliance.fhir.response import (
    FHIRScore,
    responses_from_fhir,
    responses_from_file,
    score_fhir_response,
)

__all__ = [
    "DEFAULT_BASE_URL",
    "ITEM_WEIGHT",
    "ORDINAL_VALUE",
    "AnswerMap",
    "FHIRScore",
    "LinkedItem",
    "QuestionnaireMatch",
    "canonical_url",
    "instrument_from_questionnaire",
    "questionnaire_from_instrument",
    "responses_from_fhir",
    "responses_from_file",
    "score_fhir_response",
]
