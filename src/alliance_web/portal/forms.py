"""The check-in form: what a client's browser may send, and what the page shows.

A check-in's questions are dynamic (instruments, goals, an optional note), so instead of a Django
``Form`` class this module keeps one allow-list per check-in (:class:`CheckInForm`) and does two
jobs with it:

* **parse** a POST (the plain form, the "save and finish later" button, or an autosave from
  ``checkin.js``) into a :class:`~alliance_web.care.services.Submission`, collecting an error per
  field for anything outside the allow-list — an unknown key, a value that is not one of the item's
  options written exactly as the page wrote it ("3.0", "-1", "1e20", "NaN" are all refused), two
  values for one question, an oversized note. The service validates again with the engine; this
  layer exists so that a bad value is named next to its field and never reaches the database.
* **describe** the page: sections, questions, options, the values to show again (what was typed,
  or the saved draft) and the errors, as plain objects for the templates.

Field names: ``<instrument>.<item>`` for an answer, ``goal.<goal public id>`` for a goal rating,
``note`` for the private note — the same keys ``services.validate_submission`` uses for its errors.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import alliance as al
from alliance_web.care.models import CheckIn, CheckInKind, Goal
from alliance_web.care.services import NOTE_MAX_CHARS, Submission

# Keys a check-in POST may carry besides the questions.
CONTROL_KEYS = frozenset({"csrfmiddlewaretoken", "action", "step"})
GOAL_SCALE = tuple(range(0, 11))
# A scale item with at most this many points is shown as buttons rather than a number box.
MAX_BUTTONS = 11
_NUMBER = re.compile(r"^-?(0|[1-9][0-9]{0,5})(\.[0-9]{1,3})?$")

MSG_CHOOSE = "Choose one of the answers."
MSG_REQUIRED = "Please answer this question."
MSG_GOAL = "Choose a number from 0 to 10."
MSG_ONE = "Choose only one answer."
MSG_UNEXPECTED = (
    "The form sent something we did not expect, so nothing was saved. "
    "Please reload the page and try again."
)


def fmt(value: float) -> str:
    """An option value as the page writes it: ``3`` not ``3.0``, ``0.5`` stays ``0.5``."""
    number = float(value)
    return str(int(number)) if number.is_integer() else format(number, "g")


def field_id(key: str) -> str:
    """A safe element id for a field key (used by the error summary's links)."""
    return "f-" + re.sub(r"[^A-Za-z0-9_-]", "-", key)


@dataclass
class Option:
    value: str
    label: str
    checked: bool = False
    critical: bool = False


@dataclass
class Question:
    key: str
    text: str
    number: int
    options: list[Option] = field(default_factory=list)
    kind: str = "choice"  # choice | number
    required: bool = True
    critical: bool = False
    error: str = ""
    value: str = ""
    min: str = ""
    max: str = ""
    step: str = ""
    anchors: tuple[str, str] = ("", "")
    describedby: str = ""

    @property
    def id(self) -> str:
        return field_id(self.key)

    @property
    def endorsed_critical(self) -> bool:
        return any(o.checked and o.critical for o in self.options)


@dataclass
class Section:
    instrument: str
    heading: str
    instructions: str
    questions: list[Question]
    error: str = ""
    licence_notice: str = ""
    text_missing: bool = False

    @property
    def id(self) -> str:
        return field_id(self.instrument)


@dataclass
class ErrorLink:
    target: str
    label: str
    message: str


@dataclass
class Page:
    """Everything the check-in template needs."""

    sections: list[Section]
    goals: list[Question]
    note: Question | None
    errors: list[ErrorLink]
    total_steps: int

    @property
    def safety_endorsed(self) -> bool:
        return any(q.endorsed_critical for s in self.sections for q in s.questions)


@dataclass
class Parsed:
    submission: Submission
    values: dict[str, str]
    errors: dict[str, str]


@dataclass(frozen=True)
class _Item:
    instrument: str
    item: al.instruments.Item
    allowed: frozenset[str]
    critical_values: frozenset[str]


def _critical_values(
    inst: al.Instrument, item: al.instruments.Item, values: Sequence[str]
) -> frozenset[str]:
    rules = [rule for rule in inst.critical if rule.item == item.id]
    return frozenset(v for v in values if any(rule.hits(float(v)) for rule in rules))


def _scale_values(item: al.instruments.Item) -> list[str] | None:
    """The points of a scale item when few enough to show as buttons; else ``None``."""
    if item.min is None or item.max is None:
        return None
    step = item.step or 1.0
    count = round((item.max - item.min) / step) + 1
    if count > MAX_BUTTONS or abs(item.min + (count - 1) * step - item.max) > 1e-9:
        return None
    return [fmt(item.min + i * step) for i in range(count)]


class CheckInForm:
    """The allow-list of one check-in, and the page built from it."""

    def __init__(self, checkin: CheckIn) -> None:
        self.checkin = checkin
        self.instruments = [al.instrument(i) for i in checkin.instruments]
        self.items: dict[str, _Item] = {}
        for inst in self.instruments:
            for item in inst.items:
                if item.kind == "text":
                    continue  # free-text items are never part of a check-in's scored answers
                values = self._values(item)
                allowed = frozenset(values) if values is not None else frozenset()
                self.items[f"{inst.id}.{item.id}"] = _Item(
                    inst.id, item, allowed, _critical_values(inst, item, values or [])
                )
        self.goals: list[Goal] = (
            list(checkin.episode.goals.filter(closed_at__isnull=True).order_by("position"))
            if checkin.includes_goals
            else []
        )
        self.goal_keys = {f"goal.{g.public_id}": g for g in self.goals}

    @staticmethod
    def _values(item: al.instruments.Item) -> list[str] | None:
        if item.kind == "choice":
            return [fmt(v) for v in item.values]
        return _scale_values(item)

    # -- parsing ------------------------------------------------------------------------------
    def parse(self, data: Any) -> Parsed:
        """Read a POST (a ``QueryDict`` or a plain mapping of lists/strings)."""
        sub = Submission()
        values: dict[str, str] = {}
        errors: dict[str, str] = {}
        for key in _keys(data):
            raw = _getlist(data, key)
            if key in CONTROL_KEYS:
                continue
            if len(raw) != 1:
                errors[key if key in self.items or key in self.goal_keys else "form"] = MSG_ONE
                continue
            value = raw[0]
            if key == "note":
                values["note"] = value
                if not self.checkin.includes_note:
                    errors["note"] = "This check-in has no private note."
                elif len(value) > NOTE_MAX_CHARS:
                    errors["note"] = (
                        f"Please keep the note under {NOTE_MAX_CHARS:,} characters "
                        f"(it has {len(value):,}). Nothing was sent yet."
                    )
                else:
                    sub.note = value
            elif key in self.goal_keys:
                values[key] = value
                if value == "":
                    continue
                if value not in {str(n) for n in GOAL_SCALE}:
                    errors[key] = MSG_GOAL
                else:
                    sub.goal_ratings[str(self.goal_keys[key].public_id)] = int(value)
            elif key in self.items:
                values[key] = value
                if value == "":
                    continue
                number = self._answer(self.items[key], value)
                if number is None:
                    errors[key] = MSG_CHOOSE
                else:
                    spec = self.items[key]
                    sub.answers.setdefault(spec.instrument, {})[spec.item.id] = number
            else:
                instrument = key.split(".", 1)[0] if "." in key else ""
                if (
                    instrument
                    and instrument not in self.checkin.instruments
                    and _looks_like_id(instrument)
                ):
                    errors[instrument] = "This questionnaire is not part of this check-in."
                elif instrument in self.checkin.instruments:
                    errors[instrument] = (
                        "The form sent an answer to a question that does not exist."
                    )
                else:
                    errors["form"] = MSG_UNEXPECTED
        return Parsed(sub, values, errors)

    def missing(self, parsed: Parsed) -> dict[str, str]:
        """Required questions without an answer (the service checks this too)."""
        errors: dict[str, str] = {}
        for key, spec in self.items.items():
            if spec.item.scored and spec.item.required and parsed.values.get(key, "") == "":
                errors[key] = MSG_REQUIRED
        return errors

    @staticmethod
    def _answer(spec: _Item, value: str) -> float | int | None:
        if spec.allowed:
            if value not in spec.allowed:
                return None
        else:  # a fine-grained scale: a plain decimal within range
            if not _NUMBER.match(value):
                return None
            lo, hi = spec.item.value_range
            number = float(value)
            if not lo <= number <= hi:
                return None
            step = spec.item.step
            if step and abs(round((number - lo) / step) * step - (number - lo)) > 1e-9:
                return None
        number = float(value)
        return int(number) if number.is_integer() else number

    # -- describing the page --------------------------------------------------------------------
    def page(
        self, values: Mapping[str, str] | None = None, errors: Mapping[str, str] | None = None
    ) -> Page:
        values = dict(values or {})
        errors = dict(errors or {})
        sections: list[Section] = []
        number = 0
        labels: dict[str, str] = {}
        for part, inst in enumerate(self.instruments, start=1):
            questions = []
            instructions_id = f"instr-{inst.id}"
            for item in inst.items:
                key = f"{inst.id}.{item.id}"
                if key not in self.items:
                    continue
                spec = self.items[key]
                number += 1
                text = item.text or f"Question {len(questions) + 1}"
                labels[key] = f"Question {number}"
                q = Question(
                    key=key,
                    text=text,
                    number=number,
                    required=item.scored and item.required,
                    error=errors.get(key, ""),
                    value=values.get(key, ""),
                    critical=bool(spec.critical_values),
                    describedby=instructions_id if inst.instructions else "",
                )
                if spec.allowed:
                    labels_by_value = {fmt(o.value): o.label for o in item.options}
                    ordered = self._values(item) or []
                    q.options = [
                        Option(
                            value=v,
                            label=labels_by_value.get(v) or v,
                            checked=values.get(key) == v,
                            critical=v in spec.critical_values,
                        )
                        for v in ordered
                    ]
                    if item.kind == "scale":
                        q.kind = "scale"
                        q.anchors = (fmt(item.min or 0), fmt(item.max or 0))
                else:
                    q.kind = "number"
                    lo, hi = item.value_range
                    q.min, q.max, q.step = fmt(lo), fmt(hi), fmt(item.step or 0.1)
                questions.append(q)
            heading = f"Part {part} of {len(self.instruments)}" if len(self.instruments) > 1 else ""
            sections.append(
                Section(
                    instrument=inst.id,
                    heading=heading,
                    instructions=inst.instructions or "",
                    questions=questions,
                    error=errors.get(inst.id, ""),
                    licence_notice=(inst.licence.notice or "") if inst.has_text else "",
                    # A licensed instrument whose wording the practice has not loaded (alliance
                    # fhir import): say so rather than ask questions without words.
                    text_missing=not inst.has_text,
                )
            )
            labels[inst.id] = heading or "These questions"
        goals = []
        for goal in self.goals:
            key = f"goal.{goal.public_id}"
            number += 1
            labels[key] = f"Goal {goal.position}"
            goals.append(
                Question(
                    key=key,
                    text=goal.text,
                    number=number,
                    kind="goal",
                    required=False,
                    error=errors.get(key, ""),
                    value=values.get(key, ""),
                    options=[
                        Option(value=str(n), label=str(n), checked=values.get(key) == str(n))
                        for n in GOAL_SCALE
                    ],
                )
            )
        note = None
        if self.checkin.includes_note:
            number += 1
            labels["note"] = "Your private note"
            note = Question(
                key="note",
                text="",
                number=number,
                kind="note",
                required=False,
                error=errors.get("note", ""),
                value=values.get("note", ""),
            )
        summary = []
        for key, message in errors.items():
            if key in labels:
                target = field_id(key)
                summary.append(ErrorLink(target, labels[key], message))
            else:
                summary.append(ErrorLink("checkin-form", "The form", message))
        order = {field_id(k): i for i, k in enumerate(labels)}
        summary.sort(key=lambda e: order.get(e.target, -1))
        return Page(sections, goals, note, summary, number)

    def clean_values(self, values: Mapping[str, Any]) -> dict[str, str]:
        """The part of a stored draft that still fits this form (never trust stored shapes)."""
        keep: dict[str, str] = {}
        for key, value in (values or {}).items():
            if not isinstance(value, str):
                continue
            fits_item = key in self.items and self._answer(self.items[key], value) is not None
            fits_goal = key in self.goal_keys and value in {str(n) for n in GOAL_SCALE}
            if fits_item or fits_goal:
                keep[key] = value
            elif key == "note" and self.checkin.includes_note:
                keep[key] = value[:NOTE_MAX_CHARS]
        return keep

    @property
    def is_post_session(self) -> bool:
        return self.checkin.kind == CheckInKind.POST_SESSION


def _keys(data: Any) -> list[str]:
    return list(data.keys())


def _getlist(data: Any, key: str) -> list[str]:
    if hasattr(data, "getlist"):
        return [str(v) for v in data.getlist(key)]
    value = data[key]
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return [str(value)]


def _looks_like_id(text: str) -> bool:
    return bool(re.fullmatch(r"[a-z][a-z0-9_]{0,39}", text))
