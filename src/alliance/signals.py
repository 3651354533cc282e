"""Per-administration signals: is this client on track, and is anyone unsafe?

Every administration of an outcome measure gets

* ``safety`` — passed through from the scorer's critical-item flags (e.g. PHQ-9 item 9 > 0;
  see :func:`alliance.score`); it never depends on the recovery method;
* a **recovery signal** — ``off_track``, ``at_risk``, ``on_track``, ``improved``,
  ``recovered`` or ``not_enough_data`` — with the identifier of the method that produced it
  and a human reason ("8 points above the expected 11 at session 4; outside the 90th
  percentile band (up to 16.5)").

Two methods (``docs/algorithms/signals.md``):

``empirical_etr`` — needs an expected-treatment-response model (:mod:`alliance.recovery`)
    The score is compared with the predictive distribution of scores of clients with the same
    intake at that session (Finch, Lambert & Schaalje 2001; Lutz et al. 2006). Beyond the
    ``off_track_percentile`` on the worse side → ``off_track``; beyond the
    ``at_risk_percentile`` → ``at_risk``; otherwise reliable improvement from intake gives
    ``recovered`` / ``improved`` and anything else is ``on_track``.
``rational_reliable_change`` — needs no calibration, so a new practice has signals on day one
    Reliable worsening from intake → ``off_track``; recovered / improved by Jacobson & Truax's
    criteria (via :func:`alliance.reliable_change` and the instrument's norms or published
    reliable-change points) → ``recovered`` / ``improved``; no reliable improvement by
    ``at_risk_session`` → ``at_risk``; otherwise ``on_track``.

The session-1 score is the intake: it gets ``not_enough_data``, as does any session of a client
without an intake score.

>>> import alliance as al
>>> out = al.course_signals([1, 2, 3, 4], [18, 17, 19, 24], "phq9")
>>> [(s.signal, s.method) for s in out][1:]
[('on_track', 'rational_reliable_change'), ('on_track', 'rational_reliable_change'), ('off_track', 'rational_reliable_change')]
>>> out[3].reason
'reliably worse than at intake: 6 points above the intake score 18 (reliable change: 6 points)'
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy.stats import norm

from alliance.change import MissingParameter, reliable_change
from alliance.change import _as_array as _rc_as_array
from alliance.change import _compute as _rc_compute
from alliance.change import _resolve as _rc_resolve
from alliance.errors import AllianceError, InsufficientData, InvalidParameter
from alliance.instruments.registry import get as get_instrument
from alliance.instruments.schema import Instrument
from alliance.recovery import ETRModel, fit_etr, prepare_course_data

__all__ = [
    "METHODS",
    "SIGNALS",
    "HitRates",
    "SignalResult",
    "SignalRules",
    "SignalValidation",
    "course_signals",
    "signals_frame",
    "validate_signals",
]

#: The recovery signals, from worst to best, then "no signal yet".
SIGNALS: tuple[str, ...] = (
    "off_track",
    "at_risk",
    "on_track",
    "improved",
    "recovered",
    "not_enough_data",
)

#: Stable identifiers of the signal methods.
METHOD_EMPIRICAL = "empirical_etr"
METHOD_RATIONAL = "rational_reliable_change"
METHODS: tuple[str, ...] = (METHOD_EMPIRICAL, METHOD_RATIONAL)

Direction = Literal["higher_is_worse", "higher_is_better"]
ProgressCallback = Callable[[int, int, str], None]


@dataclass(frozen=True)
class SignalRules:
    """The configurable parts of the signal rules (immutable; derive variants with ``replace``).

    Parameters
    ----------
    off_track_percentile : float, default 90
        ``empirical_etr``: a score worse than this percentile of the predictive distribution
        (the 90th when higher is worse, the 10th when higher is better) is ``off_track``. The
        exact tolerance used by the OQ system (Finch et al. 2001) was not verified; 10th/90th
        percentile bands are how it is commonly described (SCIENCE.md B2, [UNVERIFIED]).
    at_risk_percentile : float, default 75
        ``empirical_etr``: worse than this percentile (but not off track) is ``at_risk``. A
        heuristic with no published source.
    at_risk_session : int, default 4
        ``rational_reliable_change``: from this session on, a client who has not reliably
        improved is ``at_risk``. A heuristic with no published source (Lutz et al. 2006
        describe their rational rule only as based on clinically significant change).
    change_options : tuple of (name, value) pairs
        Keyword arguments for :func:`alliance.reliable_change` (e.g. ``(("threshold", 5),)`` or
        ``(("reliability", 0.9), ("sd", 6.0))``); by default the instrument's norms decide.
    """

    off_track_percentile: float = 90.0
    at_risk_percentile: float = 75.0
    at_risk_session: int = 4
    change_options: tuple[tuple[str, Any], ...] = ()

    def __post_init__(self) -> None:
        for name in ("off_track_percentile", "at_risk_percentile"):
            v = getattr(self, name)
            if not 50.0 < v < 100.0:
                raise InvalidParameter(f"{name} must lie between 50 and 100, got {v!r}.")
        if self.at_risk_percentile > self.off_track_percentile:
            raise InvalidParameter("at_risk_percentile cannot exceed off_track_percentile.")
        if self.at_risk_session < 2:
            raise InvalidParameter("at_risk_session must be 2 or later (session 1 is the intake).")
        if isinstance(self.change_options, Mapping):
            object.__setattr__(self, "change_options", tuple(self.change_options.items()))


@dataclass(frozen=True)
class SignalResult:
    """The signal for one administration.

    Attributes
    ----------
    session : float
    score : float
    signal : str
        One of :data:`SIGNALS`.
    method : str
        ``empirical_etr`` or ``rational_reliable_change``.
    reason : str
        A sentence a clinician can read.
    safety : bool
        Whether the scorer raised the ``safety`` flag for this administration.
    flags : tuple of str
        All critical-item flags passed in for this administration.
    intake : float or None
        The client's session-1 score.
    change : float or None
        ``score − intake`` in raw points.
    reliable_change : float or None
        The reliable-change threshold in points used for improved/worse.
    expected : float or None
        ``empirical_etr``: the expected score at this session for this intake.
    at_risk_limit, off_track_limit : float or None
        ``empirical_etr``: the worse-side percentiles the score was compared with.
    model : str or None
        ``empirical_etr``: the ETR method of the model (e.g. ``loglinear_intake``).
    """

    session: float
    score: float
    signal: str
    method: str
    reason: str
    safety: bool = False
    flags: tuple[str, ...] = ()
    intake: float | None = None
    change: float | None = None
    reliable_change: float | None = None
    expected: float | None = None
    at_risk_limit: float | None = None
    off_track_limit: float | None = None
    model: str | None = None


# --------------------------------------------------------------------------------------------
# Core (vectorised over administrations)
# --------------------------------------------------------------------------------------------


def _fmt(x: float) -> str:
    """A number for a sentence: whole numbers without decimals, else one decimal.

    Rounded to one decimal as NumPy rounds (``rint(10·x) / 10``: 0.35 → 0.4, where Python's
    ``round(0.35, 1)`` gives 0.3), for plain floats and NumPy scalars alike, so that a reason
    reads the same whichever path computed it.
    """
    r = round(x * 10.0) / 10
    if r == 0:
        r = math.copysign(0.0, x)  # rint keeps the sign of zero: -0.04 reads "-0"
    return f"{r:.0f}" if abs(r - round(r)) < 1e-9 else f"{r:.1f}"


def _points(x: float) -> str:
    """``1 point``, ``2.5 points``."""
    return f"{_fmt(x)} point" if _fmt(x) == "1" else f"{_fmt(x)} points"


def _ordinal(p: float) -> str:
    n = round(p)
    if abs(p - n) > 1e-9:
        return f"{p:g}th"
    suffix = "th" if 10 <= n % 100 <= 20 else {1: "st", 2: "nd", 3: "rd"}.get(n % 10, "th")
    return f"{n}{suffix}"


def _resolve_instrument(instrument: str | Instrument | None) -> Instrument | None:
    if instrument is None or isinstance(instrument, Instrument):
        return instrument
    return get_instrument(str(instrument))


def _resolve_method(method: str, model: ETRModel | None) -> str:
    if method == "auto":
        return METHOD_EMPIRICAL if model is not None else METHOD_RATIONAL
    if method not in METHODS:
        raise InvalidParameter(f"unknown signal method {method!r}; use auto, {', '.join(METHODS)}.")
    if method == METHOD_EMPIRICAL and model is None:
        raise InvalidParameter(
            "the empirical method needs an expected-recovery model (fit one with "
            "alliance.fit_etr or `alliance calibrate`); use the rational method without one."
        )
    return method


def _direction(inst: Instrument | None, model: ETRModel | None, direction: str | None) -> Direction:
    candidates = [d for d in (direction, inst.direction if inst else None) if d]
    chosen = candidates[0] if candidates else (model.direction if model else "higher_is_worse")
    if chosen not in ("higher_is_worse", "higher_is_better"):
        raise InvalidParameter("direction must be higher_is_worse or higher_is_better.")
    if model is not None and model.direction != chosen:
        raise InvalidParameter(
            f"the model was fitted for {model.direction} scores but the instrument is {chosen}."
        )
    return chosen  # type: ignore[return-value]


def _change(
    inst: Instrument | None,
    direction: Direction,
    intake: NDArray[np.float64],
    score: NDArray[np.float64],
    rules: SignalRules,
) -> pd.DataFrame:
    options = dict(rules.change_options)
    options.setdefault("direction", direction)
    try:
        return reliable_change(inst, intake, score, **options)
    except MissingParameter as exc:
        raise _missing_change(exc) from exc


def _missing_change(exc: MissingParameter) -> InvalidParameter:
    return InvalidParameter(
        f"signals need reliable change from intake: {exc} Pass it in "
        "SignalRules(change_options=...) (e.g. threshold=<points>)."
    )


#: The options of :func:`alliance.reliable_change` that only choose its parameters; with any
#: other option (``ids``, ``library``, a misspelt name) the fast path defers to the general one.
_CHANGE_PARAMETERS = frozenset(
    {
        "method",
        "reliability",
        "sd",
        "sd_post",
        "mean_pre",
        "mean_post",
        "r_prepost",
        "clinical_mean",
        "clinical_sd",
        "functional_mean",
        "functional_sd",
        "cutoff",
        "direction",
        "threshold",
    }
)

#: ``(category, threshold, cutoff)`` per administration: what the rules need from reliable change.
_ChangeColumns = tuple[NDArray[np.object_], NDArray[np.float64], NDArray[np.float64]]
_ChangeFn = Callable[
    [Instrument | None, Direction, NDArray[np.float64], NDArray[np.float64], SignalRules],
    _ChangeColumns,
]


def _change_columns(
    inst: Instrument | None,
    direction: Direction,
    intake: NDArray[np.float64],
    score: NDArray[np.float64],
    rules: SignalRules,
) -> _ChangeColumns:
    """The general path: the columns of :func:`alliance.reliable_change`'s DataFrame."""
    rc = _change(inst, direction, intake, score, rules)
    return (
        rc["category"].to_numpy(object),
        rc["threshold"].to_numpy(float),
        rc["cutoff"].to_numpy(float),
    )


def _change_columns_fast(
    inst: Instrument | None,
    direction: Direction,
    intake: NDArray[np.float64],
    score: NDArray[np.float64],
    rules: SignalRules,
) -> _ChangeColumns:
    """The same columns without building the DataFrame (one client's course).

    :func:`alliance.reliable_change` is its steps ``_as_array`` → ``_resolve`` → ``_compute``
    followed by building a DataFrame; this runs the same steps and skips the last.
    """
    options = dict(rules.change_options)
    options.setdefault("direction", direction)
    if not options.keys() <= _CHANGE_PARAMETERS:
        return _change_columns(inst, direction, intake, score, rules)
    try:
        pre = _rc_as_array(intake, "pre")
        post = _rc_as_array(score, "post")
        get = options.get
        params = _rc_resolve(
            inst,
            pre,
            post,
            method=get("method"),
            reliability=get("reliability"),
            sd=get("sd"),
            sd_post=get("sd_post"),
            mean_pre=get("mean_pre"),
            mean_post=get("mean_post"),
            r_prepost=get("r_prepost"),
            clinical_mean=get("clinical_mean"),
            clinical_sd=get("clinical_sd"),
            functional_mean=get("functional_mean"),
            functional_sd=get("functional_sd"),
            cutoff=get("cutoff"),
            direction=get("direction"),
            threshold=get("threshold"),
        )
        cols = _rc_compute(params, pre, post)
    except MissingParameter as exc:
        raise _missing_change(exc) from exc
    cutoff = np.full(pre.size, np.nan if params.cutoff is None else params.cutoff)
    category: NDArray[np.object_] = cols["category"]
    threshold: NDArray[np.float64] = np.asarray(cols["threshold"], dtype=float)
    return category, threshold, cutoff


@lru_cache(maxsize=64)
def _z(percentile: float) -> float:
    """``Φ⁻¹(percentile / 100)`` (a pure function of its argument, so it is memoised)."""
    return float(norm.ppf(percentile / 100.0))


def _classify_arrays(
    session: NDArray[np.float64],
    score: NDArray[np.float64],
    intake: NDArray[np.float64],
    inst: Instrument | None,
    model: ETRModel | None,
    method: str,
    rules: SignalRules,
    direction: Direction,
    change: _ChangeFn,
) -> dict[str, Any]:
    """Signals for administrations given as arrays (``intake`` NaN where there is none).

    Returns the columns ``signal`` and ``reason`` (object arrays), ``change``,
    ``reliable_change``, ``expected``, ``at_risk_limit``, ``off_track_limit`` (float arrays) and
    ``model`` (one value). The rows are classified in plain Python over lists: for tens of
    administrations that is faster than any array trick, and the text needs a loop anyway.
    """
    n = session.size
    worse_sign = 1.0 if direction == "higher_is_worse" else -1.0
    up, down = ("above", "below") if direction == "higher_is_worse" else ("below", "above")

    usable = ~np.isnan(intake) & (session > 1)
    signal = np.full(n, "not_enough_data", dtype=object)
    reason = np.where(
        session <= 1,
        "intake (session 1): the baseline for later signals",
        "no intake (session 1) score to compare with",
    ).astype(object)
    out: dict[str, Any] = {
        "signal": signal,
        "reason": reason,
        "change": score - intake,
        "reliable_change": np.full(n, np.nan),
        "expected": np.full(n, np.nan),
        "at_risk_limit": np.full(n, np.nan),
        "off_track_limit": np.full(n, np.nan),
        "model": model.method if (model is not None and method == METHOD_EMPIRICAL) else None,
    }
    if not usable.any():
        return out

    intake_u = intake[usable]
    score_u = score[usable]
    category_a, threshold_a, cutoff_a = change(inst, direction, intake_u, score_u, rules)
    category: list[Any] = category_a.tolist()
    threshold: list[float] = threshold_a.tolist()
    cutoff: list[float] = cutoff_a.tolist()
    delta: list[float] = (score_u - intake_u).tolist()
    base: list[float] = intake_u.tolist()
    s_use: list[float] = session[usable].tolist()
    m = len(s_use)
    sig: list[str] = ["on_track"] * m
    why: list[str] = [""] * m

    def improvement_reason(i: int) -> str:
        text = (
            f"{_points(abs(delta[i]))} {down} the intake score {_fmt(base[i])} "
            f"(reliable change: {_points(threshold[i])})"
        )
        if category[i] == "recovered":
            return f"recovered: {text}, now {down} the clinical cutoff {_fmt(cutoff[i])}"
        return f"reliably improved: {text}"

    if method == METHOD_EMPIRICAL:
        if model is None:  # pragma: no cover - _resolve_method guarantees a model
            raise InvalidParameter("the empirical method needs a model")
        mean_a, var = model._evaluate(session[usable], intake_u)
        sd = np.sqrt(var)
        z_off = _z(rules.off_track_percentile)
        z_risk = _z(rules.at_risk_percentile)
        off_limit_a = mean_a + worse_sign * z_off * sd
        risk_limit_a = mean_a + worse_sign * z_risk * sd
        excess: list[float] = (worse_sign * (score_u - mean_a)).tolist()  # > 0: worse
        off: list[bool] = (worse_sign * (score_u - off_limit_a) > 0).tolist()
        risk: list[bool] = (worse_sign * (score_u - risk_limit_a) > 0).tolist()
        mean: list[float] = mean_a.tolist()
        off_limit: list[float] = off_limit_a.tolist()
        risk_limit: list[float] = risk_limit_a.tolist()
        off_pct = _ordinal(rules.off_track_percentile)
        risk_pct = _ordinal(rules.at_risk_percentile)
        for i in range(m):
            lead = (
                f"{_points(abs(excess[i]))} {up if excess[i] > 0 else down} the expected "
                f"{_fmt(mean[i])} at session {_fmt(s_use[i])}"
            )
            if abs(excess[i]) < 0.05:
                lead = f"at the expected {_fmt(mean[i])} at session {_fmt(s_use[i])}"
            if off[i]:
                sig[i] = "off_track"
                why[i] = (
                    f"{lead}; outside the {off_pct} percentile band (limit {_fmt(off_limit[i])})"
                )
            elif risk[i]:
                sig[i] = "at_risk"
                why[i] = (
                    f"{lead}; beyond the {risk_pct} percentile ({_fmt(risk_limit[i])}), within "
                    f"the {off_pct} ({_fmt(off_limit[i])})"
                )
            elif category[i] in ("recovered", "improved"):
                sig[i] = category[i]
                why[i] = f"{improvement_reason(i)}; {lead}"
            else:
                sig[i] = "on_track"
                why[i] = f"{lead}; within the expected range"
        out["expected"][usable] = mean_a
        out["at_risk_limit"][usable] = risk_limit_a
        out["off_track_limit"][usable] = off_limit_a
    else:
        for i in range(m):
            if category[i] == "deteriorated":
                sig[i] = "off_track"
                why[i] = (
                    f"reliably worse than at intake: {_points(abs(delta[i]))} {up} the "
                    f"intake score {_fmt(base[i])} (reliable change: "
                    f"{_points(threshold[i])})"
                )
            elif category[i] in ("recovered", "improved"):
                sig[i] = category[i]
                why[i] = improvement_reason(i)
            elif s_use[i] >= rules.at_risk_session:
                sig[i] = "at_risk"
                side = down if worse_sign * delta[i] < 0 else up
                moved = (
                    "no change from intake"
                    if delta[i] == 0
                    else f"{_points(abs(delta[i]))} {side} intake"
                )
                why[i] = (
                    f"no reliable improvement by session {_fmt(s_use[i])}: {moved}, "
                    f"{_fmt(threshold[i])} needed"
                )
            else:
                sig[i] = "on_track"
                side = down if worse_sign * delta[i] < 0 else up
                moved = "no change" if delta[i] == 0 else f"{_points(abs(delta[i]))} {side} intake"
                why[i] = (
                    f"session {_fmt(s_use[i])}: {moved}, not yet a reliable change "
                    f"({_fmt(threshold[i])} points)"
                )
    signal[usable] = sig
    reason[usable] = why
    out["reliable_change"][usable] = threshold_a
    return out


def _classify(
    frame: pd.DataFrame,
    inst: Instrument | None,
    model: ETRModel | None,
    method: str,
    rules: SignalRules,
    direction: Direction,
) -> pd.DataFrame:
    """Signals for rows with columns session, score, intake (NaN without an intake)."""
    cols = _classify_arrays(
        frame["session"].to_numpy(float),
        frame["score"].to_numpy(float),
        frame["intake"].to_numpy(float),
        inst,
        model,
        method,
        rules,
        direction,
        _change_columns,
    )
    return pd.DataFrame(
        {
            "signal": cols["signal"],
            "method": method,
            "reason": cols["reason"],
            "change": cols["change"],
            "reliable_change": cols["reliable_change"],
            "expected": cols["expected"],
            "at_risk_limit": cols["at_risk_limit"],
            "off_track_limit": cols["off_track_limit"],
            "model": cols["model"],
        },
        index=frame.index,
    )


# --------------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------------


def course_signals(
    sessions: ArrayLike,
    scores: ArrayLike,
    instrument: str | Instrument | None = None,
    model: ETRModel | None = None,
    method: str = "auto",
    *,
    flags: Sequence[Sequence[str]] | None = None,
    rules: SignalRules | None = None,
    direction: str | None = None,
) -> list[SignalResult]:
    """Signals for each administration of one client's course.

    Parameters
    ----------
    sessions : array_like
        Session numbers (1 = intake), one per administration.
    scores : array_like
        The totals, in the same order.
    instrument : str or Instrument, optional
        Supplies the direction, the reliable-change threshold and the clinical cutoff. Without
        it, give ``direction`` and ``rules.change_options``.
    model : ETRModel, optional
        An expected-recovery model for the empirical method.
    method : {"auto", "empirical_etr", "rational_reliable_change"}
        ``auto``: empirical when a model is given, rational otherwise.
    flags : sequence of sequences of str, optional
        The scorer's critical-item flags per administration (``Score.flags``); ``safety`` among
        them sets ``SignalResult.safety``.
    rules : SignalRules, optional
        Percentiles, the at-risk session, reliable-change options.
    direction : {"higher_is_worse", "higher_is_better"}, optional
        Overrides the instrument's direction.

    Returns
    -------
    list of SignalResult
        In the order given.

    Notes
    -----
    ``empirical_etr``: with ``m`` and ``v`` the mean and variance of the model's predictive
    distribution at (session, intake) and ``z_p = Φ⁻¹(p/100)``, the limits are
    ``m ± z_p·sqrt(v)`` on the worse side; ``off_track`` beyond ``off_track_percentile``,
    ``at_risk`` beyond ``at_risk_percentile``. ``rational_reliable_change``: reliable change
    from intake by Jacobson & Truax (1991) or the instrument's published threshold, as
    :func:`alliance.reliable_change` decides (PHQ-9: 6 points, IAPT). See
    ``docs/algorithms/signals.md`` for the order in which rules apply.

    References
    ----------
    Finch, A. E., Lambert, M. J., & Schaalje, B. G. (2001). *Clin Psychol Psychother*.
    Jacobson, N. S., & Truax, P. (1991). *J Consult Clin Psychol* 59(1):12–19.
    Lutz, W., Lambert, M. J., Harmon, S. C., et al. (2006). *Clin Psychol Psychother* 13, 223 ff.

    Examples
    --------
    With a model fitted to a practice's data:

    >>> import alliance as al
    >>> model = al.fit_etr(al.recovery.example_data(), instrument="phq9")
    >>> out = al.course_signals([1, 2, 4], [20, 19, 22], "phq9", model=model)
    >>> out[2].signal, out[2].reason
    ('off_track', '7.8 points above the expected 14.2 at session 4; outside the 90th percentile band (limit 19.5)')
    """
    rules = rules or SignalRules()
    inst = _resolve_instrument(instrument)
    chosen = _resolve_method(method, model)
    dirn = _direction(inst, model, direction)
    s = np.asarray(sessions, dtype=float).ravel()
    y = np.asarray(scores, dtype=float).ravel()
    if s.shape != y.shape:
        raise InvalidParameter(f"sessions ({s.size}) and scores ({y.size}) differ in length.")
    if np.isnan(s).any() or np.isnan(y).any():
        raise InvalidParameter("sessions and scores must be numbers (drop missed sessions).")
    if flags is not None and len(flags) != s.size:
        raise InvalidParameter("flags must have one entry per administration.")
    if np.unique(s).size != s.size:
        raise InvalidParameter("each session number may appear once.")
    intake = float(y[s == 1][0]) if np.any(s == 1) else math.nan
    # The fast path: the same rules as signals_frame, without a DataFrame.
    cols = _classify_arrays(
        s, y, np.full(s.size, intake), inst, model, chosen, rules, dirn, _change_columns_fast
    )
    model_id = cols["model"]
    intake_opt = None if math.isnan(intake) else intake
    out = []
    for i, (sess, score, signal, reason, change, rc, exp, risk, off) in enumerate(
        zip(
            s.tolist(),
            y.tolist(),
            cols["signal"].tolist(),
            cols["reason"].tolist(),
            cols["change"].tolist(),
            cols["reliable_change"].tolist(),
            cols["expected"].tolist(),
            cols["at_risk_limit"].tolist(),
            cols["off_track_limit"].tolist(),
            strict=True,
        )
    ):
        fl = tuple(flags[i]) if flags is not None else ()
        out.append(
            SignalResult(
                session=sess,
                score=score,
                signal=str(signal),
                method=chosen,
                reason=str(reason),
                safety="safety" in fl,
                flags=fl,
                intake=intake_opt,
                change=_opt(change),
                reliable_change=_opt(rc),
                expected=_opt(exp),
                at_risk_limit=_opt(risk),
                off_track_limit=_opt(off),
                model=None if model_id is None else str(model_id),
            )
        )
    return out


def _opt(v: float) -> float | None:
    return None if v != v else v  # NaN is the only value unequal to itself


def signals_frame(
    data: pd.DataFrame,
    instrument: str | Instrument | None = None,
    model: ETRModel | None = None,
    method: str = "auto",
    *,
    client: str = "client",
    session: str = "session",
    score: str = "score",
    flags: str | None = None,
    rules: SignalRules | None = None,
    direction: str | None = None,
) -> pd.DataFrame:
    """Signals for every administration in long data (many clients at once).

    Parameters
    ----------
    data : DataFrame
        One row per client and session.
    instrument, model, method, rules, direction
        As in :func:`course_signals`.
    client, session, score : str
        Column names.
    flags : str, optional
        A column of critical-item flag tuples (as :func:`alliance.score` returns).

    Returns
    -------
    DataFrame
        ``client``, ``session``, ``score``, ``intake``, ``signal``, ``method``, ``reason``,
        ``safety``, ``change``, ``reliable_change``, ``expected``, ``at_risk_limit``,
        ``off_track_limit``, ``model``; sorted by client and session.

    Examples
    --------
    >>> import alliance as al
    >>> data = al.recovery.example_data(30)
    >>> out = al.signals_frame(data, "phq9")
    >>> out.loc[out["session"] == 6, "signal"].tolist()[:3]
    ['recovered', 'improved', 'recovered']
    """
    rules = rules or SignalRules()
    inst = _resolve_instrument(instrument)
    chosen = _resolve_method(method, model)
    dirn = _direction(inst, model, direction)
    tidy = prepare_course_data(data, client=client, session=session, score=score)
    res = _classify(tidy, inst, model, chosen, rules, dirn)
    out = pd.concat([tidy, res], axis=1)
    if flags is not None:
        if flags not in data.columns:
            raise InvalidParameter(f"no flags column {flags!r}.")
        lookup = {
            (c, float(s)): tuple(f) if isinstance(f, (tuple, list)) else ()
            for c, s, f in zip(data[client], data[session], data[flags], strict=True)
        }
        out["flags"] = [
            lookup.get((c, s), ()) for c, s in zip(out["client"], out["session"], strict=True)
        ]
        out["safety"] = [("safety" in f) for f in out["flags"]]
    else:
        out["safety"] = False
    return out


# --------------------------------------------------------------------------------------------
# Validation: how well did early signals predict a poor outcome?
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HitRates:
    """How well "flagged in the window" predicted a target, for one method.

    ``sensitivity`` = flagged among clients with the target, ``specificity`` = not flagged
    among those without, ``ppv`` = target among flagged, ``npv`` = no target among not flagged,
    ``flagged_share`` = share of evaluated clients flagged. NaN when undefined (no positives).
    """

    method: str
    flag_on: tuple[str, ...]
    target: str
    n: int
    positives: int
    flagged: int
    true_positives: int
    sensitivity: float
    specificity: float
    ppv: float
    npv: float
    flagged_share: float

    @classmethod
    def compute(
        cls,
        method: str,
        flag_on: tuple[str, ...],
        target: str,
        flagged: NDArray[np.bool_],
        positive: NDArray[np.bool_],
    ) -> HitRates:
        n = int(flagged.size)
        tp = int(np.sum(flagged & positive))
        fp = int(np.sum(flagged & ~positive))
        fn = int(np.sum(~flagged & positive))
        tn = int(np.sum(~flagged & ~positive))

        def ratio(a: int, b: int) -> float:
            return a / b if b else math.nan

        return cls(
            method=method,
            flag_on=flag_on,
            target=target,
            n=n,
            positives=tp + fn,
            flagged=tp + fp,
            true_positives=tp,
            sensitivity=ratio(tp, tp + fn),
            specificity=ratio(tn, tn + fp),
            ppv=ratio(tp, tp + fp),
            npv=ratio(tn, tn + fn),
            flagged_share=ratio(tp + fp, n),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain values (NaN as None is left to the JSON writer)."""
        return {
            "method": self.method,
            "flag_on": list(self.flag_on),
            "target": self.target,
            "n": self.n,
            "positives": self.positives,
            "flagged": self.flagged,
            "true_positives": self.true_positives,
            "sensitivity": self.sensitivity,
            "specificity": self.specificity,
            "ppv": self.ppv,
            "npv": self.npv,
            "flagged_share": self.flagged_share,
        }


@dataclass(frozen=True)
class SignalValidation:
    """The cross-validated report of :func:`validate_signals`."""

    etr_method: str
    folds: int
    window: tuple[int, int]
    n_clients: int
    n_evaluated: int
    n_poor: int
    outcome: str
    rates: tuple[HitRates, ...] = field(default=())

    def to_frame(self) -> pd.DataFrame:
        """One row per method, flag set and target."""
        return pd.DataFrame([r.to_dict() for r in self.rates])

    def to_dict(self) -> dict[str, Any]:
        return {
            "etr_method": self.etr_method,
            "folds": self.folds,
            "window": list(self.window),
            "n_clients": self.n_clients,
            "n_evaluated": self.n_evaluated,
            "n_poor_outcome": self.n_poor,
            "outcome": self.outcome,
            "rates": [r.to_dict() for r in self.rates],
        }


def validate_signals(
    data: pd.DataFrame,
    instrument: str | Instrument | None = None,
    *,
    etr_method: str = "loglinear_intake",
    folds: int = 5,
    window: tuple[int, int] = (2, 5),
    seed: int = 0,
    rules: SignalRules | None = None,
    direction: str | None = None,
    truth: pd.DataFrame | None = None,
    client: str = "client",
    session: str = "session",
    score: str = "score",
    progress: ProgressCallback | None = None,
    fit_options: Mapping[str, Any] | None = None,
) -> SignalValidation:
    """Cross-validate the signals: did flags at sessions 2–5 predict a poor outcome?

    Parameters
    ----------
    data : DataFrame
        Long course data (client, session, score).
    instrument : str or Instrument, optional
        For the direction, reliable change and cutoffs (else ``direction`` and
        ``rules.change_options`` must say).
    etr_method : str
        The ETR method whose model the empirical signals use.
    folds : int, default 5
        Clients are split at random (``seed``) into this many folds; each fold's signals come
        from a model fitted to the other folds. ``folds=1`` would test on the training data and
        is refused.
    window : (int, int), default (2, 5)
        The sessions whose signals count as "early".
    truth : DataFrame, optional
        Known truth per client (a ``client`` column and boolean columns such as
        ``poor_outcome`` and ``truly_off_track`` from :mod:`alliance.simulate`): hit rates are
        also reported against each boolean column.
    progress : callable, optional
        ``progress(done, total, what)`` after each step.
    fit_options : mapping, optional
        Extra keyword arguments for :func:`alliance.fit_etr`.

    Returns
    -------
    SignalValidation
        Hit rates for both methods, flagging on ``off_track`` and on ``off_track`` or
        ``at_risk``.

    Raises
    ------
    InsufficientData
        Fewer clients than folds, or no client followed beyond the window.

    Notes
    -----
    Evaluated clients have an intake, at least one score in the window and a last session after
    it. Poor outcome = no reliable improvement from intake at the last session (unchanged or
    reliably deteriorated, :func:`alliance.reliable_change`). A client is flagged when any
    signal in the window is in the flag set. Sensitivity, specificity, PPV and NPV are the usual
    proportions of the 2×2 table (flagged × poor outcome).
    """
    rules = rules or SignalRules()
    if folds < 2:
        raise InvalidParameter("folds must be at least 2 (one fold would test on training data).")
    lo, hi = window
    if not 2 <= lo <= hi:
        raise InvalidParameter("window must be (first, last) sessions with 2 <= first <= last.")
    inst = _resolve_instrument(instrument)
    tidy = prepare_course_data(data, client=client, session=session, score=score)
    clients = pd.unique(tidy["client"])
    if clients.size < folds:
        raise InsufficientData(f"{clients.size} clients cannot be split into {folds} folds.")
    total = folds + 2
    step = 0

    def tick(what: str) -> None:
        nonlocal step
        step += 1
        if progress is not None:
            progress(step, total, what)

    # Outcome per client.
    last = tidy.groupby("client", sort=False).tail(1).set_index("client")
    in_window = tidy[(tidy["session"] >= lo) & (tidy["session"] <= hi)]
    eligible = last.index[
        last["intake"].notna()
        & (last["session"] > hi)
        & last.index.isin(pd.unique(in_window["client"]))
    ]
    if eligible.size == 0:
        raise InsufficientData(
            f"No client has an intake, a score in sessions {lo}–{hi} and a later last session, "
            "so the signals cannot be checked against outcomes."
        )
    dirn = _direction(inst, None, direction)
    ends = last.loc[eligible]
    outcome = _change(
        inst, dirn, ends["intake"].to_numpy(float), ends["score"].to_numpy(float), rules
    )
    poor = ~outcome["improved"].to_numpy(bool)
    tick("outcomes")

    # Rational signals need no model.
    rational = _classify(in_window, inst, None, METHOD_RATIONAL, rules, dirn)
    tick("rational signals")

    # Empirical signals, k-fold by client.
    rng = np.random.default_rng(seed)
    fold_of = dict(zip(rng.permutation(clients), np.arange(clients.size) % folds, strict=True))
    tidy_fold = tidy["client"].map(fold_of).to_numpy()
    window_fold = in_window["client"].map(fold_of).to_numpy()
    empirical = []
    options = dict(fit_options or {})
    for f in range(folds):
        train = tidy[tidy_fold != f]
        test = in_window[window_fold == f]
        try:
            model = fit_etr(train, etr_method, instrument=inst, direction=dirn, **options)
        except AllianceError as exc:
            raise type(exc)(f"fold {f + 1} of {folds}: {exc}") from exc
        if not test.empty:
            empirical.append(_classify(test, inst, model, METHOD_EMPIRICAL, rules, dirn))
        tick(f"fold {f + 1} of {folds}")
    emp = pd.concat(empirical) if empirical else rational.iloc[:0]

    rates: list[HitRates] = []
    targets: list[tuple[str, NDArray[np.bool_]]] = [("poor_outcome", poor)]
    if truth is not None:
        if "client" not in truth.columns:
            raise InvalidParameter("truth needs a client column.")
        t = truth.set_index("client")
        missing = eligible.difference(t.index)
        if len(missing):
            raise InvalidParameter(
                f"truth lacks {len(missing)} evaluated clients (e.g. {missing[0]!r})."
            )
        for col in t.columns:
            if t[col].dtype == bool or set(pd.unique(t[col].dropna())) <= {0, 1}:
                targets.append((f"truth:{col}", t.loc[eligible, col].astype(bool).to_numpy()))
    for name, res in ((METHOD_EMPIRICAL, emp), (METHOD_RATIONAL, rational)):
        joined = pd.concat([in_window.loc[res.index, ["client"]], res["signal"]], axis=1)
        for flag_on in (("off_track",), ("off_track", "at_risk")):
            hit = joined.loc[joined["signal"].isin(flag_on), "client"].unique()
            flagged = eligible.isin(hit)
            for target, positive in targets:
                rates.append(HitRates.compute(name, flag_on, target, flagged, positive))
    return SignalValidation(
        etr_method=etr_method,
        folds=folds,
        window=(lo, hi),
        n_clients=int(clients.size),
        n_evaluated=int(eligible.size),
        n_poor=int(poor.sum()),
        outcome="no reliable improvement from intake at the last session",
        rates=tuple(rates),
    )
