"""The schema every instrument definition is validated against when it is loaded.

An instrument is a declarative YAML file (one per instrument, in ``definitions/``). Loading it
builds an :class:`Instrument`, a frozen pydantic model; anything missing or inconsistent raises
:class:`~alliance.errors.InstrumentError` naming the file and the field.

Two rules are enforced beyond the field types, because a clinical number without a source
cannot be trusted:

* every cutoff, band, norm, reliability, critical-item rule and proration rule names a
  ``source``, which must be a key of the instrument's ``references``;
* a figure that could not be checked against a primary source is left out and the gap is
  written in ``notes`` (never guessed).

See ``docs/instruments.md`` for the recipe to add an instrument.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "Band",
    "Critical",
    "Cutoff",
    "Instrument",
    "Item",
    "Licence",
    "LoincCodes",
    "Norms",
    "Option",
    "Proration",
    "Reliability",
    "SampleNorm",
    "Scoring",
    "Subscale",
]

Direction = Literal["higher_is_worse", "higher_is_better"]
Number = float


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=True)


class Option(_Frozen):
    """One response option: the stored value, the label a client sees, and its code.

    ``label`` is ``None`` for licensed instruments shipped without text. ``code`` is the
    LOINC answer code (``LA…``) where one exists; ``system`` defaults to LOINC.
    """

    value: Number
    label: str | None = None
    code: str | None = None
    system: str | None = None


class Item(_Frozen):
    """A question.

    ``kind`` is ``choice`` (one of ``options``), ``scale`` (a number between ``min`` and
    ``max`` in steps of ``step``, e.g. a 0–10 visual analogue line) or ``text`` (free text,
    never scored). ``scored=False`` marks an item that is asked but not summed (PHQ-9's
    difficulty question). ``reverse=True`` items are scored ``min + max - value``.
    """

    id: Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_.-]*$")]
    text: str | None = None
    kind: Literal["choice", "scale", "text"] = "choice"
    options: tuple[Option, ...] = ()
    option_set: str | None = None
    min: Number | None = None
    max: Number | None = None
    step: Number | None = None
    reverse: bool = False
    scored: bool = True
    required: bool = True
    loinc: str | None = None
    prefix: str | None = None

    @property
    def values(self) -> tuple[Number, ...]:
        """The permitted values of a choice item, in option order."""
        return tuple(o.value for o in self.options)

    @property
    def value_range(self) -> tuple[Number, Number]:
        """(lowest, highest) permitted value."""
        if self.kind == "choice":
            vals = self.values
            return (min(vals), max(vals))
        if self.min is None or self.max is None:  # guarded by Instrument validation
            raise ValueError(f"item {self.id} has no range")
        return (self.min, self.max)


class Subscale(_Frozen):
    """A subscale: the items summed (or averaged) and how many may be missing."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    name: str
    items: tuple[str, ...]
    max_missing: int = 0
    source: str | None = None


class Proration(_Frozen):
    """What to do when items are missing.

    ``max_missing`` items may be missing; their places are filled with the mean of the answered
    items (``mean_substitute``; with ``round_total`` the prorated total is rounded half up to an
    integer, as paper forms do). More missing items make the response unscorable.
    """

    max_missing: int = 0
    method: Literal["none", "mean_substitute"] = "none"
    round_total: bool = False
    scope: Literal["total", "subscale"] = "total"
    source: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Proration:
        if self.max_missing < 0:
            raise ValueError("proration.max_missing cannot be negative")
        if self.max_missing > 0 and self.method == "none":
            raise ValueError("proration.max_missing > 0 needs method: mean_substitute")
        if self.max_missing > 0 and not self.source:
            raise ValueError("a proration rule needs a source")
        return self


class Scoring(_Frozen):
    """How a total is formed from the item values.

    ``method``: ``sum`` of scored items, ``mean`` of scored items, or ``custom`` (a named
    scorer registered in :data:`alliance.instruments.custom.SCORERS`, e.g. the PHQ panic
    module's algorithm).
    ``multiplier`` rescales the total after summing (CORE clinical score = mean × 10).
    ``range`` is the [min, max] of the reported total.
    """

    method: Literal["sum", "mean", "custom"] = "sum"
    custom: str | None = None
    multiplier: Number = 1.0
    range: tuple[Number, Number]
    proration: Proration = Proration()
    subscales: tuple[Subscale, ...] = ()
    subscale_method: Literal["sum", "mean"] = "sum"
    derived: Mapping[str, Number] = Field(default_factory=dict)
    """Extra scores linearly derived from the total, e.g. ``{"percentage": 4}`` for WHO-5."""


class Band(_Frozen):
    """A severity band over the total, inclusive at both ends."""

    min: Number
    max: Number
    label: str
    source: str


class Cutoff(_Frozen):
    """A clinical cutoff: totals at or beyond ``value`` (in the worse direction) are 'clinical'."""

    value: Number
    label: str = "clinical range"
    source: str
    note: str | None = None


class Reliability(_Frozen):
    """A reliability coefficient used for the standard error of measurement."""

    value: Annotated[float, Field(gt=0, lt=1)]
    kind: Literal["alpha", "test_retest", "icc", "omega"]
    n: int | None = None
    sample: str | None = None
    source: str


class SampleNorm(_Frozen):
    """Mean and SD of a reference sample (clinical or functional)."""

    mean: Number
    sd: Annotated[float, Field(gt=0)]
    n: int | None = None
    sample: str | None = None
    source: str


class Norms(_Frozen):
    """What reliable change and clinical significance are computed from.

    ``reliable_change_points`` is a published raw-point threshold (e.g. 6 for PHQ-9 in the
    English IAPT programme), used when no reliability/SD is given.
    """

    reliability: Reliability | None = None
    clinical: SampleNorm | None = None
    functional: SampleNorm | None = None
    reliable_change_points: Number | None = None
    reliable_change_source: str | None = None

    @model_validator(mode="after")
    def _check(self) -> Norms:
        if (self.reliable_change_points is None) != (self.reliable_change_source is None):
            raise ValueError("reliable_change_points and reliable_change_source go together")
        return self


class Critical(_Frozen):
    """A critical-item rule: ``item`` ``op`` ``value`` raises ``flag`` (e.g. ``safety``)."""

    item: str
    op: Literal[">", ">=", "==", "<", "<="]
    value: Number
    flag: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    message: str
    source: str

    def hits(self, value: float) -> bool:
        """Whether an answered value triggers the rule (a missing value never does)."""
        if math.isnan(value):
            return False
        return {
            ">": value > self.value,
            ">=": value >= self.value,
            "==": value == self.value,
            "<": value < self.value,
            "<=": value <= self.value,
        }[self.op]


class Licence(_Frozen):
    """Who owns the text and whether it ships: ``text_included`` false means scoring-only."""

    name: str
    text_included: bool
    notice: str | None = None
    url: str | None = None
    source: str


class LoincCodes(_Frozen):
    """LOINC codes for the panel (questionnaire) and the total score, where they exist."""

    panel: str | None = None
    total: str | None = None
    source: str | None = None


class Instrument(_Frozen):
    """A validated instrument definition.

    Build one with :func:`alliance.instruments.load` (from a YAML file) or get a shipped one
    with :func:`alliance.instruments.get`; do not mutate it (it is frozen).
    """

    id: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
    version: str = "1"
    name: str
    short_name: str
    kind: Literal["outcome", "alliance", "session", "goals"]
    domain: str
    rater: Literal["client", "therapist"] = "client"
    timing: Literal["pre_session", "post_session", "any"] = "pre_session"
    recall_period: str | None = None
    direction: Direction
    instructions: str | None = None
    licence: Licence
    option_sets: Mapping[str, tuple[Option, ...]] = Field(default_factory=dict)
    items: tuple[Item, ...]
    scoring: Scoring
    severity_bands: tuple[Band, ...] = ()
    clinical_cutoff: Cutoff | None = None
    concern_threshold: Cutoff | None = None
    norms: Norms = Norms()
    critical: tuple[Critical, ...] = ()
    loinc: LoincCodes = LoincCodes()
    references: Mapping[str, str]
    notes: tuple[str, ...] = ()
    custom: bool = False

    # -- derived views --------------------------------------------------------------------
    @property
    def has_text(self) -> bool:
        """True when the item text ships (free instruments), False for scoring-only ones."""
        return self.licence.text_included and all(
            it.text is not None for it in self.items if it.scored
        )

    @property
    def scored_items(self) -> tuple[Item, ...]:
        """The items that enter the total, in order."""
        return tuple(it for it in self.items if it.scored and it.kind != "text")

    @property
    def item_ids(self) -> tuple[str, ...]:
        """Identifiers of all items, in order."""
        return tuple(it.id for it in self.items)

    def item(self, item_id: str) -> Item:
        """The item with this id (``KeyError`` if there is none)."""
        for it in self.items:
            if it.id == item_id:
                return it
        raise KeyError(item_id)

    def band_for(self, total: float) -> str | None:
        """The severity label of a total, or ``None`` if no band covers it."""
        for band in self.severity_bands:
            if band.min <= total <= band.max:
                return band.label
        return None

    def is_clinical(self, total: float) -> bool | None:
        """Whether a total is at or beyond the clinical cutoff (``None`` without a cutoff)."""
        if self.clinical_cutoff is None:
            return None
        if self.direction == "higher_is_worse":
            return total >= self.clinical_cutoff.value
        return total <= self.clinical_cutoff.value

    # -- validation -----------------------------------------------------------------------
    @model_validator(mode="before")
    @classmethod
    def _resolve_option_sets(cls, data: object) -> object:
        """Items may name a shared ``option_set`` instead of listing their options."""
        if not isinstance(data, dict):
            return data
        sets = data.get("option_sets") or {}
        items = data.get("items") or []
        resolved = []
        for raw in items:
            if isinstance(raw, dict) and raw.get("option_set") and not raw.get("options"):
                name = raw["option_set"]
                if name not in sets:
                    raise ValueError(f"item {raw.get('id')!r}: unknown option_set {name!r}")
                raw = {**raw, "options": sets[name]}
            resolved.append(raw)
        return {**data, "items": resolved}

    @model_validator(mode="after")
    def _check_consistency(self) -> Instrument:
        refs = self.references
        problems: list[str] = []

        def cite(where: str, key: str | None, required: bool = True) -> None:
            if key is None:
                if required:
                    problems.append(f"{where}: needs a source")
            elif key not in refs:
                problems.append(f"{where}: source {key!r} is not in references")

        ids = [it.id for it in self.items]
        if len(set(ids)) != len(ids):
            problems.append("item ids must be unique")
        known = set(ids)
        for it in self.items:
            if it.kind == "choice":
                if not it.options:
                    problems.append(f"item {it.id}: a choice item needs options")
                vals = [o.value for o in it.options]
                if len(set(vals)) != len(vals):
                    problems.append(f"item {it.id}: option values must be unique")
            elif it.kind == "scale" and (it.min is None or it.max is None or it.min >= it.max):
                problems.append(f"item {it.id}: a scale item needs min < max")
            if self.licence.text_included and it.text is None:
                problems.append(f"item {it.id}: text is missing but licence.text_included is true")
        sc = self.scoring
        if sc.method == "custom" and not sc.custom:
            problems.append("scoring.method custom needs scoring.custom (the scorer's name)")
        if sc.range[0] >= sc.range[1]:
            problems.append("scoring.range must be [min, max] with min < max")
        if sc.proration.max_missing >= max(1, len(self.scored_items)):
            problems.append("proration.max_missing must be smaller than the number of items")
        cite("scoring.proration", sc.proration.source, required=sc.proration.max_missing > 0)
        for sub in sc.subscales:
            unknown = set(sub.items) - known
            if unknown:
                problems.append(f"subscale {sub.id}: unknown items {sorted(unknown)}")
            cite(f"subscale {sub.id}", sub.source, required=False)
        for band in self.severity_bands:
            cite(f"severity band {band.label!r}", band.source)
            if band.min > band.max:
                problems.append(f"severity band {band.label!r}: min > max")
        bands = sorted(self.severity_bands, key=lambda b: b.min)
        for a, b in itertools.pairwise(bands):
            if b.min <= a.max:
                problems.append(f"severity bands {a.label!r} and {b.label!r} overlap")
        for cut_name, cut in (
            ("clinical_cutoff", self.clinical_cutoff),
            ("concern_threshold", self.concern_threshold),
        ):
            if cut is not None:
                cite(cut_name, cut.source)
        n = self.norms
        if n.reliability:
            cite("norms.reliability", n.reliability.source)
        if n.clinical:
            cite("norms.clinical", n.clinical.source)
        if n.functional:
            cite("norms.functional", n.functional.source)
        cite("norms.reliable_change_points", n.reliable_change_source, required=False)
        for rule in self.critical:
            if rule.item not in known:
                problems.append(f"critical rule: unknown item {rule.item!r}")
            cite(f"critical item {rule.item}", rule.source)
        cite("licence", self.licence.source)
        cite("loinc", self.loinc.source, required=bool(self.loinc.panel or self.loinc.total))
        problems.extend(self._check_structure())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _check_structure(self) -> list[str]:
        """Checks that tie the numbers together: ids, keys, ranges, bands and cutoffs."""
        problems: list[str] = []
        sc = self.scoring
        prefix = f"{self.id}_"
        for it in self.items:
            if not it.id.startswith(prefix):
                problems.append(f"item {it.id}: item ids must start with {prefix!r}")
            if it.reverse and not (it.scored and it.kind != "text"):
                problems.append(f"item {it.id}: only a scored item can be reverse-keyed")
            if it.kind == "scale" and it.step is not None and it.step <= 0:
                problems.append(f"item {it.id}: step must be positive")
        scored = {it.id for it in self.scored_items}
        sub_ids = [sub.id for sub in sc.subscales]
        if len(set(sub_ids)) != len(sub_ids):
            problems.append("subscale ids must be unique")
        for sub in sc.subscales:
            unscored = (set(sub.items) & {it.id for it in self.items}) - scored
            if unscored:
                problems.append(f"subscale {sub.id}: items {sorted(unscored)} are not scored")
            if len(set(sub.items)) != len(sub.items):
                problems.append(f"subscale {sub.id}: an item is listed twice")
            if sub.max_missing < 0 or sub.max_missing >= max(1, len(sub.items)):
                problems.append(f"subscale {sub.id}: max_missing must be in [0, items - 1]")
        if sc.custom and sc.method != "custom":
            problems.append("scoring.custom is set but scoring.method is not custom")
        lo, hi = sc.range
        if sc.method in ("sum", "mean") and self.scored_items:
            try:
                mins = [it.value_range[0] for it in self.scored_items]
                maxs = [it.value_range[1] for it in self.scored_items]
            except ValueError:
                mins, maxs = [], []
            if mins:
                if sc.method == "sum":
                    expect = (sum(mins) * sc.multiplier, sum(maxs) * sc.multiplier)
                else:
                    n = len(mins)
                    expect = (sum(mins) / n * sc.multiplier, sum(maxs) / n * sc.multiplier)
                if not (math.isclose(expect[0], lo) and math.isclose(expect[1], hi)):
                    problems.append(
                        f"scoring.range {[lo, hi]} does not match the items "
                        f"({sc.method} of item ranges x {sc.multiplier} = "
                        f"[{expect[0]:g}, {expect[1]:g}])"
                    )
        for band in self.severity_bands:
            if band.min < lo or band.max > hi:
                problems.append(f"severity band {band.label!r} lies outside scoring.range")
        for cut_name, cut in (
            ("clinical_cutoff", self.clinical_cutoff),
            ("concern_threshold", self.concern_threshold),
        ):
            if cut is not None and not lo <= cut.value <= hi:
                problems.append(f"{cut_name}: value {cut.value:g} lies outside scoring.range")
        for rule in self.critical:
            if rule.item in scored:
                rlo, rhi = self.item(rule.item).value_range
                if not rlo <= rule.value <= rhi:
                    problems.append(f"critical item {rule.item}: value outside the item's range")
        return problems
