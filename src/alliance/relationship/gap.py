"""The two perspectives on one client's alliance: the standardised therapist–client gap.

Clients and therapists agree only moderately about the alliance (r ≈ .36) and clients usually
rate it higher (d ≈ .63; Tryon, Blackwell & Hammel 2007, SCIENCE.md B5). So the usual gap runs
the other way, and a therapist who rates the relationship *markedly higher* than the client may
be missing the client's dissatisfaction. Diverging trends (the client's rating falls while the
therapist's holds or rises) are the second flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alliance.errors import InsufficientData, InvalidParameter, InvalidResponse
from alliance.relationship._common import as_float_array, check_positive, to_dict
from alliance.relationship.series import ScaleRange, normalise

__all__ = ["GapConfig", "GapNorms", "PerspectiveGap", "gap_norms", "perspective_gap"]


@dataclass(frozen=True, slots=True)
class GapNorms:
    """Caseload means and SDs of each perspective (on the 0–1 normalised scale).

    With norms, each rating becomes a z-score within its own perspective, so the gap is free of
    the usual difference in level between clients and therapists.
    """

    client_mean: float
    client_sd: float
    therapist_mean: float
    therapist_sd: float
    n: int = 0

    def __post_init__(self) -> None:
        check_positive(self.client_sd, "client_sd")
        check_positive(self.therapist_sd, "therapist_sd")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


@dataclass(frozen=True, slots=True)
class GapConfig:
    """Thresholds of the gap flags (all *heuristic*: no published cutoff exists).

    Parameters
    ----------
    therapist_higher_z
        Flag ``therapist_higher`` when the mean standardised gap (therapist z − client z) is at
        least this (default 1.0 SD).
    therapist_higher_pomp
        Without norms: flag when the therapist's normalised rating exceeds the client's by at
        least this fraction of the scale on average (default 0.10).
    recent_sessions
        The gap is averaged over the most recent ``recent_sessions`` paired sessions (default 3).
    diverging_slope
        Flag ``diverging`` when the client's trend minus the therapist's trend is at most
        −``diverging_slope`` (fraction of scale per session; default 0.02) and the client's own
        trend is negative, over the last ``trend_sessions`` (default 5, at least 3 needed).
    """

    therapist_higher_z: float = 1.0
    therapist_higher_pomp: float = 0.10
    recent_sessions: int = 3
    diverging_slope: float = 0.02
    trend_sessions: int = 5

    def __post_init__(self) -> None:
        check_positive(self.therapist_higher_z, "therapist_higher_z")
        check_positive(self.therapist_higher_pomp, "therapist_higher_pomp")
        check_positive(self.diverging_slope, "diverging_slope")
        if self.recent_sessions < 1 or self.trend_sessions < 3:
            raise InvalidParameter("recent_sessions must be ≥ 1 and trend_sessions ≥ 3")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


@dataclass(frozen=True, slots=True)
class PerspectiveGap:
    """The gap between a therapist's and a client's view of their alliance.

    Attributes
    ----------
    sessions
        The paired sessions used.
    gap_pomp
        Per session: therapist − client, on the 0–1 scale.
    gap_z
        Per session: therapist z − client z (``None`` without norms).
    mean_gap_pomp, mean_gap_z
        The same, averaged over the recent sessions.
    client_slope, therapist_slope
        Least-squares trend of each perspective over the trend window (fraction of scale per
        session; ``None`` with fewer than 3 pairs).
    therapist_higher, diverging
        The flags.
    method
        ``"standardised_gap"`` with norms, ``"pomp_gap"`` without.
    reasons
        Why each flag fired.
    """

    sessions: tuple[int, ...]
    gap_pomp: tuple[float, ...]
    gap_z: tuple[float, ...] | None
    mean_gap_pomp: float
    mean_gap_z: float | None
    client_slope: float | None
    therapist_slope: float | None
    therapist_higher: bool
    diverging: bool
    method: str
    reasons: tuple[str, ...]

    @property
    def flagged(self) -> bool:
        """True when either flag fired."""
        return self.therapist_higher or self.diverging

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``flagged`` included)."""
        d = to_dict(self)
        d["flagged"] = self.flagged
        return d


def _slope(t: npt.NDArray[np.float64], y: npt.NDArray[np.float64]) -> float:
    tc = t - t.mean()
    return float((tc * (y - y.mean())).sum() / (tc**2).sum())


def gap_norms(
    frame: pd.DataFrame,
    *,
    client_rng: tuple[float, float],
    therapist_rng: tuple[float, float] | None = None,
    alliance: str = "alliance",
    therapist_alliance: str = "therapist_alliance",
) -> GapNorms:
    """Caseload norms for :func:`perspective_gap`, from sessions rated from both sides.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"alliance": [50, 54, 46], "therapist_alliance": [44, 48, 46]})
    >>> n = gap_norms(f, client_rng=(12, 60))
    >>> round(n.client_mean, 4), round(n.therapist_mean, 4)
    (0.7917, 0.7083)
    """
    for col in (alliance, therapist_alliance):
        if col not in frame.columns:
            raise InvalidResponse(f"the data needs a {col!r} column")
    c = normalise(pd.to_numeric(frame[alliance], errors="coerce").to_numpy(), client_rng)
    t = normalise(
        pd.to_numeric(frame[therapist_alliance], errors="coerce").to_numpy(),
        therapist_rng or client_rng,
    )
    ok = ~np.isnan(c) & ~np.isnan(t)
    if ok.sum() < 3:
        raise InsufficientData("gap norms need at least 3 sessions rated from both sides")
    return GapNorms(
        client_mean=float(c[ok].mean()),
        client_sd=float(c[ok].std(ddof=1)),
        therapist_mean=float(t[ok].mean()),
        therapist_sd=float(t[ok].std(ddof=1)),
        n=int(ok.sum()),
    )


def perspective_gap(
    client: Sequence[float] | npt.ArrayLike,
    therapist: Sequence[float] | npt.ArrayLike,
    *,
    client_rng: tuple[float, float] | ScaleRange,
    therapist_rng: tuple[float, float] | ScaleRange | None = None,
    sessions: Sequence[int] | None = None,
    norms: GapNorms | None = None,
    config: GapConfig | None = None,
) -> PerspectiveGap:
    """The standardised therapist–client gap for one client, with flags.

    Parameters
    ----------
    client, therapist
        The client's and the therapist's alliance totals per session (same order; ``None`` or
        NaN where one side did not rate).
    client_rng, therapist_rng
        The instruments' ranges (therapist defaults to the client's).
    sessions
        Session numbers (default 1, 2, …).
    norms
        Caseload norms (:func:`gap_norms`); without them the gap is in scale fractions.
    config
        Flag thresholds (:class:`GapConfig`).

    Returns
    -------
    PerspectiveGap

    Notes
    -----
    With ``p`` the 0–1 normalised rating and caseload norms (m, s) per perspective::

        gap_z(t) = (p_T(t) − m_T)/s_T − (p_C(t) − m_C)/s_C
        therapist_higher  ⇔  mean of gap_z over the recent sessions ≥ therapist_higher_z
        diverging         ⇔  slope_C − slope_T ≤ −diverging_slope  and  slope_C < 0

    Without norms, ``gap_pomp = p_T − p_C`` is compared with ``therapist_higher_pomp``.
    Thresholds are heuristics; the direction of the usual gap is from Tryon et al. (2007).

    References
    ----------
    Tryon, G. S., Blackwell, S. C., & Hammel, E. F. (2007). A meta-analytic examination of
    client–therapist perspectives of the working alliance. *Psychotherapy Research*, 17(6),
    629–642.

    Examples
    --------
    >>> g = perspective_gap([50, 46, 42, 38], [48, 50, 52, 54], client_rng=(12, 60))
    >>> g.therapist_higher, g.diverging, g.method
    (True, True, 'pomp_gap')
    """
    cfg = config or GapConfig()
    c_raw = as_float_array(client, "client")
    t_raw = as_float_array(therapist, "therapist")
    if c_raw.shape != t_raw.shape:
        raise InvalidResponse("client and therapist ratings must have the same length")
    sess = (
        np.arange(1, len(c_raw) + 1, dtype=float)
        if sessions is None
        else as_float_array(sessions, "sessions")
    )
    if sess.shape != c_raw.shape:
        raise InvalidResponse("sessions must have the same length as the ratings")
    c = normalise(c_raw, client_rng)
    t = normalise(t_raw, therapist_rng if therapist_rng is not None else client_rng)
    ok = ~np.isnan(c) & ~np.isnan(t) & ~np.isnan(sess)
    if not ok.any():
        raise InsufficientData("no session was rated by both the client and the therapist")
    order = np.argsort(sess[ok], kind="stable")
    s, c, t = sess[ok][order], c[ok][order], t[ok][order]
    g = t - c
    gz = None
    if norms is not None:
        gz = (t - norms.therapist_mean) / norms.therapist_sd - (c - norms.client_mean) / (
            norms.client_sd
        )
    recent = slice(-cfg.recent_sessions, None)
    mean_g = float(g[recent].mean())
    mean_gz = None if gz is None else float(gz[recent].mean())
    reasons: list[str] = []
    if mean_gz is not None:
        higher = mean_gz >= cfg.therapist_higher_z
        if higher:
            reasons.append(
                f"over the last {len(g[recent])} session(s) the therapist rated the alliance "
                f"{mean_gz:.2f} SD higher than the client, relative to this caseload"
            )
    else:
        higher = mean_g >= cfg.therapist_higher_pomp
        if higher:
            reasons.append(
                f"over the last {len(g[recent])} session(s) the therapist rated the alliance "
                f"{100 * mean_g:.0f} points of 100 higher than the client"
            )
    c_slope = t_slope = None
    diverging = False
    if len(s) >= 3:
        w = slice(-cfg.trend_sessions, None)
        c_slope, t_slope = _slope(s[w], c[w]), _slope(s[w], t[w])
        if c_slope < 0 and c_slope - t_slope <= -cfg.diverging_slope:
            diverging = True
            reasons.append(
                f"the client's rating is falling ({100 * c_slope:+.1f} per session) while the "
                f"therapist's is not ({100 * t_slope:+.1f} per session), points of 100"
            )
    return PerspectiveGap(
        sessions=tuple(int(v) for v in s),
        gap_pomp=tuple(float(v) for v in g),
        gap_z=None if gz is None else tuple(float(v) for v in gz),
        mean_gap_pomp=mean_g,
        mean_gap_z=mean_gz,
        client_slope=c_slope,
        therapist_slope=t_slope,
        therapist_higher=bool(higher),
        diverging=diverging,
        method="standardised_gap" if norms is not None else "pomp_gap",
        reasons=tuple(reasons),
    )
