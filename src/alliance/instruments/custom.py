"""Scorers for instruments whose score is a rule rather than a sum.

An instrument with ``scoring: {method: custom, custom: <name>}`` is scored by
``SCORERS[<name>]``. Every scorer has the same signature::

    scorer(instrument, values) -> CustomScores

where ``values`` is an ``n_responses x n_scored_items`` float array in the order of
``instrument.scored_items`` (``NaN`` = not answered). Scorers are pure, vectorised functions:
one call scores every response, no state is kept between calls.

The vectorised scorer in :mod:`alliance.scoring` looks the name up here; adding a rule-based
instrument means adding one function and one entry to :data:`SCORERS` (see
``docs/instruments.md``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from alliance.errors import InstrumentError

if TYPE_CHECKING:
    from alliance.instruments.schema import Instrument

__all__ = ["SCORERS", "CustomScores", "Scorer", "get_scorer", "score_phq_panic"]

FloatArray = npt.NDArray[np.float64]
ObjectArray = npt.NDArray[np.object_]


@dataclass(frozen=True)
class CustomScores:
    """What a custom scorer returns, one entry per response (row).

    Attributes
    ----------
    total
        The score (``NaN`` when the response cannot be scored).
    severity
        The category label, or ``None`` when unscorable.
    flags
        The flags raised by each response (an empty tuple when none).
    error
        Why a response could not be scored, or ``None``.
    method
        Stable identifier of the rule, stored with results.
    """

    total: FloatArray
    severity: ObjectArray
    flags: list[tuple[str, ...]]
    error: ObjectArray
    method: str


Scorer = Callable[["Instrument", FloatArray], CustomScores]


def _as_matrix(instrument: Instrument, values: npt.ArrayLike) -> FloatArray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr.reshape(1, -1)
    n_items = len(instrument.scored_items)
    if arr.ndim != 2 or arr.shape[1] != n_items:
        raise InstrumentError(
            f"{instrument.id}: expected an array of shape (n, {n_items}) in the order of "
            f"scored_items, got shape {arr.shape}"
        )
    return arr


# -- PHQ panic module ---------------------------------------------------------------------------

PHQ_PANIC_METHOD = "phq_panic_spitzer1999"
_PANIC_INITIAL = 4  # 3a (gate) and 3b-d
_PANIC_SYMPTOMS = 11  # 4a-k


def score_phq_panic(instrument: Instrument, values: npt.ArrayLike) -> CustomScores:
    """Score the PHQ panic module (gate question, 3 follow-ups, 11 attack symptoms).

    Parameters
    ----------
    instrument
        The ``phq_panic`` definition: 15 scored yes/no items (0 = no, 1 = yes) in the form's
        order, items 1-4 the initial questions (item 1 the gate), items 5-15 the symptoms.
    values
        ``n x 15`` array of 0/1 answers, ``NaN`` where unanswered.

    Returns
    -------
    CustomScores
        ``total`` = number of the 11 attack symptoms answered yes (0 when the gate is "no");
        ``severity`` = ``"high"``, ``"moderate"`` or ``"low"``; ``flags`` contains
        ``"panic_syndrome"`` for a high result.

    Notes
    -----
    With ``q`` the four initial answers and ``s`` the number of symptoms endorsed:

    * high (PHQ "panic syndrome") = ``q1 = q2 = q3 = q4 = yes`` and ``s >= 4``;
    * moderate = ``q1 = yes`` and at least one of ``q2..q4`` yes and ``s >= 3`` (and not high);
    * low = gate answered "no", or neither rule met.

    The form skips every other question when the gate is "no", so such a response is scored
    (low, total 0) whatever the other items hold. When the gate is "yes" all 14 follow-up
    answers are needed: the PHQ gives no proration rule, so a response with any of them
    missing is unscorable. A gate left unanswered is unscorable. Answers other than 0 or 1
    make the response unscorable.

    The "high" rule is the PHQ's panic-syndrome algorithm (Spitzer, Kroenke & Williams 1999);
    the three-level low/moderate/high reading is the table of Smith et al. (Essentials of
    Psychiatry in Primary Care, Table 5-10, "data from Spitzer et al."). "3 of the subsequent
    questions" in that table is read as *at least* three.

    References
    ----------
    Spitzer RL, Kroenke K, Williams JBW. Validation and utility of a self-report version of
    PRIME-MD: the PHQ primary care study. JAMA. 1999;282(18):1737-1744.

    Examples
    --------
    >>> import numpy as np
    >>> import alliance as al
    >>> inst = al.instrument("phq_panic")
    >>> rows = np.array([
    ...     [1, 1, 1, 1] + [1, 1, 1, 1] + [0] * 7,   # all initial yes, 4 symptoms
    ...     [1, 1, 0, 0] + [1, 1, 1] + [0] * 8,       # gate + one other yes, 3 symptoms
    ...     [0] + [np.nan] * 14,                      # gate no: the rest is skipped
    ... ], dtype=float)
    >>> res = score_phq_panic(inst, rows)
    >>> res.total.tolist(), res.severity.tolist(), res.flags
    ([4.0, 3.0, 0.0], ['high', 'moderate', 'low'], [('panic_syndrome',), (), ()])
    """
    arr = _as_matrix(instrument, values)
    n = arr.shape[0]
    expected = _PANIC_INITIAL + _PANIC_SYMPTOMS
    if arr.shape[1] != expected:
        raise InstrumentError(f"{instrument.id}: the PHQ panic rule needs {expected} items")
    total = np.full(n, np.nan)
    severity = np.full(n, None, dtype=object)
    error = np.full(n, None, dtype=object)
    flags: list[tuple[str, ...]] = [() for _ in range(n)]

    answered = ~np.isnan(arr)
    valid_values = np.where(answered, (arr == 0) | (arr == 1), True)
    bad_value = ~valid_values.all(axis=1)
    gate = arr[:, 0]
    gate_missing = np.isnan(gate)
    gate_no = gate == 0
    follow_missing = (~answered[:, 1:]).sum(axis=1)

    initial_yes = np.nansum(arr[:, 1:_PANIC_INITIAL] == 1, axis=1)
    symptoms = np.nansum(arr[:, _PANIC_INITIAL:] == 1, axis=1).astype(np.float64)
    gate_yes = gate == 1
    high = gate_yes & (initial_yes == _PANIC_INITIAL - 1) & (symptoms >= 4)
    moderate = gate_yes & (initial_yes >= 1) & (symptoms >= 3) & ~high

    complete = gate_yes & (follow_missing == 0)
    ok_no = gate_no & ~bad_value
    ok_yes = complete & ~bad_value
    total[ok_no] = 0.0
    severity[ok_no] = "low"
    total[ok_yes] = symptoms[ok_yes]
    severity[ok_yes] = np.where(high[ok_yes], "high", np.where(moderate[ok_yes], "moderate", "low"))
    for i in np.flatnonzero(ok_yes & high):
        flags[i] = ("panic_syndrome",)

    error[gate_yes & (follow_missing > 0)] = (
        "PHQ panic: the gate question is 'yes' but follow-up answers are missing"
    )
    error[gate_missing] = "PHQ panic: the gate question (item 1) is not answered"
    error[bad_value] = "PHQ panic: answers must be 0 (no) or 1 (yes)"
    return CustomScores(
        total=total, severity=severity, flags=flags, error=error, method=PHQ_PANIC_METHOD
    )


SCORERS: Mapping[str, Scorer] = MappingProxyType({"phq_panic": score_phq_panic})
"""Registry of custom scorers, by the name used in ``scoring.custom``."""


def get_scorer(name: str) -> Scorer:
    """The custom scorer registered under ``name``.

    Raises
    ------
    InstrumentError
        If no scorer has that name.
    """
    try:
        return SCORERS[name]
    except KeyError:
        known = ", ".join(sorted(SCORERS))
        raise InstrumentError(f"no custom scorer named {name!r}; known: {known}") from None
