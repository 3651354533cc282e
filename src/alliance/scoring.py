"""Scoring many responses at once: validation, reverse keys, proration, totals, bands and flags.

:func:`score` takes a whole table of responses (one row per administration) and scores every
row in one pass of NumPy operations: nothing in the hot path loops over rows in Python. Rows
that cannot be scored get a message in ``error`` and a missing total; a number is never
produced from input that does not fit the instrument. :func:`score_one` scores a single set of
answers (the web app's check-in) through the same code and returns a frozen :class:`Score`.

The rules, step by step (see ``docs/algorithms/scoring.md`` for the long form):

1. **Validate.** A column (or key) that is not an item of the instrument, a value that is not
   one of a choice item's answer options, a value off a scale item's range or step, and a
   value that is not a number each give that row an ``error`` naming the item, the value and
   what is allowed.
2. **Reverse keys.** A reverse-keyed item is scored ``min + max - value``.
3. **Missing items.** Up to ``proration.max_missing`` required items may be missing; they are
   replaced by the mean of the answered items (of the whole scale, or of the item's subscale
   when ``proration.scope`` is ``subscale``) and, with ``round_total``, the prorated total is
   rounded half up. More missing items make the row unscorable. Optional items
   (``required: false``) that are missing do not count as missing.
4. **Total.** The sum or the mean of the scored items, times ``scoring.multiplier``; a named
   scorer for ``scoring.method: custom``.
5. **Classify.** Subscales, derived scores, the severity band, ``clinical`` (at or beyond the
   clinical cutoff in the worse direction) and the critical-item flags. A critical item is
   flagged whenever its answer meets the rule, even when the total cannot be scored: PHQ-9
   item 9 above 0 always raises ``safety``.

Every result records the instrument id and the method identifier :data:`METHOD`.
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from types import MappingProxyType
from typing import Any, Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

from alliance.errors import InstrumentError, InvalidResponse
from alliance.instruments.registry import get as get_instrument
from alliance.instruments.schema import Instrument, Item

__all__ = ["METHOD", "Score", "score", "score_one"]

METHOD = "alliance.scoring/1"
"""Identifier of this scoring method, stored with every score."""

FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]
IntArray: TypeAlias = npt.NDArray[np.intp]
ObjArray: TypeAlias = npt.NDArray[np.object_]
AnyArray: TypeAlias = npt.NDArray[Any]

Responses: TypeAlias = "pd.DataFrame | npt.ArrayLike | Sequence[Mapping[str, Any]]"

_EMPTY: Mapping[str, float | None] = MappingProxyType({})
# Float noise (0.1 + 0.2) must not move a total across a band edge; totals are rounded to
# this many decimals when an instrument allows non-integer answers.
_DECIMALS = 9


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Score:
    """The score of one response.

    Attributes
    ----------
    id
        The response's identifier as given (``None`` if none was given).
    instrument
        The instrument id.
    method
        The scoring method identifier (:data:`METHOD`).
    total
        The total, or ``None`` when the response cannot be scored (see ``error``).
    subscales
        Subscale scores by subscale id (``None`` for a subscale with too many missing items).
    derived
        Scores derived from the total (e.g. WHO-5 ``percentage``).
    severity
        The severity band's label, or ``None``.
    clinical
        Whether the total is at or beyond the clinical cutoff (``None`` without a cutoff or a
        total).
    flags
        Critical-item flags, e.g. ``("safety",)``; raised even when the total is unscorable.
    prorated
        Whether missing items were filled in (mean substitution).
    n_missing
        How many required items were missing.
    error
        Why the response could not be scored, or ``None``.
    """

    id: Hashable | None
    instrument: str
    method: str
    total: float | None
    subscales: Mapping[str, float | None] = field(default_factory=dict)
    derived: Mapping[str, float | None] = field(default_factory=dict)
    severity: str | None = None
    clinical: bool | None = None
    flags: tuple[str, ...] = ()
    prorated: bool = False
    n_missing: int = 0
    error: str | None = None

    @property
    def ok(self) -> bool:
        """True when the response was scored (``error`` is ``None``)."""
        return self.error is None

    def raise_for_error(self) -> Score:
        """Return the score, or raise :class:`~alliance.errors.InvalidResponse` with ``error``."""
        if self.error is not None:
            raise InvalidResponse(self.error)
        return self


@dataclass(frozen=True)
class _Batch:
    """Scores of many rows as arrays (internal; :func:`score` turns it into a DataFrame)."""

    ids: AnyArray
    method: str
    total: FloatArray
    subscales: dict[str, FloatArray]
    derived: dict[str, FloatArray]
    severity: ObjArray
    clinical: FloatArray  # 1.0 / 0.0 / NaN (no cutoff or no total)
    flags: ObjArray  # tuples of str
    prorated: BoolArray
    n_missing: IntArray
    error: ObjArray


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------
def score(
    instrument: str | Instrument,
    responses: Responses,
    *,
    library: Mapping[str, Instrument] | None = None,
) -> pd.DataFrame:
    """Score many responses to one instrument at once.

    Parameters
    ----------
    instrument
        An instrument id (looked up in ``library``, by default the shipped library) or an
        :class:`~alliance.instruments.Instrument`.
    responses
        One of

        * a DataFrame whose columns are item ids, with an optional ``id`` column that is echoed
          back (without one, the DataFrame's index is used);
        * a 2-D array whose columns are the instrument's scored items in order (or all its
          non-text items), NaN for a missing answer;
        * a sequence of mappings from item id to answer (``None`` for missing), each with an
          optional ``id``.

        Answers may be numbers or numeric strings (as read from a CSV file).
    library
        Where to look up an instrument id.

    Returns
    -------
    pandas.DataFrame
        One row per response, in input order, with columns ``id``, ``instrument``, ``method``,
        ``total`` (NaN when unscorable), ``subscales`` (a mapping per row), ``derived``,
        ``severity``, ``clinical`` (nullable boolean), ``flags`` (a tuple of str per row),
        ``prorated``, ``n_missing`` and ``error`` (``None`` or a message saying what to fix).

    Raises
    ------
    UnknownInstrument
        If the instrument id is not in the library.
    InvalidResponse
        If ``responses`` has the wrong shape (a problem with single answers is reported per
        row in ``error`` instead).

    Notes
    -----
    With :math:`x_{ij}` the (reverse-keyed: :math:`\\min_j + \\max_j - x_{ij}`) answer of row
    :math:`i` to item :math:`j`, :math:`A_i` the answered scored items and :math:`E_i` the
    expected ones (required items plus answered optional ones), the sum-scored total is

    .. math:: T_i = m \\cdot \\frac{|E_i|}{|A_i|} \\sum_{j \\in A_i} x_{ij}

    (mean substitution; :math:`|E_i| = |A_i|` when nothing is missing), rounded half up when
    prorated and the instrument's rule says so; :math:`m` is ``scoring.multiplier``. A
    mean-scored total is :math:`m \\cdot \\overline{x}_{A_i}`. Rows with
    :math:`|E_i| - |A_i| >` ``max_missing`` are unscorable. The severity band is the one whose
    lower edge is the largest not above the total (bands are inclusive ranges; a prorated,
    unrounded total between two bands belongs to the lower one).

    References
    ----------
    Each instrument's own rules and their sources are in its definition file, e.g. PHQ-9:
    Kroenke K, Spitzer RL, Williams JBW (2001). The PHQ-9: validity of a brief depression
    severity measure. *J Gen Intern Med* 16(9):606-613 (bands, item 9); NHS Data Dictionary,
    PHQ-9 (proration of up to two missing items).

    Examples
    --------
    >>> import alliance as al
    >>> rows = [
    ...     {"id": "a", **{f"phq9_{i}": 1 for i in range(1, 10)}},
    ...     {"id": "b", **{f"phq9_{i}": 2 for i in range(1, 9)}, "phq9_9": None},
    ...     {"id": "c", **{f"phq9_{i}": 0 for i in range(1, 10)}, "phq9_4": 5},
    ... ]
    >>> out = al.score("phq9", rows)
    >>> out["total"].tolist(), out["severity"].tolist(), out["prorated"].tolist()
    ([9.0, 18.0, nan], ['mild', 'moderately severe', None], [False, True, False])
    >>> out.loc[0, "flags"], out.loc[2, "error"]
    (('safety',), 'phq9_4: 5 is not an answer option (0, 1, 2, 3)')
    """
    inst = _resolve(instrument, library)
    plan = _plan(inst)
    ids, values, problems, unreadable = _read(plan, responses)
    batch = _score_matrix(plan, ids, values, problems, unreadable)
    return _frame(inst, batch)


def score_one(
    instrument: str | Instrument,
    answers: Mapping[str, float | str | None],
    *,
    id: Hashable | None = None,
    library: Mapping[str, Instrument] | None = None,
) -> Score:
    """Score one set of answers (e.g. a check-in), through the same code as :func:`score`.

    Parameters
    ----------
    instrument
        An instrument id or an :class:`~alliance.instruments.Instrument`.
    answers
        Item id to answer (``None`` or absent for a missing answer).
    id
        An identifier to carry into the result.
    library
        Where to look up an instrument id.

    Returns
    -------
    Score
        The score; ``error`` says why it could not be scored. Call
        :meth:`Score.raise_for_error` to turn an error into an exception.

    Examples
    --------
    >>> import alliance as al
    >>> s = al.score_one("phq9", {f"phq9_{i}": 2 for i in range(1, 10)})
    >>> s.total, s.severity, s.flags, s.clinical
    (18.0, 'moderately severe', ('safety',), True)
    >>> al.score_one("phq9", {"phq9_1": 1}).error
    '8 items missing (phq9_2, phq9_3, phq9_4, phq9_5, phq9_6, phq9_7, phq9_8, phq9_9); PHQ-9 allows at most 2'
    """
    inst = _resolve(instrument, library)
    plan = _plan(inst)
    ids, values, problems, unreadable = _read_records(plan, [answers], ids=[id])
    b = _score_matrix(plan, ids, values, problems, unreadable)
    return Score(
        id=id,
        instrument=inst.id,
        method=b.method,
        total=_opt(b.total[0]),
        subscales={k: _opt(v[0]) for k, v in b.subscales.items()},
        derived={k: _opt(v[0]) for k, v in b.derived.items()},
        severity=b.severity[0],
        clinical=None if math.isnan(b.clinical[0]) else bool(b.clinical[0]),
        flags=b.flags[0],
        prorated=bool(b.prorated[0]),
        n_missing=int(b.n_missing[0]),
        error=b.error[0],
    )


# ---------------------------------------------------------------------------------------------
# The plan: everything about an instrument that does not depend on the responses
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Plan:
    inst: Instrument
    columns: tuple[Item, ...]  # every non-text item, in definition order: the value matrix
    index: Mapping[str, int]  # item id -> column
    text_items: frozenset[str]
    scored: IntArray  # columns of scored items, in order
    scored_slice: slice | None  # the same as a slice when they are adjacent (a view, no copy)
    required: BoolArray  # per scored item
    reverse: BoolArray  # per column
    lo: FloatArray  # per column
    hi: FloatArray
    groups: tuple[tuple[slice | IntArray, Item], ...]  # columns validated together
    integer_valued: bool

    @classmethod
    def of(cls, inst: Instrument) -> _Plan:
        columns = tuple(it for it in inst.items if it.kind != "text")
        index = {it.id: j for j, it in enumerate(columns)}
        scored_ids = [it.id for it in inst.scored_items]
        lo = np.array([it.value_range[0] for it in columns], dtype=float)
        hi = np.array([it.value_range[1] for it in columns], dtype=float)
        scored = np.array([index[i] for i in scored_ids], dtype=np.intp)
        adjacent = scored.size > 0 and bool(np.all(np.diff(scored) == 1))
        integer = all(
            all(float(v).is_integer() for v in it.values)
            if it.kind == "choice"
            else (
                it.step is not None
                and float(it.step).is_integer()
                and float(it.min or 0).is_integer()
            )
            for it in columns
        )
        return cls(
            inst=inst,
            columns=columns,
            index=index,
            text_items=frozenset(it.id for it in inst.items if it.kind == "text"),
            scored=scored,
            scored_slice=slice(int(scored[0]), int(scored[-1]) + 1) if adjacent else None,
            required=np.array([it.required for it in inst.scored_items], dtype=bool),
            reverse=np.array([it.reverse for it in columns], dtype=bool),
            lo=lo,
            hi=hi,
            groups=_validation_groups(columns),
            integer_valued=integer,
        )

    @property
    def name(self) -> str:
        return self.inst.short_name


class _Same:
    """An instrument compared by identity (Instrument itself is not hashable)."""

    __slots__ = ("inst",)

    def __init__(self, inst: Instrument) -> None:
        self.inst = inst

    def __hash__(self) -> int:
        return id(self.inst)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.inst is self.inst


@lru_cache(maxsize=64)
def _plan_of(key: _Same) -> _Plan:
    return _Plan.of(key.inst)


def _plan(inst: Instrument) -> _Plan:
    """The plan of an instrument, memoised: a check-in should not rebuild it every time."""
    return _plan_of(_Same(inst))


def _validation_groups(columns: Sequence[Item]) -> tuple[tuple[slice | IntArray, Item], ...]:
    """Columns with the same rule (options, or range and step) are validated in one pass."""
    by_rule: dict[tuple[Any, ...], list[int]] = {}
    for j, it in enumerate(columns):
        key = (it.kind, it.values) if it.kind == "choice" else (it.kind, it.min, it.max, it.step)
        by_rule.setdefault(key, []).append(j)
    groups: list[tuple[slice | IntArray, Item]] = []
    for cols in by_rule.values():
        first = columns[cols[0]]
        if cols == list(range(cols[0], cols[-1] + 1)):
            groups.append((slice(cols[0], cols[-1] + 1), first))
        else:
            groups.append((np.array(cols, dtype=np.intp), first))
    return tuple(groups)


def _resolve(instrument: str | Instrument, library: Mapping[str, Instrument] | None) -> Instrument:
    if isinstance(instrument, Instrument):
        return instrument
    if library is not None:
        return library[instrument]
    return get_instrument(instrument)


# ---------------------------------------------------------------------------------------------
# Reading responses into a float matrix (one column per non-text item, NaN = not answered)
# ---------------------------------------------------------------------------------------------
# A problem found while reading or scoring: (row position, message).
_Problems: TypeAlias = list[tuple[int, str]]
# Cells that held something other than a number: (row, column). They are invalid answers, not
# missing ones, and their message is already in the problems.
_Cells: TypeAlias = list[tuple[int, int]]
_Read: TypeAlias = tuple[AnyArray, FloatArray, _Problems, _Cells]


def _read(plan: _Plan, responses: Responses) -> _Read:
    if isinstance(responses, pd.DataFrame):
        return _read_frame(plan, responses)
    if isinstance(responses, np.ndarray):
        return _read_array(plan, responses)
    if isinstance(responses, Sequence) and not isinstance(responses, (str, bytes)):
        if len(responses) > 0 and not isinstance(responses[0], Mapping):
            return _read_array(plan, responses)
        records = list(responses)
        ids = [r.get("id") if isinstance(r, Mapping) else None for r in records]
        return _read_records(plan, records, ids=ids)
    raise InvalidResponse(
        "responses must be a DataFrame, a 2-D array or a list of mappings from item id to "
        f"answer, not {type(responses).__name__}"
    )


def _read_records(
    plan: _Plan, records: Sequence[Mapping[str, Any]], ids: Sequence[Hashable | None]
) -> _Read:
    """Mappings are read directly (a check-in is one small mapping: no DataFrame needed)."""
    n = len(records)
    values = np.full((n, len(plan.columns)), np.nan, order="F")
    problems: _Problems = []
    unreadable: _Cells = []
    unknown: dict[str, str] = {}
    for r, rec in enumerate(records):
        if not isinstance(rec, Mapping):
            raise InvalidResponse(
                f"response {r}: expected a mapping from item id to answer, got {type(rec).__name__}"
            )
        for key, given in rec.items():
            name = str(key)
            if name == "id" or name in plan.text_items:
                continue
            number = _parse(given)
            j = plan.index.get(name)
            if j is None:
                if number is None or not math.isnan(number):  # a value under an unknown key
                    if name not in unknown:
                        unknown[name] = _unknown_item_message(plan, name)
                    problems.append((r, unknown[name]))
                continue
            if number is None:
                allowed = _allowed(plan.columns[j])
                problems.append((r, f"{name}: {given!r} is not a number ({allowed})"))
                unreadable.append((r, j))
            else:
                values[r, j] = number
    id_arr = np.empty(n, dtype=object)
    id_arr[:] = list(ids)
    return id_arr, values, problems, unreadable


def _parse(given: Any) -> float | None:
    """An answer as a float: NaN when not answered, ``None`` when it is not a number.

    The same reading as a CSV column's (:func:`_numeric_column`): blanks are not answered,
    numeric strings are numbers, booleans and other text are not.
    """
    if given is None or given is pd.NA:
        return math.nan
    if isinstance(given, (bool, np.bool_)):
        return None
    if isinstance(given, (int, float, np.integer, np.floating)):
        return float(given)
    if isinstance(given, str):
        text = given.strip()
        if not text:
            return math.nan
        if "_" in text:
            return None
        try:
            number = float(text)
        except ValueError:
            return None
        return None if math.isnan(number) else number
    return None


def _read_frame(plan: _Plan, frame: pd.DataFrame, ids: AnyArray | None = None) -> _Read:
    n = len(frame)
    if ids is None:
        if "id" in frame.columns:
            raw_ids = frame["id"].astype(object).to_numpy()
            ids = np.where(pd.isna(raw_ids), None, raw_ids)
        else:
            ids = frame.index.to_numpy()
    # Column-major: every step below works on whole columns, and sums across a row become
    # additions of contiguous columns.
    values = np.full((n, len(plan.columns)), np.nan, order="F")
    problems: _Problems = []
    unreadable: _Cells = []
    for col in frame.columns:
        name = str(col)
        if name == "id" or name in plan.text_items:
            continue
        series = frame[col]
        if name not in plan.index:
            message = _unknown_item_message(plan, name)
            problems.extend((int(r), message) for r in np.flatnonzero(_present(series)))
            continue
        j = plan.index[name]
        values[:, j] = _numeric_column(plan, name, series, problems, unreadable, j)
    return ids, values, problems, unreadable


def _read_array(plan: _Plan, data: npt.ArrayLike) -> _Read:
    arr = np.asarray(data)
    if arr.ndim != 2:
        raise InvalidResponse(
            f"a response array must be 2-D (one row per response), got {arr.ndim}-D"
        )
    n, width = arr.shape
    scored_ids = [plan.columns[j].id for j in plan.scored]
    all_ids = [it.id for it in plan.columns]
    if width == len(scored_ids):
        names = scored_ids
    elif width == len(all_ids):
        names = all_ids
    else:
        alternative = (
            f" or {len(all_ids)} ({_short_list(all_ids)})"
            if len(all_ids) != len(scored_ids)
            else ""
        )
        raise InvalidResponse(
            f"{plan.name} responses need {len(scored_ids)} columns "
            f"({_short_list(scored_ids)}){alternative}, got {width}"
        )
    if arr.dtype.kind not in "fiub":
        return _read_frame(plan, pd.DataFrame(arr, columns=names))
    ids: AnyArray = np.arange(n)
    # A column-major copy (scoring works in place; see _read_frame).
    if names == all_ids:
        values = np.array(arr, dtype=float, order="F")
    else:
        values = np.full((n, len(plan.columns)), np.nan, order="F")
        cols = [plan.index[i] for i in names]
        if cols == list(range(cols[0], cols[-1] + 1)):
            values[:, cols[0] : cols[-1] + 1] = arr
        else:
            values[:, cols] = arr
    return ids, values, [], []


def _text(series: pd.Series[Any]) -> pd.Series[Any]:
    """A column as stripped text (pandas' string dtype); blanks and NaN become missing."""
    text = series.astype("string").str.strip()
    return text.where(text.str.len() > 0)


def _present(series: pd.Series[Any]) -> BoolArray:
    """Cells holding an answer (NaN, None and blank strings are not answers)."""
    if pd.api.types.is_numeric_dtype(series.dtype):
        return series.notna().to_numpy(dtype=bool, copy=True)
    return _text(series).notna().to_numpy(dtype=bool, copy=True)


def _numeric_column(
    plan: _Plan,
    name: str,
    series: pd.Series[Any],
    problems: _Problems,
    unreadable: _Cells,
    j: int,
) -> FloatArray:
    if pd.api.types.is_numeric_dtype(series.dtype) and not pd.api.types.is_bool_dtype(series.dtype):
        out: FloatArray = series.to_numpy(dtype=float, na_value=np.nan)
        return out
    # Text (a CSV file read as strings) or mixed objects: vectorised string handling.
    text = _text(series)
    present = text.notna().to_numpy(dtype=bool, copy=True)
    numbers = pd.to_numeric(text, errors="coerce").to_numpy(dtype=float, na_value=np.nan, copy=True)
    allowed = _allowed(plan.columns[plan.index[name]])
    for r in np.flatnonzero(present & np.isnan(numbers)).tolist():  # only rows with a problem
        given = series.iloc[r]
        given = given.item() if isinstance(given, np.generic) else given
        problems.append((r, f"{name}: {given!r} is not a number ({allowed})"))
        unreadable.append((r, j))
    numbers[~present] = np.nan
    return numbers


# ---------------------------------------------------------------------------------------------
# The vectorised core
# ---------------------------------------------------------------------------------------------
def _score_matrix(
    plan: _Plan, ids: AnyArray, values: FloatArray, problems: _Problems, unreadable: _Cells
) -> _Batch:
    """Score a value matrix in place (``values`` is owned by the caller and overwritten)."""
    inst = plan.inst
    sc = inst.scoring
    n = values.shape[0]

    # 1. Critical items, on the answers as given: an out-of-range 5 on PHQ-9 item 9 still
    #    raises the flag (a safety flag errs on the side of review).
    flags = _critical_flags(plan, values)

    # 2. Validate every answer; an invalid one gives its row an error.
    absent = np.isnan(values)
    invalid = _validate(plan, values, absent, problems)
    if unreadable:  # an answer that is not a number is invalid, not missing
        if invalid is None:
            invalid = np.zeros(values.shape, dtype=bool)
        rows, cols = (list(v) for v in zip(*unreadable, strict=True))
        absent[rows, cols] = False
        invalid[rows, cols] = True

    # 3. Missing required items (not answered; an invalid answer is not "missing").
    absent_scored = (
        absent[:, plan.scored] if plan.scored_slice is None else absent[:, plan.scored_slice]
    )
    req_missing = absent_scored if plan.required.all() else absent_scored & plan.required
    n_missing = np.count_nonzero(req_missing, axis=1).astype(np.intp)

    if sc.method == "custom":
        if invalid is not None:
            values[invalid] = np.nan
        scored = values[:, plan.scored]
        total, severity, custom_flags, method = _custom(plan, scored, problems)
        prorated = np.zeros(n, dtype=bool)
        flags = _merge_flags(flags, custom_flags)
        subscales: dict[str, FloatArray] = {}
    else:
        method = METHOD
        # 4. Reverse keys, then answers that do not count (absent or invalid) become 0 so
        #    that every sum below is a plain sum.
        if plan.reverse.any():
            rev = np.flatnonzero(plan.reverse)
            values[:, rev] = (plan.lo[rev] + plan.hi[rev]) - values[:, rev]
        unusable = absent if invalid is None else absent | invalid
        np.copyto(values, 0.0, where=unusable)
        total, prorated = _total(plan, values, unusable, n_missing, req_missing, problems)
        subscales = _subscales(plan, values, unusable)
        severity = np.empty(0, dtype=object)

    error = _errors(n, problems)
    failed = np.zeros(n, dtype=bool)
    if problems:
        failed[[r for r, _ in problems]] = True
        total[failed] = np.nan
        prorated &= ~failed
        for arr in subscales.values():
            arr[failed] = np.nan
    if not plan.integer_valued:
        total = np.round(total, _DECIMALS)
    if sc.method == "custom":
        severity[failed] = None
    else:
        severity = _severity(inst, total)
    derived = {name: total * float(factor) for name, factor in sc.derived.items()}
    return _Batch(
        ids=ids,
        method=method,
        total=total,
        subscales=subscales,
        derived=derived,
        severity=severity,
        clinical=_clinical(inst, total),
        flags=flags,
        prorated=prorated,
        n_missing=n_missing,
        error=error,
    )


def _validate(
    plan: _Plan, values: FloatArray, absent: BoolArray, problems: _Problems
) -> BoolArray | None:
    """Cells holding an answer the item does not allow (``None`` when there are none)."""
    invalid: BoolArray | None = None
    for cols, it in plan.groups:
        block = values[:, cols]
        if it.kind == "choice":
            # isin flattens its input: hand it the transpose, which is C-contiguous.
            valid = np.isin(block.T, np.asarray(it.values, dtype=float)).T
        else:
            lo, hi = it.value_range
            valid = (block >= lo) & (block <= hi)
            if it.step:
                steps = (block - lo) / float(it.step)
                valid &= np.abs(steps - np.round(steps)) < 1e-6
        bad = ~valid & ~absent[:, cols]
        if not bad.any():
            continue
        if invalid is None:
            invalid = np.zeros(values.shape, dtype=bool)
        col_index = np.arange(values.shape[1])[cols]
        rows, where = np.nonzero(bad)
        for r, k in zip(rows.tolist(), where.tolist(), strict=True):
            j = int(col_index[k])
            invalid[r, j] = True
            problems.append((r, _invalid_message(plan.columns[j], float(values[r, j]))))
    return invalid


def _round_half_up(x: FloatArray) -> FloatArray:
    # The tiny offset keeps 12.4999999999 (binary noise on an exact .5) from rounding down.
    out: FloatArray = np.floor(x + 0.5 + 1e-9)
    return out


def _total(
    plan: _Plan,
    values: FloatArray,
    unusable: BoolArray,
    n_missing: IntArray,
    req_missing: BoolArray,
    problems: _Problems,
) -> tuple[FloatArray, BoolArray]:
    inst = plan.inst
    sc = inst.scoring
    rule = sc.proration
    if plan.scored_slice is not None:
        scored = values[:, plan.scored_slice]
        gone = unusable[:, plan.scored_slice]
    else:
        scored = values[:, plan.scored]
        gone = unusable[:, plan.scored]
    n_items = len(plan.scored)
    n_answered = n_items - np.count_nonzero(gone, axis=1)
    # Expected items: every required item, plus the optional ones that were answered.
    if plan.required.all():
        n_expected: npt.NDArray[np.int_] | int = n_items
    else:
        n_expected = int(plan.required.sum()) + np.count_nonzero(~gone & ~plan.required, axis=1)
    s = scored.sum(axis=1)

    limit = rule.max_missing if rule.method == "mean_substitute" else 0
    too_many = n_missing > limit
    nothing = n_answered == 0
    for r in np.flatnonzero(too_many & ~nothing).tolist():
        names = [plan.columns[plan.scored[k]].id for k in np.flatnonzero(req_missing[r])]
        problems.append(
            (
                r,
                f"{_n_items(len(names))} missing ({', '.join(names)}); "
                f"{plan.name} allows {_at_most(limit)}",
            )
        )
    problems.extend((r, "no items answered") for r in np.flatnonzero(nothing).tolist())

    prorated = (n_missing > 0) & ~too_many & ~nothing
    with np.errstate(invalid="ignore", divide="ignore"):
        if rule.scope == "subscale" and sc.subscales:
            total = _subscale_scope_total(plan, values, unusable, n_expected, problems)
        elif sc.method == "mean":
            total = s / n_answered
        else:
            # Mean substitution, on the (few) rows that need it.
            total = s
            short = np.flatnonzero(n_answered < n_expected)
            if short.size:
                expected = n_expected if isinstance(n_expected, int) else n_expected[short]
                total[short] = np.round(s[short] * expected / n_answered[short], _DECIMALS)
    if sc.multiplier != 1:
        total = total * float(sc.multiplier)
    if rule.round_total:
        rows = np.flatnonzero(prorated)
        total[rows] = _round_half_up(total[rows])
    bad = too_many | nothing
    if bad.any():
        total[bad] = np.nan
    return total, prorated


def _subscale_scope_total(
    plan: _Plan,
    values: FloatArray,
    unusable: BoolArray,
    n_expected: npt.NDArray[np.int_] | int,
    problems: _Problems,
) -> FloatArray:
    """Mean substitution within each subscale (e.g. OQ-45), then the sum or mean of all items."""
    inst = plan.inst
    rounding: Literal["item"] | None = "item" if inst.scoring.proration.round_total else None
    total = np.zeros(values.shape[0])
    for sub_id, cols, req, limit in _partition(plan):
        gone = unusable[:, cols]
        req_miss = gone & req
        n_req_miss = np.count_nonzero(req_miss, axis=1)
        answered = np.count_nonzero(~gone, axis=1)
        expected = int(req.sum()) + np.count_nonzero(~gone & ~req, axis=1)
        s = values[:, cols].sum(axis=1)
        if sub_id is not None:
            for r in np.flatnonzero(n_req_miss > limit).tolist():
                names = [plan.columns[cols[k]].id for k in np.flatnonzero(req_miss[r])]
                problems.append(
                    (
                        r,
                        f"subscale {sub_id}: {_n_items(len(names))} missing ({', '.join(names)}); "
                        f"{inst.short_name} allows {_at_most(limit)} per subscale",
                    )
                )
        total += _prorate(s, answered, expected, rounding=rounding)
    if inst.scoring.method == "mean":
        total = total / n_expected
    return total


def _prorate(
    s: FloatArray,
    answered: npt.NDArray[np.int_],
    expected: npt.NDArray[np.int_] | int,
    *,
    rounding: Literal["item", "total"] | None,
) -> FloatArray:
    """Fill the missing items of a sum with the mean of the answered ones.

    ``rounding="item"`` rounds the substituted mean half up before it is added (the OQ-45
    sheet: "replaced by the average of the remaining items, rounded"); ``"total"`` rounds the
    prorated sum.
    """
    out = s.copy()
    short = np.flatnonzero((answered < expected) & (answered > 0))
    if short.size == 0:
        return out
    exp = expected if isinstance(expected, int) else expected[short]
    k = exp - answered[short]
    mean = s[short] / answered[short]
    if rounding == "item":
        mean = _round_half_up(mean)
    filled = s[short] + mean * k
    if rounding == "total":
        filled = _round_half_up(filled)
    out[short] = np.round(filled, _DECIMALS)
    return out


def _partition(plan: _Plan) -> list[tuple[str | None, IntArray, BoolArray, int]]:
    """Scored items split into disjoint subscales plus the rest (for subscale-scope proration)."""
    inst = plan.inst
    req_of = {int(c): bool(r) for c, r in zip(plan.scored, plan.required, strict=True)}
    seen: set[int] = set()
    groups: list[tuple[str | None, IntArray, BoolArray, int]] = []
    for sub in inst.scoring.subscales:
        cols = [plan.index[i] for i in sub.items if plan.index.get(i, -1) in req_of]
        if seen & set(cols):
            raise InstrumentError(
                f"{inst.id}: proration scope 'subscale' needs subscales that do not share items"
            )
        seen |= set(cols)
        groups.append(
            (
                sub.id,
                np.array(cols, dtype=np.intp),
                np.array([req_of[c] for c in cols], dtype=bool),
                sub.max_missing,
            )
        )
    rest = [c for c in req_of if c not in seen]
    if rest:
        groups.append(
            (
                None,
                np.array(rest, dtype=np.intp),
                np.array([req_of[c] for c in rest], dtype=bool),
                inst.scoring.proration.max_missing,
            )
        )
    return groups


def _subscales(plan: _Plan, values: FloatArray, unusable: BoolArray) -> dict[str, FloatArray]:
    """Subscale scores with each subscale's own missing-item allowance (mean substitution)."""
    inst = plan.inst
    sc = inst.scoring
    rule = sc.proration
    rounding: Literal["item", "total"] | None = None
    if rule.round_total:
        rounding = "item" if rule.scope == "subscale" else "total"
    out: dict[str, FloatArray] = {}
    for sub in sc.subscales:
        cols = np.array([plan.index[i] for i in sub.items if i in plan.index], dtype=np.intp)
        req = np.array([plan.columns[c].required for c in cols], dtype=bool)
        gone = unusable[:, cols]
        n_req_miss = np.count_nonzero(gone & req, axis=1)
        answered = np.count_nonzero(~gone, axis=1)
        expected = int(req.sum()) + np.count_nonzero(~gone & ~req, axis=1)
        s = values[:, cols].sum(axis=1)
        val = _prorate(s, answered, expected, rounding=rounding)
        if sc.subscale_method == "mean":
            with np.errstate(invalid="ignore", divide="ignore"):
                val = val / expected
        val[(n_req_miss > sub.max_missing) | (answered == 0)] = np.nan
        if not plan.integer_valued:
            val = np.round(val, _DECIMALS)
        out[sub.id] = val
    return out


def _custom(
    plan: _Plan, scored: FloatArray, problems: _Problems
) -> tuple[FloatArray, ObjArray, list[tuple[int, tuple[str, ...]]], str]:
    """Run the instrument's named scorer (:mod:`alliance.instruments.custom`) on the answers."""
    from alliance.instruments.custom import get_scorer

    inst = plan.inst
    result = get_scorer(inst.scoring.custom or "")(inst, scored)
    n = scored.shape[0]
    total = np.array(result.total, dtype=float).reshape(n)
    severity = np.empty(n, dtype=object)
    severity[:] = list(result.severity)
    extra = [(r, tuple(fl)) for r, fl in enumerate(result.flags) if fl]
    for r, msg in enumerate(result.error):
        if msg:
            problems.append((r, str(msg)))
    return total, severity, extra, f"{METHOD}:{result.method}"


def _critical_flags(plan: _Plan, values: FloatArray) -> ObjArray:
    """Per-row tuples of flag names; rows share the same (immutable) tuples."""
    n = values.shape[0]
    code = np.zeros(n, dtype=np.intp)
    names: list[str] = []
    for rule in plan.inst.critical:
        j = plan.index.get(rule.item)
        if j is None:  # a text item is never critical
            continue
        col = values[:, j]
        with np.errstate(invalid="ignore"):
            hit = _OPS[rule.op](col, rule.value)
        if rule.flag not in names:
            names.append(rule.flag)
        code |= hit.astype(np.intp) << names.index(rule.flag)
    table = np.empty(1 << len(names), dtype=object)
    for c in range(table.size):
        table[c] = tuple(nm for k, nm in enumerate(names) if c >> k & 1)
    out: ObjArray = table[code]
    return out


_OPS: Mapping[str, Any] = MappingProxyType(
    {
        ">": np.greater,
        ">=": np.greater_equal,
        "==": np.equal,
        "<": np.less,
        "<=": np.less_equal,
    }
)


def _merge_flags(flags: ObjArray, extra: list[tuple[int, tuple[str, ...]]]) -> ObjArray:
    for r, fl in extra:
        flags[r] = tuple(dict.fromkeys((*flags[r], *fl)))
    return flags


def _severity(inst: Instrument, total: FloatArray) -> ObjArray:
    bands = sorted(inst.severity_bands, key=lambda b: b.min)
    if not bands:
        return np.empty(total.shape[0], dtype=object)
    mins = np.array([b.min for b in bands], dtype=float)
    top = max(b.max for b in bands)
    labels = np.empty(len(bands) + 1, dtype=object)
    labels[:-1] = [b.label for b in bands]
    if len(mins) <= 8:
        # A few passes of comparisons beat a binary search per row (NaN compares False).
        idx = np.full(total.shape[0], -1, dtype=np.intp)
        with np.errstate(invalid="ignore"):
            for m in mins:
                idx += total >= m
    else:
        idx = np.searchsorted(mins, total, side="right") - 1
    outside = np.isnan(total) | (idx < 0) | (total > top)
    idx[outside] = len(bands)
    out: ObjArray = labels[idx]
    return out


def _clinical(inst: Instrument, total: FloatArray) -> FloatArray:
    cut = inst.clinical_cutoff
    if cut is None:
        return np.full(total.shape[0], np.nan)
    with np.errstate(invalid="ignore"):
        hit = total >= cut.value if inst.direction == "higher_is_worse" else total <= cut.value
    out = hit.astype(float)
    out[np.isnan(total)] = np.nan
    return out


# ---------------------------------------------------------------------------------------------
# Messages
# ---------------------------------------------------------------------------------------------
def _errors(n: int, problems: _Problems) -> ObjArray:
    """One message per row with problems (several problems joined by '; ')."""
    error = np.empty(n, dtype=object)
    per_row: dict[int, list[str]] = {}
    for r, msg in problems:
        per_row.setdefault(r, []).append(msg)
    for r, msgs in per_row.items():
        if len(msgs) > 1 and "no items answered" in msgs:  # says nothing the others do not
            msgs = [m for m in msgs if m != "no items answered"]
        error[r] = "; ".join(dict.fromkeys(msgs))
    return error


def _n_items(k: int) -> str:
    return f"{k} item" if k == 1 else f"{k} items"


def _at_most(limit: int) -> str:
    return "no missing items" if limit == 0 else f"at most {limit}"


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else f"{v:g}"


def _allowed(it: Item) -> str:
    if it.kind == "choice":
        return "answer options " + ", ".join(_num(v) for v in it.values)
    lo, hi = it.value_range
    step = f" in steps of {_num(it.step)}" if it.step else ""
    return f"a number from {_num(lo)} to {_num(hi)}{step}"


def _invalid_message(it: Item, value: float) -> str:
    if it.kind == "choice":
        opts = ", ".join(_num(v) for v in it.values)
        return f"{it.id}: {_num(value)} is not an answer option ({opts})"
    lo, hi = it.value_range
    if math.isfinite(value) and lo <= value <= hi:
        return (
            f"{it.id}: {_num(value)} is not on the scale "
            f"({_num(lo)} to {_num(hi)} in steps of {_num(it.step or 1)})"
        )
    return f"{it.id}: {_num(value)} is outside the scale ({_num(lo)} to {_num(hi)})"


def _short_list(ids: Sequence[str]) -> str:
    if len(ids) <= 6:
        return ", ".join(ids)
    return f"{ids[0]}, {ids[1]}, …, {ids[-1]}"


def _unknown_item_message(plan: _Plan, name: str) -> str:
    known = [it.id for it in plan.inst.items]
    hint = difflib.get_close_matches(name, known, n=1)
    did_you_mean = f"did you mean {hint[0]}? " if hint else ""
    return f"unknown item {name!r} ({did_you_mean}{plan.name} items: {_short_list(known)})"


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------
def _opt(v: float) -> float | None:
    return None if math.isnan(v) else float(v)


def _mappings(arrays: Mapping[str, FloatArray], n: int) -> ObjArray:
    out = np.empty(n, dtype=object)
    if not arrays:
        out.fill(_EMPTY)
        return out
    names = list(arrays)
    cols = [np.where(np.isnan(a), None, a).tolist() for a in arrays.values()]
    out[:] = [dict(zip(names, vals, strict=True)) for vals in zip(*cols, strict=True)]
    return out


def _frame(inst: Instrument, b: _Batch) -> pd.DataFrame:
    n = b.total.shape[0]
    clinical = pd.arrays.BooleanArray(b.clinical == 1.0, np.isnan(b.clinical))
    constant = np.zeros(n, dtype=np.int8)
    data: dict[str, Any] = {
        "id": pd.Series(np.array(b.ids, dtype=b.ids.dtype if b.ids.dtype.kind in "iu" else object)),
        "instrument": pd.Categorical.from_codes(constant, categories=pd.Index([inst.id])),
        "method": pd.Categorical.from_codes(constant, categories=pd.Index([b.method])),
        "total": b.total,
        "subscales": pd.Series(_mappings(b.subscales, n), dtype=object, copy=False),
        "derived": pd.Series(_mappings(b.derived, n), dtype=object, copy=False),
        "severity": pd.Series(b.severity, dtype=object, copy=False),
        "clinical": clinical,
        "flags": pd.Series(b.flags, dtype=object, copy=False),
        "prorated": b.prorated,
        "n_missing": b.n_missing.astype(np.int64),
        "error": pd.Series(b.error, dtype=object, copy=False),
    }
    # The arrays are fresh and owned here: no copy, no consolidation into blocks.
    return pd.DataFrame(data, copy=False)
