"""The generating model: random draws, latent courses, observed scores, attendance and dropout.

Everything random is drawn once, into :class:`Draws` (one child generator of the seed per
component, so that switching item generation off, say, leaves every score unchanged). The
deterministic functions below turn the draws into latent courses and observed scores given a
few *calibrated* quantities (:class:`Calibration`), which are solved on a pilot practice so that
the effect sizes hold on the observed, rounded and clipped scale. See
``docs/algorithms/simulation.md`` for the formulas and their sources.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import lru_cache, partial

import numpy as np
import numpy.typing as npt
from scipy import optimize, special

from alliance.errors import InvalidParameter
from alliance.simulate.config import CONCERNS, SimulationConfig
from alliance.simulate.items import ItemSpec, item_spec

__all__ = [
    "PILOT_SEED",
    "Calibration",
    "Courses",
    "Draws",
    "Specs",
    "calibrate",
    "courses",
    "draw",
    "specs_for",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
BoolArray = npt.NDArray[np.bool_]

#: Seed of the pilot practice used for calibration (fixed, so a configuration always calibrates
#: to the same values whatever the sample's seed).
PILOT_SEED = 20_240_601

#: Rupture profiles in units of the rupture's depth, by duration (sessions at a lowered level):
#: a sudden drop, or a decline to a low point, followed by a repair (V-shapes, Gumz et al. 2012).
PROFILES: dict[int, tuple[float, ...]] = {1: (1.0,), 2: (1.0, 0.5), 3: (0.6, 1.0, 0.5)}

#: Secondary concern-specific instruments: intake mean as a fraction of the range. Illustrative.
SECONDARY_INTAKE_FRACTION = 0.45

#: SD of the clients' item profiles and of session noise in the allocation key (see items.py),
#: and the key penalty on the items of the subscale a rupture strains. Illustrative.
ITEM_CLIENT_SD = 0.4
ITEM_CLIENT_SD_RARE = 0.9
ITEM_SESSION_SD = 0.5
ALLIANCE_SESSION_SD = 0.35
RUPTURE_FOCUS_PENALTY = 1.0

#: A rupture is *clear* when the client's rating at its lowest attended session lies at least this
#: many observed within-client SDs below the client's usual level: the stricter of the 1 and 2 SD
#: criteria that Gumz et al. (2012) propose to report side by side.
CLEAR_RUPTURE_SD = 2.0


# --------------------------------------------------------------------------------------------
# Instruments
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Specs:
    """The instruments of a simulation, read from the library."""

    primary: ItemSpec
    secondary: tuple[ItemSpec, ...]
    by_concern: tuple[tuple[int, ItemSpec], ...]
    alliance: ItemSpec
    therapist: ItemSpec
    reliable_change: float

    @property
    def outcome(self) -> tuple[ItemSpec, ...]:
        """Every outcome instrument, primary first, then secondaries, then concern-specific."""
        return (self.primary, *self.secondary, *(s for _, s in self.by_concern))


@lru_cache(maxsize=32)
def specs_for(cfg: SimulationConfig) -> Specs:
    """Resolve the configuration's instruments in the default library."""
    primary = item_spec(cfg.primary_instrument)
    if primary.kind != "outcome":
        raise InvalidParameter(f"primary_instrument {primary.id!r} is not an outcome measure")
    secondary = tuple(item_spec(i) for i in cfg.secondary_instruments if i != primary.id)
    from alliance.instruments import default_library

    library = default_library()
    by_concern: list[tuple[int, ItemSpec]] = []
    for concern, inst in cfg.concern_instruments:
        if inst in library and inst not in {primary.id, *cfg.secondary_instruments}:
            by_concern.append((CONCERNS.index(concern), item_spec(inst)))
    alliance = item_spec(cfg.alliance_instrument)
    therapist = item_spec(cfg.therapist_alliance_instrument)
    for spec, name in (
        (alliance, "alliance_instrument"),
        (therapist, "therapist_alliance_instrument"),
    ):
        if spec.kind != "alliance":
            raise InvalidParameter(f"{name} {spec.id!r} is not an alliance instrument")
    rc = primary.reliable_change
    if rc is None:
        raise InvalidParameter(
            f"{primary.id} has no published reliable-change threshold in the library; "
            "the simulator needs one to define poor outcomes"
        )
    return Specs(primary, secondary, tuple(by_concern), alliance, therapist, rc)


# --------------------------------------------------------------------------------------------
# Derived constants
# --------------------------------------------------------------------------------------------
def slope_offsets(cfg: SimulationConfig) -> FloatArray:
    """Mean log-slope offset of each trajectory class (responders solved so the mean is 0)."""
    shares = np.asarray(cfg.trajectory_shares)
    rest = np.asarray(cfg.trajectory_slope_offsets)
    responder = -float(shares[1:] @ rest) / shares[0]
    return np.concatenate([[responder], rest])


def re_cov(cfg: SimulationConfig) -> FloatArray:
    """Marginal covariance of the client random effects (intercept, log-slope) over classes."""
    s0, s1 = cfg.re_sd
    c = cfg.re_corr * s0 * s1
    offsets = slope_offsets(cfg)
    between = float(np.asarray(cfg.trajectory_shares) @ offsets**2)
    return np.array([[s0**2, c], [c, s1**2 + between]])


def within_gamma(cfg: SimulationConfig) -> float:
    """Raw within-client effect: primary points per alliance point (positive = improvement).

    ``γ = β σ_e / (σ_A sqrt(1 − β²))`` makes ``β`` the correlation of the lagged alliance state
    with the session-level part of the outcome (``γ δ + e``).
    """
    beta = cfg.within_alliance_effect
    return beta * cfg.residual_sd / (cfg.alliance_within_sd * math.sqrt(1 - beta**2))


def improvement_var(cfg: SimulationConfig) -> float:
    """Variance of ``u0 + u1 log(R)`` at the reference session."""
    lr = math.log(cfg.reference)
    v = np.array([1.0, lr])
    return float(v @ re_cov(cfg) @ v)


def latent_share_sd(cfg: SimulationConfig) -> float:
    """SD of a therapist effect that is ``therapist_share`` of the *latent* variance at R.

    ``τ² = share / (1 − share) · (Var(u0 + u1 log R) + σ_e² + γ² σ_A²)``; the calibrated SD
    (which gives the share on the observed, rounded and clipped scores) starts from it.
    """
    g = within_gamma(cfg)
    rest = improvement_var(cfg) + cfg.residual_sd**2 + (g * cfg.alliance_within_sd) ** 2
    share = cfg.therapist_share
    return math.sqrt(share / (1 - share) * rest)


def latent_share(cfg: SimulationConfig, tau: float) -> float:
    """Therapist share of the latent outcome variance at R for a therapist SD ``tau``."""
    g = within_gamma(cfg)
    rest = improvement_var(cfg) + cfg.residual_sd**2 + (g * cfg.alliance_within_sd) ** 2
    return tau**2 / (tau**2 + rest) if tau > 0 else 0.0


# --------------------------------------------------------------------------------------------
# Draws
# --------------------------------------------------------------------------------------------
_STREAMS = (
    "practice",
    "outcome",
    "alliance",
    "ruptures",
    "therapist",
    "secondary",
    "attendance",
    "dropout",
    "items",
)


@dataclass(frozen=True)
class Ruptures:
    """Ground-truth ruptures (0-based client index; sessions are 1-based)."""

    client: IntArray
    start: IntArray
    low: IntArray
    repair: FloatArray
    depth: FloatArray
    focus: IntArray


@dataclass(frozen=True)
class Draws:
    """Every random quantity of one practice (standard-normal or uniform where rescaled later)."""

    n: int
    sessions: int
    n_therapists: int
    therapist: IntArray
    therapist_z: FloatArray
    concern: IntArray
    intake_latent: FloatArray
    intake: FloatArray
    trajectory: IntArray
    u: FloatArray
    planned: IntArray
    week: IntArray
    e: FloatArray
    alliance_z: FloatArray
    growth: FloatArray
    omega: FloatArray
    dip: FloatArray
    focus: npt.NDArray[np.int8]
    ruptures: Ruptures
    therapist_alliance_z: FloatArray
    omega_t: FloatArray
    secondary: tuple[tuple[FloatArray, FloatArray], ...]
    attendance_z: FloatArray
    attendance_u: FloatArray
    dropout_u: FloatArray
    items: np.random.Generator


def _ar1(rng: np.random.Generator, n: int, s: int, sd: float, rho: float) -> FloatArray:
    """Stationary AR(1) paths with marginal SD ``sd``: ``x_t = ρ x_{t−1} + sqrt(1−ρ²) sd ε_t``."""
    eps = rng.standard_normal((n, s))
    out = np.empty((n, s))
    out[:, 0] = sd * eps[:, 0]
    scale = math.sqrt(1 - rho**2) * sd
    for t in range(1, s):
        out[:, t] = rho * out[:, t - 1] + scale * eps[:, t]
    return out


def _ruptures(
    cfg: SimulationConfig, rng: np.random.Generator, n: int, s: int, n_focus: int
) -> tuple[FloatArray, npt.NDArray[np.int8], Ruptures]:
    """Rupture onsets, depths, durations and repairs; the dip matrix in within-client SDs."""
    dip = np.zeros((n, s))
    focus = np.full((n, s), -1, dtype=np.int8)
    next_allowed = np.full(n, cfg.rupture_first_session, dtype=np.int64)
    stopped = np.zeros(n, dtype=bool)
    rec: dict[str, list[npt.NDArray[np.generic]]] = {
        k: [] for k in ("c", "s", "low", "rep", "d", "f")
    }
    lo, hi = cfg.rupture_depth
    cols = np.arange(s)
    for session in range(cfg.rupture_first_session, s + 1):
        onset = rng.random(n) < cfg.rupture_rate
        idx = np.flatnonzero(onset & ~stopped & (session >= next_allowed))
        m = idx.size
        depth = rng.uniform(lo, hi, m)
        duration = rng.choice(3, size=m, p=np.asarray(cfg.rupture_duration_probs)) + 1
        repaired = rng.random(m) < cfg.repair_prob
        sub = rng.integers(0, max(n_focus, 1), m) if n_focus else np.full(m, -1)
        if m == 0:
            continue
        low = np.full(m, session, dtype=np.int64)
        for dur, profile in PROFILES.items():
            sel = duration == dur
            rows = idx[sel]
            for k, weight in enumerate(profile):
                col = session - 1 + k
                if col < s:
                    dip[rows, col] = depth[sel] * weight
                    focus[rows, col] = sub[sel]
            low[sel] = min(session + int(np.argmax(profile)), s)
            unrepaired = ~repaired[sel]
            keep = rows[unrepaired]
            if keep.size:
                tail = cols >= session - 1 + dur
                level = cfg.unrepaired_level * depth[sel][unrepaired][:, None]
                dip[keep] = np.where(tail, level, dip[keep])
                focus[keep] = np.where(tail, sub[sel][unrepaired][:, None], focus[keep])
        repair = np.where(repaired, session + duration, np.nan).astype(np.float64)
        next_allowed[idx] = session + duration + 1
        stopped[idx[~repaired]] = True
        rec["c"].append(idx)
        rec["s"].append(np.full(m, session, dtype=np.int64))
        rec["low"].append(low)
        rec["rep"].append(repair)
        rec["d"].append(depth)
        rec["f"].append(sub.astype(np.int64))

    def cat(key: str, dtype: type[np.generic]) -> npt.NDArray[np.generic]:
        parts = rec[key]
        return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)

    r = Ruptures(
        client=cat("c", np.int64),  # type: ignore[arg-type]
        start=cat("s", np.int64),  # type: ignore[arg-type]
        low=cat("low", np.int64),  # type: ignore[arg-type]
        repair=cat("rep", np.float64),  # type: ignore[arg-type]
        depth=cat("d", np.float64),  # type: ignore[arg-type]
        focus=cat("f", np.int64),  # type: ignore[arg-type]
    )
    return dip, focus, r


def draw(
    cfg: SimulationConfig,
    specs: Specs,
    n: int,
    n_therapists: int,
    seed: int | np.random.SeedSequence,
) -> Draws:
    """Draw every random quantity of a practice of ``n`` clients."""
    ss = seed if isinstance(seed, np.random.SeedSequence) else np.random.SeedSequence(seed)
    rng = dict(
        zip(_STREAMS, (np.random.default_rng(c) for c in ss.spawn(len(_STREAMS))), strict=True)
    )
    s = cfg.max_sessions
    g = rng["practice"]
    therapist = np.arange(n, dtype=np.int64) % n_therapists
    therapist_z = g.standard_normal(n_therapists)
    shares = dict(cfg.concern_shares)
    p = np.array([shares.get(c, 0.0) for c in CONCERNS], dtype=np.float64)
    concern = g.choice(len(CONCERNS), size=n, p=p / p.sum()).astype(np.int64)
    means = dict(cfg.intake_mean)
    mu = np.array([means.get(c, 0.0) for c in CONCERNS])[concern]
    intake_latent = mu + cfg.intake_sd * g.standard_normal(n)
    prim = specs.primary
    intake = np.clip(np.rint(intake_latent), prim.lo, prim.hi) + 0.0
    low, high = cfg.planned_sessions
    planned = np.minimum(g.integers(low, high + 1, n), s).astype(np.int64)
    gaps = 1 + (g.random((n, s)) < 0.1)
    gaps[:, 0] = 0
    week = np.cumsum(gaps, axis=1).astype(np.int64)

    go = rng["outcome"]
    trajectory = go.choice(4, size=n, p=np.asarray(cfg.trajectory_shares)).astype(np.int64)
    z = go.standard_normal((n, 2))
    s0, s1 = cfg.re_sd
    u = np.empty((n, 2))
    u[:, 0] = s0 * z[:, 0]
    u[:, 1] = s1 * (cfg.re_corr * z[:, 0] + math.sqrt(1 - cfg.re_corr**2) * z[:, 1])
    u[:, 1] += slope_offsets(cfg)[trajectory]
    e = go.standard_normal((n, s))

    ga = rng["alliance"]
    alliance_z = ga.standard_normal(n)
    growth = cfg.alliance_growth + cfg.alliance_growth_sd * ga.standard_normal(n)
    omega = _ar1(ga, n, s, cfg.alliance_within_sd, cfg.alliance_ar)
    dip, focus, ruptures = _ruptures(cfg, rng["ruptures"], n, s, len(specs.alliance.subscales))

    gt = rng["therapist"]
    therapist_alliance_z = gt.standard_normal(n)
    omega_t = _ar1(gt, n, s, cfg.therapist_within_sd, cfg.alliance_ar)

    gs = rng["secondary"]
    secondary = tuple(
        (gs.standard_normal(n), gs.standard_normal((n, s))) for _ in specs.outcome[1:]
    )

    gat = rng["attendance"]
    attendance_z = gat.standard_normal(n)
    attendance_u = gat.random((n, s))
    dropout_u = rng["dropout"].random((n, s))
    return Draws(
        n=n,
        sessions=s,
        n_therapists=n_therapists,
        therapist=therapist,
        therapist_z=therapist_z,
        concern=concern,
        intake_latent=intake_latent,
        intake=intake,
        trajectory=trajectory,
        u=u,
        planned=planned,
        week=week,
        e=e,
        alliance_z=alliance_z,
        growth=growth,
        omega=omega,
        dip=dip,
        focus=focus,
        ruptures=ruptures,
        therapist_alliance_z=therapist_alliance_z,
        omega_t=omega_t,
        secondary=secondary,
        attendance_z=attendance_z,
        attendance_u=attendance_u,
        dropout_u=dropout_u,
        items=rng["items"],
    )


# --------------------------------------------------------------------------------------------
# Deterministic courses
# --------------------------------------------------------------------------------------------
def _log_sessions(s: int) -> FloatArray:
    return np.log(np.arange(1, s + 1, dtype=np.float64))


def outcome_course(
    cfg: SimulationConfig, d: Draws, specs: Specs, mean_dip: FloatArray, tau: float
) -> tuple[FloatArray, FloatArray]:
    """Primary course: the noise-free part ``sys`` and the ``latent`` score, both ``(n, S)``.

    ``latent_it = b0 + b1 L + b2 x + b3 L x + u0 + u1 L + v_j − γ δ_{i,t−1} + σ_e e_it`` for
    ``s ≥ 2`` (``L = log s``, ``x`` = observed intake), and the unrounded intake at ``s = 1``.
    ``δ`` is the alliance state in points, centred per session on the population's mean
    rupture dip (``mean_dip``, from the pilot) so that it has mean zero at every session and
    leaves the fixed effects untouched. ``tau`` is the SD of the therapist effect ``v_j``.
    """
    b0, b1, b2, b3 = cfg.fixed_effects
    lg = _log_sessions(d.sessions)[None, :]
    x = d.intake[:, None]
    v = tau * d.therapist_z[d.therapist]
    sys = b0 + b1 * lg + b2 * x + b3 * lg * x + d.u[:, :1] + d.u[:, 1:] * lg + v[:, None]
    sys[:, 0] = d.intake_latent
    state = alliance_state(cfg, d) + cfg.alliance_within_sd * mean_dip[None, :]
    latent = sys + cfg.residual_sd * d.e
    latent[:, 1:] -= within_gamma(cfg) * state[:, :-1]
    latent[:, 0] = d.intake_latent
    return sys, latent


def alliance_state(cfg: SimulationConfig, d: Draws) -> FloatArray:
    """The client's within-client alliance state in points: AR(1) state minus rupture dips."""
    return d.omega - cfg.alliance_within_sd * d.dip


def alliance_usual(cfg: SimulationConfig, d: Draws, trait: FloatArray, hi: float) -> FloatArray:
    """The client's usual alliance at each session: the expected rating without a rupture.

    ``E[min(L + ω, hi)]`` for the level ``L = μ_A + a_i + g_i·log(s)`` and the state
    ``ω ~ N(0, σ_A²)``: ``L − σ_A·φ(z) + (hi − L)·(1 − Φ(z))`` with ``z = (hi − L)/σ_A`` (the
    mean of a normal variable capped at ``hi``; rounding is ignored).
    """
    lg = _log_sessions(d.sessions)[None, :]
    level = cfg.alliance_mean + trait[:, None] + d.growth[:, None] * lg
    s = cfg.alliance_within_sd
    if s <= 0:
        return np.asarray(np.minimum(level, hi), dtype=np.float64)
    z = (hi - level) / s
    out: FloatArray = level - s * _phi(z) + (hi - level) * special.ndtr(-z)
    return out


def _phi(z: FloatArray) -> FloatArray:
    """Standard normal density."""
    out: FloatArray = np.exp(-0.5 * z * z) / math.sqrt(2 * math.pi)
    return out


def alliance_within_sd_observed(
    cfg: SimulationConfig, d: Draws, trait: FloatArray, specs: Specs, attended: BoolArray
) -> float:
    """Pooled within-client SD of the observed alliance ratings a client gives without ruptures.

    ``sqrt(Σ_i Σ_t (x_it − x̄_i)² / Σ_i (n_i − 1))`` over the attended, planned sessions, with
    the ratings computed from the same draws with every rupture dip set to zero (rounded and
    capped like the ratings). This is the intra-individual SD that rupture criteria measure
    drops in (Gumz et al. 2012), here free of the ruptures themselves.
    """
    no_dip = replace(d, dip=np.zeros_like(d.dip))
    x = observe(client_alliance(cfg, no_dip, trait, specs.alliance.hi), specs.alliance)
    in_plan = np.arange(1, d.sessions + 1)[None, :] <= d.planned[:, None]
    w = (attended & in_plan).astype(np.float64)
    n_i = w.sum(axis=1)
    mean_i = (x * w).sum(axis=1) / np.maximum(n_i, 1.0)
    ss = float((((x - mean_i[:, None]) ** 2) * w).sum())
    dof = float(np.clip(n_i - 1, 0, None).sum())
    return math.sqrt(ss / dof) if dof > 0 else 0.0


def alliance_trait(cfg: SimulationConfig, d: Draws, rho: float) -> FloatArray:
    """Between-client alliance level, correlated ``rho`` with the client's improvement."""
    lr = math.log(cfg.reference)
    w = d.u[:, 0] + d.u[:, 1] * lr
    w_std = w / math.sqrt(improvement_var(cfg)) if improvement_var(cfg) > 0 else np.zeros(d.n)
    return cfg.alliance_sd * (-rho * w_std + math.sqrt(max(0.0, 1 - rho**2)) * d.alliance_z)


def client_alliance(
    cfg: SimulationConfig, d: Draws, trait: FloatArray, hi: float, cols: slice = slice(None)
) -> FloatArray:
    """Latent client alliance (points); a rupture lowers it from the ceiling-capped level."""
    lg = _log_sessions(d.sessions)[None, cols]
    base = cfg.alliance_mean + trait[:, None] + d.growth[:, None] * lg + d.omega[:, cols]
    return np.minimum(base, hi) - cfg.alliance_within_sd * d.dip[:, cols]


def therapist_alliance(
    cfg: SimulationConfig,
    d: Draws,
    trait: FloatArray,
    rho: float,
    shift: float,
    hi: float,
    cols: slice = slice(None),
) -> FloatArray:
    """Latent therapist-rated alliance (points), correlated ``rho`` with the client's level."""
    lg = _log_sessions(d.sessions)[None, cols]
    b = cfg.therapist_alliance_sd * (
        rho * trait / cfg.alliance_sd + math.sqrt(max(0.0, 1 - rho**2)) * d.therapist_alliance_z
    )
    base = (
        cfg.alliance_mean
        - shift
        + b[:, None]
        + cfg.therapist_alliance_growth * lg
        + d.omega_t[:, cols]
    )
    visible = cfg.therapist_rupture_visibility * cfg.alliance_within_sd * d.dip[:, cols]
    return np.minimum(base, hi) - visible


def observe(latent: FloatArray, spec: ItemSpec) -> FloatArray:
    """Round to whole points and clip to the instrument's range (``+ 0.0`` turns −0 into 0)."""
    return np.clip(np.rint(latent), spec.lo, spec.hi) + 0.0


def secondary_courses(
    cfg: SimulationConfig, d: Draws, specs: Specs, sys: FloatArray
) -> list[FloatArray]:
    """Latent courses of the secondary and concern-specific instruments, ``(n, S)`` each.

    ``m_c + s_j (λ ζ_it + sqrt(1 − λ²) k_i) + σ_j e_it`` with ``ζ`` the primary's noise-free
    course standardised by the concern's intake mean and SD.
    """
    means = dict(cfg.intake_mean)
    mu = np.array([means.get(c, 0.0) for c in CONCERNS])[d.concern]
    zeta = (sys - mu[:, None]) / cfg.intake_sd
    lam = cfg.secondary_loading
    out = []
    for spec, (k, e) in zip(specs.outcome[1:], d.secondary, strict=True):
        width = spec.hi - spec.lo
        if spec.id == "gad7":
            table = dict(cfg.gad7_intake_mean)
            m = np.array([table.get(c, 0.0) for c in CONCERNS])[d.concern]
        else:
            m = np.full(d.n, spec.lo + SECONDARY_INTAKE_FRACTION * width)
        sd = cfg.secondary_sd * width
        course = m[:, None] + sd * (lam * zeta + math.sqrt(1 - lam**2) * k[:, None])
        out.append(course + cfg.secondary_noise * width * e)
    return out


def attendance(cfg: SimulationConfig, d: Draws) -> npt.NDArray[np.int8]:
    """Appointment status before dropout: 0 attended, 1 no-show, 2 cancelled (session 1 attended)."""
    shift = cfg.attendance_sd * d.attendance_z[:, None]
    p_ns = (
        special.expit(special.logit(max(cfg.no_show_rate, 1e-12)) + shift)
        if cfg.no_show_rate
        else 0.0
    )
    p_c = (
        special.expit(special.logit(max(cfg.cancel_rate, 1e-12)) + shift)
        if cfg.cancel_rate
        else 0.0
    )
    status = np.zeros((d.n, d.sessions), dtype=np.int8)
    status[d.attendance_u < p_ns] = 1
    status[(d.attendance_u >= p_ns) & (d.attendance_u < p_ns + p_c)] = 2
    status[:, 0] = 0
    return status


@dataclass(frozen=True)
class Courses:
    """Latent and observed courses of one practice (all ``(n, S)``)."""

    sys: FloatArray
    latent: FloatArray
    observed: FloatArray
    secondary_latent: tuple[FloatArray, ...]
    secondary_observed: tuple[FloatArray, ...]
    alliance_trait: FloatArray
    alliance_latent: FloatArray
    alliance: FloatArray
    therapist_latent: FloatArray
    therapist: FloatArray
    status: npt.NDArray[np.int8]


def courses(cfg: SimulationConfig, d: Draws, specs: Specs, cal: Calibration) -> Courses:
    """Every course of a practice, given the calibrated quantities."""
    sys, latent = outcome_course(cfg, d, specs, np.asarray(cal.mean_dip), cal.therapist_sd)
    sec = secondary_courses(cfg, d, specs, sys)
    trait = alliance_trait(cfg, d, cal.rho_alliance_outcome)
    a_lat = client_alliance(cfg, d, trait, specs.alliance.hi)
    t_lat = therapist_alliance(
        cfg, d, trait, cal.rho_client_therapist, cal.therapist_shift, specs.therapist.hi
    )
    return Courses(
        sys=sys,
        latent=latent,
        observed=observe(latent, specs.primary),
        secondary_latent=tuple(sec),
        secondary_observed=tuple(
            observe(c, sp) for c, sp in zip(sec, specs.outcome[1:], strict=True)
        ),
        alliance_trait=trait,
        alliance_latent=a_lat,
        alliance=observe(a_lat, specs.alliance),
        therapist_latent=t_lat,
        therapist=observe(t_lat, specs.therapist),
        status=attendance(cfg, d),
    )


# --------------------------------------------------------------------------------------------
# Dropout
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DropoutCovariates:
    """Covariates of the dropout hazard before appointment ``s`` (column ``s − 1``)."""

    alliance_z: FloatArray
    rupture: FloatArray
    no_change: FloatArray
    missed: FloatArray
    eligible: BoolArray
    early: FloatArray


def no_change_points(cfg: SimulationConfig, specs: Specs) -> float:
    """Improvement below which there is "no early change" (default: half the reliable change)."""
    if cfg.no_change_points is not None:
        return cfg.no_change_points
    return specs.reliable_change / 2


def dropout_covariates(
    cfg: SimulationConfig,
    d: Draws,
    specs: Specs,
    observed: FloatArray,
    alliance: FloatArray,
    status: npt.NDArray[np.int8],
    center: float,
    scale: float,
) -> DropoutCovariates:
    """Hazard covariates from what happened up to the previous appointment.

    ``early[:, k]`` is the mean client alliance over the attended sessions among ``1..k+1``
    (``k = 0, 1, 2``): the early alliance of a client who leaves before session ``k + 2``.
    """
    n, s = observed.shape
    attended = status == 0
    a_sum = np.cumsum(np.where(attended, alliance, 0.0), axis=1)
    a_cnt = np.cumsum(attended, axis=1)
    running = a_sum / np.maximum(a_cnt, 1)
    alliance_z = np.zeros((n, s))
    alliance_z[:, 1:] = (running[:, :-1] - center) / scale
    last = np.where(attended, observed, np.nan)
    idx = np.where(attended, np.arange(s)[None, :], 0)
    np.maximum.accumulate(idx, axis=1, out=idx)
    last_seen = np.take_along_axis(last, idx, axis=1)
    improvement = d.intake[:, None] - last_seen
    no_change = np.zeros((n, s))
    sessions = np.arange(1, s + 1)
    late = (sessions - 1 >= cfg.no_change_session)[None, :]
    no_change[:, 1:] = (improvement[:, :-1] < no_change_points(cfg, specs)) & late[:, 1:]
    rupture = np.zeros((n, s))
    rupture[:, 1:] = d.dip[:, :-1]
    missed = np.zeros((n, s))
    missed[:, 1:] = status[:, :-1] == 1
    eligible = (sessions[None, :] >= 2) & (sessions[None, :] <= d.planned[:, None])
    early = running[:, :3] if s >= 3 else np.pad(running, ((0, 0), (0, 3 - s)), mode="edge")
    return DropoutCovariates(alliance_z, rupture, no_change, missed, eligible, early)


def hazard(
    cfg: SimulationConfig, cov: DropoutCovariates, intercept: float, slope: float
) -> FloatArray:
    """Dropout hazard before each appointment (0 where not eligible)."""
    eta = (
        intercept
        + slope * cov.alliance_z
        + cfg.dropout_rupture_logodds * cov.rupture
        + cfg.dropout_no_change_logodds * cov.no_change
        + cfg.dropout_missed_logodds * cov.missed
    )
    return np.where(cov.eligible, special.expit(eta), 0.0)


def _expected_dropout(h: FloatArray, early: FloatArray) -> tuple[float, float, FloatArray]:
    """Expected dropout share, expected completer−dropout early-alliance d, per-client P(drop)."""
    survive = np.cumprod(1 - h, axis=1)
    prior = np.ones_like(survive)
    prior[:, 1:] = survive[:, :-1]
    p_at = h * prior
    p_drop = 1 - survive[:, -1]
    p2 = p_at[:, 1] if h.shape[1] > 1 else np.zeros(h.shape[0])
    p3 = p_at[:, 2] if h.shape[1] > 2 else np.zeros(h.shape[0])
    p_late = p_drop - p2 - p3
    ea1, ea2, ea3 = early[:, 0], early[:, 1], early[:, 2]
    w_drop = p_drop.sum()
    w_comp = (1 - p_drop).sum()
    if w_drop <= 0 or w_comp <= 0:
        return float(p_drop.mean()), 0.0, p_drop
    m1 = (p2 * ea1 + p3 * ea2 + p_late * ea3).sum() / w_drop
    q1 = (p2 * ea1**2 + p3 * ea2**2 + p_late * ea3**2).sum() / w_drop - m1**2
    m0 = ((1 - p_drop) * ea3).sum() / w_comp
    q0 = ((1 - p_drop) * ea3**2).sum() / w_comp - m0**2
    pooled = math.sqrt(max(((w_comp - 1) * q0 + (w_drop - 1) * q1) / (w_comp + w_drop - 2), 1e-12))
    return float(p_drop.mean()), float((m0 - m1) / pooled), p_drop


# --------------------------------------------------------------------------------------------
# Calibration on a pilot practice
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Calibration:
    """Quantities solved on the pilot so that the effect sizes hold on the observed scale."""

    therapist_sd: float
    rho_alliance_outcome: float
    rho_client_therapist: float
    therapist_shift: float
    dropout_intercept: float
    dropout_alliance: float
    alliance_center: float
    alliance_scale: float
    attended_per_client: float
    mean_dip: tuple[float, ...]
    alliance_within_sd_observed: float
    achieved: tuple[tuple[str, float], ...]
    pilot_clients: int


def _dot(a: FloatArray, b: FloatArray) -> float:
    """Inner product without BLAS (whose spinning threads stall on a busy machine)."""
    return float(np.einsum("i,i->", a, b))


def _residualise(y: FloatArray, x: FloatArray) -> FloatArray:
    """Residuals of the least-squares line of ``y`` on ``x``."""
    xc = x - x.mean()
    sxx = _dot(xc, xc)
    beta = _dot(xc, y - y.mean()) / sxx if sxx > 0 else 0.0
    out: FloatArray = y - y.mean() - beta * xc
    return out


def _corr(a: FloatArray, b: FloatArray) -> float:
    """Pearson correlation."""
    a = a - a.mean()
    b = b - b.mean()
    den = math.sqrt(_dot(a, a) * _dot(b, b))
    return _dot(a, b) / den if den > 0 else 0.0


def _cohen_d(a: FloatArray, b: FloatArray) -> float:
    na, nb = a.size, b.size
    pooled = ((na - 1) * a.var(ddof=1) + (nb - 1) * b.var(ddof=1)) / (na + nb - 2)
    return float((a.mean() - b.mean()) / math.sqrt(pooled)) if pooled > 0 else 0.0


def _solve(fn: Callable[[float], float], target: float, lo: float, hi: float, what: str) -> float:
    """The root of ``fn(v) = target`` on ``[lo, hi]`` (brentq), or a clear error if none."""
    f_lo, f_hi = fn(lo) - target, fn(hi) - target
    if f_lo * f_hi > 0:
        reach = sorted((f_lo + target, f_hi + target))
        raise InvalidParameter(
            f"{what} = {target:g} cannot be reached with the other settings "
            f"(reachable range about {reach[0]:.3f} to {reach[1]:.3f})"
        )
    return float(optimize.brentq(lambda v: fn(v) - target, lo, hi, xtol=1e-4))


#: Gauss–Hermite nodes and weights for averaging over a normal therapist effect.
_GH_NODES, _GH_WEIGHTS = np.polynomial.hermite.hermgauss(21)


def _therapist_icc(
    spec_set: Specs, latent_ref: FloatArray, intake: FloatArray, tau: float
) -> float:
    """Therapist share of the observed, intake-residualised primary score at R.

    With ``y(v) = clip(round(latent + v))`` for a therapist effect ``v ~ N(0, τ²)``: residualise
    on intake by the pooled least-squares line, then ``ICC = Var_v(E_i r) / E_v E_i r²``, the
    between-therapist share a one-way ANOVA estimates on a large practice. The expectation
    over ``v`` is a 21-node Gauss–Hermite sum, so the value has no therapist sampling error.
    """
    if tau <= 0:
        return 0.0
    v = tau * math.sqrt(2.0) * _GH_NODES
    w = _GH_WEIGHTS / math.sqrt(math.pi)
    ys = [observe(latent_ref + vq, spec_set.primary) for vq in v]
    xc = intake - intake.mean()
    sxx = _dot(xc, xc)
    grand = sum(wq * float(y.mean()) for wq, y in zip(w, ys, strict=True))
    beta = sum(wq * _dot(xc, y) for wq, y in zip(w, ys, strict=True)) / sxx
    between = 0.0
    total = 0.0
    for wq, y in zip(w, ys, strict=True):
        r = y - grand - beta * xc
        between += wq * float(r.mean()) ** 2
        total += wq * _dot(r, r) / r.size
    return between / total if total > 0 else 0.0


def _therapist_sd(
    cfg: SimulationConfig, spec_set: Specs, latent_ref: FloatArray, intake: FloatArray
) -> float:
    """The therapist SD giving ``therapist_share`` on the observed scale (0 for a share of 0)."""
    if cfg.therapist_share <= 0:
        return 0.0
    start = latent_share_sd(cfg)
    return _solve(
        lambda t: _therapist_icc(spec_set, latent_ref, intake, t),
        cfg.therapist_share,
        0.0,
        max(4 * start, 1.0),
        "therapist_share",
    )


@lru_cache(maxsize=16)
def calibrate(cfg: SimulationConfig) -> Calibration:
    """Solve the calibrated quantities on a pilot practice (cached per population config).

    Solved, in order, on ``cfg.pilot_clients`` clients drawn with :data:`PILOT_SEED`:

    0. the SD of the therapist effect, so that therapists hold ``therapist_share`` of the
       observed, intake-residualised primary score at the reference session;
    1. the correlation of the alliance trait with the client's improvement, so that early
       alliance (mean of sessions 1–3) correlates ``alliance_outcome_r`` with the residualised
       improvement at the reference session (observed scores);
    2. the client–therapist trait correlation and the therapist's mean shift, so that the
       observed totals at ``alliance_reference_session`` correlate ``agreement_r`` and differ by
       ``client_therapist_d``;
    3. the intercept and the alliance slope of the dropout hazard, so that the expected dropout
       share is ``dropout_rate`` and the expected completer−dropout difference in early alliance
       is ``dropout_alliance_d`` pooled SDs.

    It also measures (nothing is solved) the observed within-client SD of rupture-free alliance
    ratings, the yardstick of a rupture's observed depth (:func:`alliance_within_sd_observed`).
    """
    specs = specs_for(cfg.population_key())
    n = cfg.pilot_clients
    d = draw(cfg, specs, n, max(20, n // 50), PILOT_SEED)
    mean_dip = d.dip.mean(axis=0)
    ref = cfg.reference - 1
    _, untreated = outcome_course(cfg, d, specs, mean_dip, 0.0)
    tau = _therapist_sd(cfg, specs, untreated[:, ref], d.intake)
    _, latent = outcome_course(cfg, d, specs, mean_dip, tau)
    observed = observe(latent, specs.primary)
    status = attendance(cfg, d)
    attended = status == 0
    early_cols = slice(0, min(3, d.sessions))
    att_early = attended[:, early_cols]
    resid = _residualise(-observed[:, ref], d.intake)

    def early_alliance(trait: FloatArray) -> FloatArray:
        a = observe(client_alliance(cfg, d, trait, specs.alliance.hi, early_cols), specs.alliance)
        return np.asarray((a * att_early).sum(axis=1) / att_early.sum(axis=1), dtype=np.float64)

    def r_ao(rho: float) -> float:
        return _corr(early_alliance(alliance_trait(cfg, d, rho)), resid)

    rho_ao = _solve(r_ao, cfg.alliance_outcome_r, -0.999, 0.999, "alliance_outcome_r")
    trait = alliance_trait(cfg, d, rho_ao)

    col = slice(cfg.alliance_reference - 1, cfg.alliance_reference)
    client_ref = observe(client_alliance(cfg, d, trait, specs.alliance.hi, col), specs.alliance)[
        :, 0
    ]

    def ther(rho: float, shift: float) -> FloatArray:
        t = therapist_alliance(cfg, d, trait, rho, shift, specs.therapist.hi, col)
        return observe(t, specs.therapist)[:, 0]

    def d_ct(shift: float, rho: float) -> float:
        return _cohen_d(client_ref, ther(rho, shift))

    def r_ct(rho: float, shift: float) -> float:
        return _corr(client_ref, ther(rho, shift))

    # The two targets barely interact (the shift moves the mean, rho the correlation), so a few
    # alternating one-dimensional solves converge.
    rho_ct, shift = cfg.agreement_r, cfg.client_therapist_d * cfg.alliance_sd
    for _ in range(4):
        shift = _solve(
            partial(d_ct, rho=rho_ct), cfg.client_therapist_d, -40.0, 40.0, "client_therapist_d"
        )
        rho_ct = _solve(partial(r_ct, shift=shift), cfg.agreement_r, -0.999, 0.999, "agreement_r")
    t_ref = ther(rho_ct, shift)

    alliance = observe(client_alliance(cfg, d, trait, specs.alliance.hi), specs.alliance)
    center = float(alliance[:, 0].mean())
    scale = float(alliance[:, 0].std()) or 1.0
    cov = dropout_covariates(cfg, d, specs, observed, alliance, status, center, scale)

    if cfg.dropout_rate > 0:

        def equations(x: FloatArray) -> FloatArray:
            rate, dd, _ = _expected_dropout(hazard(cfg, cov, float(x[0]), float(x[1])), cov.early)
            return np.array(
                [
                    special.logit(max(rate, 1e-9)) - special.logit(cfg.dropout_rate),
                    dd - cfg.dropout_alliance_d,
                ]
            )

        start = np.array([special.logit(cfg.dropout_rate / max(d.planned.mean() - 1, 1)), -0.5])
        sol = optimize.root(equations, start, method="hybr")
        if not sol.success or np.max(np.abs(equations(sol.x))) > 1e-4:
            raise InvalidParameter(
                f"dropout_rate = {cfg.dropout_rate:g} with dropout_alliance_d = "
                f"{cfg.dropout_alliance_d:g} cannot be reached with the other settings "
                f"({sol.message})"
            )
        intercept, slope = float(sol.x[0]), float(sol.x[1])
        h = hazard(cfg, cov, intercept, slope)
    else:
        intercept, slope = -math.inf, 0.0
        h = np.zeros((n, d.sessions))
    rate, dd, _ = _expected_dropout(h, cov.early)
    survive = np.cumprod(1 - h, axis=1)
    prior = np.ones_like(survive)
    prior[:, 1:] = survive[:, :-1]
    in_plan = np.arange(1, d.sessions + 1)[None, :] <= d.planned[:, None]
    # An appointment is attended when the client is still in therapy, did not leave before it
    # and came (the dropout appointment itself is a no-show).
    attended_expect = float((prior * (1 - h) * attended * in_plan).sum(axis=1).mean())
    achieved = (
        ("therapist_share", float(_therapist_icc(specs, untreated[:, ref], d.intake, tau))),
        ("alliance_outcome_r", r_ao(rho_ao)),
        ("agreement_r", _corr(client_ref, t_ref)),
        ("client_therapist_d", _cohen_d(client_ref, t_ref)),
        ("dropout_rate", rate),
        ("dropout_alliance_d", dd),
    )
    return Calibration(
        therapist_sd=tau,
        rho_alliance_outcome=rho_ao,
        rho_client_therapist=rho_ct,
        therapist_shift=shift,
        dropout_intercept=intercept,
        dropout_alliance=slope,
        alliance_center=center,
        alliance_scale=scale,
        attended_per_client=attended_expect,
        mean_dip=tuple(float(v) for v in mean_dip),
        alliance_within_sd_observed=alliance_within_sd_observed(cfg, d, trait, specs, attended),
        achieved=achieved,
        pilot_clients=n,
    )
