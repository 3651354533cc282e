"""``simulate_practice``: draw a practice, derive its courses, attendance, dropout and answers."""

from __future__ import annotations

import math
from collections.abc import Callable
from types import MappingProxyType
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alliance.errors import InvalidParameter
from alliance.simulate import model as m
from alliance.simulate.config import CONCERNS, TRAJECTORIES, SimulationConfig
from alliance.simulate.items import ItemSpec, allocate
from alliance.simulate.practice import SimulatedPractice

__all__ = ["METHOD", "STATUSES", "clients_for_observations", "simulate_practice"]

#: Stable identifier of the generating model, stored in ``params["method"]``.
METHOD = "practice_simulation_v1"

#: Appointment statuses, in category order.
STATUSES: tuple[str, ...] = ("attended", "no_show", "cancelled")

Progress = Callable[[str, float], None]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def _noop(stage: str, fraction: float) -> None:
    """Default progress callback: does nothing."""


def clients_for_observations(n_observations: int, config: SimulationConfig | None = None) -> int:
    """How many clients give about ``n_observations`` attended sessions under ``config``.

    Uses the expected number of attended sessions per client on the calibration pilot
    (planned length, no-shows, cancellations and dropout included).

    Examples
    --------
    >>> n = clients_for_observations(10_000, SimulationConfig(max_sessions=12, pilot_clients=2000))
    >>> 900 < n < 1400
    True
    """
    if (
        isinstance(n_observations, bool)
        or not isinstance(n_observations, int)
        or n_observations < 1
    ):
        raise InvalidParameter(f"n_observations must be a positive integer, got {n_observations!r}")
    cfg = config if config is not None else SimulationConfig()
    cal = m.calibrate(cfg.population_key())
    return max(1, math.ceil(n_observations / cal.attended_per_client))


def simulate_practice(
    config: SimulationConfig | None = None, *, progress: Progress | None = None
) -> SimulatedPractice:
    """Simulate a practice: therapists, clients, sessions, scores, items, alliance, ruptures.

    Parameters
    ----------
    config
        The configuration (defaults: :class:`SimulationConfig`).
    progress
        Optional callback ``progress(stage, fraction_done)`` for long runs.

    Returns
    -------
    SimulatedPractice
        Frozen bundle of DataFrames and the generating ``params``.

    Notes
    -----
    The primary outcome follows the ``loglinear_intake`` course (sessions ≥ 2)::

        score_it = b0 + b1·log(s) + b2·intake_i + b3·log(s)·intake_i
                   + u0_i + u1_i·log(s) + v_j − γ·δ_i,t−1 + e_it

    with client random effects ``(u0, u1)`` (a mixture over trajectory classes whose marginal
    covariance is ``params["re_cov"]``), therapist effect ``v_j``, the lagged within-client
    alliance state ``δ`` and residual ``e``. Client alliance is a latent WAI-SR total with trait,
    log-growth, an AR(1) state and ruptures (V-shaped dips, repaired or not); the therapist's
    rating shares part of the client's trait. Calibrated on a pilot: alliance–outcome r = .278
    (Flückiger et al. 2018), agreement r = .36 and d = .63 (Tryon et al. 2007), dropout 19.7 %
    (Swift & Greenberg 2012) with completer−dropout early-alliance d = .55 (Sharf et al. 2010);
    by construction: therapist share .05 (Wampold & Brown 2005). Full model and sources:
    ``docs/algorithms/simulation.md``.

    References
    ----------
    Flückiger C, Del Re AC, Wampold BE, Horvath AO (2018). The alliance in adult psychotherapy:
    a meta-analytic synthesis. Psychotherapy 55:316.
    Tryon GS, Blackwell SC, Hammel EF (2007). A meta-analytic examination of client–therapist
    perspectives of the working alliance (53 studies).
    Sharf J, Primavera LH, Diener MJ (2010). Dropout and therapeutic alliance: a meta-analysis
    of adult individual psychotherapy. Psychotherapy 47(4).
    Swift JK, Greenberg RP (2012). Premature discontinuation in adult psychotherapy: a
    meta-analysis. J Consult Clin Psychol 80:547–559.
    Wampold BE, Brown GS (2005). Estimating variability in outcomes attributable to therapists
    (6,146 patients, 581 therapists).

    Examples
    --------
    >>> import alliance as al
    >>> p = al.simulate_practice(al.SimulationConfig(n_therapists=2, n_clients=20, max_sessions=8,
    ...                                              seed=1, pilot_clients=2000))
    >>> list(p.scores["instrument"].cat.categories[:2])
    ['phq9', 'gad7']
    >>> bool((p.sessions.query("session == 1")["status"] == "attended").all())
    True
    """
    cfg = config if config is not None else SimulationConfig()
    report = progress if progress is not None else _noop
    seed_seq = np.random.SeedSequence(cfg.seed)
    report("calibrating", 0.0)
    specs = m.specs_for(cfg.population_key())
    cal = m.calibrate(cfg.population_key())
    report("drawing", 0.15)
    d = m.draw(cfg, specs, cfg.n_clients, cfg.n_therapists, seed_seq)
    report("courses", 0.25)
    c = m.courses(cfg, d, specs, cal)
    report("dropout", 0.35)
    ep = _episodes(cfg, d, specs, c, cal)
    report("items", 0.4)
    answers = _answers(cfg, d, specs, c, ep, report)
    report("tables", 0.85)
    practice = _assemble(cfg, d, specs, c, cal, ep, answers, seed_seq)
    report("done", 1.0)
    return practice


# --------------------------------------------------------------------------------------------
class _Episodes:
    """Who attended what: the episode of each client after dropout."""

    def __init__(
        self,
        status: npt.NDArray[np.int8],
        in_episode: npt.NDArray[np.bool_],
        dropped: npt.NDArray[np.bool_],
        dropout_session: IntArray,
        last_session: IntArray,
        early: FloatArray,
    ) -> None:
        self.status = status
        self.in_episode = in_episode
        self.attended = in_episode & (status == 0)
        self.dropped = dropped
        self.dropout_session = dropout_session
        self.last_session = last_session
        self.early = early
        rows, cols = np.nonzero(self.attended)
        self.row_client = rows.astype(np.int64)
        self.row_col = cols.astype(np.int64)


def _episodes(
    cfg: SimulationConfig, d: m.Draws, specs: m.Specs, c: m.Courses, cal: m.Calibration
) -> _Episodes:
    cov = m.dropout_covariates(
        cfg, d, specs, c.observed, c.alliance, c.status, cal.alliance_center, cal.alliance_scale
    )
    if math.isfinite(cal.dropout_intercept):
        h = m.hazard(cfg, cov, cal.dropout_intercept, cal.dropout_alliance)
        event = (d.dropout_u < h) & cov.eligible
    else:
        event = np.zeros((d.n, d.sessions), dtype=bool)
    dropped = event.any(axis=1)
    first = event.argmax(axis=1)
    dropout_session = np.where(dropped, first + 1, 0).astype(np.int64)
    end = np.where(dropped, dropout_session, d.planned)
    status = c.status.copy()
    status[np.flatnonzero(dropped), first[dropped]] = 1
    sessions = np.arange(1, d.sessions + 1)
    in_episode = sessions[None, :] <= end[:, None]
    attended = in_episode & (status == 0)
    last_session = np.where(attended, sessions[None, :], 0).max(axis=1).astype(np.int64)
    early_mask = attended[:, :3]
    early = (np.where(early_mask, c.alliance[:, :3], 0.0)).sum(axis=1) / early_mask.sum(axis=1)
    return _Episodes(status, in_episode, dropped, dropout_session, last_session, early)


# --------------------------------------------------------------------------------------------
class _Answers:
    """Item answers of every attended administration, per instrument (rows follow the episode)."""

    def __init__(self) -> None:
        self.values: dict[str, npt.NDArray[np.int8]] = {}
        self.rows: dict[str, IntArray] = {}


def _outcome_key(
    spec: ItemSpec, d: m.Draws, rng: np.random.Generator, clients: IntArray
) -> npt.NDArray[np.float32]:
    loc = spec.locations()
    sd = np.where(loc <= -1.5, m.ITEM_CLIENT_SD_RARE, m.ITEM_CLIENT_SD)
    profile = (loc + sd * rng.standard_normal((d.n, spec.n_items))).astype(np.float32)
    noise = rng.standard_normal((clients.size, spec.n_items), dtype=np.float32)
    return profile[clients] + np.float32(m.ITEM_SESSION_SD) * noise


def _alliance_key(
    spec: ItemSpec,
    d: m.Draws,
    rng: np.random.Generator,
    clients: IntArray,
    cols: IntArray,
    focus: npt.NDArray[np.int8] | None,
) -> npt.NDArray[np.float32]:
    sub_of = np.full(spec.n_items, -1, dtype=np.int64)
    for k, (_, idx) in enumerate(spec.subscales):
        sub_of[list(idx)] = k
    n_sub = max(len(spec.subscales), 1)
    profile = (m.ITEM_CLIENT_SD * rng.standard_normal((d.n, n_sub))).astype(np.float32)
    key = np.where(sub_of >= 0, profile[:, np.maximum(sub_of, 0)], np.float32(0.0))[clients]
    key = key + np.float32(m.ALLIANCE_SESSION_SD) * rng.standard_normal(
        (clients.size, spec.n_items), dtype=np.float32
    )
    if focus is not None:
        strained = focus[clients, cols][:, None] == sub_of[None, :]
        key = key - np.float32(m.RUPTURE_FOCUS_PENALTY) * strained
    out: npt.NDArray[np.float32] = key.astype(np.float32)
    return out


def _to_values(spec: ItemSpec, units: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
    lo = np.asarray(spec.item_min, dtype=np.int16)
    cap = np.asarray(spec.caps, dtype=np.int16)
    rev = np.asarray(spec.reverse)
    v = np.where(rev, lo + cap - units, lo + units)
    return v.astype(np.int8)


def _answers(
    cfg: SimulationConfig,
    d: m.Draws,
    specs: m.Specs,
    c: m.Courses,
    ep: _Episodes,
    report: Progress,
) -> _Answers:
    out = _Answers()
    rc, rs = ep.row_client, ep.row_col
    outcome = specs.outcome
    n_sec = len(specs.secondary)
    totals = [c.observed, *c.secondary_observed]
    jobs: list[tuple[ItemSpec, IntArray, FloatArray | None, bool]] = []
    for j, spec in enumerate(outcome):
        if j <= n_sec:
            rows = np.arange(rc.size)
        else:
            concern = specs.by_concern[j - 1 - n_sec][0]
            rows = np.flatnonzero(d.concern[rc] == concern)
        jobs.append((spec, rows, totals[j], False))
    jobs.append((specs.alliance, np.arange(rc.size), c.alliance, True))
    jobs.append((specs.therapist, np.arange(rc.size), c.therapist, True))
    # One generator per instrument, so that switching item answers off for some instruments
    # leaves the others (the alliance subscales) unchanged.
    streams = d.items.spawn(len(jobs))
    for step, ((spec, rows, total, is_alliance), rng) in enumerate(zip(jobs, streams, strict=True)):
        out.rows[spec.id] = rows
        needed = cfg.item_level or spec is specs.alliance
        if not spec.items_supported or not needed or total is None:
            continue
        cl, co = rc[rows], rs[rows]
        units = (total[cl, co] - spec.lo).astype(np.int64)
        if is_alliance:
            focus = d.focus if spec is specs.alliance else None
            key = _alliance_key(spec, d, rng, cl, co, focus)
        else:
            key = _outcome_key(spec, d, rng, cl)
        out.values[spec.id] = _to_values(spec, allocate(units, key, spec.caps))
        report("items", 0.4 + 0.45 * (step + 1) / len(jobs))
    return out


# --------------------------------------------------------------------------------------------
def _categorical(codes: npt.ArrayLike, categories: tuple[str, ...]) -> pd.Categorical[str]:
    """Codes and labels as a pandas Categorical (no copy of the labels per row).

    The codes are passed in the narrowest integer type pandas keeps, which avoids two copies of
    tens of millions of codes on large practices.
    """
    dtype = np.int8 if len(categories) < 127 else np.int16 if len(categories) < 32_000 else np.int32
    return pd.Categorical.from_codes(  # type: ignore[return-value]
        np.asarray(codes).astype(dtype, copy=False), dtype=pd.CategoricalDtype(list(categories))
    )


def _assemble(
    cfg: SimulationConfig,
    d: m.Draws,
    specs: m.Specs,
    c: m.Courses,
    cal: m.Calibration,
    ep: _Episodes,
    answers: _Answers,
    seed_seq: np.random.SeedSequence,
) -> SimulatedPractice:
    n = d.n
    client_id = np.arange(1, n + 1, dtype=np.int64)
    therapist_id = d.therapist + 1
    tau = cal.therapist_sd
    rc_points = specs.reliable_change

    therapists = pd.DataFrame(
        {
            "therapist": np.arange(1, d.n_therapists + 1, dtype=np.int64),
            "therapist_effect": tau * d.therapist_z,
        }
    )

    last_col = ep.last_session - 1
    final = c.observed[np.arange(n), last_col]
    poor = (d.intake - final) < rc_points
    planned_sys = c.sys[np.arange(n), d.planned - 1]
    off_track = (d.intake - planned_sys) < rc_points
    clients = pd.DataFrame(
        {
            "client": client_id,
            "therapist": therapist_id,
            "concern": _categorical(d.concern, CONCERNS),
            "intake": d.intake,
            "trajectory": _categorical(d.trajectory, TRAJECTORIES),
            "planned_sessions": d.planned,
            "last_session": ep.last_session,
            "dropped_out": ep.dropped,
            "dropout_session": np.where(ep.dropped, ep.dropout_session, np.nan),
            "poor_outcome": poor,
            "truly_off_track": off_track,
            "early_alliance": ep.early,
        }
    )

    si, sc = np.nonzero(ep.in_episode)
    sessions = pd.DataFrame(
        {
            "client": client_id[si],
            "therapist": therapist_id[si],
            "session": (sc + 1).astype(np.int64),
            "week": d.week[si, sc],
            "status": _categorical(ep.status[si, sc], STATUSES),
        },
        copy=False,
    )

    rc, rs = ep.row_client, ep.row_col
    n_rows = rc.size
    scores = _scores_table(specs, c, ep, answers, client_id, therapist_id)
    items = _items_table(cfg, specs, ep, answers, client_id) if cfg.item_level else _empty_items()

    alliance = pd.DataFrame(
        {
            "client": client_id[rc],
            "therapist": therapist_id[rc],
            "session": (rs + 1).astype(np.int64),
            "alliance": c.alliance[rc, rs],
            "therapist_alliance": c.therapist[rc, rs],
        },
        copy=False,
    )
    values = answers.values.get(specs.alliance.id)
    for name in ("bond", "task", "goal"):
        idx = specs.alliance.subscale(name)
        if values is not None and idx:
            alliance[f"alliance_{name}"] = (
                values[:, list(idx)].sum(axis=1, dtype=np.int64).astype(float)
            )
        else:
            alliance[f"alliance_{name}"] = np.full(n_rows, np.nan)

    ruptures = _ruptures_table(cfg, specs, d, c, cal, ep, client_id)
    params = _params(cfg, specs, cal, seed_seq, d)
    return SimulatedPractice(
        therapists=therapists,
        clients=clients,
        sessions=sessions,
        scores=scores,
        items=items,
        alliance=alliance,
        ruptures=ruptures,
        params=MappingProxyType(params),
    )


def _scores_table(
    specs: m.Specs,
    c: m.Courses,
    ep: _Episodes,
    answers: _Answers,
    client_id: IntArray,
    therapist_id: IntArray,
) -> pd.DataFrame:
    rc, rs = ep.row_client, ep.row_col
    n_rows = rc.size
    outcome = specs.outcome
    observed = [c.observed, *c.secondary_observed]
    latent = [c.latent, *c.secondary_latent]
    n_inst = len(outcome)
    present = np.zeros((n_rows, n_inst), dtype=bool)
    score = np.zeros((n_rows, n_inst))
    lat = np.zeros((n_rows, n_inst))
    for j, spec in enumerate(outcome):
        rows = answers.rows[spec.id]
        present[rows, j] = True
        score[rows, j] = observed[j][rc[rows], rs[rows]]
        lat[rows, j] = latent[j][rc[rows], rs[rows]]
    r, col = np.nonzero(present)
    return pd.DataFrame(
        {
            "client": client_id[rc[r]],
            "therapist": therapist_id[rc[r]],
            "session": (rs[r] + 1).astype(np.int64),
            "instrument": _categorical(col, tuple(sp.id for sp in outcome)),
            "score": score[r, col],
            "latent": lat[r, col],
        },
        copy=False,
    )


def _empty_items() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "client": pd.Series(dtype=np.int32),
            "session": pd.Series(dtype=np.int16),
            "instrument": pd.Categorical([]),
            "item": pd.Categorical([]),
            "value": pd.Series(dtype=np.int8),
        }
    )


def _items_table(
    cfg: SimulationConfig, specs: m.Specs, ep: _Episodes, answers: _Answers, client_id: IntArray
) -> pd.DataFrame:
    """Item answers in (client, session, instrument, item) order.

    Each block (instrument) is scattered straight to its place: a row's items start at the
    row's offset plus the items of the blocks before it in that row.
    """
    rc, rs = ep.row_client, ep.row_col
    n_rows = rc.size
    blocks = [
        b for b in (*specs.outcome, specs.alliance, specs.therapist) if b.id in answers.values
    ]
    if not blocks:
        return _empty_items()
    counts = np.zeros(n_rows, dtype=np.int64)
    for spec in blocks:
        counts[answers.rows[spec.id]] += spec.n_items
    fill = np.cumsum(counts) - counts
    total = int(counts.sum())
    value = np.empty(total, dtype=np.int8)
    item = np.empty(total, dtype=np.int16)
    inst = np.empty(total, dtype=np.int16)
    first_item = 0
    for j, spec in enumerate(blocks):
        rows = answers.rows[spec.id]
        k = np.arange(spec.n_items)
        dest = (fill[rows][:, None] + k[None, :]).ravel()
        value[dest] = answers.values[spec.id].ravel()
        item[dest] = np.tile((first_item + k).astype(np.int16), rows.size)
        inst[dest] = j
        fill[rows] += spec.n_items
        first_item += spec.n_items
    # Different integer widths keep pandas from stacking the columns into one copied block.
    return pd.DataFrame(
        {
            "client": np.repeat(client_id[rc].astype(np.int32), counts),
            "session": np.repeat((rs + 1).astype(np.int16), counts),
            "instrument": _categorical(inst, tuple(b.id for b in blocks)),
            "item": _categorical(item, tuple(i for b in blocks for i in b.item_ids)),
            "value": value,
        },
        copy=False,
    )


def _ruptures_table(
    cfg: SimulationConfig,
    specs: m.Specs,
    d: m.Draws,
    c: m.Courses,
    cal: m.Calibration,
    ep: _Episodes,
    client_id: IntArray,
) -> pd.DataFrame:
    """Ground-truth ruptures, with their depth on the observed scale.

    ``dip_sd`` is the generating depth (latent state SDs, ``rupture_depth``). ``depth_sd`` is
    what the ratings show: the client's usual level (:func:`m.alliance_usual`) minus the
    rating at the rupture's lowest attended session, in observed within-client SDs of
    rupture-free ratings (``cal.alliance_within_sd_observed``) — the scale on which rupture
    criteria measure a drop (Gumz et al. 2012). NaN when no session of the dip was attended.
    """
    r = d.ruptures
    end = np.where(ep.dropped, ep.dropout_session, d.planned)
    keep = r.start <= ep.last_session[r.client]
    cl = r.client[keep]
    start = r.start[keep]
    repair = r.repair[keep]
    repair = np.where(repair <= end[cl], repair, np.nan)
    # Observed: an attended session falls where the alliance is lowered (the first three
    # sessions of the dip); the observed depth is the deepest of those sessions.
    below = m.alliance_usual(cfg, d, c.alliance_trait, specs.alliance.hi) - c.alliance
    observed = np.zeros(cl.size, dtype=bool)
    depth_points = np.full(cl.size, np.nan)
    for k in range(3):
        col = start - 1 + k
        ok = col < d.sessions
        col = np.minimum(col, d.sessions - 1)
        seen = ok & ep.attended[cl, col] & (d.dip[cl, col] > 0)
        observed |= seen
        depth_points = np.fmax(depth_points, np.where(seen, below[cl, col], np.nan))
    sd_obs = cal.alliance_within_sd_observed
    depth_sd = depth_points / sd_obs if sd_obs > 0 else np.full(cl.size, np.nan)
    clear = np.nan_to_num(depth_sd, nan=-np.inf) >= m.CLEAR_RUPTURE_SD
    names = tuple(name for name, _ in specs.alliance.subscales) or ("alliance",)
    focus = np.maximum(r.focus[keep], 0)
    return pd.DataFrame(
        {
            "client": client_id[cl],
            "start_session": start,
            "low_session": r.low[keep],
            "repair_session": repair,
            "depth_sd": depth_sd,
            "clear": clear,
            "subscale": _categorical(focus, names),
            "observed": observed,
            "dip_sd": r.depth[keep],
        }
    ).sort_values(["client", "start_session"], ignore_index=True)


def _params(
    cfg: SimulationConfig,
    specs: m.Specs,
    cal: m.Calibration,
    seed_seq: np.random.SeedSequence,
    d: m.Draws,
) -> dict[str, Any]:
    b0, b1, b2, b3 = cfg.fixed_effects
    fixed = {"(Intercept)": b0, "log_session": b1, "intake": b2, "log_session:intake": b3}
    cov = m.re_cov(cfg)
    tau = cal.therapist_sd
    gamma = m.within_gamma(cfg)
    fit_cov = cov.copy()
    fit_cov[0, 0] += tau**2
    entropy = seed_seq.entropy
    return {
        "method": METHOD,
        "seed": int(entropy) if isinstance(entropy, int) else entropy,
        "n_clients": d.n,
        "n_therapists": d.n_therapists,
        "max_sessions": d.sessions,
        "primary_instrument": specs.primary.id,
        "reliable_change_points": specs.reliable_change,
        "outcome_model": "loglinear_intake",
        "formula": (
            "score ~ b0 + b1*log(session) + b2*intake + b3*log(session)*intake "
            "+ u0 + u1*log(session) + therapist - gamma*alliance_state[t-1] + e  (sessions >= 2)"
        ),
        "fixed_effects": fixed,
        "re_cov": cov.tolist(),
        "re_cov_within_class": [
            [cfg.re_sd[0] ** 2, cfg.re_corr * cfg.re_sd[0] * cfg.re_sd[1]],
            [cfg.re_corr * cfg.re_sd[0] * cfg.re_sd[1], cfg.re_sd[1] ** 2],
        ],
        "trajectory_slope_offsets": dict(
            zip(TRAJECTORIES, m.slope_offsets(cfg).tolist(), strict=True)
        ),
        "trajectory_shares": dict(zip(TRAJECTORIES, cfg.trajectory_shares, strict=True)),
        "residual_sd": cfg.residual_sd,
        "residual_var": cfg.residual_sd**2,
        "therapist_sd": tau,
        "therapist_var": tau**2,
        "therapist_share": cfg.therapist_share,
        "therapist_share_latent": m.latent_share(cfg, tau),
        "reference_session": cfg.reference,
        "within_effect": {
            "standardized": -cfg.within_alliance_effect,
            "points_per_alliance_point": -gamma,
            "lag": 1,
            "description": (
                "change in the primary score at session t+1 per point of the client's "
                "within-client alliance state at session t (negative: a better alliance "
                "than usual is followed by fewer symptoms)"
            ),
            "alliance_state_sd": cfg.alliance_within_sd,
        },
        "expected_fit": {
            "description": (
                "what the loglinear_intake model without a therapist level should recover: "
                "the therapist variance joins the random intercept and the lagged alliance "
                "state joins the residual (approximately: the state is autocorrelated)"
            ),
            "fixed_effects": fixed,
            "re_cov": fit_cov.tolist(),
            "residual_var": cfg.residual_sd**2 + (gamma * cfg.alliance_within_sd) ** 2,
        },
        "alliance": {
            "instrument": specs.alliance.id,
            "therapist_instrument": specs.therapist.id,
            "mean_session1_latent": cfg.alliance_mean,
            "between_sd": cfg.alliance_sd,
            "growth_per_log_session": cfg.alliance_growth,
            "within_sd": cfg.alliance_within_sd,
            "within_ar": cfg.alliance_ar,
            "within_sd_observed": cal.alliance_within_sd_observed,
            "clear_rupture_sd": m.CLEAR_RUPTURE_SD,
        },
        "calibration": {
            "pilot_clients": cal.pilot_clients,
            "pilot_seed": m.PILOT_SEED,
            "alliance_improvement_corr": cal.rho_alliance_outcome,
            "client_therapist_trait_corr": cal.rho_client_therapist,
            "therapist_mean_shift": cal.therapist_shift,
            "dropout_intercept": cal.dropout_intercept
            if math.isfinite(cal.dropout_intercept)
            else None,
            "dropout_alliance_logodds_per_sd": cal.dropout_alliance,
            "dropout_alliance_center": cal.alliance_center,
            "dropout_alliance_scale": cal.alliance_scale,
            "attended_per_client": cal.attended_per_client,
            "achieved_on_pilot": dict(cal.achieved),
        },
        "targets": {
            "alliance_outcome_r": cfg.alliance_outcome_r,
            "agreement_r": cfg.agreement_r,
            "client_therapist_d": cfg.client_therapist_d,
            "dropout_rate": cfg.dropout_rate,
            "dropout_alliance_d": cfg.dropout_alliance_d,
            "therapist_share": cfg.therapist_share,
            "within_alliance_effect": cfg.within_alliance_effect,
        },
        "instruments": {
            "outcome": [sp.id for sp in specs.outcome],
            "by_concern": {CONCERNS[k]: sp.id for k, sp in specs.by_concern},
            "alliance": specs.alliance.id,
            "therapist_alliance": specs.therapist.id,
        },
        "config": cfg.as_dict(),
    }
