"""Agreement between raters: the intraclass correlations of Shrout & Fleiss (1979).

Used for the agreement of client and therapist alliance ratings across a caseload (targets are
sessions or clients, raters are the two perspectives), and for any other rater design.

The six forms, with ``n`` targets rated by ``k`` raters and the mean squares of the two-way
ANOVA (BMS between targets, WMS within targets, JMS between raters, EMS residual):

=========  ===========  =======================================================
method     psych name   formula
=========  ===========  =======================================================
icc1_1     ICC1         (BMS − WMS) / (BMS + (k − 1)·WMS)
icc2_1     ICC2         (BMS − EMS) / (BMS + (k − 1)·EMS + k·(JMS − EMS)/n)
icc3_1     ICC3         (BMS − EMS) / (BMS + (k − 1)·EMS)
icc1_k     ICC1k        (BMS − WMS) / BMS
icc2_k     ICC2k        (BMS − EMS) / (BMS + (JMS − EMS)/n)
icc3_k     ICC3k        (BMS − EMS) / BMS
=========  ===========  =======================================================
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from alliance.errors import InsufficientData, InvalidParameter, InvalidResponse
from alliance.relationship._common import check_fraction, to_dict

__all__ = ["ICC_METHODS", "ICCResult", "ICCRow", "icc"]

ICCMethod = Literal["icc1_1", "icc2_1", "icc3_1", "icc1_k", "icc2_k", "icc3_k"]

#: Stable identifiers, in Shrout & Fleiss's order, with the names R's ``psych::ICC`` prints.
ICC_METHODS: dict[str, str] = {
    "icc1_1": "ICC1",
    "icc2_1": "ICC2",
    "icc3_1": "ICC3",
    "icc1_k": "ICC1k",
    "icc2_k": "ICC2k",
    "icc3_k": "ICC3k",
}

_DESCRIPTIONS = {
    "icc1_1": "single rater, one-way random (each target rated by different raters)",
    "icc2_1": "single rater, two-way random, absolute agreement",
    "icc3_1": "single rater, two-way mixed, consistency",
    "icc1_k": "mean of k raters, one-way random",
    "icc2_k": "mean of k raters, two-way random, absolute agreement",
    "icc3_k": "mean of k raters, two-way mixed, consistency",
}


@dataclass(frozen=True, slots=True)
class ICCRow:
    """One intraclass correlation with its F test and confidence interval."""

    method: str
    psych_name: str
    description: str
    icc: float
    f: float
    df1: int
    df2: int
    p: float
    ci_low: float
    ci_high: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


@dataclass(frozen=True, slots=True)
class ICCResult:
    """All six Shrout & Fleiss forms for one ratings matrix.

    Attributes
    ----------
    rows
        One :class:`ICCRow` per form, in the order of :data:`ICC_METHODS`.
    n_targets, n_raters
        The size of the complete ratings matrix used.
    mean_squares
        ``{"BMS", "WMS", "JMS", "EMS"}`` of the two-way ANOVA.
    alpha
        1 − confidence level of the intervals.
    """

    rows: tuple[ICCRow, ...]
    n_targets: int
    n_raters: int
    mean_squares: dict[str, float]
    alpha: float
    dropped_targets: int = 0

    def __getitem__(self, method: str) -> ICCRow:
        for row in self.rows:
            if method in (row.method, row.psych_name):
                return row
        raise KeyError(method)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)

    def to_frame(self) -> pd.DataFrame:
        """The table as a DataFrame indexed by method (like ``psych::ICC(...)$results``)."""
        return pd.DataFrame([r.to_dict() for r in self.rows]).set_index("method")


def _matrix(
    data: pd.DataFrame | npt.ArrayLike,
    targets: str | None,
    raters: str | None,
    ratings: str | None,
) -> tuple[npt.NDArray[np.float64], int]:
    if isinstance(data, pd.DataFrame) and targets is not None:
        if raters is None or ratings is None:
            raise InvalidParameter("long data needs targets=, raters= and ratings= column names")
        missing = [c for c in (targets, raters, ratings) if c not in data.columns]
        if missing:
            raise InvalidParameter(f"columns not found: {', '.join(missing)}")
        if data.duplicated([targets, raters]).any():
            raise InvalidResponse("each target may be rated once by each rater")
        wide = data.pivot(index=targets, columns=raters, values=ratings)
        values = wide.to_numpy(dtype=float)
    else:
        try:
            values = np.asarray(data, dtype=float)
        except (TypeError, ValueError) as exc:
            raise InvalidResponse(f"ratings must be numbers ({exc})") from exc
    if values.ndim != 2:
        raise InvalidResponse(
            "ratings must be a 2-D matrix: one row per target, one column per rater"
        )
    complete = ~np.isnan(values).any(axis=1)
    dropped = int((~complete).sum())
    values = values[complete]
    n, k = values.shape
    if n < 2 or k < 2:
        raise InsufficientData(
            f"an ICC needs at least 2 targets rated by every one of at least 2 raters "
            f"(got {n} complete target(s) and {k} rater(s))"
        )
    return values, dropped


def icc(
    data: pd.DataFrame | npt.ArrayLike,
    targets: str | None = None,
    raters: str | None = None,
    ratings: str | None = None,
    *,
    alpha: float = 0.05,
) -> ICCResult:
    """Intraclass correlations in the six forms of Shrout & Fleiss (1979).

    Parameters
    ----------
    data
        Either a wide matrix (rows = targets, columns = raters; array or DataFrame) or a long
        DataFrame with the columns named by ``targets``, ``raters`` and ``ratings``.
        Targets with a missing rating are dropped (listwise; the count is reported).
    targets, raters, ratings
        Column names for long data.
    alpha
        The intervals are (1 − alpha) confidence intervals (default 95 %).

    Returns
    -------
    ICCResult
        ``result["icc2_1"].icc`` etc.; ``result.to_frame()`` for a table.

    Notes
    -----
    From the two-way ANOVA of the ``n × k`` matrix ``x`` with grand mean ``m``:
    BMS = k·Σ(row mean − m)²/(n − 1), JMS = n·Σ(column mean − m)²/(k − 1),
    WMS = (SS_total − SS_rows)/(n(k − 1)), EMS = (SS_total − SS_rows − SS_cols)/((n − 1)(k − 1)).
    The coefficients are in the module docstring. F = BMS/WMS on (n − 1, n(k − 1)) df for the
    one-way forms and BMS/EMS on (n − 1, (n − 1)(k − 1)) df for the two-way forms. Confidence
    intervals follow Shrout & Fleiss (1979) and, for ICC(2,·), the Satterthwaite approximation
    of McGraw & Wong (1996); they match R's ``psych::ICC`` (``tests/engine/reference/icc.R``).

    References
    ----------
    Shrout, P. E., & Fleiss, J. L. (1979). Intraclass correlations: uses in assessing rater
    reliability. *Psychological Bulletin*, 86(2), 420–428.
    McGraw, K. O., & Wong, S. P. (1996). Forming inferences about some intraclass correlation
    coefficients. *Psychological Methods*, 1(1), 30–46.

    Examples
    --------
    Shrout & Fleiss's Table 1 (6 targets, 4 judges):

    >>> from alliance.relationship import icc
    >>> table = [[9, 2, 5, 8], [6, 1, 3, 2], [8, 4, 6, 8],
    ...          [7, 1, 2, 6], [10, 5, 6, 9], [6, 2, 4, 7]]
    >>> res = icc(table)
    >>> [round(res[m].icc, 3) for m in ("icc1_1", "icc2_1", "icc3_1", "icc1_k", "icc2_k", "icc3_k")]
    [0.166, 0.29, 0.715, 0.443, 0.62, 0.909]
    >>> round(res["icc3_1"].f, 3)
    11.027
    """
    check_fraction(alpha, "alpha")
    x, dropped = _matrix(data, targets, raters, ratings)
    n, k = x.shape
    grand = float(x.mean())
    row_means = x.mean(axis=1)
    col_means = x.mean(axis=0)
    ss_total = float(((x - grand) ** 2).sum())
    ss_rows = float(k * ((row_means - grand) ** 2).sum())
    ss_cols = float(n * ((col_means - grand) ** 2).sum())
    ss_err = ss_total - ss_rows - ss_cols
    df_b, df_w, df_j, df_e = n - 1, n * (k - 1), k - 1, (n - 1) * (k - 1)
    bms, wms, jms, ems = ss_rows / df_b, (ss_total - ss_rows) / df_w, ss_cols / df_j, ss_err / df_e
    if bms <= 0 or wms <= 0 or ems <= 0:
        raise InsufficientData("the ratings have no variance between or within targets")

    icc1 = (bms - wms) / (bms + (k - 1) * wms)
    icc2 = (bms - ems) / (bms + (k - 1) * ems + k * (jms - ems) / n)
    icc3 = (bms - ems) / (bms + (k - 1) * ems)
    icc1k = (bms - wms) / bms
    icc2k = (bms - ems) / (bms + (jms - ems) / n)
    icc3k = (bms - ems) / bms

    f1, f3 = bms / wms, bms / ems
    q = 1 - alpha / 2
    p1 = float(stats.f.sf(f1, df_b, df_w))
    p3 = float(stats.f.sf(f3, df_b, df_e))

    # One-way forms (Shrout & Fleiss 1979, eqs. 6-7).
    f1_low = f1 / stats.f.ppf(q, df_b, df_w)
    f1_high = f1 * stats.f.ppf(q, df_w, df_b)
    l1, u1 = (f1_low - 1) / (f1_low + k - 1), (f1_high - 1) / (f1_high + k - 1)
    l1k, u1k = 1 - 1 / f1_low, 1 - 1 / f1_high
    # Two-way mixed (consistency).
    f3_low = f3 / stats.f.ppf(q, df_b, df_e)
    f3_high = f3 * stats.f.ppf(q, df_e, df_b)
    l3, u3 = (f3_low - 1) / (f3_low + k - 1), (f3_high - 1) / (f3_high + k - 1)
    l3k, u3k = 1 - 1 / f3_low, 1 - 1 / f3_high
    # Two-way random (absolute agreement): Satterthwaite df (McGraw & Wong 1996, Table 7).
    a = k * icc2 / (n * (1 - icc2))
    b = 1 + k * icc2 * (n - 1) / (n * (1 - icc2))
    v = (a * jms + b * ems) ** 2 / ((a * jms) ** 2 / df_j + (b * ems) ** 2 / df_e)
    fs_high = stats.f.ppf(q, df_b, v)
    fs_low = stats.f.ppf(q, v, df_b)
    denom = k * jms + (k * n - k - n) * ems
    l2 = n * (bms - fs_high * ems) / (fs_high * denom + n * bms)
    u2 = n * (fs_low * bms - ems) / (denom + n * fs_low * bms)
    l2k, u2k = l2 * k / (1 + l2 * (k - 1)), u2 * k / (1 + u2 * (k - 1))

    values = {
        "icc1_1": (icc1, f1, df_b, df_w, p1, l1, u1),
        "icc2_1": (icc2, f3, df_b, df_e, p3, l2, u2),
        "icc3_1": (icc3, f3, df_b, df_e, p3, l3, u3),
        "icc1_k": (icc1k, f1, df_b, df_w, p1, l1k, u1k),
        "icc2_k": (icc2k, f3, df_b, df_e, p3, l2k, u2k),
        "icc3_k": (icc3k, f3, df_b, df_e, p3, l3k, u3k),
    }
    rows = tuple(
        ICCRow(
            method=m,
            psych_name=ICC_METHODS[m],
            description=_DESCRIPTIONS[m],
            icc=float(val[0]),
            f=float(val[1]),
            df1=int(val[2]),
            df2=int(val[3]),
            p=float(val[4]),
            ci_low=float(val[5]),
            ci_high=float(val[6]),
        )
        for m, val in values.items()
    )
    return ICCResult(
        rows=rows,
        n_targets=n,
        n_raters=k,
        mean_squares={"BMS": bms, "WMS": wms, "JMS": jms, "EMS": ems},
        alpha=alpha,
        dropped_targets=dropped,
    )
