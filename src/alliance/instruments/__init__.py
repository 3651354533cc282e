"""The instrument library: declarative definitions, validated when loaded.

>>> import alliance as al
>>> phq9 = al.instrument("phq9")
>>> phq9.short_name, phq9.scoring.range, phq9.direction
('PHQ-9', (0.0, 27.0), 'higher_is_worse')
"""

from __future__ import annotations

from alliance.instruments.registry import Library, default_library, get, load, parse
from alliance.instruments.schema import (
    Band,
    Critical,
    Cutoff,
    Instrument,
    Item,
    Licence,
    LoincCodes,
    Norms,
    Option,
    Proration,
    Reliability,
    SampleNorm,
    Scoring,
    Subscale,
)

__all__ = [
    "Band",
    "Critical",
    "Cutoff",
    "Instrument",
    "Item",
    "Library",
    "Licence",
    "LoincCodes",
    "Norms",
    "Option",
    "Proration",
    "Reliability",
    "SampleNorm",
    "Scoring",
    "Subscale",
    "default_library",
    "get",
    "load",
    "parse",
]
