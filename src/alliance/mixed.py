"""Linear mixed models with one grouping factor, fitted by profiled REML or ML.

The model, for group (client) ``i`` with ``n_i`` observations::

    y_i = X_i β + Z_i b_i + ε_i,    b_i ~ N(0, Σ),    ε_i ~ N(0, σ² I),

with ``q`` random effects per group and an unstructured ``q × q`` covariance ``Σ``. It is the
model R's ``lme4::lmer(y ~ x + (z | group))`` fits, fitted the same way (Bates, Mächler, Bolker
& Walker 2015): ``Σ = σ² T Tᵀ`` with ``T`` lower triangular (the relative covariance factor
``Λ(θ)`` of lme4 is block diagonal with one copy of ``T`` per group), the fixed effects and
``σ²`` are profiled out, and only ``θ`` (the lower triangle of ``T``) is optimised, with the
diagonal of ``T`` bounded below by zero.

What makes it fast is that, with one grouping factor, every quantity the profiled criterion
needs is a function of small per-group cross-products (``ZᵢᵀZᵢ``, ``ZᵢᵀXᵢ``, ``Zᵢᵀyᵢ``) and of
the global ``XᵀX``, ``Xᵀy`` and ``yᵀy``. They are computed in one vectorised pass over the
data, after which each evaluation of the criterion costs ``O(G q² (p + q))`` for ``G`` groups,
independent of the number of observations. See ``docs/algorithms/reml.md``.

>>> import numpy as np
>>> import alliance as al
>>> rng = np.random.default_rng(1)
>>> groups = np.repeat(np.arange(30), 8)
>>> x = np.tile(np.arange(8.0), 30)
>>> y = 10 + 2 * x + rng.normal(0, 2, 30)[groups] + rng.normal(0, 1, x.size)
>>> X = np.column_stack([np.ones_like(x), x])
>>> fit = al.fit_lmm(y, X, X[:, :1], groups, fixed_names=("(Intercept)", "x"))
>>> round(fit.fixed_effects["x"], 3)
2.012
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import optimize

from alliance.errors import InsufficientData, InvalidParameter, ModelError

__all__ = ["LMMResult", "fit_lmm"]

Float = NDArray[np.float64]

#: Method identifiers stored with results.
METHOD_REML = "lmm_reml"
METHOD_ML = "lmm_ml"

#: A fit is singular when a diagonal element of the relative covariance factor is below this
#: (the default tolerance of ``lme4::isSingular``, Bates et al. 2015).
SINGULAR_TOL = 1e-4

#: Convergence is declared when the Newton decrement ``sqrt(gᵀH⁻¹g)`` of the criterion is
#: below this (the criterion is then within ~5e-7 of its minimum).
CONVERGENCE_TOL = 1e-3

_LOG_2PI = math.log(2.0 * math.pi)


# --------------------------------------------------------------------------------------------
# Sufficient statistics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Statistics:
    """Per-group cross-products: all the profiled criterion needs from the data.

    ``ztz`` has shape ``(q, q, G)``, ``ztw`` ``(q, p + 1, G)`` (the last column is ``Zᵢᵀyᵢ``),
    ``wtw`` ``(p + 1, p + 1)`` = ``[X y]ᵀ[X y]`` summed over all observations.
    """

    ztz: Float
    ztw: Float
    wtw: Float
    n_obs: int
    group_labels: NDArray[Any]

    @property
    def p(self) -> int:
        return int(self.wtw.shape[0] - 1)

    @property
    def q(self) -> int:
        return int(self.ztz.shape[0])

    @property
    def n_groups(self) -> int:
        return int(self.ztz.shape[2])


def _as_matrix(values: ArrayLike, n: int, name: str) -> Float:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n:
        raise InvalidParameter(
            f"{name} must have one row per observation ({n}); got shape {arr.shape}."
        )
    if not np.all(np.isfinite(arr)):
        raise InvalidParameter(
            f"{name} contains missing or infinite values; drop those observations before fitting."
        )
    return np.ascontiguousarray(arr)


def _statistics(y: ArrayLike, X: ArrayLike, Z: ArrayLike, groups: ArrayLike) -> _Statistics:
    yv = np.asarray(y, dtype=np.float64).ravel()
    n = yv.size
    if not np.all(np.isfinite(yv)):
        raise InvalidParameter(
            "y contains missing or infinite values; drop those observations before fitting."
        )
    Xm = _as_matrix(X, n, "X")
    Zm = _as_matrix(Z, n, "Z")
    g = np.asarray(groups)
    if g.ndim != 1 or g.shape[0] != n:
        raise InvalidParameter(f"groups must be one label per observation ({n}).")
    if pd.isna(g).any():
        raise InvalidParameter("groups contains missing labels.")
    codes, labels = pd.factorize(g, sort=True)
    n_groups = labels.size
    q, p = Zm.shape[1], Xm.shape[1]
    W = np.empty((n, p + 1))
    W[:, :p] = Xm
    W[:, p] = yv
    ztz = np.empty((q, q, n_groups))
    for a in range(q):
        for b in range(a, q):
            ztz[a, b] = ztz[b, a] = np.bincount(codes, Zm[:, a] * Zm[:, b], n_groups)
    ztw = np.empty((q, p + 1, n_groups))
    for a in range(q):
        for c in range(p + 1):
            ztw[a, c] = np.bincount(codes, Zm[:, a] * W[:, c], n_groups)
    return _Statistics(ztz, ztw, W.T @ W, n, np.asarray(labels))


# --------------------------------------------------------------------------------------------
# The profiled criterion
# --------------------------------------------------------------------------------------------


def _theta_index(q: int) -> tuple[NDArray[np.intp], NDArray[np.intp]]:
    """Positions of θ in T: the lower triangle, column by column (lme4's order)."""
    rows = [i for j in range(q) for i in range(j, q)]
    cols = [j for j in range(q) for i in range(j, q)]
    return np.asarray(rows, dtype=np.intp), np.asarray(cols, dtype=np.intp)


def _batched_cholesky(A: Float) -> Float:
    """Lower Cholesky factors of G symmetric positive definite q×q matrices, shape (q, q, G)."""
    q = A.shape[0]
    L = np.zeros_like(A)
    for j in range(q):
        d = A[j, j] - np.sum(L[j, :j] ** 2, axis=0)
        L[j, j] = np.sqrt(d)
        for i in range(j + 1, q):
            L[i, j] = (A[i, j] - np.sum(L[i, :j] * L[j, :j], axis=0)) / L[j, j]
    return L


def _forward(L: Float, B: Float) -> Float:
    """Solve L C = B for each group; L (q, q, G), B (q, m, G)."""
    q = L.shape[0]
    C = np.empty_like(B)
    for i in range(q):
        ci = C[i]  # a view: updated in place, without temporaries for the copy
        ci[...] = B[i]
        for k in range(i):
            ci -= L[i, k] * C[k]
        ci /= L[i, i]
    return C


def _backward_t(L: Float, d: Float) -> Float:
    """Solve Lᵀ u = d for each group; L (q, q, G), d (q, G)."""
    q = L.shape[0]
    u = np.empty_like(d)
    for i in reversed(range(q)):
        acc = d[i].copy()
        for k in range(i + 1, q):
            acc -= L[k, i] * u[k]
        u[i] = acc / L[i, i]
    return u


@dataclass(frozen=True)
class _Evaluation:
    deviance: float
    T: Float
    K: Float  # Tᵀ ZᵢᵀZᵢ, (q, q, G)
    L: Float  # Cholesky factors of Tᵀ ZᵢᵀZᵢ T + I, (q, q, G)
    C: Float  # L⁻¹ Tᵀ [ZᵢᵀXᵢ Zᵢᵀyᵢ], (q, p + 1, G)
    LM: Float  # Cholesky factor of the Schur complement, (p + 1, p + 1)
    pwrss: float


def _t_transpose_times(T: Float, V: Float) -> Float:
    """``Tᵀ V`` for each group, with ``V`` of shape (q, ..., G) and T lower triangular."""
    q = T.shape[0]
    out = np.empty_like(V)
    for j in range(q):
        acc = T[j, j] * V[j]
        for a in range(j + 1, q):
            if T[a, j] != 0.0:
                acc = acc + T[a, j] * V[a]
        out[j] = acc
    return out


def _gram(C: Float) -> Float:
    """``Σ_groups CᵢᵀCᵢ`` for C of shape (q, m, G): an (m, m) matrix."""
    out = C[0] @ C[0].T
    for k in range(1, C.shape[0]):
        out += C[k] @ C[k].T
    result: Float = out
    return result


class _Profile:
    """The profiled deviance of Bates et al. (2015, eqs. 34 and 41) over per-group statistics."""

    def __init__(self, stats: _Statistics, reml: bool) -> None:
        self.stats = stats
        self.reml = reml
        self.rows, self.cols = _theta_index(stats.q)
        self.ztz_sum = stats.ztz.sum(axis=2)
        self.n_evaluations = 0

    def T(self, theta: Float) -> Float:
        q = self.stats.q
        T = np.zeros((q, q))
        T[self.rows, self.cols] = theta
        return T

    def evaluate(self, theta: Float) -> _Evaluation | None:
        s = self.stats
        q, p, n = s.q, s.p, s.n_obs
        self.n_evaluations += 1
        T = self.T(theta)
        # A_i = Tᵀ ZᵢᵀZᵢ T + I ;  B_i = Tᵀ [ZᵢᵀXᵢ  Zᵢᵀyᵢ]
        K = _t_transpose_times(T, s.ztz)  # K[j, b] = (Tᵀ ZᵢᵀZᵢ)[j, b]
        A = np.empty_like(K)
        for j in range(q):
            for k in range(j, q):
                acc = K[j, k] * T[k, k]
                for b in range(k + 1, q):
                    acc = acc + K[j, b] * T[b, k]
                A[j, k] = acc
                A[k, j] = acc
            A[j, j] += 1.0
        B = _t_transpose_times(T, s.ztw)
        L = _batched_cholesky(A)
        C = _forward(L, B)  # rows: R_ZX,i (first p columns) and c_u,i (last)
        log_det_l = 2.0 * float(sum(np.sum(np.log(L[j, j])) for j in range(q)))
        # Schur complement [[R_XᵀR_X, ·], [·, r² + c_βᵀc_β]] and its Cholesky factor.
        M = s.wtw - _gram(C)
        try:
            LM = np.linalg.cholesky(M)
        except np.linalg.LinAlgError:
            return None
        pwrss = float(LM[p, p] ** 2)
        if not pwrss > 0.0:
            return None
        if self.reml:
            log_det_rx = 2.0 * float(np.sum(np.log(np.diag(LM)[:p])))
            dof = n - p
            dev = log_det_l + log_det_rx + dof * (1.0 + _LOG_2PI + math.log(pwrss / dof))
        else:
            dev = log_det_l + n * (1.0 + _LOG_2PI + math.log(pwrss / n))
        return _Evaluation(dev, T, K, L, C, LM, pwrss)

    def deviance(self, theta: Float) -> float:
        ev = self.evaluate(theta)
        return math.inf if ev is None else ev.deviance

    def beta(self, ev: _Evaluation) -> Float:
        p = self.stats.p
        RX = ev.LM[:p, :p].T
        beta: Float = np.linalg.solve(RX, ev.LM[p, :p])
        return beta

    def gradient(self, theta: Float, ev: _Evaluation) -> Float:
        """Exact gradient of the profiled criterion (see docs/algorithms/reml.md).

        With ``V = Z Λ Λᵀ Zᵀ + I`` and ``P = V⁻¹ − V⁻¹X (XᵀV⁻¹X)⁻¹ XᵀV⁻¹``, the REML criterion
        has ``∂d_R/∂θ_k = tr(P ∂V) − (n − p) yᵀP ∂V P y / r²`` (ML: ``V⁻¹`` for ``P`` in the
        trace and ``n`` for ``n − p``). ``∂V`` is block diagonal with blocks
        ``Zᵢ (E_k Tᵀ + T E_kᵀ) Zᵢᵀ``, so the gradient is ``2 (G T)_{r(k), c(k)}`` with the
        q×q matrix ``G = Σᵢ ZᵢᵀV⁻¹Zᵢ − Σᵢ ZᵢᵀV⁻¹Xᵢ (XᵀV⁻¹X)⁻¹ XᵢᵀV⁻¹Zᵢ
        − (dof / r²) Σᵢ (ZᵢᵀPy)(ZᵢᵀPy)ᵀ`` (Woodbury: ``ZᵢᵀVᵢ⁻¹Wᵢ = ZᵢᵀWᵢ − (Lᵢ⁻¹Kᵢ)ᵀ Cᵢ``).
        """
        s = self.stats
        q, p, n = s.q, s.p, s.n_obs
        T = ev.T
        CZ = _forward(ev.L, ev.K)  # Lᵢ⁻¹ Tᵀ ZᵢᵀZᵢ, (q, q, G)
        # F_i = Zᵢᵀ V⁻¹ [Xᵢ yᵢ] = ZᵢᵀWᵢ − CZᵢᵀ Cᵢ, shape (q, p+1, G)
        F = s.ztw.copy()
        for a in range(q):
            for k in range(q):
                F[a] -= CZ[k, a] * ev.C[k]
        s1 = self.ztz_sum - _gram(CZ)
        beta = self.beta(ev)
        Py = np.empty((q, s.n_groups))
        for a in range(q):
            Py[a] = F[a, p] - beta @ F[a, :p]  # Zᵢᵀ P y
        rr = Py @ Py.T
        if self.reml:
            RX = ev.LM[:p, :p].T
            RX_inv_t = np.linalg.solve(RX, np.eye(p)).T
            # R_X⁻ᵀ ZᵢᵀV⁻¹Xᵢ rows. einsum, not BLAS: a (p×p)·(p×G) product and dot products
            # of long vectors are many times slower through OpenBLAS' threaded kernels here.
            Y = [np.einsum("ij,jg->ig", RX_inv_t, F[a, :p]) for a in range(q)]
            s2 = np.empty((q, q))
            for a in range(q):
                for b in range(a, q):
                    s2[a, b] = s2[b, a] = float(np.einsum("ig,ig->", Y[a], Y[b]))
            G = s1 - s2 - (n - p) / ev.pwrss * rr
        else:
            G = s1 - n / ev.pwrss * rr
        GT = G @ T
        grad: Float = 2.0 * GT[self.rows, self.cols]
        return grad

    def value_and_gradient(self, theta: Float) -> tuple[float, Float]:
        ev = self.evaluate(theta)
        if ev is None:
            return math.inf, np.zeros_like(theta)
        return ev.deviance, self.gradient(theta, ev)


# --------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LMMResult:
    """A fitted linear mixed model (one grouping factor).

    Attributes
    ----------
    method : str
        ``"lmm_reml"`` or ``"lmm_ml"``.
    fixed_names, random_names : tuple of str
        Names of the columns of ``X`` and ``Z``.
    coef : ndarray, shape (p,)
        Fixed effects ``β̂``.
    coef_cov : ndarray, shape (p, p)
        Their covariance ``σ̂² (R_XᵀR_X)⁻¹``, as ``vcov()`` in lme4.
    re_cov : ndarray, shape (q, q)
        Random-effect covariance ``Σ̂ = σ̂² T Tᵀ``.
    residual_var : float
        ``σ̂²``.
    theta : ndarray
        The optimised lower triangle of ``T`` (column by column, as ``getME(fit, "theta")``).
    criterion : float
        The REML criterion (REML fits) or the deviance ``−2 log L`` (ML fits), as lme4 reports.
    n_obs, n_groups : int
    converged, singular : bool
    n_evaluations : int
        Evaluations of the profiled criterion.
    group_labels : ndarray
        The sorted group labels, in the order of the rows of ``random_effects``.
    random_effects : ndarray, shape (G, q)
        Conditional modes of the random effects (``ranef()`` in lme4).
    """

    method: str
    fixed_names: tuple[str, ...]
    random_names: tuple[str, ...]
    coef: Float
    coef_cov: Float
    re_cov: Float
    residual_var: float
    theta: Float
    criterion: float
    n_obs: int
    n_groups: int
    converged: bool
    singular: bool
    n_evaluations: int
    group_labels: NDArray[Any] = field(repr=False)
    random_effects: Float = field(repr=False)

    @property
    def reml(self) -> bool:
        """Whether the fit is by REML."""
        return self.method == METHOD_REML

    @property
    def fixed_effects(self) -> dict[str, float]:
        """Fixed effects by name."""
        return {n: float(v) for n, v in zip(self.fixed_names, self.coef, strict=True)}

    @property
    def standard_errors(self) -> dict[str, float]:
        """Standard errors of the fixed effects by name."""
        se = np.sqrt(np.diag(self.coef_cov))
        return {n: float(v) for n, v in zip(self.fixed_names, se, strict=True)}

    @property
    def re_sd(self) -> dict[str, float]:
        """Standard deviations of the random effects by name."""
        sd = np.sqrt(np.diag(self.re_cov))
        return {n: float(v) for n, v in zip(self.random_names, sd, strict=True)}

    @property
    def re_corr(self) -> Float:
        """Correlation matrix of the random effects (NaN where a variance is zero)."""
        sd = np.sqrt(np.diag(self.re_cov))
        with np.errstate(invalid="ignore", divide="ignore"):
            corr: Float = self.re_cov / np.outer(sd, sd)
        return corr

    @property
    def loglik(self) -> float:
        """The (restricted, for REML fits) log-likelihood, ``−criterion / 2``."""
        return -self.criterion / 2.0

    @property
    def n_params(self) -> int:
        """Fixed effects + covariance parameters + residual variance."""
        return int(self.coef.size + self.theta.size + 1)

    @property
    def aic(self) -> float:
        """``−2 log L + 2 k`` (for a REML fit, with the REML log-likelihood, as lme4)."""
        return self.criterion + 2.0 * self.n_params

    @property
    def bic(self) -> float:
        """``−2 log L + k log n``."""
        return self.criterion + math.log(self.n_obs) * self.n_params

    def summary(self) -> pd.DataFrame:
        """Fixed effects with standard errors and t values, one row per term."""
        se = np.sqrt(np.diag(self.coef_cov))
        return pd.DataFrame(
            {"estimate": self.coef, "std_error": se, "t_value": self.coef / se},
            index=pd.Index(self.fixed_names, name="term"),
        )

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready summary (no random effects per group)."""
        return {
            "method": self.method,
            "fixed_effects": self.fixed_effects,
            "standard_errors": self.standard_errors,
            "random_names": list(self.random_names),
            "re_cov": self.re_cov.tolist(),
            "residual_var": self.residual_var,
            "theta": self.theta.tolist(),
            "criterion": self.criterion,
            "loglik": self.loglik,
            "n_obs": self.n_obs,
            "n_groups": self.n_groups,
            "converged": self.converged,
            "singular": self.singular,
        }


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def _newton_polish(profile: _Profile, theta: Float) -> tuple[Float, float, Float | None]:
    """Safeguarded Newton steps, with a Hessian from differences of the exact gradient; a step is
    kept only if it lowers the criterion.

    Returns θ and the Newton decrement ``sqrt(gᵀH⁺g)`` at θ: half its square estimates how far
    the criterion is above the optimum, whatever the sample size or the scale of θ. Directions
    of (near-)zero curvature, which occur in singular fits where parameters are not separately
    identified, are left out of the step; a gradient along them, or negative curvature, means
    the point is not a minimum: the decrement is infinite and, for negative curvature, the
    third value is the direction of steepest curvature descent (to restart from). Each step
    costs ``k + 1`` evaluations for ``k`` parameters.
    """
    f0, g0 = profile.value_and_gradient(theta)
    k = theta.size
    decrement = math.inf
    for _ in range(5):
        H = np.empty((k, k))
        for a in range(k):
            h = 1e-6 * max(abs(theta[a]), 1e-2)
            e = np.zeros_like(theta)
            e[a] = h
            _, ga = profile.value_and_gradient(theta + e)
            H[:, a] = (ga - g0) / h
        lam, vec = np.linalg.eigh((H + H.T) / 2.0)
        proj = vec.T @ g0
        flat = lam <= 1e-8 * max(float(np.max(np.abs(lam))), 1e-300)
        if lam[0] < -1e-6 * float(np.max(np.abs(lam))):
            direction: Float = vec[:, 0]
            return theta, math.inf, direction
        if np.any(np.abs(proj[flat]) > 1e-6 * max(1.0, abs(f0))):
            return theta, math.inf, None
        coef = np.where(flat, 0.0, proj / np.where(flat, 1.0, lam))
        decrement = math.sqrt(float(np.sum(coef * proj)))
        if decrement < 1e-7:
            break
        candidate = theta - vec @ coef
        f1, g1 = profile.value_and_gradient(candidate)
        if not f1 < f0:
            break
        theta, f0, g0 = candidate, f1, g1
    return theta, decrement, None


def _canonical(profile: _Profile, theta: Float) -> Float:
    """θ with every column of T signed so that its diagonal is ≥ 0 (TTᵀ, hence the fit, is
    unchanged by flipping the sign of a column), as in lme4's parametrisation."""
    T = profile.T(theta)
    signs = np.where(np.diag(T) < 0, -1.0, 1.0)
    T = T * signs[None, :]
    out: Float = T[profile.rows, profile.cols]
    return out


def _names(names: Sequence[str] | None, k: int, prefix: str, what: str) -> tuple[str, ...]:
    if names is None:
        return tuple(f"{prefix}{j}" for j in range(k))
    out = tuple(str(n) for n in names)
    if len(out) != k:
        raise InvalidParameter(f"{what} has {len(out)} names for {k} columns.")
    return out


def fit_lmm(
    y: ArrayLike,
    X: ArrayLike,
    Z: ArrayLike,
    groups: ArrayLike,
    *,
    reml: bool = True,
    fixed_names: Sequence[str] | None = None,
    random_names: Sequence[str] | None = None,
    on_singular: Literal["raise", "allow"] = "raise",
    start: ArrayLike | None = None,
) -> LMMResult:
    """Fit a linear mixed model with one grouping factor by profiled REML (or ML).

    Parameters
    ----------
    y : array_like, shape (n,)
        Response.
    X : array_like, shape (n, p)
        Fixed-effects design, including the intercept column if wanted.
    Z : array_like, shape (n, q)
        Random-effects design (e.g. ``[1, time]`` for a random intercept and slope).
    groups : array_like, shape (n,)
        Group label per observation (e.g. client id); any hashable labels.
    reml : bool, default True
        REML (lme4's default) or maximum likelihood.
    fixed_names, random_names : sequence of str, optional
        Column names for the output (default ``x0, x1, …`` and ``z0, z1, …``).
    on_singular : {"raise", "allow"}, default "raise"
        What to do when the random-effect covariance is estimated on the boundary (a variance of
        zero or a correlation of ±1): raise :class:`~alliance.errors.ModelError`, or return the
        result with ``singular=True``.
    start : array_like, optional
        Starting θ (default: the identity, as lme4).

    Returns
    -------
    LMMResult

    Raises
    ------
    InvalidParameter
        Shapes that do not match, or missing values.
    InsufficientData
        Fewer than two groups, or too few observations to separate the random effects from the
        residual (``n ≤ q·G``, lme4's check) or to estimate the fixed effects.
    ModelError
        A rank-deficient ``X``, an optimiser that did not converge, or a singular fit.

    Notes
    -----
    With ``Σ = σ² T Tᵀ``, ``Lᵢ Lᵢᵀ = Tᵀ ZᵢᵀZᵢ T + I``, ``R_ZX,i = Lᵢ⁻¹ Tᵀ ZᵢᵀXᵢ``,
    ``c_u,i = Lᵢ⁻¹ Tᵀ Zᵢᵀyᵢ``, ``R_XᵀR_X = XᵀX − Σᵢ R_ZX,iᵀR_ZX,i``,
    ``R_Xᵀ c_β = Xᵀy − Σᵢ R_ZX,iᵀ c_u,i`` and the penalised residual sum of squares
    ``r²(θ) = yᵀy − Σᵢ ‖c_u,i‖² − ‖c_β‖²``, the profiled criteria (Bates et al. 2015, eqs. 34
    and 41) are::

        REML:  d_R(θ) = log|L_θ|² + log|R_X|² + (n − p) [1 + log(2π r²(θ) / (n − p))]
        ML:    d(θ)   = log|L_θ|² + n [1 + log(2π r²(θ) / n)]

    with ``log|L_θ|² = Σᵢ log|Lᵢ|²``. θ is found by L-BFGS-B with the exact gradient (see
    ``docs/algorithms/reml.md``), polished by Newton steps, and its columns are then signed so
    that the diagonal of ``T`` is ≥ 0 (lme4's convention; the fit depends on ``TTᵀ`` only).
    Then ``β̂ = R_X⁻¹ c_β``, ``σ̂² = r² / (n − p)`` (REML) or ``r² / n`` (ML),
    ``Cov(β̂) = σ̂² (R_XᵀR_X)⁻¹``, ``Σ̂ = σ̂² T Tᵀ``. The same numbers as
    ``lme4::lmer(y ~ 0 + X + (0 + Z | group), REML = reml)``; validated against lme4 1.1-31
    (``tests/engine/reference/lmm_reference.R``).

    References
    ----------
    Bates, D., Mächler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models
    using lme4. *Journal of Statistical Software*, 67(1), 1–48. doi:10.18637/jss.v067.i01

    Examples
    --------
    A random intercept and slope (sleepstudy-shaped data):

    >>> import numpy as np
    >>> import alliance as al
    >>> rng = np.random.default_rng(7)
    >>> g = np.repeat(np.arange(40), 6)
    >>> t = np.tile(np.arange(6.0), 40)
    >>> u = rng.normal(0, [3.0, 1.0], (40, 2))
    >>> y = 20 - 2 * t + u[g, 0] + u[g, 1] * t + rng.normal(0, 1.5, t.size)
    >>> X = np.column_stack([np.ones_like(t), t])
    >>> fit = al.fit_lmm(y, X, X, g, fixed_names=["(Intercept)", "t"])
    >>> fit.method, fit.n_groups, fit.converged
    ('lmm_reml', 40, True)
    >>> {k: round(v, 2) for k, v in fit.fixed_effects.items()}
    {'(Intercept)': 19.17, 't': -2.13}
    >>> fit.singular, round(fit.re_sd["z1"], 2)
    (False, 0.97)
    """
    if on_singular not in ("raise", "allow"):
        raise InvalidParameter(f"on_singular must be 'raise' or 'allow', not {on_singular!r}.")
    stats = _statistics(y, X, Z, groups)
    p, q, n, G = stats.p, stats.q, stats.n_obs, stats.n_groups
    fnames = _names(fixed_names, p, "x", "fixed_names")
    rnames = _names(random_names, q, "z", "random_names")
    if q < 1:
        raise InvalidParameter(
            "Z needs at least one column (a random intercept is a column of 1s)."
        )
    if G < 2:
        raise InsufficientData(
            f"A mixed model needs at least two groups; the data have {G}. Fit an ordinary "
            "regression instead, or add data from more groups."
        )
    if n <= p:
        raise InsufficientData(f"{n} observations cannot estimate {p} fixed effects.")
    if n <= q * G:
        raise InsufficientData(
            f"The number of observations ({n}) is not larger than the number of random effects "
            f"({q} per group × {G} groups = {q * G}), so the random effects cannot be separated "
            "from the residual. Each group needs more observations than random effects (e.g. at "
            "least two follow-up sessions per client for a random intercept and slope), or use "
            "fewer random effects."
        )
    xtx = stats.wtw[:p, :p]
    scale = np.sqrt(np.diag(xtx))
    if np.any(scale == 0) or np.linalg.matrix_rank(xtx / np.outer(scale, scale)) < p:
        raise ModelError(
            "The fixed-effects design is rank deficient (a column is constant zero or a linear "
            f"combination of others: {', '.join(fnames)}). Remove the redundant column."
        )
    profile = _Profile(stats, reml)
    on_diag = profile.rows == profile.cols
    theta0 = (
        np.where(on_diag, 1.0, 0.0)
        if start is None
        else np.asarray(start, dtype=np.float64).ravel()
    )
    if theta0.size != on_diag.size:
        raise InvalidParameter(f"start must have {on_diag.size} values (the lower triangle of T).")
    if not math.isfinite(profile.deviance(theta0)):
        raise ModelError("The criterion cannot be evaluated at the starting values.")
    # Unconstrained: the criterion depends on T only through TTᵀ, so the signs of T's columns
    # are free and are fixed afterwards. (Bounding the diagonal at zero, as lme4 does for
    # BOBYQA, lets a gradient method stall at θ_jj = 0, where the criterion is even in the
    # column's sign and its derivative vanishes.)
    theta = theta0
    for _ in range(4):
        res = optimize.minimize(
            profile.value_and_gradient,
            theta,
            jac=True,
            method="L-BFGS-B",
            options={"ftol": 1e-14, "gtol": 1e-8, "maxiter": 500, "maxcor": 20},
        )
        theta, decrement, escape = _newton_polish(profile, np.asarray(res.x, dtype=np.float64))
        if escape is None:
            break
        # A saddle point (typically θ_jj = 0 reached by a long first step): restart from the
        # best nearby point along the direction of negative curvature.
        trials = [theta + a * escape for a in (0.1, -0.1, 0.3, -0.3, 1.0, -1.0)]
        theta = min(trials, key=profile.deviance)
    theta = _canonical(profile, theta)
    ev = profile.evaluate(theta)
    if ev is None or not math.isfinite(ev.deviance):
        raise ModelError(
            "The mixed model could not be fitted (the criterion is not finite at the optimum): "
            "check for a response that is (nearly) perfectly explained by the fixed effects."
        )
    # Convergence: the Newton decrement at the solution is small, i.e. the criterion is within
    # about decrement²/2 of its minimum (an affine-invariant version of lme4's check of the
    # scaled gradient, whose tolerance is 2e-3).
    converged = decrement < CONVERGENCE_TOL
    if not converged:
        raise ModelError(
            "The mixed model did not converge (Newton decrement at the solution "
            f"{decrement:.3g}). Rescale covariates with large values (e.g. centre and divide "
            "by their SD), or simplify the random effects."
        )
    singular = bool(np.any(theta[on_diag] < SINGULAR_TOL))
    T = ev.T
    dof = n - p if reml else n
    sigma2 = ev.pwrss / dof
    re_cov = sigma2 * (T @ T.T)
    if singular and on_singular == "raise":
        sd = np.sqrt(np.diag(re_cov))
        raise ModelError(
            "Singular fit: the random-effect covariance is on the boundary (SDs "
            + ", ".join(f"{nm} {v:.3g}" for nm, v in zip(rnames, sd, strict=True))
            + "), i.e. a variance is estimated as zero or a correlation as ±1. The data do not "
            "support this many random effects: use more groups or more observations per group, "
            "drop the random slope, or pass on_singular='allow' to accept the boundary fit."
        )
    LM = ev.LM
    RX = LM[:p, :p].T  # upper triangular
    c_beta = LM[p, :p]
    beta = np.linalg.solve(RX, c_beta)
    RX_inv = np.linalg.solve(RX, np.eye(p))
    coef_cov = sigma2 * (RX_inv @ RX_inv.T)
    # Conditional modes: u_i = L_i⁻ᵀ (c_u,i − R_ZX,i β̂), b_i = T u_i.
    d = ev.C[:, p, :] - np.tensordot(beta, ev.C[:, :p, :], axes=(0, 1))
    u = _backward_t(ev.L, d)
    b = (T @ u).T
    return LMMResult(
        method=METHOD_REML if reml else METHOD_ML,
        fixed_names=fnames,
        random_names=rnames,
        coef=beta,
        coef_cov=coef_cov,
        re_cov=re_cov,
        residual_var=float(sigma2),
        theta=theta,
        criterion=float(ev.deviance),
        n_obs=n,
        n_groups=G,
        converged=converged,
        singular=singular,
        n_evaluations=profile.n_evaluations,
        group_labels=stats.group_labels,
        random_effects=np.ascontiguousarray(b),
    )
