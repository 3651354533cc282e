"""Alliance: the measurement engine, importable without Django.

A flat, curated API for researchers and for the web app alike::

    >>> import alliance as al
    >>> al.instrument("gad7").scoring.range
    (0.0, 21.0)

Modules, one per statistical family: :mod:`alliance.instruments` (the library),
:mod:`alliance.scoring`, :mod:`alliance.change` (reliable and clinically significant change),
:mod:`alliance.fhir`, :mod:`alliance.mixed` and :mod:`alliance.recovery` (expected recovery),
:mod:`alliance.signals`, :mod:`alliance.simulate`, and :mod:`alliance.relationship`.
"""

from __future__ import annotations

from alliance._version import __version__
from alliance.change import (
    ChangeThreshold,
    ClinicalCutoffs,
    ReliableChange,
    clinical_cutoffs,
    reliable_change,
    reliable_change_threshold,
)
from alliance.errors import (
    AllianceError,
    FHIRError,
    InstrumentError,
    InsufficientData,
    InvalidParameter,
    InvalidResponse,
    ModelError,
    UnknownInstrument,
)
from alliance.fhir import (
    FHIRScore,
    QuestionnaireMatch,
    instrument_from_questionnaire,
    questionnaire_from_instrument,
    responses_from_fhir,
    responses_from_file,
    score_fhir_response,
)
from alliance.instruments import Instrument, Library, default_library
from alliance.instruments import get as instrument
from alliance.mixed import LMMResult, fit_lmm
from alliance.recovery import ETRModel, fit_etr
from alliance.relationship import (
    DropoutModel,
    DropoutWarning,
    GapNorms,
    ICCResult,
    PerspectiveGap,
    RuptureConfig,
    RuptureEpisode,
    RuptureResult,
    StageSuggestion,
    SupportChecklist,
    WithinBetween,
    alliance_outcome_effects,
    alliance_series,
    detect_ruptures,
    dropout_features,
    dropout_warning,
    fit_dropout_model,
    gap_norms,
    icc,
    perspective_gap,
    suggest_stage,
    support_checklist,
)
from alliance.scoring import Score, score, score_one
from alliance.signals import (
    SignalResult,
    SignalRules,
    course_signals,
    signals_frame,
    validate_signals,
)
from alliance.simulate import SimulatedPractice, SimulationConfig, simulate_practice

# Every engine module, for the test that proves none of them imports Django.
_ENGINE_MODULES = (
    "change",
    "errors",
    "fhir",
    "instruments",
    "instruments.schema",
    "instruments.registry",
    "instruments.custom",
    "mixed",
    "recovery",
    "relationship",
    "relationship.agreement",
    "relationship.analytics",
    "relationship.checklist",
    "relationship.dropout",
    "relationship.evaluation",
    "relationship.gap",
    "relationship.ruptures",
    "relationship.series",
    "relationship.stages",
    "scoring",
    "signals",
    "simulate",
    "simulate.config",
    "simulate.core",
    "simulate.items",
    "simulate.model",
    "simulate.practice",
)


def instruments() -> Library:
    """All shipped instruments, by id (an immutable mapping)."""
    return default_library()


__all__ = [
    "AllianceError",
    "ChangeThreshold",
    "ClinicalCutoffs",
    "DropoutModel",
    "DropoutWarning",
    "ETRModel",
    "FHIRError",
    "FHIRScore",
    "GapNorms",
    "ICCResult",
    "Instrument",
    "InstrumentError",
    "InsufficientData",
    "InvalidParameter",
    "InvalidResponse",
    "LMMResult",
    "Library",
    "ModelError",
    "PerspectiveGap",
    "QuestionnaireMatch",
    "ReliableChange",
    "RuptureConfig",
    "RuptureEpisode",
    "RuptureResult",
    "Score",
    "SignalResult",
    "SignalRules",
    "SimulatedPractice",
    "SimulationConfig",
    "StageSuggestion",
    "SupportChecklist",
    "UnknownInstrument",
    "WithinBetween",
    "__version__",
    "alliance_outcome_effects",
    "alliance_series",
    "clinical_cutoffs",
    "course_signals",
    "default_library",
    "detect_ruptures",
    "dropout_features",
    "dropout_warning",
    "fit_dropout_model",
    "fit_etr",
    "fit_lmm",
    "gap_norms",
    "icc",
    "instrument",
    "instrument_from_questionnaire",
    "instruments",
    "perspective_gap",
    "questionnaire_from_instrument",
    "reliable_change",
    "reliable_change_threshold",
    "responses_from_fhir",
    "responses_from_file",
    "score",
    "score_fhir_response",
    "score_one",
    "signals_frame",
    "simulate_practice",
    "suggest_stage",
    "support_checklist",
    "validate_signals",
]
