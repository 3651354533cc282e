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
    "ETRModel",
    "FHIRError",
    "FHIRScore",
    "Instrument",
    "InstrumentError",
    "InsufficientData",
    "InvalidParameter",
    "InvalidResponse",
    "LMMResult",
    "Library",
    "ModelError",
    "QuestionnaireMatch",
    "ReliableChange",
    "Score",
    "SignalResult",
    "SignalRules",
    "SimulatedPractice",
    "SimulationConfig",
    "UnknownInstrument",
    "__version__",
    "clinical_cutoffs",
    "course_signals",
    "default_library",
    "fit_etr",
    "fit_lmm",
    "instrument",
    "instrument_from_questionnaire",
    "instruments",
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
    "validate_signals",
]
