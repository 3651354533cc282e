"""Alliance–outcome analytics: within- vs between-client effects on next-session outcome.

Across clients, a better alliance goes with a better outcome (r ≈ .28; Flückiger et al. 2018).
That association mixes two questions: do clients who *generally* report a better alliance do
better (between-client, "trait-like"), and does a session with a better alliance *than usual
for this client* precede a better next session (within-client, "state-like"; Zilcha-Mano,
SCIENCE.md B4; Falkenström, Granström & Holmqvist 2013)? Person-mean centring separates them;
removing each client's linear trend from the alliance (detrending) keeps shared growth over
therapy from posing as a within-client effect (Falkenström et al. 2017; SCIENCE.md B4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from alliance.errors import InsufficientData, InvalidResponse
from alliance.mixed import LMMResult, fit_lmm
from alliance.relationship._common import to_dict

__all__ = ["WithinBetween", "alliance_outcome_effects", "within_between_frame"]


@dataclass(frozen=True, slots=True)
class WithinBetween:
    """Within- and between-client effects of alliance on next-session outcome.

    Attributes
    ----------
    within, between
        Fixed effects of ``alliance_within`` and ``alliance_between`` (outcome points per
        alliance point), with standard errors ``within_se`` / ``between_se``.
    fixed_effects, standard_errors
        All fixed effects by name.
    intercept_var, residual_var
        Random-intercept and residual variances.
    reml_criterion
        −2 × REML log-likelihood (as lme4 reports).
    n_obs, n_clients
        Lagged pairs and clients used.
    detrended, adjust_current
        The options used.
    method
        ``"within_between_lmm"``.
    """

    within: float
    within_se: float
    between: float
    between_se: float
    fixed_effects: dict[str, float]
    standard_errors: dict[str, float]
    intercept_var: float
    residual_var: float
    reml_criterion: float
    n_obs: int
    n_clients: int
    detrended: bool
    adjust_current: bool
    method: str = "within_between_lmm"

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def within_between_frame(
    frame: pd.DataFrame,
    *,
    client: str = "client",
    session: str = "session",
    alliance: str = "alliance",
    outcome: str = "outcome",
    detrend: bool = True,
) -> pd.DataFrame:
    """The lagged, person-mean-centred (and detrended) data the model is fitted to.

    Returns one row per client and session that has an alliance rating, a current outcome and
    a next observed outcome, with columns ``client``, ``session``, ``next_outcome``,
    ``outcome``, ``outcome_within`` (current outcome minus the client's mean),
    ``alliance_between`` (the client's mean alliance over these rows) and ``alliance_within``
    (alliance minus the client's mean — or, with ``detrend``, minus the client's own
    least-squares line over sessions, for clients with at least three rows).
    """
    for col in (client, session, alliance, outcome):
        if col not in frame.columns:
            raise InvalidResponse(f"the analytics data needs a {col!r} column")
    f = pd.DataFrame(
        {
            "client": frame[client].to_numpy(),
            "session": pd.to_numeric(frame[session], errors="coerce").to_numpy(),
            "alliance": pd.to_numeric(frame[alliance], errors="coerce").to_numpy(),
            "outcome": pd.to_numeric(frame[outcome], errors="coerce").to_numpy(),
        }
    ).dropna(subset=["session"])
    f = f.sort_values(["client", "session"], kind="stable")
    f = f.dropna(subset=["outcome"])
    f["next_outcome"] = f.groupby("client")["outcome"].shift(-1)
    f = f.dropna(subset=["alliance", "next_outcome"]).reset_index(drop=True)
    g = f.groupby("client")
    f["alliance_between"] = g["alliance"].transform("mean")
    f["outcome_within"] = f["outcome"] - g["outcome"].transform("mean")
    within = f["alliance"] - f["alliance_between"]
    if detrend:
        t = f["session"] - g["session"].transform("mean")
        sxx = (t**2).groupby(f["client"]).transform("sum")
        sxy = (t * within).groupby(f["client"]).transform("sum")
        n = g["session"].transform("size")
        slope = np.where((n >= 3) & (sxx > 0), sxy / sxx.where(sxx > 0, 1.0), 0.0)
        within = within - slope * t
    f["alliance_within"] = within
    return f[
        [
            "client",
            "session",
            "next_outcome",
            "outcome",
            "outcome_within",
            "alliance",
            "alliance_between",
            "alliance_within",
        ]
    ]


def alliance_outcome_effects(
    frame: pd.DataFrame,
    *,
    client: str = "client",
    session: str = "session",
    alliance: str = "alliance",
    outcome: str = "outcome",
    detrend: bool = True,
    adjust_current: bool = False,
) -> WithinBetween:
    """Within- and between-client effects of alliance on the next session's outcome.

    Parameters
    ----------
    frame
        One row per client and session with the alliance rating and the outcome score.
    client, session, alliance, outcome
        Column names.
    detrend
        Remove each client's linear alliance trend from the within part (default True).
    adjust_current
        Also adjust for the current session's outcome (its within-client deviation), as in
        lagged "change" models (default False: with a random intercept, a lagged outcome biases
        the within effect in short series — Nickell 1981 — and on simulated data the
        unadjusted, detrended model recovers the generating effect; see
        ``docs/algorithms/within_between.md``).

    Returns
    -------
    WithinBetween

    Notes
    -----
    For client ``i`` at session ``t`` (next observed session ``t'``), fitted by REML with
    :func:`alliance.fit_lmm`::

        y_it' = β0 + βW·(a_it − â_i(t)) + βB·ā_i + βS·t [+ βY·(y_it − ȳ_i)] + u_i + e_it
        u_i ~ N(0, τ²),  e_it ~ N(0, σ²)

    where ``â_i(t) = ā_i`` (person-mean centring) or the client's own least-squares line in
    ``t`` (``detrend``). The same model in R:
    ``lmer(next_outcome ~ alliance_within + alliance_between + session + outcome_within +
    (1 | client), REML = TRUE)`` — checked in ``tests/engine/reference/within_between.R``.

    References
    ----------
    Falkenström, F., Granström, F., & Holmqvist, R. (2013). Therapeutic alliance predicts
    symptomatic improvement session by session. *Journal of Counseling Psychology*, 60(3),
    317–328.
    Falkenström, F., Finkel, S., Sandell, R., Rubel, J. A., & Holmqvist, R. (2017). Dynamic
    models of individual change in psychotherapy process research. *Journal of Consulting and
    Clinical Psychology*, 85(6), 537–549.
    Nickell, S. (1981). Biases in dynamic models with fixed effects. *Econometrica*, 49(6),
    1417–1426.
    Curran, P. J., & Bauer, D. J. (2011). The disaggregation of within-person and
    between-person effects in longitudinal models of change. *Annual Review of Psychology*,
    62, 583–619.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(0)
    >>> c = np.repeat(np.arange(40), 8); s = np.tile(np.arange(1, 9), 40)
    >>> a = 45 + rng.normal(0, 4, 40)[c] + rng.normal(0, 3, c.size)
    >>> y = 15 - 0.3 * s + rng.normal(0, 3, 40)[c] + rng.normal(0, 2, c.size)
    >>> f = pd.DataFrame({"client": c, "session": s, "alliance": a, "outcome": y})
    >>> res = alliance_outcome_effects(f)
    >>> res.n_clients, res.n_obs
    (40, 280)
    """
    data = within_between_frame(
        frame, client=client, session=session, alliance=alliance, outcome=outcome, detrend=detrend
    )
    if data["client"].nunique() < 3:
        raise InsufficientData("within/between effects need lagged pairs from at least 3 clients")
    names = ["(Intercept)", "alliance_within", "alliance_between", "session"]
    cols = [np.ones(len(data)), data["alliance_within"], data["alliance_between"], data["session"]]
    if adjust_current:
        names.append("outcome_within")
        cols.append(data["outcome_within"])
    x = np.column_stack([np.asarray(c, dtype=float) for c in cols])
    fit: LMMResult = fit_lmm(
        data["next_outcome"].to_numpy(dtype=float),
        x,
        np.ones((len(data), 1)),
        data["client"].to_numpy(),
        fixed_names=names,
        random_names=("(Intercept)",),
        on_singular="allow",
    )
    fe, se = fit.fixed_effects, fit.standard_errors
    return WithinBetween(
        within=fe["alliance_within"],
        within_se=se["alliance_within"],
        between=fe["alliance_between"],
        between_se=se["alliance_between"],
        fixed_effects=fe,
        standard_errors=se,
        intercept_var=float(fit.re_cov[0, 0]),
        residual_var=float(fit.residual_var),
        reml_criterion=float(fit.criterion),
        n_obs=int(fit.n_obs),
        n_clients=int(fit.n_groups),
        detrended=detrend,
        adjust_current=adjust_current,
    )
