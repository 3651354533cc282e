"""Dropout risk: a rule that works on day one, and a model trained on a practice's closed episodes.

A poor early alliance predicts dropout (d ≈ .55 over 11 studies; Sharf, Primavera & Diener
2010, SCIENCE.md B5). The **rule** (``early_warning_rule``) needs no data from the practice: it
counts three warning signs in the first sessions — early alliance below a threshold, missed
sessions or check-ins, and no early change in the outcome measure. The **model**
(``l2_logistic``) is an L2-regularised logistic regression on the same early features, fitted to
the practice's closed episodes once there are enough of them, with cross-validated AUC and
calibration reported.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import special, stats

from alliance.errors import InsufficientData, InvalidParameter, InvalidResponse, ModelError
from alliance.relationship._common import FloatArray, as_float_array, check_positive, to_dict
from alliance.relationship.series import ScaleRange, normalise

__all__ = [
    "DROPOUT_FEATURES",
    "MISSED_STATUSES",
    "DropoutModel",
    "DropoutRuleConfig",
    "DropoutWarning",
    "auc",
    "dropout_features",
    "dropout_warning",
    "fit_dropout_model",
    "fit_l2_logistic",
]

#: Session statuses that count as missed.
MISSED_STATUSES = ("no_show", "cancelled", "missed")

#: The model's features, computed by :func:`dropout_features` from the first sessions.
DROPOUT_FEATURES = (
    "early_alliance",
    "early_alliance_min",
    "missed_share",
    "early_improvement",
    "intake",
)


# --------------------------------------------------------------------------------------------
# The day-one rule
@dataclass(frozen=True, slots=True)
class DropoutRuleConfig:
    """Thresholds of the early-warning rule (all *heuristic* unless a source is given).

    Parameters
    ----------
    early_sessions
        The first ``early_sessions`` scheduled sessions form the early window (default 3).
    alliance_threshold
        Early alliance (mean over the window, 0–1 scale) below this is a warning sign. Default
        ``None``: the instrument's concern threshold when given to :func:`dropout_warning`,
        else 0.5 (the scale's midpoint; *heuristic* — the WAI-SR has no published cutoff,
        SCIENCE.md A17).
    missed_threshold
        This many missed sessions or check-ins in the window is a warning sign (default 1).
    min_improvement
        "No early change": improvement from intake to the latest early outcome score below this
        many raw points. Default ``None``: half the instrument's reliable-change threshold
        when given, else any improvement (> 0) counts as change.
    elevated_at, high_at
        Number of warning signs for ``elevated`` (default 1) and ``high`` (default 2) risk.
    """

    early_sessions: int = 3
    alliance_threshold: float | None = None
    missed_threshold: int = 1
    min_improvement: float | None = None
    elevated_at: int = 1
    high_at: int = 2

    def __post_init__(self) -> None:
        if self.early_sessions < 1 or self.missed_threshold < 1:
            raise InvalidParameter("early_sessions and missed_threshold must be at least 1")
        if not 1 <= self.elevated_at <= self.high_at <= 3:
            raise InvalidParameter("need 1 ≤ elevated_at ≤ high_at ≤ 3")
        if self.alliance_threshold is not None and not 0 <= self.alliance_threshold <= 1:
            raise InvalidParameter("alliance_threshold is on the 0–1 scale")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


@dataclass(frozen=True, slots=True)
class DropoutWarning:
    """The early-warning rule's verdict for one client.

    ``risk`` is ``"low"``, ``"elevated"`` or ``"high"``; ``signs`` names the warning signs that
    fired (``low_early_alliance``, ``missed_sessions``, ``no_early_change``); ``probability``
    is the model's estimate when a model was given.
    """

    risk: str
    signs: tuple[str, ...]
    reasons: tuple[str, ...]
    early_alliance: float | None
    missed: int
    improvement: float | None
    sessions_seen: int
    probability: float | None
    method: str = "early_warning_rule"

    @property
    def flagged(self) -> bool:
        """True unless the risk is low."""
        return self.risk != "low"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``flagged`` included)."""
        d = to_dict(self)
        d["flagged"] = self.flagged
        return d


def dropout_warning(
    alliance: Sequence[float | None] | npt.ArrayLike = (),
    *,
    rng: tuple[float, float] | ScaleRange | None = None,
    statuses: Sequence[str] = (),
    missed_checkins: int = 0,
    outcome: Sequence[float | None] | npt.ArrayLike = (),
    outcome_direction: str = "higher_is_worse",
    reliable_change: float | None = None,
    concern_threshold: float | None = None,
    config: DropoutRuleConfig | None = None,
    model: DropoutModel | None = None,
    intake: float | None = None,
) -> DropoutWarning:
    """The day-one early-warning rule for dropout, for one client.

    Parameters
    ----------
    alliance
        The client's alliance totals so far, in session order (raw scale).
    rng
        The alliance instrument's range ``(low, high)`` (needed when ``alliance`` is given).
    statuses
        Status of each scheduled session so far (``attended``, ``no_show``, ``cancelled``).
    missed_checkins
        Check-ins sent but not completed in the early window.
    outcome
        Outcome scores so far (intake first).
    outcome_direction
        ``"higher_is_worse"`` (PHQ-9, CORE) or ``"higher_is_better"`` (ORS, WHO-5).
    reliable_change
        The outcome instrument's reliable-change threshold in raw points (e.g. PHQ-9: 6).
    concern_threshold
        The alliance instrument's concern threshold, raw (SRS: 36), used as the alliance
        threshold unless the config sets one.
    config
        :class:`DropoutRuleConfig`.
    model, intake
        Optionally a fitted :class:`DropoutModel`; its probability is added to the result.

    Returns
    -------
    DropoutWarning

    Notes
    -----
    Over the first ``early_sessions`` scheduled sessions::

        low_early_alliance  ⇔ mean normalised alliance < alliance_threshold
        missed_sessions     ⇔ no-shows + cancellations + missed check-ins ≥ missed_threshold
        no_early_change     ⇔ improvement (intake → latest early score) < min_improvement
        risk = high if signs ≥ high_at, elevated if signs ≥ elevated_at, else low

    The rule is a heuristic built on the direction of published associations (early alliance:
    Sharf et al. 2010); its thresholds are not validated cutoffs.

    References
    ----------
    Sharf, J., Primavera, L. H., & Diener, M. J. (2010). Dropout and therapeutic alliance:
    A meta-analysis of adult individual psychotherapy. *Psychotherapy*, 47(4), 637–645.

    Examples
    --------
    >>> w = dropout_warning([30, 28], rng=(12, 60), statuses=["attended", "attended", "no_show"])
    >>> w.risk, w.signs
    ('high', ('low_early_alliance', 'missed_sessions'))
    """
    cfg = config or DropoutRuleConfig()
    k = cfg.early_sessions
    if outcome_direction not in ("higher_is_worse", "higher_is_better"):
        raise InvalidParameter("outcome_direction is higher_is_worse or higher_is_better")
    signs: list[str] = []
    reasons: list[str] = []

    a = as_float_array(alliance, "alliance")[:k]
    early: float | None = None
    early_min = math.nan
    if a.size and not np.isnan(a).all():
        if rng is None:
            raise InvalidParameter("give the alliance instrument's range (rng) with the ratings")
        r = rng if isinstance(rng, ScaleRange) else ScaleRange(float(rng[0]), float(rng[1]))
        an = normalise(a, r)
        early, early_min = float(np.nanmean(an)), float(np.nanmin(an))
        thr = cfg.alliance_threshold
        src = "configured"
        if thr is None and concern_threshold is not None:
            thr, src = (concern_threshold - r.low) / r.width, "the instrument's concern threshold"
        if thr is None:
            thr, src = 0.5, "the scale midpoint (heuristic)"
        if early < thr:
            signs.append("low_early_alliance")
            reasons.append(
                f"early alliance {100 * early:.0f}/100 is below {100 * thr:.0f}/100 ({src})"
            )

    bad = [s for s in statuses if str(s).strip().lower() not in (*MISSED_STATUSES, "attended")]
    if bad:
        raise InvalidResponse(
            f"unknown session status {bad[0]!r}: use attended, no_show, cancelled"
        )
    missed_sessions = sum(str(s).strip().lower() in MISSED_STATUSES for s in list(statuses)[:k])
    missed = missed_sessions + int(missed_checkins)
    if missed >= cfg.missed_threshold:
        signs.append("missed_sessions")
        reasons.append(
            f"{missed_sessions} missed session(s) and {int(missed_checkins)} missed check-in(s) "
            f"in the first {k} sessions"
        )

    y = as_float_array(outcome, "outcome")
    y = y[~np.isnan(y)]
    improvement: float | None = None
    if y.size >= 2:
        y = y[: max(k, 2)]
        improvement = (
            float(y[0] - y[-1]) if outcome_direction == "higher_is_worse" else float(y[-1] - y[0])
        )
        need = cfg.min_improvement
        if need is None:
            need = 0.5 * reliable_change if reliable_change is not None else 1e-12
        if improvement < need:
            signs.append("no_early_change")
            reasons.append(
                f"the outcome changed by {improvement:+g} points since intake "
                f"(improvement of {need:g} expected)"
            )

    n = len(signs)
    risk = "high" if n >= cfg.high_at else "elevated" if n >= cfg.elevated_at else "low"
    prob = None
    if model is not None:
        feats = {
            "early_alliance": early if early is not None else math.nan,
            "early_alliance_min": early_min,
            "missed_share": missed / k,
            "early_improvement": improvement if improvement is not None else 0.0,
            "intake": intake if intake is not None else (float(y[0]) if y.size else math.nan),
        }
        prob = float(model.predict_proba(pd.DataFrame([feats]))[0])
    return DropoutWarning(
        risk=risk,
        signs=tuple(signs),
        reasons=tuple(reasons),
        early_alliance=early,
        missed=missed,
        improvement=improvement,
        sessions_seen=max(len(statuses), int(a.size)),
        probability=prob,
    )


# --------------------------------------------------------------------------------------------
# Features from session data
def dropout_features(
    frame: pd.DataFrame,
    *,
    rng: tuple[float, float] | ScaleRange,
    window: int = 3,
    outcome_direction: str = "higher_is_worse",
    client: str = "client",
    session: str = "session",
    alliance: str = "alliance",
    status: str = "status",
    score: str = "score",
    dropped_out: str = "dropped_out",
) -> pd.DataFrame:
    """One row of early features per client, from session-level data.

    Parameters
    ----------
    frame
        One row per scheduled session: ``client``, ``session``, ``alliance`` (raw, may be
        empty), optional ``status`` (attended / no_show / cancelled; default attended), optional
        ``score`` (outcome), optional ``dropped_out`` (per client: 1 dropped out, 0 completed,
        empty = episode still open).
    rng
        The alliance instrument's range.
    window
        The prediction point: features use the first ``window`` scheduled sessions only.

    Returns
    -------
    pandas.DataFrame
        Indexed by client, with :data:`DROPOUT_FEATURES`, ``n_scheduled`` (total sessions
        scheduled), ``reached_window`` (whether the client had ``window`` scheduled sessions)
        and ``dropped_out`` (float, NaN for open episodes).

    Notes
    -----
    ``early_alliance`` = mean normalised alliance over the window; ``early_alliance_min`` its
    minimum; ``missed_share`` = missed sessions / ``window``; ``early_improvement`` = intake
    score − last score in the window (sign flipped for higher-is-better outcomes), 0 when only
    one score exists; ``intake`` = first outcome score.
    """
    for col in (client, session, alliance):
        if col not in frame.columns:
            raise InvalidResponse(f"the dropout data needs a {col!r} column")
    if window < 1:
        raise InvalidParameter("window must be at least 1")
    r = rng if isinstance(rng, ScaleRange) else ScaleRange(float(rng[0]), float(rng[1]))
    f = frame.copy()
    f["_s"] = pd.to_numeric(f[session], errors="coerce")
    if f["_s"].isna().any():
        raise InvalidResponse(f"{session}: every row needs a session number")
    f["_a"] = normalise(pd.to_numeric(f[alliance], errors="coerce").to_numpy(), r)
    if status in f.columns:
        st = f[status].fillna("").astype(str).str.strip().str.lower().replace("", "attended")
        unknown = set(st) - {*MISSED_STATUSES, "attended"}
        if unknown:
            raise InvalidResponse(
                f"{status}: unknown value(s) {sorted(unknown)}; use attended, no_show, cancelled"
            )
        f["_miss"] = st.isin(MISSED_STATUSES).astype(float)
    else:
        f["_miss"] = 0.0
    f["_y"] = pd.to_numeric(f[score], errors="coerce") if score in f.columns else np.nan
    sign = 1.0 if outcome_direction == "higher_is_worse" else -1.0
    rows = []
    for cid, g in f.sort_values([client, "_s"], kind="stable").groupby(client, sort=True):
        early = g.iloc[:window]
        ys = early["_y"].dropna().to_numpy()
        a = early["_a"].dropna().to_numpy()
        label = math.nan
        if dropped_out in g.columns:
            vals = pd.to_numeric(g[dropped_out], errors="coerce").dropna().unique()
            if len(vals) > 1:
                raise InvalidResponse(f"client {cid}: {dropped_out} differs between rows")
            if len(vals) == 1:
                if vals[0] not in (0, 1):
                    raise InvalidResponse(f"{dropped_out} must be 0 or 1 (or empty when open)")
                label = float(vals[0])
        rows.append(
            {
                client: cid,
                "early_alliance": float(a.mean()) if a.size else math.nan,
                "early_alliance_min": float(a.min()) if a.size else math.nan,
                "missed_share": float(early["_miss"].sum()) / window,
                "early_improvement": sign * float(ys[0] - ys[-1]) if ys.size >= 2 else 0.0,
                "intake": float(ys[0]) if ys.size else math.nan,
                "n_scheduled": len(g),
                "reached_window": len(g) >= window,
                "dropped_out": label,
            }
        )
    out = pd.DataFrame(rows).set_index(client)
    out.attrs["window"] = window
    return out


# --------------------------------------------------------------------------------------------
# L2-regularised logistic regression
@dataclass(frozen=True, slots=True)
class LogisticFit:
    """Coefficients of a (penalised) logistic regression on the original feature scale."""

    intercept: float
    coefficients: dict[str, float]
    penalty: float
    iterations: int
    loglik: float

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def _irls(
    x: FloatArray, y: FloatArray, lam: float, max_iter: int = 100, tol: float = 1e-10
) -> tuple[FloatArray, int, float]:
    p = x.shape[1]
    beta = np.zeros(p)
    pen = np.full(p, lam)
    pen[0] = 0.0  # the intercept is not penalised
    iterations = 0
    for iterations in range(1, max_iter + 1):  # noqa: B007 - reported after the loop
        eta = x @ beta
        mu = special.expit(eta)
        w = np.clip(mu * (1 - mu), 1e-12, None)
        grad = x.T @ (y - mu) - pen * beta
        hess = (x * w[:, None]).T @ x + np.diag(pen)
        try:
            step = np.linalg.solve(hess, grad)
        except np.linalg.LinAlgError as exc:
            raise ModelError(
                "the dropout model cannot be fitted (singular); add a penalty"
            ) from exc
        beta = beta + step
        if float(np.max(np.abs(step))) < tol:
            break
    else:
        raise ModelError(
            "the logistic regression did not converge (perfect separation?); increase the penalty"
        )
    eta = x @ beta
    loglik = float(np.sum(y * eta - np.logaddexp(0.0, eta)))
    return beta, iterations, loglik


def fit_l2_logistic(
    x: pd.DataFrame | npt.ArrayLike,
    y: Sequence[float] | npt.ArrayLike,
    *,
    penalty: float = 1.0,
    standardise: bool = True,
) -> LogisticFit:
    """Fit an L2-regularised logistic regression by Newton–Raphson (IRLS).

    Parameters
    ----------
    x
        Features (rows = observations); a DataFrame keeps the column names.
    y
        0/1 outcomes.
    penalty
        λ ≥ 0; 0 gives ordinary maximum likelihood (R's ``glm(family = binomial)``).
    standardise
        Penalise the coefficients of z-scored features (so λ treats all features alike);
        coefficients are reported on the original scale.

    Returns
    -------
    LogisticFit

    Notes
    -----
    Maximises ``Σ [y·η − log(1 + e^η)] − (λ/2)·Σ_j β_j²`` (intercept unpenalised), η = Xβ,
    by Newton steps ``β ← β + (XᵀWX + λD)⁻¹ (Xᵀ(y − μ) − λDβ)``, W = diag(μ(1 − μ)). With
    ``standardise`` the features are z-scored first. λ = 0 matches R's ``glm``
    (``tests/engine/reference/dropout_glm.R``); λ > 0 matches statsmodels'
    ``GLM.fit_regularized(L1_wt=0, alpha=λ/n)``.

    References
    ----------
    le Cessie, S., & van Houwelingen, J. C. (1992). Ridge estimators in logistic regression.
    *Applied Statistics*, 41(1), 191–201.

    Examples
    --------
    >>> fit = fit_l2_logistic([[0.0], [1.0], [2.0], [3.0]], [0, 1, 0, 1], penalty=0.0)
    >>> round(fit.coefficients["x0"], 4)  # R: glm(y ~ x, family = binomial)
    0.9082
    """
    check_positive(penalty, "penalty", allow_zero=True)
    names = list(x.columns) if isinstance(x, pd.DataFrame) else None
    xm = np.asarray(x, dtype=float)
    if xm.ndim == 1:
        xm = xm[:, None]
    yv = as_float_array(y, "y")
    if xm.shape[0] != yv.size:
        raise InvalidResponse("x and y must have the same number of rows")
    if np.isnan(xm).any() or np.isnan(yv).any():
        raise InvalidResponse("the model's features and outcomes may not be missing")
    if not np.isin(yv, (0.0, 1.0)).all():
        raise InvalidResponse("outcomes must be 0 or 1")
    if names is None:
        names = [f"x{j}" for j in range(xm.shape[1])]
    mean = xm.mean(axis=0) if standardise else np.zeros(xm.shape[1])
    sd = xm.std(axis=0, ddof=0) if standardise else np.ones(xm.shape[1])
    sd = np.where(sd > 0, sd, 1.0)
    z = (xm - mean) / sd
    design = np.column_stack([np.ones(len(yv)), z])
    beta, it, ll = _irls(design, yv, float(penalty))
    coefs = beta[1:] / sd
    intercept = float(beta[0] - np.sum(coefs * mean))
    return LogisticFit(
        intercept=intercept,
        coefficients={n: float(c) for n, c in zip(names, coefs, strict=True)},
        penalty=float(penalty),
        iterations=it,
        loglik=ll,
    )


def auc(y: Sequence[float] | npt.ArrayLike, score: Sequence[float] | npt.ArrayLike) -> float:
    """Area under the ROC curve (the Mann–Whitney probability, ties count one half).

    Examples
    --------
    >>> auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    yv = as_float_array(y, "y")
    s = as_float_array(score, "score")
    pos, neg = s[yv == 1], s[yv == 0]
    if pos.size == 0 or neg.size == 0:
        raise InsufficientData("an AUC needs both outcomes")
    ranks = stats.rankdata(np.concatenate([pos, neg]))
    u = ranks[: pos.size].sum() - pos.size * (pos.size + 1) / 2
    return float(u / (pos.size * neg.size))


# --------------------------------------------------------------------------------------------
# The practice model
@dataclass(frozen=True, slots=True)
class CalibrationBin:
    """One bin of the calibration table: mean predicted risk vs observed dropout rate."""

    n: int
    mean_predicted: float
    observed: float


@dataclass(frozen=True, slots=True)
class DropoutModel:
    """A practice's dropout model with its cross-validated performance.

    Attributes
    ----------
    fit
        The coefficients fitted on all closed episodes.
    features
        Feature names in order.
    impute
        Training means used for missing features.
    cv_auc, cv_auc_folds
        Cross-validated AUC (pooled out-of-fold predictions) and per fold.
    brier
        Mean squared error of the out-of-fold probabilities.
    calibration_intercept, calibration_slope
        Logistic recalibration of the out-of-fold predictions: ``logit P(y) = a + b·logit p``
        (ideal a = 0, b = 1; Cox 1958).
    calibration
        Out-of-fold predictions in ``bins`` quantile bins.
    """

    fit: LogisticFit
    features: tuple[str, ...]
    impute: dict[str, float]
    n: int
    n_events: int
    window: int
    folds: int
    cv_auc: float
    cv_auc_folds: tuple[float, ...]
    brier: float
    calibration_intercept: float
    calibration_slope: float
    calibration: tuple[CalibrationBin, ...]
    method: str = "l2_logistic"
    notes: tuple[str, ...] = field(default=())

    def predict_proba(self, features: pd.DataFrame) -> FloatArray:
        """Dropout probability for each row of ``features`` (missing values imputed)."""
        x = features.reindex(columns=list(self.features)).astype(float)
        x = x.fillna(self.impute)
        coef = np.array([self.fit.coefficients[f] for f in self.features])
        out: FloatArray = special.expit(self.fit.intercept + x.to_numpy() @ coef)
        return out

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def _folds(y: FloatArray, k: int, seed: int) -> npt.NDArray[np.int64]:
    """Stratified fold labels: each fold gets its share of events and non-events."""
    rs = np.random.default_rng(seed)
    fold = np.empty(y.size, dtype=np.int64)
    for cls in (0.0, 1.0):
        idx = np.flatnonzero(y == cls)
        rs.shuffle(idx)
        fold[idx] = np.arange(idx.size) % k
    return fold


def fit_dropout_model(
    features: pd.DataFrame,
    *,
    penalty: float = 1.0,
    folds: int = 5,
    seed: int = 0,
    bins: int = 5,
    min_events_per_feature: float = 10.0,
    feature_names: Sequence[str] = DROPOUT_FEATURES,
    label: str = "dropped_out",
) -> DropoutModel:
    """Train the dropout model on closed episodes and cross-validate it.

    Parameters
    ----------
    features
        Output of :func:`dropout_features`: rows with a missing label (open episodes) and rows
        that did not reach the prediction window are left out.
    penalty
        L2 penalty λ on standardised features (default 1).
    folds
        Stratified k-fold cross-validation (default 5).
    min_events_per_feature
        Refuse to fit with fewer dropouts (and fewer completers) than this many per feature
        (default 10; Peduzzi et al. 1996).
    feature_names, label
        Which columns to use.

    Returns
    -------
    DropoutModel

    Notes
    -----
    Missing feature values are imputed with the training mean (within each fold for the
    cross-validation). The out-of-fold probabilities give the AUC, the Brier score, the
    calibration intercept and slope (logistic regression of the outcome on the logit of the
    prediction) and a calibration table.

    References
    ----------
    Peduzzi, P., Concato, J., Kemper, E., Holford, T. R., & Feinstein, A. R. (1996).
    A simulation study of the number of events per variable in logistic regression analysis.
    *Journal of Clinical Epidemiology*, 49(12), 1373–1379.
    Cox, D. R. (1958). Two further applications of a model for binary regression.
    *Biometrika*, 45(3/4), 562–565.
    """
    cols = list(feature_names)
    missing = [c for c in (*cols, label) if c not in features.columns]
    if missing:
        raise InvalidResponse(f"features missing column(s): {', '.join(missing)}")
    if folds < 2:
        raise InvalidParameter("folds must be at least 2")
    data = features[features[label].notna()]
    if "reached_window" in data.columns:
        data = data[data["reached_window"].astype(bool)]
    y = data[label].to_numpy(dtype=float)
    n_events, n_non = int((y == 1).sum()), int((y == 0).sum())
    need = math.ceil(min_events_per_feature * len(cols))
    if min(n_events, n_non) < need:
        raise InsufficientData(
            f"the dropout model needs at least {need} dropouts and {need} completed episodes "
            f"({min_events_per_feature:g} per feature); this practice has {n_events} and "
            f"{n_non}. Use the early-warning rule until then."
        )
    x = data[cols].astype(float)
    notes = []
    all_nan = [c for c in cols if x[c].isna().all()]
    if all_nan:
        raise InsufficientData(f"no data for feature(s) {', '.join(all_nan)}")
    fold = _folds(y, folds, seed)
    oof = np.empty(y.size)
    per_fold = []
    for k in range(folds):
        tr, te = fold != k, fold == k
        means = x[tr].mean()
        fit = fit_l2_logistic(x[tr].fillna(means), y[tr], penalty=penalty)
        coef = np.array([fit.coefficients[c] for c in cols])
        oof[te] = special.expit(fit.intercept + x[te].fillna(means).to_numpy() @ coef)
        if 0 < y[te].sum() < te.sum():
            per_fold.append(auc(y[te], oof[te]))
    means = x.mean()
    final = fit_l2_logistic(x.fillna(means), y, penalty=penalty)
    p = np.clip(oof, 1e-9, 1 - 1e-9)
    recal = fit_l2_logistic(special.logit(p)[:, None], y, penalty=0.0, standardise=False)
    edges = np.quantile(oof, np.linspace(0, 1, bins + 1))
    which = np.clip(np.searchsorted(edges, oof, side="right") - 1, 0, bins - 1)
    table = tuple(
        CalibrationBin(
            n=int((which == b).sum()),
            mean_predicted=float(oof[which == b].mean()),
            observed=float(y[which == b].mean()),
        )
        for b in range(bins)
        if (which == b).any()
    )
    if x.isna().any().any():
        notes.append("missing feature values were replaced by the training mean")
    return DropoutModel(
        fit=final,
        features=tuple(cols),
        impute={c: float(means[c]) for c in cols},
        n=int(y.size),
        n_events=n_events,
        window=int(features.attrs.get("window", 0)) or 0,
        folds=folds,
        cv_auc=auc(y, oof),
        cv_auc_folds=tuple(per_fold),
        brier=float(np.mean((oof - y) ** 2)),
        calibration_intercept=recal.intercept,
        calibration_slope=recal.coefficients["x0"],
        calibration=table,
        notes=tuple(notes),
    )
