"""Reading FHIR ``QuestionnaireResponse`` resources and scoring them again.

A response is read against its questionnaire: each answer goes to the instrument item its
questionnaire item is linked to (see :func:`~alliance.fhir.instrument_from_questionnaire`), coded
answers are translated through that item's own answer list, and totals are recomputed with
:mod:`alliance.scoring`. A total stored in the response is only compared, never used.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from alliance.errors import FHIRError
from alliance.fhir._resources import (
    DEFAULT_BASE_URL,
    JSONDict,
    _as_number,
    check_resource,
    iter_items,
    load_json,
    looks_like_loinc,
)
from alliance.fhir.questionnaire import (
    LinkedItem,
    QuestionnaireMatch,
    canonical_url,
    instrument_from_questionnaire,
    questionnaire_from_instrument,
)
from alliance.instruments import Instrument, default_library

if TYPE_CHECKING:
    from alliance.scoring import Score

__all__ = [
    "METHOD_RESCORE",
    "FHIRScore",
    "responses_from_fhir",
    "responses_from_file",
    "score_fhir_response",
]

METHOD_RESCORE = "fhir_r4_response_rescore"
"""Identifier of the procedure: map answers through the questionnaire, recompute, compare."""

_TOLERANCE = 1e-6


@dataclass(frozen=True)
class FHIRScore:
    """The recomputed score of one ``QuestionnaireResponse``.

    Attributes
    ----------
    id
        The response's id (``QuestionnaireResponse.id``, else its identifier, else its
        position ``#n`` in the input).
    score
        The score computed by :mod:`alliance.scoring` from the mapped answers.
    stored_total
        A total found in the response (an item with a calculated expression or the total's
        LOINC code), or ``None``. Compared with ``score.total``, never used.
    warnings
        What was read loosely, ignored, or disagreed (a stored total that differs is one).
    questionnaire
        The canonical URL the response names, if any.
    matched
        ``"matched"`` (a known instrument) or ``"created"`` (a custom instrument built from the
        questionnaire).
    method
        Stable identifier of this procedure (:data:`METHOD_RESCORE`); the score carries the
        scoring method's own.
    """

    id: str
    score: Score
    stored_total: float | None = None
    warnings: tuple[str, ...] = ()
    questionnaire: str | None = None
    matched: str = "matched"
    method: str = METHOD_RESCORE

    @property
    def total(self) -> float | None:
        """The recomputed total (``None`` when the response cannot be scored)."""
        return self.score.total

    @property
    def error(self) -> str | None:
        """Why the response could not be scored, or ``None``."""
        return self.score.error

    @property
    def total_mismatch(self) -> bool:
        """Whether a stored total was found and differs from the recomputed one."""
        return (
            self.stored_total is not None
            and self.score.total is not None
            and abs(self.stored_total - self.score.total) > _TOLERANCE
        )

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready dict (the shape ``alliance fhir score --json`` prints)."""
        s = self.score
        return {
            "id": self.id,
            "instrument": s.instrument,
            "total": s.total,
            "subscales": dict(s.subscales),
            "severity": s.severity,
            "flags": list(s.flags),
            "prorated": s.prorated,
            "n_missing": s.n_missing,
            "error": s.error,
            "stored_total": self.stored_total,
            "total_mismatch": self.total_mismatch,
            "warnings": list(self.warnings),
            "questionnaire": self.questionnaire,
            "matched": self.matched,
            "method": self.method,
            "scoring_method": s.method,
        }


# ---------------------------------------------------------------------------------------------
# Collecting responses and their questionnaires
# ---------------------------------------------------------------------------------------------
@dataclass
class _Inputs:
    responses: list[tuple[JSONDict, str]] = field(default_factory=list)  # (QR, fallback id)
    questionnaires: list[JSONDict] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _collect(resource: Any, strict: bool) -> _Inputs:
    found = _Inputs()

    def add(res: Any, fallback: str, in_bundle: bool = False) -> None:
        data, notes = check_resource(
            res,
            ("QuestionnaireResponse", "Bundle", "Questionnaire"),
            strict=strict,
            model=not in_bundle,  # the Bundle was checked with its entries
        )
        found.notes.extend(notes)
        rtype = data["resourceType"]
        if rtype == "Bundle":
            for n, entry in enumerate(data.get("entry") or (), start=1):
                if not isinstance(entry, dict) or not isinstance(entry.get("resource"), dict):
                    continue
                inner = entry["resource"]
                if inner.get("resourceType") not in ("QuestionnaireResponse", "Questionnaire"):
                    continue  # Patients, Observations … travel in the same bundles
                add(inner, str(entry.get("fullUrl") or f"{fallback}.{n}"), in_bundle=True)
        elif rtype == "Questionnaire":
            found.questionnaires.append(data)
        else:
            found.responses.append((data, fallback))

    if isinstance(resource, Sequence) and not isinstance(resource, (str, bytes, Mapping)):
        for n, res in enumerate(resource, start=1):
            add(res, f"#{n}")
    else:
        add(resource, "#1")
    if not found.responses:
        raise FHIRError("no QuestionnaireResponse found (give one, a list, or a Bundle of them)")
    return found


def _response_id(qr: Mapping[str, Any], fallback: str) -> str:
    if isinstance(qr.get("id"), str) and qr["id"]:
        return str(qr["id"])
    ident = qr.get("identifier")
    if isinstance(ident, list):  # R5 shape, seen in the wild
        ident = ident[0] if ident else None
    if isinstance(ident, dict) and ident.get("value"):
        return str(ident["value"])
    return fallback


def _strip(url: Any) -> str | None:
    return url.split("|", 1)[0] if isinstance(url, str) and url else None


class _Binder:
    """Finds the questionnaire (and so the instrument) each response answers; caches matches."""

    def __init__(
        self,
        questionnaire: Mapping[str, Any] | QuestionnaireMatch | None,
        bundled: list[JSONDict],
        library: Mapping[str, Instrument],
        instrument: Instrument | None,
        base_url: str,
        strict: bool,
    ) -> None:
        self.library = dict(library)
        if instrument is not None:
            self.library[instrument.id] = instrument
        self.instrument = instrument
        self.base_url = base_url
        self.strict = strict
        self.bundled = bundled
        self.cache: dict[str, QuestionnaireMatch] = {}
        self.given: QuestionnaireMatch | None = None
        if isinstance(questionnaire, QuestionnaireMatch):
            self.given = questionnaire
        elif questionnaire is not None:
            self.given = self._import(questionnaire)

    def _import(self, q: Mapping[str, Any]) -> QuestionnaireMatch:
        return instrument_from_questionnaire(
            q, self.library, base_url=self.base_url, strict=self.strict
        )

    def _own(self, inst: Instrument) -> QuestionnaireMatch:
        key = f"own:{inst.id}"
        if key not in self.cache:
            q = questionnaire_from_instrument(inst, base_url=self.base_url)
            self.cache[key] = instrument_from_questionnaire(
                q, {inst.id: inst}, base_url=self.base_url
            )
        return self.cache[key]

    def bind(self, qr: Mapping[str, Any]) -> QuestionnaireMatch:
        match = self._find(qr)
        inst = self.instrument
        if inst is not None and match.instrument.id != inst.id:
            raise FHIRError(
                f"QuestionnaireResponse {qr.get('id') or ''} answers "
                f"{match.instrument.id!r} ({match.reason}), not {inst.id!r}".replace("  ", " ")
            )
        return match

    def _find(self, qr: Mapping[str, Any]) -> QuestionnaireMatch:
        if self.given is not None:
            return self.given
        ref = _strip(qr.get("questionnaire"))
        # A Questionnaire travelling with the responses (Bundle entry or contained resource).
        contained = [
            c
            for c in qr.get("contained") or ()
            if isinstance(c, dict) and c.get("resourceType") == "Questionnaire"
        ]
        for q in (*self.bundled, *contained):
            url = _strip(q.get("url"))
            local = f"#{q.get('id')}" if q.get("id") else None
            if (
                ref is None
                or ref in (url, local)
                or (q.get("id") and ref.endswith(f"Questionnaire/{q['id']}"))
            ):
                key = f"q:{url or q.get('id') or id(q)}"
                if key not in self.cache:
                    self.cache[key] = self._import(q)
                return self.cache[key]
        if self.instrument is not None:
            return self._own(self.instrument)
        if ref:
            for inst in self.library.values():
                if ref in {canonical_url(inst, self.base_url), canonical_url(inst)}:
                    return self._own(inst)
        raise FHIRError(
            f"cannot tell which questionnaire QuestionnaireResponse "
            f"{qr.get('id') or '(no id)'} answers"
            + (f": {ref} is not an Alliance questionnaire" if ref else "")
            + "; give the Questionnaire (questionnaire=..., or --questionnaire FILE) or the "
            "instrument"
        )


# ---------------------------------------------------------------------------------------------
# Answers
# ---------------------------------------------------------------------------------------------
def _find_link(match: QuestionnaireMatch, item: Mapping[str, Any]) -> LinkedItem | None:
    link_id = str(item.get("linkId"))
    exact = match.link_for(link_id)
    if exact is not None:
        return exact
    tails = {link_id.rsplit("/", 1)[-1]}
    definition = item.get("definition")
    if isinstance(definition, str):
        tails.add(definition.rsplit("#", 1)[-1].rsplit("/", 1)[-1])
    for link in match.links:
        if link.item_id in tails or set(link.codes) & tails:
            return link
    return None


def _is_total(match: QuestionnaireMatch, item: Mapping[str, Any]) -> bool:
    link_id = str(item.get("linkId"))
    if link_id in match.total_link_ids:
        return True
    total = match.instrument.loinc.total
    tail = link_id.rsplit("/", 1)[-1]
    return bool(total) and looks_like_loinc(tail) and tail == total


def _answer_number(answer: Mapping[str, Any]) -> float | None:
    for key in ("valueDecimal", "valueInteger", "valueQuantity"):
        if key in answer:
            return _as_number(answer[key])
    return None


def _map_answer(
    link: LinkedItem, answer: Mapping[str, Any], kind: str
) -> tuple[float | str, str | None]:
    """The value of one answer, or an error string (never numeric-looking), and a note."""
    coding = answer.get("valueCoding")
    if isinstance(coding, dict):
        system, code, display = coding.get("system"), coding.get("code"), coding.get("display")
        value, note = link.answers.lookup(system, code, display)
        if value is not None:
            return value, note
        shown = f"{system}|{code}" if system else str(code)
        return f"answer code {shown}", f"answer code {shown} is not an answer option of this item"
    if "valueInteger" in answer and kind == "choice":
        value, note = link.answers.lookup(None, str(answer["valueInteger"]), None)
        if value is not None:
            return value, note
    number = _answer_number(answer)
    if number is not None:
        return number, None
    if "valueString" in answer:
        value, note = link.answers.lookup(None, None, str(answer["valueString"]))
        if value is not None:
            return value, note
        return f"answer text {answer['valueString']!r}", "a text answer that is not an option"
    keys = [k for k in answer if k.startswith("value")]
    what = keys[0] if keys else "no value"
    return f"answer of type {what}", f"an answer of type {what} cannot be scored"


@dataclass
class _Row:
    id: str
    match: QuestionnaireMatch
    answers: dict[str, float | str]
    stored_total: float | None
    warnings: list[str]
    questionnaire: str | None


def _read_response(qr: JSONDict, rid: str, match: QuestionnaireMatch) -> _Row:
    inst = match.instrument
    answers: dict[str, float | str] = {}
    warnings: list[str] = []
    stored: float | None = None
    status = qr.get("status")
    if status and status not in ("completed", "amended"):
        warnings.append(f"response status is {status!r}, not completed")
    ignored: list[str] = []
    for item, _ in iter_items(qr.get("item")):
        given = [a for a in item.get("answer") or () if isinstance(a, dict)]
        link_id = str(item.get("linkId"))
        if _is_total(match, item):
            numbers = [n for n in map(_answer_number, given) if n is not None]
            if numbers:
                stored = numbers[0]
            continue
        link = _find_link(match, item)
        if link is None:
            if given:
                ignored.append(link_id)
            continue
        it = inst.item(link.item_id)
        if it.kind == "text" or not given:
            continue
        if link.link_id != link_id:
            warnings.append(f"{link_id!r} read as {link.link_id!r} ({it.id}) by its code")
        if link.item_id in answers:
            answers[link.item_id] = f"answered twice ({link_id})"
            warnings.append(f"{it.id} is answered more than once; the response is not scored")
            continue
        if len(given) > 1:
            answers[link.item_id] = f"{len(given)} answers"
            warnings.append(f"{it.id} has {len(given)} answers where one is expected")
            continue
        value, note = _map_answer(link, given[0], it.kind)
        answers[link.item_id] = value
        if note:
            warnings.append(f"{it.id}: {note}")
    if ignored:
        shown = ", ".join(repr(i) for i in ignored[:5]) + (" …" if len(ignored) > 5 else "")
        msg = f"answers to {len(ignored)} item(s) ignored ({shown}): not items of {inst.short_name}"
        if not answers:
            msg += "; give the Questionnaire these linkIds come from"
        warnings.append(msg)
    return _Row(rid, match, answers, stored, warnings, _strip(qr.get("questionnaire")))


def _read_all(
    resource: Any,
    questionnaire: Mapping[str, Any] | QuestionnaireMatch | None,
    library: Mapping[str, Instrument] | None,
    instrument: Instrument | str | None,
    base_url: str,
    strict: bool,
) -> tuple[list[_Row], list[str]]:
    lib: Mapping[str, Instrument] = library if library is not None else default_library()
    inst = lib[instrument] if isinstance(instrument, str) else instrument
    found = _collect(resource, strict)
    binder = _Binder(questionnaire, found.questionnaires, lib, inst, base_url, strict)
    rows = [_read_response(qr, _response_id(qr, fb), binder.bind(qr)) for qr, fb in found.responses]
    for row in rows:
        url = row.match.questionnaire_url
        if row.questionnaire and url and row.questionnaire != url:
            row.warnings.insert(
                0,
                f"the response names questionnaire {row.questionnaire}; its answers were read "
                f"against {url} ({row.match.instrument.short_name})",
            )
    notes = list(found.notes)
    seen = set()
    for match in {id(r.match): r.match for r in rows}.values():
        for w in match.warnings:
            if w not in seen:
                seen.add(w)
                notes.append(w)
    return rows, notes


def _frame(inst: Instrument, rows: Sequence[_Row]) -> pd.DataFrame:
    columns = ["id", *inst.item_ids]
    records = [{"id": r.id, **r.answers} for r in rows]
    frame = pd.DataFrame.from_records(records, columns=columns)
    for col in inst.item_ids:
        if all(isinstance(v, float) or v is None for v in frame[col]):
            frame[col] = frame[col].astype(float)
    return frame


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------
def responses_from_fhir(
    resource: Any,
    questionnaire: Mapping[str, Any] | QuestionnaireMatch | None = None,
    library: Mapping[str, Instrument] | None = None,
    *,
    instrument: Instrument | str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    strict: bool = False,
) -> tuple[pd.DataFrame, tuple[str, ...]]:
    """Turn FHIR QuestionnaireResponses into a table of item answers, ready for scoring.

    Parameters
    ----------
    resource
        A ``QuestionnaireResponse``, a ``Bundle`` (its Questionnaire entries are used as the
        questionnaires of its responses), or a list of either, as parsed JSON.
    questionnaire
        The Questionnaire the responses answer (JSON, or an earlier
        :class:`~alliance.fhir.QuestionnaireMatch`). Not needed when the responses name an
        Alliance questionnaire, travel with theirs in a Bundle, or ``instrument`` is given.
    library
        Instruments to match questionnaires against (default: the shipped library).
    instrument
        The instrument the responses must be answers to (an id or an instrument).
    base_url
        Base of Alliance canonical URLs.
    strict
        Refuse resources that the R4B models reject.

    Returns
    -------
    (DataFrame, warnings)
        One row per response: an ``id`` column and one column per instrument item (NaN for
        unanswered). An answer that cannot be translated (a code that is not one of the item's
        options, two answers to one item) is left in its cell as a short text, so that scoring
        reports that row as invalid rather than counting the item as missing. ``warnings`` says
        what was read loosely or ignored.

    Raises
    ------
    FHIRError
        No response, malformed resources, an unknown questionnaire, responses to more than one
        instrument, or responses to another instrument than ``instrument``.

    Notes
    -----
    Items are found wherever they sit: nested in groups, under answers, or listed flat. Each is
    matched by linkId, then by a LOINC code in its linkId or ``definition`` (``/44250-9``). A
    coded answer is looked up among the options of its own item only (``system|code``, then the
    code alone, then the display text), never in a code system-wide table: LOINC's GAD-7 form
    answers item 68509-9 with LA18938-3 for 2 where the other items use LA6570-1.

    Examples
    --------
    >>> import alliance as al
    >>> qr = {"resourceType": "QuestionnaireResponse", "id": "r1", "status": "completed",
    ...       "questionnaire": "http://alliance.invalid/fhir/Questionnaire/gad7",
    ...       "item": [{"linkId": "gad7_2", "answer": [{"valueCoding": {
    ...           "system": "http://loinc.org", "code": "LA18938-3"}}]}]}
    >>> frame, warnings = responses_from_fhir(qr)
    >>> frame[["id", "gad7_1", "gad7_2"]].to_dict("records")
    [{'id': 'r1', 'gad7_1': nan, 'gad7_2': 2.0}]
    """
    rows, notes = _read_all(resource, questionnaire, library, instrument, base_url, strict)
    instruments = {r.match.instrument.id: r.match.instrument for r in rows}
    if len(instruments) > 1:
        raise FHIRError(
            "the responses answer more than one instrument ("
            + ", ".join(sorted(instruments))
            + "); read or score them separately, or use score_fhir_response"
        )
    inst = next(iter(instruments.values()))
    for r in rows:
        if r.stored_total is not None:
            r.warnings.append(
                f"stored total {r.stored_total:g} not used (totals are recomputed from the answers)"
            )
    warnings = notes + [f"{r.id}: {w}" for r in rows for w in r.warnings]
    return _frame(inst, rows), tuple(warnings)


def _score_from_row(row: Mapping[str, Any]) -> Score:
    from alliance.scoring import Score

    def opt(v: Any) -> float | None:
        if v is None or v is pd.NA:
            return None
        f = float(v)
        return None if math.isnan(f) else f

    clinical = row["clinical"]
    rid: Hashable | None = row["id"]
    return Score(
        id=rid,
        instrument=str(row["instrument"]),
        method=str(row["method"]),
        total=opt(row["total"]),
        subscales={str(k): opt(v) for k, v in dict(row["subscales"]).items()},
        derived={str(k): opt(v) for k, v in dict(row["derived"]).items()},
        severity=row["severity"] if isinstance(row["severity"], str) else None,
        clinical=None if clinical is None or clinical is pd.NA else bool(clinical),
        flags=tuple(row["flags"]),
        prorated=bool(row["prorated"]),
        n_missing=int(row["n_missing"]),
        error=row["error"] if isinstance(row["error"], str) else None,
    )


def _naive_sum(inst: Instrument, answers: Mapping[str, float | str]) -> float | None:
    """The total with missing items counted as 0 (LHC-Forms' rule), for the explanation."""
    if inst.scoring.method != "sum":
        return None
    total = 0.0
    for it in inst.scored_items:
        v = answers.get(it.id)
        if isinstance(v, str):
            return None
        if v is not None and not math.isnan(v):
            lo, hi = it.value_range
            total += lo + hi - v if it.reverse else v
    return total * inst.scoring.multiplier


def score_fhir_response(
    resource: Any,
    questionnaire: Mapping[str, Any] | QuestionnaireMatch | None = None,
    library: Mapping[str, Instrument] | None = None,
    *,
    instrument: Instrument | str | None = None,
    base_url: str = DEFAULT_BASE_URL,
    strict: bool = False,
) -> tuple[FHIRScore, ...]:
    """Score FHIR QuestionnaireResponses again, from their answers.

    Parameters
    ----------
    resource, questionnaire, library, instrument, base_url, strict
        As for :func:`responses_from_fhir`; responses to different instruments may be mixed.

    Returns
    -------
    tuple of FHIRScore
        One per response, in input order.

    Notes
    -----
    The answers are mapped to item values (see :func:`responses_from_fhir`) and scored by
    :func:`alliance.scoring.score` with the instrument's own rules: reverse keys, its proration
    rule for missing items (PHQ-9: up to two, mean substitution, rounded), bands and flags. A
    total stored in the response is compared with the recomputed one; a difference is reported
    as a warning and the recomputed total is the result. LHC-Forms' PHQ-9 counts missing items
    as 0 once any item is answered, so its stored total is lower than Alliance's prorated one
    whenever an item is skipped, and Alliance refuses to score what its rule does not allow.

    Examples
    --------
    >>> import alliance as al
    >>> qr = {"resourceType": "QuestionnaireResponse", "status": "completed",
    ...       "questionnaire": "http://alliance.invalid/fhir/Questionnaire/phq9",
    ...       "item": [{"linkId": f"phq9_{i}", "answer": [{"valueCoding": {
    ...           "system": "http://loinc.org", "code": "LA6569-3"}}]} for i in range(1, 10)]}
    >>> (result,) = score_fhir_response(qr)
    >>> result.total, result.score.severity, result.score.flags
    (9.0, 'mild', ('safety',))
    """
    from alliance.scoring import score as score_many

    rows, notes = _read_all(resource, questionnaire, library, instrument, base_url, strict)
    results: dict[int, FHIRScore] = {}
    groups: dict[str, list[int]] = {}
    for pos, row in enumerate(rows):
        groups.setdefault(row.match.instrument.id, []).append(pos)
    for positions in groups.values():
        inst = rows[positions[0]].match.instrument
        scored = score_many(inst, _frame(inst, [rows[p] for p in positions]))
        records: list[dict[str, Any]] = [
            {str(k): v for k, v in rec.items()} for rec in scored.to_dict("records")
        ]
        for pos, record in zip(positions, records, strict=True):
            row = rows[pos]
            sc = _score_from_row(record)
            warnings = list(notes) + row.warnings
            if row.stored_total is not None:
                if sc.total is None:
                    warnings.append(
                        f"stored total {row.stored_total:g} not checked: the response cannot be "
                        f"scored ({sc.error})"
                    )
                elif abs(row.stored_total - sc.total) > _TOLERANCE:
                    msg = (
                        f"stored total {row.stored_total:g} disagrees with the recomputed total "
                        f"{sc.total:g}; the recomputed total is reported (a stored total is "
                        "never trusted)"
                    )
                    naive = _naive_sum(inst, row.answers)
                    if sc.prorated and naive is not None and abs(naive - row.stored_total) < 1e-6:
                        msg += (
                            f"; the stored total counts the {sc.n_missing} missing item(s) as 0, "
                            f"Alliance prorates them ({inst.short_name}'s rule)"
                        )
                    warnings.append(msg)
            results[pos] = FHIRScore(
                id=row.id,
                score=sc,
                stored_total=row.stored_total,
                warnings=tuple(warnings),
                questionnaire=row.questionnaire,
                matched=row.match.status,
            )
    return tuple(results[p] for p in range(len(rows)))


def responses_from_file(
    path: str | Path,
    instrument: Instrument | str,
    library: Mapping[str, Instrument] | None = None,
) -> pd.DataFrame:
    """Read a JSON file of QuestionnaireResponses (or a Bundle) as item answers for scoring.

    This is what ``alliance score INSTRUMENT FILE.json`` uses. The warnings of
    :func:`responses_from_fhir` are in ``frame.attrs["fhir_warnings"]`` (a tuple of str).

    Parameters
    ----------
    path
        A ``.json`` file holding a QuestionnaireResponse, a Bundle, or a JSON array of them.
    instrument
        The instrument (or its id) the responses answer.
    library
        Where to look up ``instrument`` and match questionnaires in the file.

    Returns
    -------
    pandas.DataFrame
        ``id`` plus one column per item, as :func:`responses_from_fhir`.

    Raises
    ------
    FHIRError
        The file cannot be read, is not JSON, or holds no responses to the instrument.
    """
    path = Path(path)
    try:
        text = path.read_bytes()
    except OSError as exc:
        raise FHIRError(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    data = load_json(text, origin=str(path))
    frame, warnings = responses_from_fhir(data, library=library, instrument=instrument)
    frame.attrs["fhir_warnings"] = warnings
    return frame
