"""Expected treatment response (ETR): the course a client is expected to follow, with bands.

Three methods, each with a stable identifier stored with the model and its signals:

``loglinear_intake`` (the default; ``docs/algorithms/loglinear_intake.md``)
    One growth-curve mixed model for the whole practice, fitted by REML on sessions ≥ 2::

        score_it = b0 + b1·log(session_it) + b2·intake_i + b3·log(session_it)·intake_i
                   + u0_i + u1_i·log(session_it) + e_it

    where ``intake_i`` is the client's score at session 1 and ``(u0, u1)`` has an unstructured
    2×2 covariance. Identical to R's
    ``lmer(score ~ log(session) * intake + (1 + log(session) | client), REML = TRUE)``.
``intake_stratified`` (Finch, Lambert & Schaalje 2001; ``docs/algorithms/finch_stratified.md``)
    Clients are grouped by intake score into strata; each stratum gets its own growth curve
    ``score = a + b·log(session) + u0 + u1·log(session) + e``.
``nearest_neighbours`` (after Lutz et al. 2006; ``docs/algorithms/lutz_nearest_neighbour.md``)
    For an intake score, the ``k`` clients with the most similar intake form the reference
    group, whose growth curve gives a patient-specific expectation and band.

Every model gives, for a session and an intake score, the expected score and the predictive
distribution of a new client's score (normal, with the variance of the fixed-effect estimate,
of the client's random effects and of the residual at that session), hence tolerance bands at
any percentiles. Models serialise to plain JSON (:meth:`ETRModel.to_dict`,
:meth:`ETRModel.from_dict`) so the web app can store and load them; the stored model contains
only estimated parameters, never client data.

>>> import alliance as al
>>> model = al.fit_etr(al.recovery.example_data())
>>> model.method, model.n_clients
('loglinear_intake', 120)
>>> round(model.expected(4, intake=18), 1)
12.8
>>> [round(v, 1) for v in model.band(4, intake=18, percentiles=(10, 90))]
[7.6, 18.0]
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, ClassVar, Literal, overload

import numpy as np
import pandas as pd
from numpy.typing import ArrayLike, NDArray
from scipy import stats

from alliance.errors import InsufficientData, InvalidParameter
from alliance.instruments.registry import get as get_instrument
from alliance.instruments.schema import Instrument
from alliance.mixed import LMMResult, fit_lmm

__all__ = [
    "METHODS",
    "ETRModel",
    "IntakeStratified",
    "LogLinearIntake",
    "NearestNeighbours",
    "example_data",
    "fit_etr",
    "prepare_course_data",
]

Float = NDArray[np.float64]
Direction = Literal["higher_is_worse", "higher_is_better"]

#: Stable identifiers of the ETR methods.
METHODS: tuple[str, ...] = ("loglinear_intake", "intake_stratified", "nearest_neighbours")

#: Version of the JSON layout written by :meth:`ETRModel.to_dict`.
SCHEMA_VERSION = 1

#: Fixed-effect names of ``loglinear_intake``, as in the ``alliance calibrate --json`` contract.
LOGLINEAR_TERMS: tuple[str, ...] = ("(Intercept)", "log_session", "intake", "log_session:intake")


# --------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------


def prepare_course_data(
    data: pd.DataFrame,
    *,
    client: str = "client",
    session: str = "session",
    score: str = "score",
) -> pd.DataFrame:
    """Check and tidy long course data: one row per client and session.

    Parameters
    ----------
    data : DataFrame
        Long data with client, session and score columns (other columns are ignored).
    client, session, score : str
        Column names.

    Returns
    -------
    DataFrame
        Columns ``client``, ``session`` (float, ≥ 1), ``score`` (float) and ``intake`` (the
        client's score at session 1, NaN if the client has none), sorted by client and session.
        Rows with an empty score (a missed administration) are dropped.

    Raises
    ------
    InvalidParameter
        Missing columns, non-numeric scores or sessions, sessions below 1, or two scores for
        the same client and session; the message quotes the offending rows.

    Examples
    --------
    >>> import pandas as pd
    >>> raw = pd.DataFrame({"client": ["a", "a", "b"], "session": [1, 2, 1], "score": [20, 15, 9]})
    >>> prepare_course_data(raw)["intake"].tolist()
    [20.0, 20.0, 9.0]
    """
    missing = [c for c in (client, session, score) if c not in data.columns]
    if missing:
        raise InvalidParameter(
            f"missing column(s) {', '.join(missing)}; found {', '.join(map(str, data.columns))}. "
            f"Course data need {client}, {session} and {score}."
        )
    frame = pd.DataFrame(
        {"client": data[client].to_numpy(), "session": data[session], "score": data[score]}
    )
    if frame["client"].isna().any():
        rows = list(frame.index[frame["client"].isna()][:5])
        raise InvalidParameter(f"{client} is empty in row(s) {rows}.")
    for col, name in (("session", session), ("score", score)):
        raw = frame[col]
        if pd.api.types.is_numeric_dtype(raw.dtype) and not pd.api.types.is_bool_dtype(raw.dtype):
            frame[col] = raw.astype(float)
            continue
        present = raw.notna() & (raw.astype(str).str.strip() != "")
        values = pd.to_numeric(raw.where(present), errors="coerce")
        bad = present & values.isna()
        if bad.any():
            examples = ", ".join(f"row {i}: {raw[i]!r}" for i in list(raw.index[bad])[:5])
            raise InvalidParameter(f"{name} must be numeric; found {examples}.")
        frame[col] = values.astype(float)
    if frame["session"].isna().any():
        rows = list(frame.index[frame["session"].isna()][:5])
        raise InvalidParameter(f"{session} is empty in row(s) {rows}.")
    if (frame["session"] < 1).any():
        rows = list(frame.index[frame["session"] < 1][:5])
        raise InvalidParameter(
            f"{session} numbers start at 1 (the intake); found values below 1 in row(s) {rows}."
        )
    frame = frame[frame["score"].notna()]
    dup = frame.duplicated(["client", "session"], keep=False)
    if dup.any():
        first = frame[dup].iloc[0]
        raise InvalidParameter(
            f"{int(dup.sum())} rows repeat a client and session (e.g. client {first['client']!r}, "
            f"session {first['session']:g}); keep one score per client and session."
        )
    frame = frame.sort_values(["client", "session"], kind="stable").reset_index(drop=True)
    intake = frame.loc[frame["session"] == 1].set_index("client")["score"]
    frame["intake"] = frame["client"].map(intake).astype(float)
    return frame


def _followups(frame: pd.DataFrame, min_session: float) -> pd.DataFrame:
    """Rows after the intake of clients who have an intake, or a clear error."""
    if frame.empty:
        raise InsufficientData("There are no scores to fit an expected-recovery model to.")
    has_intake = frame["intake"].notna()
    if not has_intake.any():
        raise InsufficientData(
            "No client has a score at session 1 (the intake), which the model conditions on. "
            "Number sessions from 1 at intake."
        )
    rows = frame[has_intake & (frame["session"] >= min_session)]
    if rows.empty:
        raise InsufficientData(
            "Every client has a single session: the expected-recovery model needs scores after "
            "the intake (session 1) for at least some clients."
        )
    return rows


def _fit_curve(rows: pd.DataFrame, with_intake: bool, reml: bool, on_singular: str) -> LMMResult:
    ls = np.log(rows["session"].to_numpy(float))
    ones = np.ones_like(ls)
    if with_intake:
        it = rows["intake"].to_numpy(float)
        X = np.column_stack([ones, ls, it, ls * it])
        names: Sequence[str] = LOGLINEAR_TERMS
    else:
        X = np.column_stack([ones, ls])
        names = LOGLINEAR_TERMS[:2]
    Z = np.column_stack([ones, ls])
    try:
        return fit_lmm(
            rows["score"].to_numpy(float),
            X,
            Z,
            rows["client"].to_numpy(),
            reml=reml,
            fixed_names=names,
            random_names=("(Intercept)", "log_session"),
            on_singular="allow" if on_singular == "allow" else "raise",
        )
    except InsufficientData as exc:
        n_clients = rows["client"].nunique()
        raise InsufficientData(
            f"{len(rows)} follow-up scores from {n_clients} clients are too few for a random "
            "intercept and slope per client: most clients need at least two sessions after the "
            f"intake. ({exc})"
        ) from exc


def example_data(n_clients: int = 120, seed: int = 7) -> pd.DataFrame:
    """A small simulated PHQ-9-like practice for examples: ``client``, ``session``, ``score``.

    Intake ~ N(16, 4.5); expected change ``(−3.5 − 0.15·(intake − 16))·log(session)``; client
    random intercept SD 2.5 and log-slope SD 1.5; residual SD 2.2; up to 12 sessions; scores
    rounded and clipped to 0–27. Illustrative values, not estimates from any study.
    """
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n_clients):
        n_s = int(rng.integers(3, 13))
        s = np.arange(1, n_s + 1, dtype=float)
        intake = rng.normal(16, 4.5)
        u0, u1 = rng.normal(0, 2.5), rng.normal(0, 1.5)
        mu = intake + u0 * (s > 1) + (-3.5 - 0.15 * (intake - 16) + u1) * np.log(s)
        y = np.clip(np.round(mu + rng.normal(0, 2.2, n_s)), 0, 27)
        rows.append(pd.DataFrame({"client": f"c{i:03d}", "session": s.astype(int), "score": y}))
    return pd.concat(rows, ignore_index=True)


# --------------------------------------------------------------------------------------------
# Models
# --------------------------------------------------------------------------------------------


def _as_float_array(value: ArrayLike, name: str) -> Float:
    arr = np.asarray(value, dtype=np.float64)
    if np.any(~np.isfinite(arr)):
        raise InvalidParameter(f"{name} must be finite numbers.")
    return arr


def _percentile_z(percentiles: ArrayLike) -> Float:
    p = np.asarray(percentiles, dtype=np.float64)
    if np.any((p <= 0) | (p >= 100)):
        raise InvalidParameter("percentiles must lie strictly between 0 and 100.")
    z: Float = stats.norm.ppf(p / 100.0)
    return z


@lru_cache(maxsize=64)
def _percentile_z_cached(percentiles: tuple[float, ...]) -> tuple[float, ...]:
    """:func:`_percentile_z` memoised (a pure function of its argument; for ``curve``)."""
    return tuple(_percentile_z(list(percentiles)).tolist())


def _pair(value: Any) -> tuple[float, float]:
    a, b = (float(v) for v in value)
    return a, b


def _matrix(value: Any, shape: tuple[int, int], name: str) -> tuple[tuple[float, ...], ...]:
    arr = np.asarray(value, dtype=np.float64)
    if arr.shape != shape:
        raise InvalidParameter(f"{name} must be a {shape[0]}×{shape[1]} matrix.")
    return tuple(tuple(float(v) for v in row) for row in arr)


@dataclass(frozen=True)
class ETRModel:
    """Base class of the expected-treatment-response models.

    Subclasses implement ``_moments(session, intake) -> (mean, variance)`` of a new client's
    score; everything else (expected scores, predictive SDs, quantiles, bands, curves) follows.

    Attributes
    ----------
    direction : str
        ``higher_is_worse`` or ``higher_is_better`` (which side of a band is the bad side).
    instrument : str or None
        The instrument the model was fitted for, if known.
    n_obs, n_clients : int
        Follow-up scores and clients the model was fitted to.
    """

    method: ClassVar[str] = ""

    direction: Direction
    instrument: str | None
    n_obs: int
    n_clients: int

    def _moments(self, session: Float, intake: Float) -> tuple[Float, Float]:
        raise NotImplementedError  # pragma: no cover

    def _evaluate(self, session: ArrayLike, intake: ArrayLike) -> tuple[Float, Float]:
        s = _as_float_array(session, "session")
        x = _as_float_array(intake, "intake")
        if np.any(s <= 0):
            raise InvalidParameter("session numbers start at 1.")
        s, x = np.broadcast_arrays(s, x)
        return self._moments(s.astype(np.float64), x.astype(np.float64))

    @overload
    def expected(self, session: float, intake: float) -> float: ...
    @overload
    def expected(self, session: ArrayLike, intake: ArrayLike) -> Float | float: ...
    def expected(self, session: ArrayLike, intake: ArrayLike) -> Float | float:
        """The expected score at ``session`` for a client with this intake score (vectorised)."""
        mean, _ = self._evaluate(session, intake)
        return float(mean) if mean.ndim == 0 else mean

    def predictive_sd(self, session: ArrayLike, intake: ArrayLike) -> Float | float:
        """SD of a new client's score at ``session`` around the expected score."""
        _, var = self._evaluate(session, intake)
        sd = np.sqrt(var)
        return float(sd) if sd.ndim == 0 else sd

    def quantile(self, session: ArrayLike, intake: ArrayLike, percentile: float) -> Float | float:
        """The ``percentile`` (0–100) of a new client's score at ``session``."""
        mean, var = self._evaluate(session, intake)
        q = mean + float(_percentile_z(percentile)) * np.sqrt(var)
        return float(q) if q.ndim == 0 else q

    def band(
        self,
        session: ArrayLike,
        intake: ArrayLike,
        percentiles: tuple[float, float] = (10.0, 90.0),
    ) -> tuple[Float | float, Float | float]:
        """Tolerance band ``(lower, upper)`` between two percentiles of the predictive distribution."""
        lo, hi = sorted(percentiles)
        return self.quantile(session, intake, lo), self.quantile(session, intake, hi)

    def curve(
        self,
        intake: float,
        sessions: Sequence[int] | None = None,
        percentiles: Sequence[float] = (10.0, 25.0, 75.0, 90.0),
    ) -> pd.DataFrame:
        """The expected course for one intake score, with percentile columns (for charts).

        Returns a DataFrame with ``session``, ``expected``, ``sd`` and ``p<percentile>`` columns.
        """
        s = np.asarray(list(sessions) if sessions is not None else range(1, 21), dtype=float)
        mean, var = self._evaluate(s, intake)
        sd = np.sqrt(var)
        # All columns at once: inserting them one by one cost most of the time for a short curve.
        columns: dict[str, Any] = {"session": s.astype(int), "expected": mean, "sd": sd}
        pcts = tuple(percentiles)
        for p, z in zip(pcts, _percentile_z_cached(pcts), strict=True):
            columns[f"p{p:g}"] = mean + z * sd
        return pd.DataFrame(columns)

    def worse(self, a: ArrayLike, b: ArrayLike) -> NDArray[np.bool_]:
        """Whether score ``a`` is worse than score ``b`` under the model's direction."""
        a_, b_ = np.asarray(a, float), np.asarray(b, float)
        out: NDArray[np.bool_] = a_ > b_ if self.direction == "higher_is_worse" else a_ < b_
        return out

    def _base_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "schema_version": SCHEMA_VERSION,
            "instrument": self.instrument,
            "direction": self.direction,
            "n_obs": self.n_obs,
            "n_clients": self.n_clients,
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready description of the model (parameters only, no client data)."""
        raise NotImplementedError  # pragma: no cover

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> ETRModel:
        """Rebuild a model from :meth:`to_dict` output (any of the three methods).

        Raises
        ------
        InvalidParameter
            An unknown method or schema version, or missing or malformed fields.
        """
        method = data.get("method")
        kinds: dict[str, type[ETRModel]] = {
            "loglinear_intake": LogLinearIntake,
            "intake_stratified": IntakeStratified,
            "nearest_neighbours": NearestNeighbours,
        }
        if method not in kinds:
            raise InvalidParameter(
                f"unknown expected-recovery method {method!r}; known: {', '.join(kinds)}."
            )
        version = data.get("schema_version", SCHEMA_VERSION)
        if version != SCHEMA_VERSION:
            raise InvalidParameter(
                f"model file has schema version {version!r}; this version of Alliance reads "
                f"{SCHEMA_VERSION}. Recalibrate with `alliance calibrate`."
            )
        direction = data.get("direction", "higher_is_worse")
        if direction not in ("higher_is_worse", "higher_is_better"):
            raise InvalidParameter("direction must be higher_is_worse or higher_is_better.")
        try:
            return kinds[str(method)]._from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            if isinstance(exc, InvalidParameter):
                raise
            raise InvalidParameter(f"malformed {method} model: {exc!s}") from exc

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> ETRModel:
        raise NotImplementedError  # pragma: no cover


@dataclass(frozen=True)
class LogLinearIntake(ETRModel):
    """``loglinear_intake``: one mixed model with intake as covariate (see the module docstring).

    Attributes
    ----------
    coef : tuple of 4 floats
        ``b0, b1, b2, b3`` for ``(Intercept)``, ``log_session``, ``intake``,
        ``log_session:intake``.
    coef_cov : 4×4
        Covariance of the estimates.
    re_cov : 2×2
        Covariance of ``(u0, u1)``.
    residual_var : float
    reml_criterion : float
        −2 × the REML log-likelihood, as lme4 reports it.
    session_range, intake_range : (float, float)
        The range of the data fitted (predictions outside it are extrapolations).

    Notes
    -----
    For ``x = (1, log s, I, I·log s)`` and ``z = (1, log s)`` the expected score is ``xᵀb`` and
    the predictive variance of a new client's score is
    ``xᵀ Cov(b̂) x + zᵀ Σ_u z + σ²``; bands are ``xᵀb + Φ⁻¹(p)·sqrt(variance)``.
    """

    method: ClassVar[str] = "loglinear_intake"

    coef: tuple[float, float, float, float]
    coef_cov: tuple[tuple[float, ...], ...]
    re_cov: tuple[tuple[float, ...], ...]
    residual_var: float
    reml_criterion: float
    session_range: tuple[float, float]
    intake_range: tuple[float, float]

    @property
    def fixed_effects(self) -> dict[str, float]:
        """Fixed effects by the contract's names."""
        return dict(zip(LOGLINEAR_TERMS, self.coef, strict=True))

    def _moments(self, session: Float, intake: Float) -> tuple[Float, Float]:
        ls = np.log(session)
        X = np.stack([np.ones_like(ls), ls, intake, ls * intake], axis=-1)
        Z = X[..., :2]
        b = np.asarray(self.coef)
        C = np.asarray(self.coef_cov)
        D = np.asarray(self.re_cov)
        mean = X @ b
        var = (
            np.einsum("...i,ij,...j->...", X, C, X)
            + np.einsum("...i,ij,...j->...", Z, D, Z)
            + self.residual_var
        )
        return mean, var

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: the keys of the ``alliance calibrate --json`` ``model`` contract and more."""
        out = self._base_dict()
        out.update(
            {
                "fixed_effects": self.fixed_effects,
                "fixed_effects_cov": [list(r) for r in self.coef_cov],
                "re_cov": [list(r) for r in self.re_cov],
                "residual_var": self.residual_var,
                "reml_criterion": self.reml_criterion,
                "session_range": list(self.session_range),
                "intake_range": list(self.intake_range),
            }
        )
        return out

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> LogLinearIntake:
        fe = data["fixed_effects"]
        return cls(
            direction=data.get("direction", "higher_is_worse"),
            instrument=data.get("instrument"),
            n_obs=int(data["n_obs"]),
            n_clients=int(data["n_clients"]),
            coef=(
                float(fe["(Intercept)"]),
                float(fe["log_session"]),
                float(fe["intake"]),
                float(fe["log_session:intake"]),
            ),
            coef_cov=_matrix(data["fixed_effects_cov"], (4, 4), "fixed_effects_cov"),
            re_cov=_matrix(data["re_cov"], (2, 2), "re_cov"),
            residual_var=float(data["residual_var"]),
            reml_criterion=float(data.get("reml_criterion", math.nan)),
            session_range=_pair(data.get("session_range", (2.0, math.inf))),
            intake_range=_pair(data.get("intake_range", (-math.inf, math.inf))),
        )


@dataclass(frozen=True)
class GrowthCurve:
    """``score = a + b·log(session) + u0 + u1·log(session) + e`` fitted to a group of clients.

    The building block of ``intake_stratified`` and ``nearest_neighbours``.
    """

    coef: tuple[float, float]
    coef_cov: tuple[tuple[float, ...], ...]
    re_cov: tuple[tuple[float, ...], ...]
    residual_var: float
    n_obs: int
    n_clients: int
    singular: bool

    @classmethod
    def from_fit(cls, fit: LMMResult) -> GrowthCurve:
        return cls(
            coef=(float(fit.coef[0]), float(fit.coef[1])),
            coef_cov=_matrix(fit.coef_cov, (2, 2), "coef_cov"),
            re_cov=_matrix(fit.re_cov, (2, 2), "re_cov"),
            residual_var=float(fit.residual_var),
            n_obs=fit.n_obs,
            n_clients=fit.n_groups,
            singular=fit.singular,
        )

    def moments(self, session: Float) -> tuple[Float, Float]:
        ls = np.log(session)
        X = np.stack([np.ones_like(ls), ls], axis=-1)
        mean = X @ np.asarray(self.coef)
        var = (
            np.einsum("...i,ij,...j->...", X, np.asarray(self.coef_cov), X)
            + np.einsum("...i,ij,...j->...", X, np.asarray(self.re_cov), X)
            + self.residual_var
        )
        return mean, var

    def to_dict(self) -> dict[str, Any]:
        return {
            "coef": list(self.coef),
            "coef_cov": [list(r) for r in self.coef_cov],
            "re_cov": [list(r) for r in self.re_cov],
            "residual_var": self.residual_var,
            "n_obs": self.n_obs,
            "n_clients": self.n_clients,
            "singular": self.singular,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> GrowthCurve:
        coef = [float(v) for v in data["coef"]]
        if len(coef) != 2:
            raise InvalidParameter("a growth curve has two coefficients.")
        return cls(
            coef=(coef[0], coef[1]),
            coef_cov=_matrix(data["coef_cov"], (2, 2), "coef_cov"),
            re_cov=_matrix(data["re_cov"], (2, 2), "re_cov"),
            residual_var=float(data["residual_var"]),
            n_obs=int(data["n_obs"]),
            n_clients=int(data["n_clients"]),
            singular=bool(data.get("singular", False)),
        )


@dataclass(frozen=True)
class IntakeStratified(ETRModel):
    """``intake_stratified`` (Finch, Lambert & Schaalje 2001): one growth curve per intake stratum.

    Attributes
    ----------
    edges : tuple of float
        Inner stratum boundaries: stratum ``j`` holds intakes with
        ``edges[j-1] <= intake < edges[j]``.
    curves : tuple of GrowthCurve
        One per stratum (``len(edges) + 1``).
    """

    method: ClassVar[str] = "intake_stratified"

    edges: tuple[float, ...]
    curves: tuple[GrowthCurve, ...]

    def stratum(self, intake: ArrayLike) -> NDArray[np.intp]:
        """The stratum index of each intake score."""
        idx: NDArray[np.intp] = np.searchsorted(
            np.asarray(self.edges, dtype=float), np.asarray(intake, dtype=float), side="right"
        )
        return idx

    def _moments(self, session: Float, intake: Float) -> tuple[Float, Float]:
        idx = self.stratum(intake)
        mean = np.empty_like(session)
        var = np.empty_like(session)
        for j, curve in enumerate(self.curves):
            sel = idx == j
            if np.any(sel):
                m, v = curve.moments(session[sel])
                mean[sel], var[sel] = m, v
        return mean, var

    def to_dict(self) -> dict[str, Any]:
        out = self._base_dict()
        out.update({"edges": list(self.edges), "curves": [c.to_dict() for c in self.curves]})
        return out

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> IntakeStratified:
        edges = tuple(float(v) for v in data["edges"])
        curves = tuple(GrowthCurve.from_dict(c) for c in data["curves"])
        if len(curves) != len(edges) + 1 or list(edges) != sorted(edges):
            raise InvalidParameter("intake_stratified needs sorted edges and one curve more.")
        return cls(
            direction=data.get("direction", "higher_is_worse"),
            instrument=data.get("instrument"),
            n_obs=int(data["n_obs"]),
            n_clients=int(data["n_clients"]),
            edges=edges,
            curves=curves,
        )


@dataclass(frozen=True)
class NearestNeighbours(ETRModel):
    """``nearest_neighbours`` (after Lutz et al. 2006): growth curves of the ``k`` most similar clients.

    The curves are precomputed on a grid of intake scores; between grid points the expected
    score and the predictive variance are interpolated linearly (outside, the end points hold).

    Attributes
    ----------
    k : int
        Neighbours per grid point (more when clients tie at the k-th distance).
    grid : tuple of float
        Intake scores at which a neighbourhood curve was fitted.
    curves : tuple of GrowthCurve
        One per grid point.
    """

    method: ClassVar[str] = "nearest_neighbours"

    k: int
    grid: tuple[float, ...]
    curves: tuple[GrowthCurve, ...]

    def _moments(self, session: Float, intake: Float) -> tuple[Float, Float]:
        grid = np.asarray(self.grid, dtype=float)
        x = np.clip(intake, grid[0], grid[-1])
        hi = np.clip(np.searchsorted(grid, x, side="left"), 0, grid.size - 1)
        lo = np.clip(hi - 1, 0, grid.size - 1)
        span = grid[hi] - grid[lo]
        w = np.where(span > 0, (x - grid[lo]) / np.where(span > 0, span, 1.0), 1.0)
        mean = np.zeros_like(session)
        var = np.zeros_like(session)
        for j, curve in enumerate(self.curves):
            wj = np.where(hi == j, w, 0.0) + np.where((lo == j) & (hi != j), 1.0 - w, 0.0)
            sel = wj > 0
            if np.any(sel):
                m, v = curve.moments(session[sel])
                mean[sel] += wj[sel] * m
                var[sel] += wj[sel] * v
        return mean, var

    def to_dict(self) -> dict[str, Any]:
        out = self._base_dict()
        out.update(
            {"k": self.k, "grid": list(self.grid), "curves": [c.to_dict() for c in self.curves]}
        )
        return out

    @classmethod
    def _from_dict(cls, data: Mapping[str, Any]) -> NearestNeighbours:
        grid = tuple(float(v) for v in data["grid"])
        curves = tuple(GrowthCurve.from_dict(c) for c in data["curves"])
        if not grid or len(curves) != len(grid) or list(grid) != sorted(grid):
            raise InvalidParameter(
                "nearest_neighbours needs a sorted grid and one curve per point."
            )
        return cls(
            direction=data.get("direction", "higher_is_worse"),
            instrument=data.get("instrument"),
            n_obs=int(data["n_obs"]),
            n_clients=int(data["n_clients"]),
            k=int(data["k"]),
            grid=grid,
            curves=curves,
        )


# --------------------------------------------------------------------------------------------
# Fitting
# --------------------------------------------------------------------------------------------


def _instrument_info(
    instrument: str | Instrument | None, direction: str | None
) -> tuple[str | None, Direction]:
    inst_id: str | None = None
    inst_dir: str | None = None
    if isinstance(instrument, Instrument):
        inst_id, inst_dir = instrument.id, instrument.direction
    elif instrument is not None:
        inst = get_instrument(str(instrument))
        inst_id, inst_dir = inst.id, inst.direction
    chosen = direction or inst_dir or "higher_is_worse"
    if chosen not in ("higher_is_worse", "higher_is_better"):
        raise InvalidParameter(
            f"direction must be higher_is_worse or higher_is_better, not {chosen!r}."
        )
    return inst_id, chosen  # type: ignore[return-value]


def fit_etr(
    data: pd.DataFrame,
    method: str = "loglinear_intake",
    *,
    instrument: str | Instrument | None = None,
    direction: str | None = None,
    client: str = "client",
    session: str = "session",
    score: str = "score",
    reml: bool = True,
    on_singular: Literal["raise", "allow"] = "raise",
    n_strata: int = 5,
    min_clients: int = 20,
    k: int = 100,
    max_grid: int = 101,
) -> ETRModel:
    """Fit an expected-treatment-response model to long course data.

    Parameters
    ----------
    data : DataFrame
        One row per client and session with client, session (1 = intake) and score columns.
    method : {"loglinear_intake", "intake_stratified", "nearest_neighbours"}
        See the module docstring.
    instrument : str or Instrument, optional
        Recorded with the model; supplies the direction.
    direction : {"higher_is_worse", "higher_is_better"}, optional
        Overrides the instrument's direction (default ``higher_is_worse``).
    client, session, score : str
        Column names.
    reml : bool, default True
        REML (as lme4's default) or ML for the mixed models.
    on_singular : {"raise", "allow"}, default "raise"
        For ``loglinear_intake``: whether a singular fit raises :class:`ModelError`. The curves
        of the other two methods are fitted to subgroups, where a boundary estimate of a
        variance is common and harmless; they always allow it (and record ``singular``).
    n_strata : int, default 5
        ``intake_stratified``: number of strata, cut at quantiles of the clients' intake scores.
        The number Finch et al. (2001) used was not verified; this is a parameter.
    min_clients : int, default 20
        ``intake_stratified``: the smallest stratum allowed (fewer clients → an error that
        suggests fewer strata).
    k : int, default 100
        ``nearest_neighbours``: neighbours per intake score. Lutz et al. (2006)'s choice was not
        verified; this is a parameter.
    max_grid : int, default 101
        ``nearest_neighbours``: at most this many intake grid points (all distinct intake
        scores when there are fewer).

    Returns
    -------
    ETRModel
        A :class:`LogLinearIntake`, :class:`IntakeStratified` or :class:`NearestNeighbours`.

    Raises
    ------
    InvalidParameter
        Bad columns or values (see :func:`prepare_course_data`), an unknown method.
    InsufficientData
        No intake scores, no follow-up scores, too few sessions per client, too few clients
        per stratum.
    ModelError
        A singular or failed mixed-model fit (see :func:`alliance.fit_lmm`).

    Notes
    -----
    Only clients with a session-1 score (the intake) and rows from session 2 on are fitted;
    the model is conditional on the intake. ``loglinear_intake`` reproduces
    ``lmer(score ~ log(session) * intake + (1 + log(session) | client), REML = TRUE)``
    (validated against lme4 on simulated balanced and unbalanced data and on the
    suddengains data; ``tests/engine/reference/lmm_reference.R``).

    References
    ----------
    Finch, A. E., Lambert, M. J., & Schaalje, B. G. (2001). Psychotherapy quality control: the
    statistical generation of expected recovery curves for integration into an early warning
    system. *Clinical Psychology & Psychotherapy* (volume and pages not verified).
    Lutz, W., Lambert, M. J., Harmon, S. C., Tschitsaz, A., Schürch, E., & Stulz, N. (2006). The
    probability of treatment success, failure and duration — what can be learned from
    empirical data to support decision making in clinical practice? *Clinical Psychology &
    Psychotherapy*, 13, 223 ff. doi:10.1002/cpp.496
    Bates, D., Mächler, M., Bolker, B., & Walker, S. (2015). Fitting linear mixed-effects models
    using lme4. *Journal of Statistical Software*, 67(1).

    Examples
    --------
    >>> import alliance as al
    >>> data = al.recovery.example_data()
    >>> m = al.fit_etr(data, "intake_stratified", n_strata=3, instrument="phq9")
    >>> m.method, len(m.curves), m.direction
    ('intake_stratified', 3, 'higher_is_worse')
    >>> m2 = al.ETRModel.from_dict(m.to_dict())
    >>> m2 == m
    True
    """
    if method not in METHODS:
        raise InvalidParameter(
            f"unknown ETR method {method!r}; choose one of {', '.join(METHODS)}."
        )
    inst_id, chosen_dir = _instrument_info(instrument, direction)
    frame = prepare_course_data(data, client=client, session=session, score=score)
    rows = _followups(frame, 2.0)
    n_obs, n_clients = len(rows), int(rows["client"].nunique())

    if method == "loglinear_intake":
        fit = _fit_curve(rows, True, reml, on_singular)
        return LogLinearIntake(
            direction=chosen_dir,
            instrument=inst_id,
            n_obs=fit.n_obs,
            n_clients=fit.n_groups,
            coef=(
                float(fit.coef[0]),
                float(fit.coef[1]),
                float(fit.coef[2]),
                float(fit.coef[3]),
            ),
            coef_cov=_matrix(fit.coef_cov, (4, 4), "coef_cov"),
            re_cov=_matrix(fit.re_cov, (2, 2), "re_cov"),
            residual_var=fit.residual_var,
            reml_criterion=fit.criterion,
            session_range=(float(rows["session"].min()), float(rows["session"].max())),
            intake_range=(float(rows["intake"].min()), float(rows["intake"].max())),
        )

    intake_by_client = rows.groupby("client", sort=True)["intake"].first()
    if method == "intake_stratified":
        if n_strata < 1:
            raise InvalidParameter("n_strata must be at least 1.")
        qs = np.quantile(intake_by_client.to_numpy(), np.linspace(0, 1, n_strata + 1)[1:-1])
        edges = tuple(float(v) for v in np.unique(qs))
        idx = np.searchsorted(np.asarray(edges), intake_by_client.to_numpy(), side="right")
        curves = []
        for j in range(len(edges) + 1):
            members = intake_by_client.index[idx == j]
            if len(members) < min_clients:
                raise InsufficientData(
                    f"Intake stratum {j + 1} of {len(edges) + 1} has {len(members)} clients "
                    f"(at least {min_clients} needed): use fewer strata (n_strata) or more data."
                )
            sub = rows[rows["client"].isin(members)]
            curves.append(GrowthCurve.from_fit(_fit_curve(sub, False, reml, "allow")))
        return IntakeStratified(
            direction=chosen_dir,
            instrument=inst_id,
            n_obs=n_obs,
            n_clients=n_clients,
            edges=edges,
            curves=tuple(curves),
        )

    # nearest_neighbours
    if k < 3:
        raise InvalidParameter("k must be at least 3.")
    if n_clients < k:
        raise InsufficientData(
            f"nearest_neighbours with k = {k} needs at least {k} clients with follow-up scores; "
            f"there are {n_clients}. Lower k or add data."
        )
    values = intake_by_client.to_numpy()
    distinct = np.unique(values)
    grid = (
        distinct
        if distinct.size <= max_grid
        else np.linspace(distinct[0], distinct[-1], max(2, max_grid))
    )
    codes = pd.factorize(rows["client"], sort=True)[0]  # client i = intake_by_client.iloc[i]
    fitted: dict[bytes, GrowthCurve] = {}
    curves = []
    for g in grid:
        dist = np.abs(values - g)
        kth = np.partition(dist, k - 1)[k - 1]
        chosen = dist <= kth  # ties at the k-th distance are all included
        key = np.packbits(chosen).tobytes()
        if key not in fitted:  # neighbouring grid points often share the same neighbours
            sub = rows[chosen[codes]]
            fitted[key] = GrowthCurve.from_fit(_fit_curve(sub, False, reml, "allow"))
        curves.append(fitted[key])
    return NearestNeighbours(
        direction=chosen_dir,
        instrument=inst_id,
        n_obs=n_obs,
        n_clients=n_clients,
        k=k,
        grid=tuple(float(v) for v in grid),
        curves=tuple(curves),
    )
