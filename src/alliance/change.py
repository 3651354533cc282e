"""Reliable change and clinical significance: did a client change, and is the change real?

Two questions, after Jacobson & Truax (1991):

* **Reliable change.** Is the difference between two scores larger than measurement error
  alone would produce? The reliable change index (RCI) divides the change by the standard
  error of a difference; beyond the critical value (1.96, two-tailed p < .05) the change is
  reliable. :data:`METHODS` lists the variants, each with a stable identifier that is stored
  with results.
* **Clinical significance.** Did the client move from the clinical into the functional range?
  Cutoff *a* lies two SDs beyond the clinical mean (towards health), *b* two SDs inside the
  functional mean, *c* between the two populations, equally far in SD units.

Together: **recovered** (clinical at the start, past the cutoff at the end, reliably
improved), **improved** (reliably improved, not recovered), **deteriorated** (reliably worse)
or **unchanged**.

Parameters come from the instrument's norms (``norms`` in its definition) and can all be given
explicitly; ``instrument=None`` (or ``"custom"``) works for any scale when everything needed is
given. One pre/post pair gives a :class:`ReliableChange`; arrays give a DataFrame.

Each method has a page in ``docs/algorithms/``: ``jacobson_truax.md``,
``gulliksen_lord_novick.md``, ``hageman_arrindell.md``, ``maassen.md`` and
``published_threshold.md``.
"""

from __future__ import annotations

import math
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import asdict, dataclass
from functools import lru_cache
from typing import Any, Literal, TypeAlias, overload

import numpy as np
import numpy.typing as npt
import pandas as pd

from alliance.errors import InvalidParameter
from alliance.instruments.registry import default_library
from alliance.instruments.registry import get as get_instrument
from alliance.instruments.schema import Instrument

__all__ = [
    "CATEGORIES",
    "METHODS",
    "ChangeThreshold",
    "ClinicalCutoffs",
    "MissingParameter",
    "ReliableChange",
    "clinical_cutoffs",
    "reliable_change",
    "reliable_change_threshold",
]

Direction: TypeAlias = Literal["higher_is_worse", "higher_is_better"]
Category: TypeAlias = Literal["recovered", "improved", "unchanged", "deteriorated"]
Method: TypeAlias = Literal[
    "jacobson_truax",
    "gulliksen_lord_novick",
    "hageman_arrindell",
    "maassen",
    "published_threshold",
]
FloatArray: TypeAlias = npt.NDArray[np.float64]
BoolArray: TypeAlias = npt.NDArray[np.bool_]

METHODS: tuple[str, ...] = (
    "jacobson_truax",
    "gulliksen_lord_novick",
    "hageman_arrindell",
    "maassen",
    "published_threshold",
)
"""Stable identifiers of the reliable-change methods."""

CATEGORIES: tuple[str, ...] = ("recovered", "improved", "unchanged", "deteriorated")
"""The outcome categories, from best to worst."""

Z_TWO_TAILED = 1.96
"""Critical value for reliable change, two-tailed p < .05 (Jacobson & Truax 1991)."""

Z_ONE_TAILED = 1.65
"""Critical value of Hageman & Arrindell (1999) for RC_indiv and CS_indiv (one-tailed .05)."""

_DIRECTIONS = ("higher_is_worse", "higher_is_better")


class MissingParameter(InvalidParameter):
    """A method needs parameters that were neither given nor found in the instrument's norms.

    ``names`` lists them (as keyword names of :func:`reliable_change`), so a caller such as
    the command line can say which options to add.
    """

    def __init__(self, message: str, names: Sequence[str]) -> None:
        super().__init__(message)
        self.names: tuple[str, ...] = tuple(names)


# ---------------------------------------------------------------------------------------------
# Results
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ReliableChange:
    """Reliable and clinically significant change of one client between two scores.

    Attributes
    ----------
    pre, post
        The two scores.
    delta
        ``post - pre``.
    rci
        The reliable change index (for ``published_threshold``, the index the threshold
        implies: ``1.96 * delta / threshold``).
    reliable
        Whether the change is reliable in either direction.
    threshold
        The smallest change, in raw points in the beneficial direction, that counts as reliable
        improvement (it depends on the pre score for ``gulliksen_lord_novick``).
    cutoff
        The clinical cutoff used, or ``None`` when none is available.
    clinical_pre, clinical_post
        Whether the score is at or beyond the cutoff on the clinical side (``None`` without a
        cutoff).
    category
        ``recovered``, ``improved``, ``unchanged`` or ``deteriorated``.
    method
        The method identifier.
    direction
        ``higher_is_worse`` or ``higher_is_better``.
    cs_indiv
        Hageman & Arrindell's individual clinical-significance index (``None`` for the other
        methods).
    """

    pre: float
    post: float
    delta: float
    rci: float
    reliable: bool
    threshold: float
    cutoff: float | None
    clinical_pre: bool | None
    clinical_post: bool | None
    category: Category
    method: str
    direction: Direction
    cs_indiv: float | None = None

    @property
    def improved(self) -> bool:
        """Reliably improved (``recovered`` included)."""
        return self.category in ("recovered", "improved")

    @property
    def deteriorated(self) -> bool:
        """Reliably worse."""
        return self.category == "deteriorated"


@dataclass(frozen=True)
class ClinicalCutoffs:
    """The three cutoffs of Jacobson & Truax (1991), or Hageman & Arrindell's "true" ones.

    ``None`` where the norms needed are missing (*a* needs the clinical sample, *b* the
    functional one, *c* both).
    """

    a: float | None
    b: float | None
    c: float | None
    direction: Direction
    method: str


@dataclass(frozen=True)
class ChangeThreshold:
    """The measurement error of a change score and the reliable-change threshold in points.

    Attributes
    ----------
    se
        Standard error of measurement, ``sd * sqrt(1 - reliability)`` (``None`` for a published
        threshold).
    s_diff
        Standard error of a difference.
    critical_value
        The z value a change must exceed.
    points
        ``critical_value * s_diff``: the raw change needed.
    method
        The method identifier.
    """

    se: float | None
    s_diff: float
    critical_value: float
    points: float
    method: str


@dataclass(frozen=True)
class _Params:
    """Resolved parameters (recorded in ``DataFrame.attrs['parameters']``)."""

    method: str
    direction: Direction
    reliability: float | None
    sd: float | None
    sd_post: float | None
    mean_pre: float | None
    mean_post: float | None
    r_prepost: float | None
    clinical_mean: float | None
    clinical_sd: float | None
    functional_mean: float | None
    functional_sd: float | None
    cutoff: float | None
    cutoff_kind: str | None
    threshold_points: float | None
    critical_value: float
    se: float | None
    s_diff: float | None


# ---------------------------------------------------------------------------------------------
# Public functions
# ---------------------------------------------------------------------------------------------
@overload
def reliable_change(
    instrument: str | Instrument | None,
    pre: float,
    post: float,
    *,
    method: str | None = ...,
    reliability: float | None = ...,
    sd: float | None = ...,
    sd_post: float | None = ...,
    mean_pre: float | None = ...,
    mean_post: float | None = ...,
    r_prepost: float | None = ...,
    clinical_mean: float | None = ...,
    clinical_sd: float | None = ...,
    functional_mean: float | None = ...,
    functional_sd: float | None = ...,
    cutoff: str | float | None = ...,
    direction: str | None = ...,
    threshold: float | None = ...,
    ids: Sequence[Hashable] | None = ...,
    library: Mapping[str, Instrument] | None = ...,
) -> ReliableChange: ...


@overload
def reliable_change(
    instrument: str | Instrument | None,
    pre: Sequence[float] | FloatArray | pd.Series[Any],
    post: Sequence[float] | FloatArray | pd.Series[Any],
    *,
    method: str | None = ...,
    reliability: float | None = ...,
    sd: float | None = ...,
    sd_post: float | None = ...,
    mean_pre: float | None = ...,
    mean_post: float | None = ...,
    r_prepost: float | None = ...,
    clinical_mean: float | None = ...,
    clinical_sd: float | None = ...,
    functional_mean: float | None = ...,
    functional_sd: float | None = ...,
    cutoff: str | float | None = ...,
    direction: str | None = ...,
    threshold: float | None = ...,
    ids: Sequence[Hashable] | None = ...,
    library: Mapping[str, Instrument] | None = ...,
) -> pd.DataFrame: ...


def reliable_change(
    instrument: str | Instrument | None,
    pre: float | Sequence[float] | FloatArray | pd.Series[Any],
    post: float | Sequence[float] | FloatArray | pd.Series[Any],
    *,
    method: str | None = None,
    reliability: float | None = None,
    sd: float | None = None,
    sd_post: float | None = None,
    mean_pre: float | None = None,
    mean_post: float | None = None,
    r_prepost: float | None = None,
    clinical_mean: float | None = None,
    clinical_sd: float | None = None,
    functional_mean: float | None = None,
    functional_sd: float | None = None,
    cutoff: str | float | None = None,
    direction: str | None = None,
    threshold: float | None = None,
    ids: Sequence[Hashable] | None = None,
    library: Mapping[str, Instrument] | None = None,
) -> ReliableChange | pd.DataFrame:
    """Reliable change index, clinical cutoff and outcome category for pre/post scores.

    Parameters
    ----------
    instrument
        An instrument id or :class:`~alliance.instruments.Instrument` whose norms supply the
        defaults; ``None`` or ``"custom"`` for a scale outside the library.
    pre, post
        One pair of scores (returns a :class:`ReliableChange`) or two equally long arrays
        (returns a DataFrame). NaN marks a missing score: that row gets no category.
    method
        ``jacobson_truax``, ``gulliksen_lord_novick``, ``hageman_arrindell``, ``maassen`` or
        ``published_threshold``. By default Jacobson–Truax when a reliability and an SD are
        known (given or in the norms), else the instrument's published raw-point threshold.
    reliability
        Reliability of the measure (test–retest r or internal consistency); default from the
        norms.
    sd
        SD of the pre-treatment scores, for the standard error; defaults to ``clinical_sd``,
        then the clinical norm's SD.
    sd_post
        SD of the post-treatment scores (Maassen, Hageman–Arrindell); default: the SD of
        ``post`` when several pairs are given.
    mean_pre, mean_post, r_prepost
        Group means of the pre and post scores and their correlation (Gulliksen–Lord–Novick
        uses ``mean_pre``; Hageman–Arrindell all three). Defaults: ``mean_pre`` from the
        clinical mean (Gulliksen–Lord–Novick) or the sample; the others from the sample.
    clinical_mean, clinical_sd, functional_mean, functional_sd
        Norms of the clinical (dysfunctional) and functional populations, for the cutoffs.
    cutoff
        ``"a"``, ``"b"``, ``"c"`` or a number. Default: the instrument's published clinical
        cutoff; else *c* when both norms are known, *a* with clinical norms only, *b* with
        functional norms only; else none (no ``recovered`` category).
    direction
        ``higher_is_worse`` or ``higher_is_better``; default from the instrument.
    threshold
        A published reliable-change threshold in raw points (``published_threshold``);
        default ``norms.reliable_change_points``.
    ids
        Identifiers echoed into the DataFrame's ``id`` column.
    library
        Where to look up an instrument id.

    Returns
    -------
    ReliableChange or pandas.DataFrame
        For arrays: columns ``id``, ``pre``, ``post``, ``delta``, ``rci``, ``reliable``,
        ``improved``, ``deteriorated``, ``threshold``, ``cutoff``, ``clinical_pre``,
        ``clinical_post``, ``category``, ``method`` and (Hageman–Arrindell) ``cs_indiv``; the
        resolved parameters are in ``DataFrame.attrs["parameters"]``.

    Raises
    ------
    MissingParameter
        If the method needs a parameter that is neither given nor in the norms (the message
        names it).
    InvalidParameter
        If a parameter is out of its domain (reliability outside (0, 1), an SD ≤ 0, …).

    Notes
    -----
    Jacobson & Truax (1991):

    .. math::
        SE = SD_{pre}\\sqrt{1 - r_{xx}}, \\quad S_{diff} = \\sqrt{2 SE^2}, \\quad
        RC = \\frac{x_{post} - x_{pre}}{S_{diff}}

    reliable when :math:`|RC| > 1.96`; threshold :math:`1.96 S_{diff}` points. Maassen (2004)
    uses :math:`S_{diff} = \\sqrt{(SD_{pre}^2 + SD_{post}^2)(1 - r_{xx})}`.
    Gulliksen–Lord–Novick (Hsu 1995):
    :math:`RC = [(x_{post} - M_{pre}) - r_{xx}(x_{pre} - M_{pre})] / (SD_{pre}\\sqrt{1 - r_{xx}^2})`.
    Hageman & Arrindell (1999): :math:`RC_{indiv}` with the reliability of the difference
    :math:`r_{dd}` and the critical value 1.65 (see ``docs/algorithms/hageman_arrindell.md``).
    A score is clinical when it is at or beyond the cutoff on the clinical side
    (``>= cutoff`` when higher is worse); recovered = clinical at pre, not clinical at post
    (Hageman–Arrindell: :math:`CS_{indiv}` beyond 1.65 towards the functional side) and
    reliably improved.

    References
    ----------
    Jacobson NS, Truax P (1991). Clinical significance: a statistical approach to defining
    meaningful change in psychotherapy research. *J Consult Clin Psychol* 59(1):12-19.
    Hsu LM (1995). Regression toward the mean associated with measurement error and the
    identification of improvement and deterioration in psychotherapy. *J Consult Clin
    Psychol* 63(1):141-144. Hageman WJJM, Arrindell WA (1999). Establishing clinically
    significant change: increment of precision and the distinction between individual and
    group level of analysis. *Behav Res Ther* 37(12):1169-1193. Maassen GH (2004). The
    standard error in the Jacobson and Truax Reliable Change Index: the classical approach to
    the assessment of reliable change. *J Int Neuropsychol Soc* 10(6):888-893.

    Examples
    --------
    The worked example of Jacobson & Truax (1991): higher is better, reliability .80,
    SD 7.5, clinical mean 40, functional mean 60 (SD 7.5), a change of 15 points.

    >>> import alliance as al
    >>> rc = al.reliable_change(None, 40, 55, reliability=0.80, sd=7.5, clinical_mean=40,
    ...                         functional_mean=60, functional_sd=7.5,
    ...                         direction="higher_is_better", cutoff="c")
    >>> round(rc.rci, 2), round(rc.threshold, 2), rc.cutoff, rc.category
    (3.16, 9.3, 50.0, 'recovered')

    PHQ-9 with the published threshold of 6 points and the caseness cutoff of 10:

    >>> rc = al.reliable_change("phq9", 18, 9)
    >>> rc.method, rc.threshold, rc.cutoff, rc.category
    ('published_threshold', 6.0, 10.0, 'recovered')
    """
    inst = _resolve_instrument(instrument, library)
    scalar = np.ndim(pre) == 0 and np.ndim(post) == 0
    pre_a = _as_array(pre, "pre")
    post_a = _as_array(post, "post")
    if pre_a.shape != post_a.shape:
        raise InvalidParameter(
            f"pre and post must have the same length, got {pre_a.size} and {post_a.size}"
        )
    params = _resolve(
        inst,
        pre_a,
        post_a,
        method=method,
        reliability=reliability,
        sd=sd,
        sd_post=sd_post,
        mean_pre=mean_pre,
        mean_post=mean_post,
        r_prepost=r_prepost,
        clinical_mean=clinical_mean,
        clinical_sd=clinical_sd,
        functional_mean=functional_mean,
        functional_sd=functional_sd,
        cutoff=cutoff,
        direction=direction,
        threshold=threshold,
    )
    cols = _compute(params, pre_a, post_a)
    if scalar:
        if math.isnan(pre_a[0]) or math.isnan(post_a[0]):
            raise InvalidParameter("pre and post must both be numbers (got a missing value)")
        cs = cols["cs_indiv"][0] if "cs_indiv" in cols else math.nan
        return ReliableChange(
            pre=float(pre_a[0]),
            post=float(post_a[0]),
            delta=float(cols["delta"][0]),
            rci=float(cols["rci"][0]),
            reliable=bool(cols["reliable"][0]),
            threshold=float(cols["threshold"][0]),
            cutoff=params.cutoff,
            clinical_pre=_opt_bool(cols["clinical_pre"][0]),
            clinical_post=_opt_bool(cols["clinical_post"][0]),
            category=cols["category"][0],
            method=params.method,
            direction=params.direction,
            cs_indiv=None if math.isnan(cs) else float(cs),
        )
    n = pre_a.size
    if ids is None:
        id_col: Any = pre.index.to_numpy() if isinstance(pre, pd.Series) else np.arange(n)
    else:
        if len(ids) != n:
            raise InvalidParameter(f"ids must have one entry per pair ({n}), got {len(ids)}")
        id_col = pd.Series(list(ids), dtype=object)
    frame = pd.DataFrame(
        {
            "id": id_col,
            "pre": pre_a,
            "post": post_a,
            "delta": cols["delta"],
            "rci": cols["rci"],
            "reliable": _masked(cols["reliable"], cols["missing"]),
            "improved": _masked(cols["improved"], cols["missing"]),
            "deteriorated": _masked(cols["deteriorated"], cols["missing"]),
            "threshold": cols["threshold"],
            "cutoff": np.full(n, np.nan if params.cutoff is None else params.cutoff),
            "clinical_pre": _nullable_bool(cols["clinical_pre"]),
            "clinical_post": _nullable_bool(cols["clinical_post"]),
            "category": pd.Series(cols["category"], dtype=object),
            "method": pd.Series([params.method] * n, dtype=object),
        }
    )
    if "cs_indiv" in cols:
        frame["cs_indiv"] = cols["cs_indiv"]
    frame.attrs["parameters"] = asdict(params)
    return frame


def clinical_cutoffs(
    instrument: str | Instrument | None = None,
    *,
    clinical_mean: float | None = None,
    clinical_sd: float | None = None,
    functional_mean: float | None = None,
    functional_sd: float | None = None,
    direction: str | None = None,
    method: str = "jacobson_truax",
    reliability: float | None = None,
    sd: float | None = None,
    library: Mapping[str, Instrument] | None = None,
) -> ClinicalCutoffs:
    """Cutoffs *a*, *b* and *c* between the clinical and the functional population.

    Parameters
    ----------
    instrument
        Supplies the norms and the direction by default (``None`` for a custom scale).
    clinical_mean, clinical_sd, functional_mean, functional_sd
        Means and SDs of the clinical (dysfunctional) and functional samples.
    direction
        ``higher_is_worse`` or ``higher_is_better``.
    method
        ``jacobson_truax`` (the default) or ``hageman_arrindell`` for the "true" cutoffs,
        which need ``reliability`` (and ``sd``, the SD of the scores the standard error of
        measurement is taken from; default ``clinical_sd``).
    reliability, sd
        For ``hageman_arrindell``.
    library
        Where to look up an instrument id.

    Returns
    -------
    ClinicalCutoffs
        ``a``, ``b`` and ``c`` (``None`` where the norms are missing).

    Notes
    -----
    For higher = better (the other direction mirrors the signs):

    .. math::
        a = M_{clin} + 2 SD_{clin}, \\quad b = M_{func} - 2 SD_{func}, \\quad
        c = \\frac{SD_{clin} M_{func} + SD_{func} M_{clin}}{SD_{clin} + SD_{func}}

    Cutoff *b* uses the functional SD, as Jacobson & Truax (1991) define it. (The CRAN
    package ``clinicalsignificance`` 2.x uses the clinical SD for *b*; with equal SDs, as in
    the worked example, the two agree.) Hageman & Arrindell (1999) multiply each SD by the
    square root of the population's reliability, :math:`r = (SD^2 - SE^2)/SD^2`.

    References
    ----------
    Jacobson NS, Truax P (1991). *J Consult Clin Psychol* 59(1):12-19.
    Hageman WJJM, Arrindell WA (1999). *Behav Res Ther* 37(12):1169-1193.

    Examples
    --------
    >>> import alliance as al
    >>> cut = al.clinical_cutoffs(clinical_mean=40, clinical_sd=7.5, functional_mean=60,
    ...                           functional_sd=7.5, direction="higher_is_better")
    >>> cut.a, cut.b, cut.c
    (55.0, 45.0, 50.0)
    """
    inst = _resolve_instrument(instrument, library)
    dirn = _direction(inst, direction)
    norms = inst.norms if inst is not None else None
    cm = _pick(clinical_mean, norms.clinical.mean if norms and norms.clinical else None)
    cs = _pick(clinical_sd, norms.clinical.sd if norms and norms.clinical else None)
    fm = _pick(functional_mean, norms.functional.mean if norms and norms.functional else None)
    fs = _pick(functional_sd, norms.functional.sd if norms and norms.functional else None)
    for name, v in (("clinical_sd", cs), ("functional_sd", fs)):
        if v is not None:
            _positive(v, name)
    if method not in ("jacobson_truax", "hageman_arrindell"):
        raise InvalidParameter(
            f"unknown cutoff method {method!r}; use 'jacobson_truax' or 'hageman_arrindell'"
        )
    if method == "hageman_arrindell":
        rel = _pick(reliability, norms.reliability.value if norms and norms.reliability else None)
        base_sd = _pick(sd, cs)
        if rel is None or base_sd is None:
            raise MissingParameter(
                "Hageman–Arrindell cutoffs need reliability and sd (or clinical_sd)",
                [n for n, v in (("reliability", rel), ("sd", base_sd)) if v is None],
            )
        se = _positive(base_sd, "sd") * math.sqrt(1 - _reliability(rel))
        a, b, c = _ha_cutoffs(dirn, cm, cs, fm, fs, se)
    else:
        a, b, c = _jt_cutoffs(dirn, cm, cs, fm, fs)
    return ClinicalCutoffs(a=a, b=b, c=c, direction=dirn, method=method)


def reliable_change_threshold(
    instrument: str | Instrument | None = None,
    *,
    method: str | None = None,
    reliability: float | None = None,
    sd: float | None = None,
    sd_post: float | None = None,
    threshold: float | None = None,
    library: Mapping[str, Instrument] | None = None,
) -> ChangeThreshold:
    """The standard errors and the raw-point threshold for reliable change.

    Parameters
    ----------
    instrument
        Supplies the norms by default (``None`` for a custom scale).
    method
        ``jacobson_truax``, ``maassen`` or ``published_threshold`` (the methods whose threshold
        does not depend on the client's own scores); default as in :func:`reliable_change`.
    reliability, sd, sd_post, threshold
        As in :func:`reliable_change`.
    library
        Where to look up an instrument id.

    Returns
    -------
    ChangeThreshold

    Notes
    -----
    :math:`SE = SD\\sqrt{1 - r_{xx}}`, :math:`S_{diff} = \\sqrt{2 SE^2}` and the threshold is
    :math:`1.96 S_{diff}` (Jacobson & Truax 1991); Maassen (2004):
    :math:`S_{diff} = \\sqrt{(SD_{pre}^2 + SD_{post}^2)(1 - r_{xx})}`.

    Examples
    --------
    The suddengains package's example (BDI-II, SD 6.396073, reliability .931):

    >>> import alliance as al
    >>> t = al.reliable_change_threshold(reliability=0.931, sd=6.396073)
    >>> round(t.se, 6), round(t.s_diff, 6), round(t.points, 5)
    (1.680111, 2.376036, 4.65703)
    """
    inst = _resolve_instrument(instrument, library)
    if method not in (None, "jacobson_truax", "maassen", "published_threshold"):
        raise InvalidParameter(
            f"method {method!r} has no single threshold (it depends on each client's scores); "
            "use jacobson_truax, maassen or published_threshold"
        )
    if (
        inst is not None
        and method is None
        and reliability is None
        and sd is None
        and sd_post is None
        and threshold is None
        and _is_shipped(inst)
    ):
        # A shipped instrument's norms never change: look its threshold up once per process.
        return _shipped_threshold(inst.id)
    return _threshold(inst, method, reliability, sd, sd_post, threshold)


def _is_shipped(inst: Instrument) -> bool:
    """Whether ``inst`` is the shipped definition itself (not an edited copy with the same id)."""
    shipped = default_library()
    return inst.id in shipped and shipped[inst.id] is inst


@lru_cache(maxsize=64)
def _shipped_threshold(instrument_id: str) -> ChangeThreshold:
    """The default threshold of a shipped instrument (a frozen result, safe to share)."""
    return _threshold(default_library()[instrument_id], None, None, None, None, None)


def _threshold(
    inst: Instrument | None,
    method: str | None,
    reliability: float | None,
    sd: float | None,
    sd_post: float | None,
    threshold: float | None,
) -> ChangeThreshold:
    empty = np.empty(0)
    p = _resolve(
        inst,
        empty,
        empty,
        method=method,
        reliability=reliability,
        sd=sd,
        sd_post=sd_post,
        mean_pre=None,
        mean_post=None,
        r_prepost=None,
        clinical_mean=None,
        clinical_sd=None,
        functional_mean=None,
        functional_sd=None,
        cutoff=None,
        direction=inst.direction if inst is not None else "higher_is_worse",
        threshold=threshold,
        need_cutoff=False,
    )
    if p.s_diff is None:  # pragma: no cover - _resolve guarantees it for these methods
        raise InvalidParameter("no standard error of difference")
    return ChangeThreshold(
        se=p.se,
        s_diff=p.s_diff,
        critical_value=p.critical_value,
        points=p.critical_value * p.s_diff if p.threshold_points is None else p.threshold_points,
        method=p.method,
    )


# ---------------------------------------------------------------------------------------------
# Resolving parameters
# ---------------------------------------------------------------------------------------------
def _resolve_instrument(
    instrument: str | Instrument | None, library: Mapping[str, Instrument] | None
) -> Instrument | None:
    if instrument is None or isinstance(instrument, Instrument):
        return instrument
    if instrument == "custom":
        return None
    if library is not None:
        return library[instrument]
    return get_instrument(instrument)


def _as_array(values: Any, name: str) -> FloatArray:
    try:
        arr = np.asarray(
            [np.nan if v is None else v for v in np.asarray(values, dtype=object).ravel()],
            dtype=float,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidParameter(f"{name}: every score must be a number ({exc})") from None
    if np.isinf(arr).any():
        raise InvalidParameter(f"{name}: scores must be finite")
    return arr


def _pick(*options: float | None) -> float | None:
    for v in options:
        if v is not None:
            return float(v)
    return None


def _positive(v: float, name: str) -> float:
    if not math.isfinite(v) or v <= 0:
        raise InvalidParameter(f"{name} must be a positive number, got {v!r}")
    return v


def _reliability(v: float, name: str = "reliability") -> float:
    if not (0 < v < 1):
        raise InvalidParameter(f"{name} must lie strictly between 0 and 1, got {v!r}")
    return v


def _direction(inst: Instrument | None, direction: str | None) -> Direction:
    d = direction if direction is not None else (inst.direction if inst is not None else None)
    if d is None:
        raise MissingParameter(
            "direction is needed for a scale outside the library: "
            "higher_is_worse or higher_is_better",
            ["direction"],
        )
    if d not in _DIRECTIONS:
        raise InvalidParameter(f"direction must be higher_is_worse or higher_is_better, got {d!r}")
    return "higher_is_worse" if d == "higher_is_worse" else "higher_is_better"


def _sample(values: FloatArray, what: str, name: str, minimum: int) -> float:
    finite = values[~np.isnan(values)]
    if finite.size < minimum:
        raise MissingParameter(
            f"{name} is needed: give it, or give at least {minimum} pairs to take {what} "
            "from the data",
            [name],
        )
    if what == "the mean":
        return float(finite.mean())
    return float(finite.std(ddof=1))


def _resolve(
    inst: Instrument | None,
    pre: FloatArray,
    post: FloatArray,
    *,
    method: str | None,
    reliability: float | None,
    sd: float | None,
    sd_post: float | None,
    mean_pre: float | None,
    mean_post: float | None,
    r_prepost: float | None,
    clinical_mean: float | None,
    clinical_sd: float | None,
    functional_mean: float | None,
    functional_sd: float | None,
    cutoff: str | float | None,
    direction: str | None,
    threshold: float | None,
    need_cutoff: bool = True,
) -> _Params:
    # Group statistics taken from the data use complete pairs only.
    complete = ~np.isnan(pre) & ~np.isnan(post)
    pre, post = pre[complete], post[complete]
    norms = inst.norms if inst is not None else None
    dirn = _direction(inst, direction)
    rel = _pick(reliability, norms.reliability.value if norms and norms.reliability else None)
    cm = _pick(clinical_mean, norms.clinical.mean if norms and norms.clinical else None)
    cs = _pick(clinical_sd, norms.clinical.sd if norms and norms.clinical else None)
    fm = _pick(functional_mean, norms.functional.mean if norms and norms.functional else None)
    fs = _pick(functional_sd, norms.functional.sd if norms and norms.functional else None)
    # One SD serves both, as in Jacobson & Truax (1991): the pre-treatment sample is the
    # clinical sample unless separate norms are given.
    sd_pre = _pick(sd, cs)
    cs = _pick(cs, sd)
    points = _pick(threshold, norms.reliable_change_points if norms else None)
    if rel is not None:
        _reliability(rel)
    for name, v in (
        ("sd", sd_pre),
        ("clinical_sd", cs),
        ("functional_sd", fs),
        ("sd_post", sd_post),
        ("threshold", points),
    ):
        if v is not None:
            _positive(v, name)
    if r_prepost is not None and not (-1 <= r_prepost <= 1):
        raise InvalidParameter(f"r_prepost must lie between -1 and 1, got {r_prepost!r}")

    if method is None:
        if rel is not None and sd_pre is not None:
            method = "jacobson_truax"
        elif points is not None:
            method = "published_threshold"
        else:
            missing = [n for n, v in (("reliability", rel), ("sd", sd_pre)) if v is None]
            raise MissingParameter(
                "reliable change needs the measure's reliability and the SD of pre-treatment "
                f"scores ({' and '.join(missing)} not given and not in the instrument's norms), "
                "or a published threshold in raw points (threshold)",
                [*missing, "threshold"],
            )
    if method not in METHODS:
        raise InvalidParameter(f"unknown method {method!r}; use one of {', '.join(METHODS)}")

    se = s_diff = None
    crit = Z_ONE_TAILED if method == "hageman_arrindell" else Z_TWO_TAILED
    m_pre = m_post = s_post = r12 = None
    if method == "published_threshold":
        if points is None:
            raise MissingParameter(
                "published_threshold needs threshold (a published reliable-change threshold in "
                "raw points); the instrument's norms give none",
                ["threshold"],
            )
        s_diff = points / Z_TWO_TAILED
    else:
        if rel is None or sd_pre is None:
            missing = [n for n, v in (("reliability", rel), ("sd", sd_pre)) if v is None]
            raise MissingParameter(
                f"{method} needs {' and '.join(missing)} "
                "(reliability: test–retest r or internal consistency of the measure; sd: SD of "
                "pre-treatment scores), and the instrument's norms do not give "
                f"{'it' if len(missing) == 1 else 'them'}",
                missing,
            )
        se = sd_pre * math.sqrt(1 - rel)
        if method in ("jacobson_truax", "hageman_arrindell"):
            s_diff = math.sqrt(2 * se**2)
        if method == "maassen":
            s_post = _positive(
                sd_post if sd_post is not None else _sample(post, "the SD", "sd_post", 2),
                "sd_post",
            )
            s_diff = math.sqrt((sd_pre**2 + s_post**2) * (1 - rel))
        if method == "gulliksen_lord_novick":
            m_pre = _pick(mean_pre, cm)
            if m_pre is None:
                m_pre = _sample(pre, "the mean", "mean_pre", 2)
            s_diff = sd_pre * math.sqrt(1 - rel**2)  # the standard error of prediction
        if method == "hageman_arrindell":
            m_pre = mean_pre if mean_pre is not None else _sample(pre, "the mean", "mean_pre", 2)
            m_post = (
                mean_post if mean_post is not None else _sample(post, "the mean", "mean_post", 2)
            )
            s_post = _positive(
                sd_post if sd_post is not None else _sample(post, "the SD", "sd_post", 2),
                "sd_post",
            )
            r12 = r_prepost if r_prepost is not None else _correlation(pre, post)

    cut, kind = (None, None)
    if need_cutoff:
        cut, kind = _cutoff(method, dirn, cutoff, inst, cm, cs, fm, fs, se)
    return _Params(
        method=method,
        direction=dirn,
        reliability=rel,
        sd=sd_pre,
        sd_post=s_post,
        mean_pre=m_pre,
        mean_post=m_post,
        r_prepost=r12,
        clinical_mean=cm,
        clinical_sd=cs,
        functional_mean=fm,
        functional_sd=fs,
        cutoff=cut,
        cutoff_kind=kind,
        threshold_points=points if method == "published_threshold" else None,
        critical_value=crit,
        se=se,
        s_diff=s_diff,
    )


def _correlation(pre: FloatArray, post: FloatArray) -> float:
    ok = ~np.isnan(pre) & ~np.isnan(post)
    if ok.sum() < 3:
        raise MissingParameter(
            "r_prepost is needed: give it, or give at least 3 complete pairs to take the "
            "pre–post correlation from the data",
            ["r_prepost"],
        )
    return float(np.corrcoef(pre[ok], post[ok])[0, 1])


def _cutoff(
    method: str,
    dirn: Direction,
    cutoff: str | float | None,
    inst: Instrument | None,
    cm: float | None,
    cs: float | None,
    fm: float | None,
    fs: float | None,
    se: float | None,
) -> tuple[float | None, str | None]:
    if cutoff is not None and not isinstance(cutoff, str):
        value = float(cutoff)
        if not math.isfinite(value):
            raise InvalidParameter(f"cutoff must be a finite number, got {cutoff!r}")
        return value, "given"
    if method == "hageman_arrindell" and se is not None:
        a, b, c = _ha_cutoffs(dirn, cm, cs, fm, fs, se)
    else:
        a, b, c = _jt_cutoffs(dirn, cm, cs, fm, fs)
    if cutoff is None:
        if inst is not None and inst.clinical_cutoff is not None:
            return float(inst.clinical_cutoff.value), "published"
        for kind, candidate in (("c", c), ("a", a), ("b", b)):
            if candidate is not None:
                return candidate, kind
        return None, None
    needs = {
        "a": ("clinical_mean", "clinical_sd"),
        "b": ("functional_mean", "functional_sd"),
        "c": ("clinical_mean", "clinical_sd", "functional_mean", "functional_sd"),
    }
    if cutoff not in needs:
        raise InvalidParameter(f"cutoff must be 'a', 'b', 'c' or a number, got {cutoff!r}")
    chosen = {"a": a, "b": b, "c": c}[cutoff]
    if chosen is None:
        have = {"clinical_mean": cm, "clinical_sd": cs, "functional_mean": fm, "functional_sd": fs}
        missing = [n for n in needs[cutoff] if have[n] is None]
        raise MissingParameter(
            f"cutoff {cutoff} needs {', '.join(missing)} (not given and not in the "
            "instrument's norms)",
            missing,
        )
    return chosen, cutoff


def _jt_cutoffs(
    dirn: Direction, cm: float | None, cs: float | None, fm: float | None, fs: float | None
) -> tuple[float | None, float | None, float | None]:
    # toward health: +1 when higher is better, -1 when higher is worse
    h = 1.0 if dirn == "higher_is_better" else -1.0
    a = cm + h * 2 * cs if cm is not None and cs is not None else None
    b = fm - h * 2 * fs if fm is not None and fs is not None else None
    c = None
    if cm is not None and cs is not None and fm is not None and fs is not None:
        c = (cs * fm + fs * cm) / (cs + fs)
    return a, b, c


def _ha_cutoffs(
    dirn: Direction,
    cm: float | None,
    cs: float | None,
    fm: float | None,
    fs: float | None,
    se: float,
) -> tuple[float | None, float | None, float | None]:
    """Hageman & Arrindell's cutoffs: each SD times the square root of its reliability."""

    def true_sd(s: float | None, name: str) -> float | None:
        if s is None:
            return None
        r = (s**2 - se**2) / s**2
        if r <= 0:
            raise InvalidParameter(
                f"{name} ({s:g}) is not larger than the standard error of measurement "
                f"({se:.4g}): the population's reliability would be ≤ 0"
            )
        return s * math.sqrt(r)

    return _jt_cutoffs(dirn, cm, true_sd(cs, "clinical_sd"), fm, true_sd(fs, "functional_sd"))


# ---------------------------------------------------------------------------------------------
# The vectorised computation
# ---------------------------------------------------------------------------------------------
def _compute(p: _Params, pre: FloatArray, post: FloatArray) -> dict[str, Any]:
    h = 1.0 if p.direction == "higher_is_better" else -1.0  # sign of a beneficial change
    delta = post - pre
    n = pre.size
    crit = p.critical_value
    out: dict[str, Any] = {"delta": delta}
    if p.method == "published_threshold":
        pts = float(p.threshold_points or 0.0)
        rci = Z_TWO_TAILED * delta / pts
        with np.errstate(invalid="ignore"):
            improved = h * delta >= pts
            deteriorated = h * delta <= -pts
        thr = np.full(n, pts)
    elif p.method in ("jacobson_truax", "maassen"):
        s_diff = float(p.s_diff or 0.0)
        rci = delta / s_diff
        thr = np.full(n, crit * s_diff)
        with np.errstate(invalid="ignore"):
            improved = h * rci > crit
            deteriorated = h * rci < -crit
    elif p.method == "gulliksen_lord_novick":
        r = float(p.reliability or 0.0)
        m = float(p.mean_pre if p.mean_pre is not None else 0.0)
        se_pred = float(p.s_diff or 0.0)
        rci = ((post - m) - r * (pre - m)) / se_pred
        # rci = (delta + (1 - r)(pre - m)) / se_pred, so improvement (h * rci > crit) means
        # h * delta > crit * se_pred + h * (1 - r) * (m - pre)
        thr = crit * se_pred + h * (1 - r) * (m - pre)
        with np.errstate(invalid="ignore"):
            improved = h * rci > crit
            deteriorated = h * rci < -crit
    else:  # hageman_arrindell
        rci, thr, cs_indiv = _hageman_arrindell(p, pre, post, h)
        out["cs_indiv"] = cs_indiv
        with np.errstate(invalid="ignore"):
            improved = h * rci > crit
            deteriorated = h * rci < -crit

    missing = np.isnan(pre) | np.isnan(post)
    improved = improved & ~missing
    deteriorated = deteriorated & ~missing
    clinical_pre, clinical_post, functional_post = _clinical(p, pre, post, out.get("cs_indiv"), h)
    recovered = improved & (clinical_pre == 1.0) & functional_post
    category = np.full(n, "unchanged", dtype=object)
    category[deteriorated] = "deteriorated"
    category[improved] = "improved"
    category[recovered] = "recovered"
    category[missing] = None
    out.update(
        rci=rci,
        threshold=thr,
        improved=improved,
        deteriorated=deteriorated,
        reliable=improved | deteriorated,
        clinical_pre=clinical_pre,
        clinical_post=clinical_post,
        category=category,
        missing=missing,
    )
    return out


def _hageman_arrindell(
    p: _Params, pre: FloatArray, post: FloatArray, h: float
) -> tuple[FloatArray, FloatArray, FloatArray]:
    sd1 = float(p.sd or 0.0)
    sd2 = float(p.sd_post or 0.0)
    se = float(p.se or 0.0)
    r12 = float(p.r_prepost if p.r_prepost is not None else 0.0)
    m1 = float(p.mean_pre if p.mean_pre is not None else 0.0)
    m2 = float(p.mean_post if p.mean_post is not None else 0.0)
    r1 = (sd1**2 - se**2) / sd1**2
    r2 = (sd2**2 - se**2) / sd2**2
    if r2 <= 0:
        raise InvalidParameter(
            f"sd_post ({sd2:g}) is not larger than the standard error of measurement "
            f"({se:.4g}); Hageman–Arrindell's post-test reliability would be ≤ 0"
        )
    den = sd1**2 + sd2**2 - 2 * sd1 * sd2 * r12
    r_dd = (sd1**2 * r1 + sd2**2 * r2 - 2 * sd1 * sd2 * r12) / den if den > 0 else math.nan
    if not r_dd > 0:
        raise InvalidParameter(
            f"the reliability of the difference scores (r_dd = {r_dd:.3g}) is not positive, so "
            "Hageman–Arrindell's RC_indiv is undefined (pre and post correlate too strongly "
            "for the reliability given); use jacobson_truax"
        )
    s_diff = math.sqrt(2 * se**2)
    delta = post - pre
    rci = (delta * r_dd + (m2 - m1) * (1 - r_dd)) / (math.sqrt(r_dd) * s_diff)
    # improvement iff h*(delta*r_dd + dM*(1-r_dd)) > crit*sqrt(r_dd)*s_diff
    thr = np.full(
        pre.size,
        (p.critical_value * math.sqrt(r_dd) * s_diff - h * (m2 - m1) * (1 - r_dd)) / r_dd,
    )
    if p.cutoff is None:
        cs_indiv = np.full(pre.size, np.nan)
    else:
        cs_indiv = (m2 + (post - m2) * r2 - p.cutoff) / (math.sqrt(r2) * se)
    return rci, thr, cs_indiv


def _clinical(
    p: _Params, pre: FloatArray, post: FloatArray, cs_indiv: FloatArray | None, h: float
) -> tuple[FloatArray, FloatArray, BoolArray]:
    """1.0 / 0.0 / NaN for clinical at pre and post; and 'past the cutoff' at post."""
    n = pre.size
    if p.cutoff is None:
        nan = np.full(n, np.nan)
        return nan, nan.copy(), np.zeros(n, dtype=bool)
    cut = p.cutoff
    with np.errstate(invalid="ignore"):
        if h < 0:  # higher is worse: clinical at or above the cutoff
            c_pre, c_post = pre >= cut, post >= cut
        else:
            c_pre, c_post = pre <= cut, post <= cut
        if p.method == "hageman_arrindell" and cs_indiv is not None:
            functional_post = h * cs_indiv > p.critical_value
        else:
            functional_post = ~c_post & ~np.isnan(post)
    clinical_pre = np.where(np.isnan(pre), np.nan, c_pre.astype(float))
    clinical_post = np.where(np.isnan(post), np.nan, c_post.astype(float))
    return clinical_pre, clinical_post, functional_post


def _opt_bool(v: float) -> bool | None:
    return None if math.isnan(v) else bool(v)


def _masked(v: BoolArray, missing: BoolArray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(v.copy(), missing.copy())


def _nullable_bool(v: FloatArray) -> pd.arrays.BooleanArray:
    return pd.arrays.BooleanArray(v == 1.0, np.isnan(v))
