"""Errors raised by the Alliance engine.

Every error the engine raises on purpose derives from :class:`AllianceError`, so a caller can
catch one class and show the message, which always says what was wrong and what to do next::

    AllianceError
    ├── InstrumentError          an instrument definition is invalid, or the id is unknown
    │   └── UnknownInstrument
    ├── InvalidResponse          answers that cannot be scored (unknown item, out-of-range value)
    ├── InsufficientData         too little data for the requested statistic
    ├── InvalidParameter         an argument is out of its domain (reliability of 1.2, SD < 0)
    ├── FHIRError                a FHIR resource is malformed or does not match its questionnaire
    └── ModelError               a model cannot be fitted (singular fit, no convergence)

Input checks never use ``assert`` (``python -O`` strips asserts).
"""

from __future__ import annotations

__all__ = [
    "AllianceError",
    "FHIRError",
    "InstrumentError",
    "InsufficientData",
    "InvalidParameter",
    "InvalidResponse",
    "ModelError",
    "UnknownInstrument",
]


class AllianceError(Exception):
    """Base class of every error raised on purpose by the engine."""


class InstrumentError(AllianceError):
    """An instrument definition is invalid or cannot be found."""


class UnknownInstrument(InstrumentError, KeyError):
    """No instrument with this identifier is in the library."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else "unknown instrument"


class InvalidResponse(AllianceError, ValueError):
    """Answers that cannot be scored: an unknown item, a value outside the options, too many missing."""


class InsufficientData(AllianceError, ValueError):
    """Too little data for the requested statistic (e.g. one session per client)."""


class InvalidParameter(AllianceError, ValueError):
    """An argument is outside its domain (e.g. a reliability above 1 or a negative SD)."""


class FHIRError(AllianceError, ValueError):
    """A FHIR resource is malformed, of the wrong type, or does not fit its questionnaire."""


class ModelError(AllianceError, RuntimeError):
    """A statistical model cannot be fitted (singular fit, no convergence)."""
