"""The configuration of a simulated practice: one frozen dataclass, every default with its source.

Defaults come in two kinds, and each field's comment says which:

* **sourced** — an effect size taken from the literature (SCIENCE.md B5, B3, A18), reproduced by
  the simulator on the observed scale and checked by tests on large samples;
* **illustrative** — a value with no published source, chosen so that the practice looks like
  routine outpatient care (PHQ-9 around 15 at intake, weekly sessions). They are knobs, not facts.

See ``docs/algorithms/simulation.md`` for the model each field enters.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from alliance.errors import InvalidParameter

__all__ = ["CONCERNS", "TRAJECTORIES", "SimulationConfig"]

#: Presenting concerns, in the order used for the ``concern`` categories.
CONCERNS: tuple[str, ...] = (
    "depression",
    "anxiety",
    "ocd",
    "panic",
    "phobia",
    "social_anxiety",
)

#: Latent trajectory classes, in the order used for the ``trajectory`` categories.
TRAJECTORIES: tuple[str, ...] = ("responder", "slow_responder", "non_responder", "deteriorator")


def _pairs(value: Any, name: str) -> tuple[tuple[str, Any], ...]:
    """A mapping or a sequence of pairs as a sorted-by-insertion tuple of pairs (hashable)."""
    items = value.items() if isinstance(value, Mapping) else value
    try:
        return tuple((str(k), v) for k, v in items)
    except (TypeError, ValueError):
        raise InvalidParameter(
            f"{name} must be a mapping or a sequence of (key, value) pairs"
        ) from None


@dataclass(frozen=True)
class SimulationConfig:
    """Everything that defines a simulated practice.

    The object is frozen and hashable; derive variants with :func:`dataclasses.replace`. Mappings
    (``concern_shares``, ``intake_mean``, ``concern_instruments``) may be given as dicts and are
    stored as tuples of pairs.

    Parameters
    ----------
    n_therapists, n_clients
        Size of the practice. Clients are spread evenly over therapists (round robin).
    max_sessions
        Appointments per client at most (the width of the session grid), at least 4.
    seed
        Seed of the :class:`numpy.random.Generator` (``None``: fresh entropy, recorded in
        ``params["seed"]`` so the run can be repeated).
    planned_sessions
        ``(low, high)``: each client's planned number of appointments is uniform on
        ``low..high`` (capped at ``max_sessions``). Illustrative.
    concern_shares
        Share of clients per presenting concern. Illustrative (depression and anxiety dominate
        referrals to outpatient services).
    primary_instrument, secondary_instruments
        Outcome measures everyone completes at every attended session. The primary (PHQ-9)
        carries the recovery model; secondaries follow its latent course.
    concern_instruments
        Concern → instrument completed in addition by clients with that concern (OCI-R for OCD,
        PDSS-SR for panic, the APA specific-phobia measure, Mini-SPIN for social anxiety).
        Instruments missing from the library are skipped.
    alliance_instrument, therapist_alliance_instrument
        Client- and therapist-rated alliance forms (WAI-SR and WAI-SR-T); item ids, ranges and
        the bond/task/goal key come from the instrument library.
    intake_mean, intake_sd
        Primary score at session 1 by concern: ``N(mean, sd)``, rounded and clipped. Illustrative.
    fixed_effects
        ``(b0, b1, b2, b3)`` of the ``loglinear_intake`` course
        ``b0 + b1·log(s) + b2·intake + b3·log(s)·intake`` (sessions ≥ 2). Illustrative: a client
        at PHQ-9 15 expects about 7 at session 12.
    re_sd, re_corr
        Within-class SDs of the client random intercept and log-slope, and their correlation.
        Illustrative.
    trajectory_shares, trajectory_slope_offsets
        Shares of responders, slow responders, non-responders and deteriorators, and the mean
        log-slope offsets of the last three classes (the responders' offset is solved so the
        offsets average zero, keeping ``b1`` the population slope). Illustrative.
    residual_sd
        Session-level residual SD of the primary score. Illustrative.
    therapist_share
        Therapist share of the observed primary score at ``reference_session`` given intake:
        .05 (Wampold & Brown 2005; weighted mean of Johns et al. 2019). Reached by calibration.
    reference_session
        Session at which the outcome effect sizes are defined (capped at ``max_sessions``).
    secondary_loading, secondary_noise, secondary_sd
        How the secondary instruments follow the primary's latent course (loading on the
        standardised course, session noise and between-client SD as fractions of the range;
        GAD-7 uses ``gad7_intake_mean``). Illustrative.
    alliance_mean, alliance_sd, alliance_growth, alliance_growth_sd, alliance_within_sd, alliance_ar
        Latent client alliance (WAI-SR total points): session-1 mean, between-client SD, mean
        and SD of growth per log-session, within-client (state) SD and its lag-1
        autocorrelation. Illustrative; the high mean gives the usual ceiling effect.
    alliance_outcome_r
        Correlation of early alliance with residualised improvement at ``reference_session``:
        .278 (Flückiger et al. 2018). Reached on the observed scale by calibration.
    within_alliance_effect
        Standardised within-client effect of the alliance state at session t on the primary
        score at t + 1 (positive = better alliance, fewer symptoms): .16, the lower end of the
        within-person standardised coefficients of the Kenyan RI-CLPM study (PMC7776120; see
        SCIENCE.md A18, B4). Set 0 to switch it off.
    rupture_rate, rupture_first_session, rupture_depth, rupture_duration_probs, repair_prob, unrepaired_level
        Ruptures: onset probability per session (.06 gives ≈ 46 % of clients a rupture over
        ten sessions, McLaughlin et al. 2014), first possible session, depth range in
        within-client SDs, probabilities of lasting 1, 2 or 3 sessions, probability of repair,
        and the share of the depth an unrepaired rupture keeps. Depth, duration and repair
        shares are illustrative.
    agreement_r, client_therapist_d
        Client–therapist agreement r = .36 with clients rating higher by d = .63 (Tryon,
        Blackwell & Hammel 2007), at session ``alliance_reference_session``. Reached by
        calibration.
    therapist_alliance_sd, therapist_alliance_growth, therapist_within_sd, therapist_rupture_visibility
        Therapist form: between-client SD, growth per log-session, state SD, share of a
        client's rupture the therapist's rating shows. Illustrative.
    alliance_reference_session
        Session at which agreement is defined (3, an early-alliance assessment; heuristic).
    no_show_rate, cancel_rate, attendance_sd
        The median client's per-appointment probabilities and the between-client SD of their
        logits (one propensity drives both). Illustrative.
    dropout_rate
        Share of clients who drop out: .197 (Swift & Greenberg 2012, 669 studies).
    dropout_alliance_d
        Early alliance of completers minus dropouts in pooled SDs: .55 (Sharf, Primavera &
        Diener 2010). Reached by calibration.
    dropout_rupture_logodds, dropout_no_change_logodds, dropout_missed_logodds
        Log-odds added to the dropout hazard per within-client SD of a current rupture, for no
        early change, and after a missed appointment. Heuristic.
    no_change_session, no_change_points
        "No early change": from this session on, less improvement from intake than this many
        points (default: half the primary's reliable-change points). Heuristic.
    item_level
        Generate item-level answers (``items``); off saves time and memory on huge runs.
    pilot_clients
        Size of the pilot practice on which the calibrated effect sizes are solved.
    """

    n_therapists: int = 10
    n_clients: int = 200
    max_sessions: int = 20
    seed: int | None = None
    planned_sessions: tuple[int, int] = (6, 20)
    concern_shares: tuple[tuple[str, float], ...] = (
        ("depression", 0.40),
        ("anxiety", 0.25),
        ("ocd", 0.08),
        ("panic", 0.10),
        ("phobia", 0.07),
        ("social_anxiety", 0.10),
    )
    primary_instrument: str = "phq9"
    secondary_instruments: tuple[str, ...] = ("gad7",)
    concern_instruments: tuple[tuple[str, str], ...] = (
        ("ocd", "ocir"),
        ("panic", "pdss_sr"),
        ("phobia", "apa_phobia"),
        ("social_anxiety", "mini_spin"),
    )
    alliance_instrument: str = "wai_sr"
    therapist_alliance_instrument: str = "wai_sr_t"
    # -- outcome course (primary instrument points) ------------------------------------------
    intake_mean: tuple[tuple[str, float], ...] = (
        ("depression", 17.0),
        ("anxiety", 13.0),
        ("ocd", 13.0),
        ("panic", 13.0),
        ("phobia", 11.0),
        ("social_anxiety", 12.0),
    )
    intake_sd: float = 5.0
    gad7_intake_mean: tuple[tuple[str, float], ...] = (
        ("depression", 11.0),
        ("anxiety", 15.0),
        ("ocd", 12.0),
        ("panic", 13.0),
        ("phobia", 10.0),
        ("social_anxiety", 12.0),
    )
    fixed_effects: tuple[float, float, float, float] = (1.5, 0.0, 0.85, -0.2)
    re_sd: tuple[float, float] = (2.5, 0.5)
    re_corr: float = -0.2
    trajectory_shares: tuple[float, float, float, float] = (0.53, 0.25, 0.15, 0.07)
    trajectory_slope_offsets: tuple[float, float, float] = (0.8, 2.2, 5.0)
    residual_sd: float = 2.5
    therapist_share: float = 0.05
    reference_session: int = 12
    secondary_loading: float = 0.7
    secondary_noise: float = 0.09
    secondary_sd: float = 0.2
    # -- alliance (WAI-SR total points) ------------------------------------------------------
    alliance_mean: float = 46.0
    alliance_sd: float = 7.0
    alliance_growth: float = 1.5
    alliance_growth_sd: float = 0.8
    alliance_within_sd: float = 2.5
    alliance_ar: float = 0.4
    alliance_outcome_r: float = 0.278
    within_alliance_effect: float = 0.16
    rupture_rate: float = 0.06
    rupture_first_session: int = 3
    rupture_depth: tuple[float, float] = (1.0, 3.5)
    rupture_duration_probs: tuple[float, float, float] = (0.5, 0.3, 0.2)
    repair_prob: float = 0.7
    unrepaired_level: float = 0.6
    agreement_r: float = 0.36
    client_therapist_d: float = 0.63
    therapist_alliance_sd: float = 6.0
    therapist_alliance_growth: float = 1.0
    therapist_within_sd: float = 2.0
    therapist_rupture_visibility: float = 0.3
    alliance_reference_session: int = 3
    # -- attendance and dropout --------------------------------------------------------------
    no_show_rate: float = 0.08
    cancel_rate: float = 0.06
    attendance_sd: float = 0.8
    dropout_rate: float = 0.197
    dropout_alliance_d: float = 0.55
    dropout_rupture_logodds: float = 0.5
    dropout_no_change_logodds: float = 0.7
    dropout_missed_logodds: float = 0.8
    no_change_session: int = 4
    no_change_points: float | None = None
    # -- output and calibration --------------------------------------------------------------
    item_level: bool = True
    pilot_clients: int = field(default=50_000)

    def __post_init__(self) -> None:
        for name in ("concern_shares", "intake_mean", "gad7_intake_mean", "concern_instruments"):
            object.__setattr__(self, name, _pairs(getattr(self, name), name))
        for name in (
            "planned_sessions",
            "fixed_effects",
            "re_sd",
            "trajectory_shares",
            "trajectory_slope_offsets",
            "rupture_depth",
            "rupture_duration_probs",
            "secondary_instruments",
        ):
            value = getattr(self, name)
            if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
                raise InvalidParameter(f"{name} must be a sequence, got {value!r}")
            object.__setattr__(self, name, tuple(value))
        self._validate()

    # -- validation ------------------------------------------------------------------------
    def _validate(self) -> None:
        def need(ok: bool, message: str) -> None:
            if not ok:
                raise InvalidParameter(message)

        def finite(name: str) -> float:
            value = getattr(self, name)
            if (
                isinstance(value, bool)
                or not isinstance(value, (int, float))
                or not math.isfinite(value)
            ):
                raise InvalidParameter(f"{name} must be a finite number, got {value!r}")
            return float(value)

        def integer(name: str, low: int) -> int:
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < low:
                raise InvalidParameter(f"{name} must be an integer >= {low}, got {value!r}")
            return value

        integer("n_therapists", 1)
        integer("n_clients", 1)
        integer("max_sessions", 4)
        integer("reference_session", 2)
        integer("alliance_reference_session", 1)
        integer("rupture_first_session", 2)
        integer("no_change_session", 2)
        integer("pilot_clients", 1000)
        if self.seed is not None:
            integer("seed", 0)
        need(self.n_therapists <= self.n_clients, "n_therapists cannot exceed n_clients")
        low, high = self.planned_sessions if len(self.planned_sessions) == 2 else (0, 0)
        need(
            len(self.planned_sessions) == 2
            and all(isinstance(v, int) and not isinstance(v, bool) for v in self.planned_sessions)
            and 3 <= low <= high,
            f"planned_sessions must be (low, high) integers with 3 <= low <= high, got "
            f"{self.planned_sessions!r}",
        )
        need(
            low <= self.max_sessions,
            f"planned_sessions low ({low}) exceeds max_sessions ({self.max_sessions})",
        )
        shares = dict(self.concern_shares)
        unknown = set(shares) - set(CONCERNS)
        need(not unknown, f"unknown concern(s) {sorted(unknown)}; known: {', '.join(CONCERNS)}")
        need(
            all(isinstance(v, (int, float)) and v >= 0 for v in shares.values())
            and sum(shares.values()) > 0,
            "concern_shares must be non-negative numbers with a positive sum",
        )
        for name in ("intake_mean", "gad7_intake_mean"):
            table = dict(getattr(self, name))
            missing = [c for c, p in shares.items() if p > 0 and c not in table]
            need(not missing, f"{name} has no value for concern(s) {missing}")
        bad = [c for c, _ in self.concern_instruments if c not in CONCERNS]
        need(not bad, f"concern_instruments names unknown concern(s) {bad}")
        need(len(self.fixed_effects) == 4, "fixed_effects must be (b0, b1, b2, b3)")
        for v in self.fixed_effects:
            need(isinstance(v, (int, float)) and math.isfinite(v), "fixed_effects must be finite")
        need(
            len(self.re_sd) == 2 and all(v >= 0 for v in self.re_sd),
            "re_sd must be two non-negative SDs (intercept, log-slope)",
        )
        need(-1 < finite("re_corr") < 1, "re_corr must lie strictly between -1 and 1")
        ts = self.trajectory_shares
        need(
            len(ts) == 4 and all(v >= 0 for v in ts) and abs(sum(ts) - 1) < 1e-9 and ts[0] > 0,
            "trajectory_shares must be four non-negative shares summing to 1, responders > 0",
        )
        need(len(self.trajectory_slope_offsets) == 3, "trajectory_slope_offsets needs 3 values")
        need(finite("residual_sd") > 0, "residual_sd must be positive")
        need(0 <= finite("therapist_share") < 1, "therapist_share must lie in [0, 1)")
        need(finite("intake_sd") > 0, "intake_sd must be positive")
        need(0 <= finite("secondary_loading") <= 1, "secondary_loading must lie in [0, 1]")
        need(finite("secondary_noise") > 0, "secondary_noise must be positive")
        need(finite("secondary_sd") > 0, "secondary_sd must be positive")
        for name in (
            "alliance_sd",
            "alliance_within_sd",
            "therapist_alliance_sd",
            "therapist_within_sd",
        ):
            need(finite(name) > 0, f"{name} must be positive")
        finite("alliance_mean")
        finite("alliance_growth")
        finite("therapist_alliance_growth")
        need(finite("alliance_growth_sd") >= 0, "alliance_growth_sd cannot be negative")
        need(0 <= finite("alliance_ar") < 1, "alliance_ar must lie in [0, 1)")
        need(
            -0.95 <= finite("alliance_outcome_r") <= 0.95,
            "alliance_outcome_r must lie in [-.95, .95]",
        )
        need(
            -0.9 <= finite("within_alliance_effect") <= 0.9,
            "within_alliance_effect must lie in [-.9, .9]",
        )
        need(0 <= finite("rupture_rate") < 1, "rupture_rate must lie in [0, 1)")
        d_lo, d_hi = self.rupture_depth if len(self.rupture_depth) == 2 else (0.0, -1.0)
        need(0 < d_lo <= d_hi, "rupture_depth must be (low, high) with 0 < low <= high (SD units)")
        rp = self.rupture_duration_probs
        need(
            len(rp) == 3 and all(v >= 0 for v in rp) and abs(sum(rp) - 1) < 1e-9,
            "rupture_duration_probs must be three probabilities (1, 2, 3 sessions) summing to 1",
        )
        need(0 <= finite("repair_prob") <= 1, "repair_prob must lie in [0, 1]")
        need(0 <= finite("unrepaired_level") <= 1, "unrepaired_level must lie in [0, 1]")
        need(-0.95 <= finite("agreement_r") <= 0.95, "agreement_r must lie in [-.95, .95]")
        need(abs(finite("client_therapist_d")) <= 3, "client_therapist_d must lie in [-3, 3]")
        need(
            0 <= finite("therapist_rupture_visibility") <= 1,
            "therapist_rupture_visibility must lie in [0, 1]",
        )
        need(0 <= finite("no_show_rate") < 0.5, "no_show_rate must lie in [0, .5)")
        need(0 <= finite("cancel_rate") < 0.5, "cancel_rate must lie in [0, .5)")
        need(finite("attendance_sd") >= 0, "attendance_sd cannot be negative")
        need(0 <= finite("dropout_rate") < 0.9, "dropout_rate must lie in [0, .9)")
        need(abs(finite("dropout_alliance_d")) <= 2, "dropout_alliance_d must lie in [-2, 2]")
        for name in (
            "dropout_rupture_logodds",
            "dropout_no_change_logodds",
            "dropout_missed_logodds",
        ):
            finite(name)
        if self.no_change_points is not None:
            need(finite("no_change_points") >= 0, "no_change_points cannot be negative")
        need(isinstance(self.item_level, bool), "item_level must be True or False")

    # -- derived ---------------------------------------------------------------------------
    @property
    def reference(self) -> int:
        """The session at which outcome effect sizes are defined (capped at ``max_sessions``)."""
        return min(self.reference_session, self.max_sessions)

    @property
    def alliance_reference(self) -> int:
        """The session at which client–therapist agreement is defined."""
        return min(self.alliance_reference_session, self.max_sessions)

    def population_key(self) -> SimulationConfig:
        """This configuration with the sample-only fields fixed: what a calibration depends on."""
        from dataclasses import replace

        return replace(self, n_clients=1, n_therapists=1, seed=0, item_level=False)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict of every field (pairs become mappings)."""
        out: dict[str, Any] = {}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name in (
                "concern_shares",
                "intake_mean",
                "gad7_intake_mean",
                "concern_instruments",
            ):
                value = dict(value)
            elif isinstance(value, tuple):
                value = list(value)
            out[f.name] = value
        return out
