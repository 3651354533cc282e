"""Alliance ruptures and repairs from session-by-session alliance ratings.

Four methods, each with a stable identifier that every episode records:

``absolute``
    The session total is at or below the instrument's concern threshold (SRS: ≤ 36), or any
    item is below a configured floor (SRS practice advice: any item < 9).
``relative_1sd`` / ``relative_2sd``
    The total falls at least 1 (2) SD below the client's own running baseline, the SD being the
    larger of the client's own (intra-individual) SD and the caseload's (inter-individual) SD
    (Gumz et al. 2012 propose reporting both thresholds and combining intra- and
    inter-individual variability, favouring the stricter value). The client's SD, estimated
    from a few sessions, is first pooled with the caseload's (Smyth 2004's moderated variance).
``ceiling_aware``
    ``relative_2sd`` for most clients; for a client whose baseline sits at the top of the scale
    (where an SD rule cannot see a drop), any step down out of the ceiling band, with the items
    that stepped down as evidence.

A rupture opens at the first session that meets the rule (``start_session``); the episode's
``low_session`` is its lowest session; it is *repaired* when a later session returns to the
baseline (within a tolerance) within ``repair_window`` sessions of the start, giving the V-shaped
rupture–repair episode (Stiles et al. 2004; Strauss et al. 2006; Gumz et al. 2012); otherwise
it is *unrepaired* (or *ongoing* when the window has not yet passed).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import lru_cache
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import pandas as pd
from scipy import stats

from alliance.errors import InsufficientData, InvalidParameter, InvalidResponse
from alliance.instruments import Instrument
from alliance.instruments import get as get_instrument
from alliance.relationship._common import check_positive, to_dict
from alliance.relationship.series import ScaleRange, scale_range, subscale_ranges

__all__ = [
    "ITEM_FLOORS",
    "RUPTURE_METHODS",
    "DetectionScore",
    "RuptureConfig",
    "RuptureEpisode",
    "RuptureResult",
    "detect_ruptures",
    "reference_sd",
    "score_detection",
]

RuptureMethod = Literal["absolute", "relative_1sd", "relative_2sd", "ceiling_aware"]

#: Stable method identifiers.
RUPTURE_METHODS: tuple[str, ...] = ("absolute", "relative_1sd", "relative_2sd", "ceiling_aware")

#: Item floors for the absolute rule, by instrument id, with their source. SRS: "any single item
#: below 9 is worth a check-in" — practice advice reported by hiboop.com (SCIENCE.md A8), a
#: secondary source; no published item floor exists for the WAI-SR (SCIENCE.md A17).
ITEM_FLOORS: Mapping[str, tuple[float, str]] = {
    "srs": (9.0, "SRS practice advice (hiboop.com; SCIENCE.md A8) - secondary source"),
}

_SD_MULTIPLIER = {"relative_1sd": 1.0, "relative_2sd": 2.0, "ceiling_aware": 2.0}


@dataclass(frozen=True, slots=True)
class RuptureConfig:
    """Every threshold of the rupture rules, named. Defaults marked *heuristic* have no source.

    Parameters
    ----------
    concern_threshold
        ``absolute``: a total at or below this is a rupture session. Default: the instrument's
        ``concern_threshold`` (SRS ≤ 36, Duncan et al. 2003 via SCIENCE.md A8).
    item_floor
        ``absolute``: any item strictly below this is a rupture session. Default: from
        :data:`ITEM_FLOORS` for the instrument, else none.
    min_baseline
        Sessions needed before a relative rule can fire (*heuristic*, 2).
    baseline_window
        The running baseline is the mean of the last ``baseline_window`` clean sessions, i.e.
        sessions outside rupture episodes since the last reset (*heuristic*, 5; ``None`` = all).
    repair_window
        A rupture counts as repaired when the return happens within this many sessions of its
        start (*heuristic*, 6: Gumz et al. 2012 saw declines lasting up to six sessions).
    repair_tolerance_sd
        Return to baseline means a total ≥ baseline − ``repair_tolerance_sd`` × SD
        (*heuristic*, 0.5).
    ceiling_margin
        ``ceiling_aware``: a session is at the ceiling when its total is within this many raw
        points of the scale maximum (*heuristic*, 0 = exactly at the top).
    ceiling_share
        ``ceiling_aware``: a client is a ceiling client when at least this share of the baseline
        sessions is at the ceiling (*heuristic*, 1.0 = always at the top).
    ceiling_step
        ``ceiling_aware``: for a ceiling client, a total more than ``ceiling_step`` raw points
        below the ceiling band is a rupture (*heuristic*, 0 = any step down).
    midpoint_fallback
        ``absolute``: when neither the instrument nor the config gives a concern threshold or an
        item floor (the WAI-SR has no published cutoff), use the scale midpoint as the concern
        threshold (*heuristic*, True). False makes the absolute method refuse such data.
    subscale_adjust
        Test each watched subscale at the Bonferroni equivalent of the total's SD multiple,
        ``Φ⁻¹(1 − Φ(−k)/m)`` for ``m`` series (True; k = 2, m = 4 gives 2.53), so that watching
        several series does not raise the family's false-alarm rate. False: the same ``k``.
    subscale_corroboration_sd
        A subscale drop counts only when the total is also at least this many SDs below its
        baseline (*heuristic*, 0 = off).
    intra_prior_df
        How much the caseload (inter-individual) SD weighs, in degrees of freedom, when the
        client's own SD is estimated from the few baseline sessions: the client's SD becomes
        ``sqrt((ν·s_i² + ν0·s_ref²)/(ν + ν0))`` with ``ν = n − 1`` (Smyth 2004's moderated
        variance) before the larger of it and ``s_ref`` is taken (Gumz et al. 2012). Default 4
        (*heuristic*): the caseload SD weighs as much as a full default baseline window of five
        sessions. 0 = the client's raw SD (the unpooled rule); ``math.inf`` = the caseload SD
        only. Without a caseload SD the client's raw SD is used.
    """

    concern_threshold: float | None = None
    item_floor: float | None = None
    min_baseline: int = 2
    baseline_window: int | None = 5
    repair_window: int = 6
    repair_tolerance_sd: float = 0.5
    ceiling_margin: float = 0.0
    ceiling_share: float = 1.0
    ceiling_step: float = 0.0
    midpoint_fallback: bool = True
    subscale_corroboration_sd: float = 0.0
    subscale_adjust: bool = True
    intra_prior_df: float = 4.0

    def __post_init__(self) -> None:
        if self.min_baseline < 1:
            raise InvalidParameter("min_baseline must be at least 1")
        if self.baseline_window is not None and self.baseline_window < self.min_baseline:
            raise InvalidParameter("baseline_window must be at least min_baseline")
        if self.repair_window < 1:
            raise InvalidParameter("repair_window must be at least 1 session")
        check_positive(self.repair_tolerance_sd, "repair_tolerance_sd", allow_zero=True)
        check_positive(self.ceiling_margin, "ceiling_margin", allow_zero=True)
        check_positive(self.ceiling_step, "ceiling_step", allow_zero=True)
        check_positive(self.subscale_corroboration_sd, "subscale_corroboration_sd", allow_zero=True)
        if math.isnan(self.intra_prior_df) or self.intra_prior_df < 0:
            raise InvalidParameter("intra_prior_df must be 0 or more (inf: the caseload SD only)")
        if not 0 < self.ceiling_share <= 1:
            raise InvalidParameter("ceiling_share must be in (0, 1]")

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


@dataclass(frozen=True, slots=True)
class RuptureEpisode:
    """One rupture (and its repair, if any) for one client.

    Attributes
    ----------
    client
        The client identifier as given.
    method
        The rule that found it (one of :data:`RUPTURE_METHODS`).
    start_session
        The first session at the low level.
    low_session, low_value
        The lowest session of the episode and its total.
    repair_session
        The first session back at baseline, or ``None`` when unrepaired or ongoing.
    end_session
        ``repair_session`` if repaired, else the last session seen below the repair level.
    status
        ``"repaired"``, ``"unrepaired"`` (the window passed) or ``"ongoing"`` (data end
        before the window passed).
    baseline, sd, threshold, repair_level
        The baseline mean, the SD used, the total at or below which the rule fired, and the
        total needed for repair (``None`` where a method has no such quantity).
    depth, depth_sd
        ``baseline − low_value`` in raw points and in SDs.
    sd_source
        ``"intra"`` or ``"inter"``: which SD was larger and so used.
    ceiling
        Whether the client was treated as a ceiling client.
    items_down
        Items that were below their floor (absolute) or stepped down from the top (ceiling).
    subscales_down
        Subscales (e.g. ``alliance_bond``) whose own drop opened the episode.
    reasons
        Plain-language reasons, for the clinician.
    """

    client: str
    method: str
    start_session: int
    low_session: int
    low_value: float
    repair_session: int | None
    end_session: int
    status: str
    baseline: float | None
    sd: float | None
    threshold: float | None
    repair_level: float | None
    depth: float | None
    depth_sd: float | None
    sd_source: str | None
    ceiling: bool
    items_down: tuple[str, ...]
    subscales_down: tuple[str, ...]
    reasons: tuple[str, ...]

    @property
    def repaired(self) -> bool:
        """True when the episode ended with a return to baseline."""
        return self.repair_session is not None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict (``repaired`` included)."""
        d = to_dict(self)
        d["repaired"] = self.repaired
        return d


@dataclass(frozen=True, slots=True)
class RuptureResult:
    """The episodes one method found, with the settings that found them."""

    method: str
    episodes: tuple[RuptureEpisode, ...]
    config: RuptureConfig
    scale: ScaleRange | None
    reference_sd: float | None
    n_clients: int
    notes: tuple[str, ...] = field(default=())

    def __iter__(self) -> Iterator[RuptureEpisode]:
        return iter(self.episodes)

    def __len__(self) -> int:
        return len(self.episodes)

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        d = to_dict(self)
        d["episodes"] = [e.to_dict() for e in self.episodes]
        return d

    def to_frame(self) -> pd.DataFrame:
        """One row per episode."""
        cols = list(RuptureEpisode.__dataclass_fields__)
        return pd.DataFrame([e.to_dict() for e in self.episodes], columns=[*cols, "repaired"])


# --------------------------------------------------------------------------------------------
def reference_sd(
    frame: pd.DataFrame,
    *,
    client: str = "client",
    alliance: str = "alliance",
    kind: Literal["within", "total"] = "within",
) -> float:
    """The caseload (inter-individual) SD of alliance totals, for the relative rules.

    Parameters
    ----------
    frame
        A caseload: one row per client and session.
    kind
        ``"within"`` (default): the pooled within-client SD,
        ``sqrt(Σ_i Σ_t (x_it − x̄_i)² / Σ_i (n_i − 1))`` — the session-to-session variability of
        a typical client of this practice. ``"total"``: the SD of all session totals across
        clients, which also contains the differences between clients' levels.

    Returns
    -------
    float

    Notes
    -----
    Gumz et al. (2012) combine the client's own SD with an inter-individual SD and take the
    stricter. Which inter-individual SD they computed was not retrieved (SCIENCE.md B3,
    UNVERIFIED); we default to the pooled within-client SD because a rupture is a change within
    a client, and offer the total SD as the stricter alternative.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"client": [1, 1, 2, 2], "alliance": [40, 44, 50, 54]})
    >>> round(reference_sd(f), 4)
    2.8284
    """
    for col in (client, alliance):
        if col not in frame.columns:
            raise InvalidResponse(f"the alliance data needs a {col!r} column")
    x = pd.to_numeric(frame[alliance], errors="coerce")
    data = pd.DataFrame({"c": frame[client].to_numpy(), "x": x.to_numpy()}).dropna()
    if kind == "total":
        if len(data) < 2:
            raise InsufficientData("a reference SD needs at least two ratings")
        return float(data["x"].std(ddof=1))
    if kind != "within":
        raise InvalidParameter(f"kind must be 'within' or 'total', got {kind!r}")
    grp = data.groupby("c")["x"]
    dev = data["x"] - grp.transform("mean")
    dof = int((grp.size() - 1).clip(lower=0).sum())
    if dof < 1:
        raise InsufficientData("a within-client SD needs a client with two or more ratings")
    return float(math.sqrt(float((dev**2).sum()) / dof))


# --------------------------------------------------------------------------------------------
def _as_frame(
    data: pd.DataFrame | Sequence[float] | npt.ArrayLike,
    sessions: Sequence[int] | None,
    client: str,
    session: str,
    alliance: str,
) -> pd.DataFrame:
    if isinstance(data, pd.DataFrame):
        frame = data
        if client not in frame.columns:
            frame = frame.assign(**{client: "client"})
        for col in (session, alliance):
            if col not in frame.columns:
                raise InvalidResponse(f"the alliance data needs a {col!r} column")
        return frame
    values = list(np.asarray(data, dtype=object).ravel())
    sess = list(sessions) if sessions is not None else list(range(1, len(values) + 1))
    if len(sess) != len(values):
        raise InvalidResponse("sessions and alliance values must have the same length")
    return pd.DataFrame({client: "client", session: sess, alliance: values})


def _clean_numeric(frame: pd.DataFrame, col: str) -> pd.Series:
    raw = frame[col]
    num = pd.to_numeric(raw, errors="coerce")
    bad = num.isna() & raw.notna() & (raw.astype(str).str.strip() != "")
    if bad.any():
        first = frame.index[bad.to_numpy()][0]
        raise InvalidResponse(f"{col}: {raw.loc[first]!r} (row {first}) is not a number")
    return num


@dataclass
class _Open:
    start: int
    low_session: int
    low_value: float
    last_below: int
    baseline: float | None
    sd: float | None
    threshold: float | None
    repair_level: float | None
    sd_source: str | None
    ceiling: bool
    items_down: list[str]
    reasons: list[str]
    subscales_down: list[str] = field(default_factory=list)


def _close(op: _Open, client: str, method: str, repair: int | None, status: str) -> RuptureEpisode:
    depth = None if op.baseline is None else op.baseline - op.low_value
    depth_sd = None if depth is None or not op.sd else depth / op.sd
    return RuptureEpisode(
        client=client,
        method=method,
        start_session=op.start,
        low_session=op.low_session,
        low_value=op.low_value,
        repair_session=repair,
        end_session=repair if repair is not None else op.last_below,
        status=status,
        baseline=op.baseline,
        sd=op.sd,
        threshold=op.threshold,
        repair_level=op.repair_level,
        depth=depth,
        depth_sd=depth_sd,
        sd_source=op.sd_source,
        ceiling=op.ceiling,
        items_down=tuple(dict.fromkeys(op.items_down)),
        subscales_down=tuple(op.subscales_down),
        reasons=tuple(op.reasons),
    )


@lru_cache(maxsize=64)
def _family_k(k: float, m: int) -> float:
    """The SD multiple for each of ``m`` series that keeps the family's one-sided false-alarm
    probability at that of one series at ``k`` SD (Bonferroni): Φ⁻¹(1 − Φ(−k)/m)."""
    if m <= 1:
        return k
    return float(stats.norm.isf(stats.norm.sf(k) / m))


def _moderated_sd(intra: float, dof: int, ref: float, prior_df: float) -> float:
    """The client's SD pooled with the caseload's: ``sqrt((ν·s_i² + ν0·s_ref²)/(ν + ν0))``.

    The posterior (moderated) variance of Smyth (2004): a weighted mean of the client's own
    variance (``ν = n − 1`` degrees of freedom) and the caseload's, which counts as ``ν0`` prior
    degrees of freedom. ``ν0 = 0`` gives the client's own SD, ``ν0 = ∞`` the caseload's.
    """
    if prior_df <= 0:
        return intra
    if math.isinf(prior_df) or dof <= 0:
        return ref
    return math.sqrt((dof * intra**2 + prior_df * ref**2) / (dof + prior_df))


def _absolute_client(
    cid: str,
    sess: npt.NDArray[np.int64],
    x: npt.NDArray[np.float64],
    items: npt.NDArray[np.float64] | None,
    cfg: RuptureConfig,
) -> list[RuptureEpisode]:
    episodes: list[RuptureEpisode] = []
    op: _Open | None = None
    for i in range(len(x)):
        s, v = int(sess[i]), float(x[i])
        hit, why, down = _absolute_hit(v, items, i, cfg)
        if op is not None:
            if s - op.start > cfg.repair_window:
                episodes.append(_close(op, cid, "absolute", None, "unrepaired"))
                op = None
            elif not hit:
                episodes.append(_close(op, cid, "absolute", s, "repaired"))
                op = None
                continue
            else:
                if v < op.low_value:
                    op.low_value, op.low_session = v, s
                op.last_below = s
                op.items_down.extend(down)
                continue
        if hit:
            op = _Open(s, s, v, s, None, None, cfg.concern_threshold, None, None, False, down, why)
    if op is not None:
        status = "unrepaired" if int(sess[-1]) - op.start >= cfg.repair_window else "ongoing"
        episodes.append(_close(op, cid, "absolute", None, status))
    return episodes


def _relative_client(
    cid: str,
    sess: npt.NDArray[np.int64],
    xs: npt.NDArray[np.float64],
    names: Sequence[str],
    highs: Sequence[float | None],
    inter: Sequence[float | None],
    items: npt.NDArray[np.float64] | None,
    item_names: Sequence[str],
    item_max: npt.NDArray[np.float64] | None,
    method: str,
    cfg: RuptureConfig,
) -> list[RuptureEpisode]:
    """Relative and ceiling rules on the total (column 0) and any subscales (columns 1…)."""
    episodes: list[RuptureEpisode] = []
    clean: list[int] = []  # indices of clean sessions since the last reset
    op: _Open | None = None
    repair_levels: dict[int, float] = {}
    k_total = _SD_MULTIPLIER[method]
    k_sub = _family_k(k_total, xs.shape[1]) if cfg.subscale_adjust else k_total

    def fmt(v: float) -> str:
        return f"{v:.4g}"

    for i in range(xs.shape[0]):
        s, v = int(sess[i]), float(xs[i, 0])
        if op is not None:
            if s - op.start > cfg.repair_window:
                episodes.append(_close(op, cid, method, None, "unrepaired"))
                op = None
                clean = []  # the old baseline no longer describes this client
            else:
                back = all(
                    np.isnan(xs[i, j]) or xs[i, j] >= lvl - 1e-9 for j, lvl in repair_levels.items()
                )
                if back:
                    episodes.append(_close(op, cid, method, s, "repaired"))
                    op = None
                    clean.append(i)
                    continue
                if v < op.low_value:
                    op.low_value, op.low_session = v, s
                op.last_below = s
                continue

        base_idx = clean if cfg.baseline_window is None else clean[-cfg.baseline_window :]
        if len(base_idx) < cfg.min_baseline:
            clean.append(i)
            continue
        fired: list[int] = []
        levels: dict[int, float] = {}
        why: list[str] = []
        stats_total: tuple[float, float, float, str, bool] | None = None
        stepped_down: list[str] = []
        ceiling_hit = False
        for j in range(xs.shape[1]):
            col = xs[base_idx, j]
            col = col[~np.isnan(col)]
            xj = float(xs[i, j])
            if col.size < cfg.min_baseline or np.isnan(xj):
                continue
            baseline = float(col.mean())
            intra = float(col.std(ddof=1)) if col.size >= 2 else 0.0
            ref = inter[j]
            if ref is not None:
                intra = _moderated_sd(intra, col.size - 1, ref, cfg.intra_prior_df)
            sd, src = (ref, "inter") if ref is not None and ref >= intra else (intra, "intra")
            high = highs[j]
            ceiling = False
            if method == "ceiling_aware" and high is not None and j == 0:
                top = high - cfg.ceiling_margin
                ceiling = float(np.mean(col >= top - 1e-9)) >= cfg.ceiling_share - 1e-9
            if ceiling and high is not None:
                top = high - cfg.ceiling_margin
                threshold = top - cfg.ceiling_step
                hit = xj < threshold - 1e-9
                if j == 0 and items is not None and item_max is not None:
                    at_top = np.all(items[base_idx] >= item_max - 1e-9, axis=0)
                    stepped = at_top & (items[i] < item_max - 1e-9)
                    stepped_down = [item_names[int(q)] for q in np.flatnonzero(stepped)]
                    hit = hit or bool(stepped_down)
                level = baseline - cfg.repair_tolerance_sd * sd if sd > 0 else top
                if hit:
                    ceiling_hit = True
                    why.append(
                        f"{names[j]} was at the top of its scale in the last {col.size} sessions "
                        f"and stepped down to {fmt(xj)}"
                    )
            elif sd > 0:
                k = k_total if j == 0 else k_sub
                threshold = baseline - k * sd
                hit = xj <= threshold + 1e-9
                level = baseline - cfg.repair_tolerance_sd * sd
                if hit:
                    why.append(
                        f"{names[j]} {fmt(xj)} is {fmt((baseline - xj) / sd)} SD below the "
                        f"client's baseline {fmt(baseline)} (last {col.size} sessions; SD "
                        f"{fmt(sd)}, {src}-individual)"
                    )
            else:
                continue  # no variability and no reference SD: the rule cannot fire
            if j == 0:
                stats_total = (baseline, sd, threshold, src, ceiling)
            if hit:
                fired.append(j)
                levels[j] = level
        if fired and 0 not in fired and stats_total is not None and not ceiling_hit:
            # a subscale drop counts when the total is down too, at the corroboration level
            b0, sd0_, _, _, _ = stats_total
            if sd0_ > 0 and v > b0 - cfg.subscale_corroboration_sd * sd0_ + 1e-9:
                fired = []
        if not fired:
            clean.append(i)
            continue
        if stepped_down:
            why.append(f"items that stepped down from the top: {', '.join(stepped_down)}")
        baseline0, sd0, thr0, src0, ceil0 = stats_total or (math.nan, math.nan, math.nan, "", False)
        if 0 not in levels and stats_total is not None:
            levels[0] = baseline0 - cfg.repair_tolerance_sd * sd0 if sd0 > 0 else baseline0
        repair_levels = levels
        op = _Open(
            s,
            s,
            v,
            s,
            None if stats_total is None else baseline0,
            None if stats_total is None or not sd0 else sd0,
            None if stats_total is None else thr0,
            levels.get(0),
            None if stats_total is None else src0,
            ceil0 or ceiling_hit,
            stepped_down,
            why,
        )
        op.subscales_down = [names[j] for j in fired if j > 0]

    if op is not None:
        status = "unrepaired" if int(sess[-1]) - op.start >= cfg.repair_window else "ongoing"
        episodes.append(_close(op, cid, method, None, status))
    return episodes


def _absolute_hit(
    v: float, items: npt.NDArray[np.float64] | None, i: int, cfg: RuptureConfig
) -> tuple[bool, list[str], list[str]]:
    why: list[str] = []
    down: list[str] = []
    if cfg.concern_threshold is not None and v <= cfg.concern_threshold + 1e-9:
        why.append(
            f"alliance {v:.4g} is at or below the concern threshold {cfg.concern_threshold:g}"
        )
    if cfg.item_floor is not None and items is not None:
        low = np.flatnonzero(items[i] < cfg.item_floor - 1e-9)
        if low.size:
            down = [str(j) for j in low]
            why.append(f"{low.size} item(s) below {cfg.item_floor:g}")
    return bool(why), why, down


def _one_client(
    frame: pd.DataFrame,
    method: str,
    inst: Instrument | None,
    scale: ScaleRange | None,
    cfg: RuptureConfig,
    reference: float | None,
    items: Sequence[str] | None,
    subscales: Sequence[str] | Mapping[str, tuple[float, float]] | Literal["auto"] | None,
    client: str,
    session: str,
    alliance: str,
) -> tuple[list[RuptureEpisode], float | None, int] | None:
    """:func:`detect_ruptures` for one client's plain numeric frame, without building frames.

    Returns ``(episodes, reference SD, clients)`` exactly as the general path would, or ``None``
    when the input is anything else (several clients, a non-numeric or nullable column, a
    missing column, an index other than 0…n−1, a problem to report, subscale ranges given as a
    mapping): the general path then handles it, and raises its errors, itself.
    """
    index = frame.index
    if frame.empty or not frame.columns.is_unique:
        return None
    if not (isinstance(index, pd.RangeIndex) and index.start == 0 and index.step == 1):
        return None  # the general path aligns subscales by label; keep exactly its result
    ids = frame[client].to_numpy()
    if frame[client].dtype.kind in "iu":
        cid = str(ids[0])
        if (ids != ids[0]).any():
            return None
    elif all(type(v) is str for v in ids) and len(set(ids)) == 1:
        cid = str(ids[0])
    else:
        return None
    item_cols = list(items or [])
    known = {} if inst is None else subscale_ranges(inst)
    sub_ranges: dict[str, ScaleRange | None] = {}
    if method != "absolute" and subscales is not None:
        if isinstance(subscales, Mapping):
            return None
        if isinstance(subscales, str):  # "auto"
            sub_ranges = {
                f"{alliance}_{sid}": r
                for sid, r in known.items()
                if f"{alliance}_{sid}" in frame.columns
            }
        else:
            sub_ranges = {col: known.get(col.removeprefix(f"{alliance}_")) for col in subscales}
    sub_cols = list(sub_ranges)
    columns = [session, alliance, *item_cols, *sub_cols]
    dtypes = dict(zip(frame.columns, frame.dtypes.tolist(), strict=True))
    for col in columns:
        dtype = dtypes.get(col)
        if not (isinstance(dtype, np.dtype) and dtype.kind in "iuf"):
            return None  # missing, nullable, boolean or not numeric
    values = np.column_stack([frame[col].to_numpy(dtype=float) for col in columns])
    s, x = values[:, 0], values[:, 1]
    if np.isnan(s).any():
        return None
    if scale is not None:
        with np.errstate(invalid="ignore"):
            if ((x < scale.low - 1e-9) | (x > scale.high + 1e-9)).any():
                return None
    values = values[~np.isnan(x)]
    values = values[np.argsort(values[:, 0], kind="stable")]
    if (np.diff(values[:, 0]) == 0).any():
        return None  # two ratings for one session

    inter = reference
    if inter is not None:
        check_positive(inter, "reference", allow_zero=True)
    if values.shape[0] == 0:
        return [], inter, 0
    item_max: npt.NDArray[np.float64] | None = None
    if item_cols and inst is not None and all(c in inst.item_ids for c in item_cols):
        item_max = np.array([inst.item(c).value_range[1] for c in item_cols], dtype=float)
    sess = values[:, 0].astype(np.int64)
    n_items = len(item_cols)
    mat = values[:, 2 : 2 + n_items] if item_cols else None
    if method == "absolute":
        eps = _absolute_client(cid, sess, values[:, 1], mat, cfg)
        if item_cols:
            eps = [
                replace(e, items_down=tuple(item_cols[int(j)] for j in e.items_down)) for e in eps
            ]
        return eps, inter, 1
    highs: list[float | None] = [None if scale is None else scale.high]
    highs += [None if r is None else r.high for r in sub_ranges.values()]
    eps = _relative_client(
        cid,
        sess,
        values[:, [1, *range(2 + n_items, values.shape[1])]],
        [alliance, *sub_cols],
        highs,
        [inter] + [None] * len(sub_cols),
        mat,
        item_cols,
        item_max,
        method,
        cfg,
    )
    return eps, inter, 1


def detect_ruptures(
    data: pd.DataFrame | Sequence[float] | npt.ArrayLike,
    method: str = "relative_2sd",
    *,
    instrument: str | Instrument | None = None,
    rng: tuple[float, float] | None = None,
    config: RuptureConfig | None = None,
    reference: float | None = None,
    reference_kind: Literal["within", "total"] = "within",
    items: Sequence[str] | None = None,
    subscales: Sequence[str] | Mapping[str, tuple[float, float]] | Literal["auto"] | None = "auto",
    sessions: Sequence[int] | None = None,
    client: str = "client",
    session: str = "session",
    alliance: str = "alliance",
) -> RuptureResult:
    """Find alliance ruptures and their repairs, for one client or a caseload.

    Parameters
    ----------
    data
        A DataFrame with ``client`` (optional for one client), ``session`` and ``alliance``
        columns (raw totals, higher = better alliance), or a plain list of one client's totals.
    method
        ``"absolute"``, ``"relative_1sd"``, ``"relative_2sd"`` (default) or ``"ceiling_aware"``.
    instrument
        The alliance instrument (id or definition): its range, concern threshold and item
        ranges are used. Or give ``rng=(low, high)`` and thresholds in ``config``.
    config
        Thresholds (:class:`RuptureConfig`); unset ``concern_threshold`` and ``item_floor``
        are taken from the instrument.
    reference
        The inter-individual SD in raw points. Default: computed from ``data`` with
        :func:`reference_sd` (``reference_kind``) when it holds more than one client, else
        none (then only the client's own SD is used).
    items
        Item columns (for the absolute item floor and the ceiling rule's item-level view).
    subscales
        Subscale columns that the relative and ceiling rules watch besides the total (a
        rupture is a strain in the bond *or* a disagreement on goals *or* tasks — Eubanks,
        Muran & Safran 2019 — and may show in one subscale first). ``"auto"`` (default): the
        instrument's subscales found as ``{alliance}_{subscale}`` columns (``alliance_bond``
        …); a mapping ``column → (low, high)`` or a list of columns (ranges from the
        instrument); ``None`` or ``()`` for the total only.
    sessions
        Session numbers for a plain list (default 1, 2, …).
    client, session, alliance
        Column names.

    Returns
    -------
    RuptureResult
        ``.episodes`` (each with ``client``, ``start_session``, ``low_session``,
        ``repair_session``, ``status``, ``method``, reasons) and the settings used.

    Notes
    -----
    Relative rules, for session ``t`` of client ``i`` with the running baseline
    ``b = mean(x over the last W clean sessions)``, intra-individual SD ``s_i`` of those
    ``n`` sessions (``ν = n − 1``) and inter-individual SD ``s_ref``::

        s̃_i = sqrt((ν·s_i² + ν0·s_ref²)/(ν + ν0))  (Smyth 2004; ν0 = intra_prior_df)
        SD = max(s̃_i, s_ref)                      (Gumz et al. 2012: the stricter value)
        rupture at t  if  x_t ≤ b − k·SD          (k = 1 or 2)
        repaired at u if  x_u ≥ b − r·SD  and  u − t ≤ repair_window

    Clean sessions are those outside episodes; after an unrepaired episode the baseline restarts.
    The ceiling rule applies when at least ``ceiling_share`` of the baseline sessions are within
    ``ceiling_margin`` of the maximum: then any total below ``max − margin − ceiling_step``, or
    any item that was always at its maximum and steps down, opens a rupture.

    References
    ----------
    Gumz, A., Brähler, E., Geyer, M., & Erices, R. (2012). Crisis-repair sequences —
    considerations on the classification and assessment of breaches in the therapeutic
    relationship. *BMC Medical Research Methodology*, 12, 10. doi:10.1186/1471-2288-12-10
    Stiles, W. B., et al. (2004). Patterns of alliance development and the rupture-repair
    hypothesis: Are productive relationships U-shaped or V-shaped? *Journal of Counseling
    Psychology*, 51(1), 81–92.
    Strauss, J. L., et al. (2006). Early alliance, alliance ruptures, and symptom change in a
    nonrandomized trial of cognitive therapy for avoidant and obsessive-compulsive personality
    disorders. *Journal of Consulting and Clinical Psychology*, 74(2), 337–345.
    Smyth, G. K. (2004). Linear models and empirical Bayes methods for assessing differential
    expression in microarray experiments. *Statistical Applications in Genetics and Molecular
    Biology*, 3(1), Article 3. doi:10.2202/1544-6115.1027

    Examples
    --------
    A drop from about 50 to 38 on the WAI-SR, repaired two sessions later:

    >>> res = detect_ruptures([48, 50, 51, 38, 44, 50], rng=(12, 60), reference=4.0)
    >>> ep = res.episodes[0]
    >>> (ep.start_session, ep.low_session, ep.repair_session, ep.status, ep.method)
    (4, 4, 6, 'repaired', 'relative_2sd')
    """
    if method not in RUPTURE_METHODS:
        raise InvalidParameter(
            f"unknown rupture method {method!r}; choose one of {', '.join(RUPTURE_METHODS)}"
        )
    cfg = config or RuptureConfig()
    inst: Instrument | None = None
    if isinstance(instrument, str):
        inst = get_instrument(instrument)
    elif instrument is not None:
        inst = instrument
    scale: ScaleRange | None = None
    if inst is not None or rng is not None:
        scale = scale_range(inst, rng)
    if inst is not None:
        if inst.direction != "higher_is_better":
            raise InvalidParameter(f"{inst.id} is not an alliance measure (higher must be better)")
        if cfg.concern_threshold is None and inst.concern_threshold is not None:
            cfg = replace(cfg, concern_threshold=float(inst.concern_threshold.value))
        if cfg.item_floor is None and inst.id in ITEM_FLOORS:
            cfg = replace(cfg, item_floor=ITEM_FLOORS[inst.id][0])
    notes: list[str] = []
    if (
        method == "absolute"
        and cfg.concern_threshold is None
        and cfg.item_floor is None
        and cfg.midpoint_fallback
        and scale is not None
    ):
        cfg = replace(cfg, concern_threshold=(scale.low + scale.high) / 2)
        notes.append(
            f"no published concern threshold: the scale midpoint {cfg.concern_threshold:g} "
            "was used (heuristic)"
        )
    if method == "absolute" and cfg.concern_threshold is None and cfg.item_floor is None:
        raise InvalidParameter(
            "the absolute method needs a concern threshold or an item floor: the instrument has "
            "none (the WAI-SR has no published cutoff); set RuptureConfig(concern_threshold=...)"
        )
    if method == "ceiling_aware" and scale is None:
        raise InvalidParameter(
            "the ceiling-aware method needs the scale's range (instrument or rng)"
        )

    frame = _as_frame(data, sessions, client, session, alliance)
    one = _one_client(
        frame, method, inst, scale, cfg, reference, items, subscales, client, session, alliance
    )
    if one is not None:  # one client's numeric ratings: the same steps on plain arrays
        one_episodes, one_inter, one_n = one
        if one_inter is None and method != "absolute":
            notes.append("no inter-individual SD: only each client's own SD was used")
        return RuptureResult(
            method=method,
            episodes=tuple(one_episodes),
            config=cfg,
            scale=scale,
            reference_sd=one_inter,
            n_clients=one_n,
            notes=tuple(notes),
        )
    x_all = _clean_numeric(frame, alliance)
    s_all = _clean_numeric(frame, session)
    if s_all.isna().any():
        raise InvalidResponse(f"{session}: every row needs a session number")
    if scale is not None:
        bad = x_all.notna() & ((x_all < scale.low - 1e-9) | (x_all > scale.high + 1e-9))
        if bad.any():
            raise InvalidResponse(
                f"{alliance}: {x_all[bad].iloc[0]:g} lies outside the scale "
                f"{scale.low:g}–{scale.high:g}"
            )
    work = pd.DataFrame(
        {"c": frame[client].astype(str).to_numpy(), "s": s_all.to_numpy(), "x": x_all.to_numpy()}
    )
    item_cols = list(items or [])
    for col in item_cols:
        if col not in frame.columns:
            raise InvalidResponse(f"item column {col!r} not found")
        work[col] = _clean_numeric(frame, col).to_numpy()
    work = work.loc[work["x"].notna()]
    if work.duplicated(["c", "s"]).any():
        dup = work[work.duplicated(["c", "s"], keep=False)].iloc[0]
        raise InvalidResponse(f"client {dup['c']} has two ratings for session {int(dup['s'])}")
    work = work.sort_values(["c", "s"], kind="stable")

    inter = reference
    if inter is not None:
        check_positive(inter, "reference", allow_zero=True)
    elif work["c"].nunique() > 1 and method != "absolute":
        try:
            inter = reference_sd(work, client="c", alliance="x", kind=reference_kind)
        except InsufficientData:
            inter = None
    if inter is None and method != "absolute":
        notes.append("no inter-individual SD: only each client's own SD was used")

    item_max: npt.NDArray[np.float64] | None = None
    if item_cols and inst is not None and all(c in inst.item_ids for c in item_cols):
        item_max = np.array([inst.item(c).value_range[1] for c in item_cols], dtype=float)

    sub_ranges: dict[str, ScaleRange | None] = {}
    if method != "absolute" and subscales is not None:
        known = {} if inst is None else subscale_ranges(inst)
        if isinstance(subscales, str):  # "auto"
            for sid, r in known.items():
                if f"{alliance}_{sid}" in frame.columns:
                    sub_ranges[f"{alliance}_{sid}"] = r
        elif isinstance(subscales, Mapping):
            for col, (lo, hi) in subscales.items():
                sub_ranges[col] = ScaleRange(float(lo), float(hi))
        else:
            for col in subscales:
                sid = col.removeprefix(f"{alliance}_")
                sub_ranges[col] = known.get(sid)
        for col in sub_ranges:
            if col not in frame.columns:
                raise InvalidResponse(f"subscale column {col!r} not found")
            values = _clean_numeric(frame, col)
            # work's index holds row positions of frame (it was built from plain arrays)
            work[col] = values.to_numpy()[work.index.to_numpy()]
    sub_cols = list(sub_ranges)
    names = [alliance, *sub_cols]
    highs: list[float | None] = [None if scale is None else scale.high]
    highs += [None if r is None else r.high for r in sub_ranges.values()]
    inters: list[float | None] = [inter]
    for col in sub_cols:
        ref: float | None = None
        if work["c"].nunique() > 1:
            try:
                ref = reference_sd(work, client="c", alliance=col, kind=reference_kind)
            except InsufficientData:
                ref = None
        inters.append(ref)

    episodes: list[RuptureEpisode] = []
    for cid, grp in work.groupby("c", sort=False):
        mat = grp[item_cols].to_numpy(dtype=float) if item_cols else None
        sess_c = grp["s"].to_numpy().astype(np.int64)
        if method == "absolute":
            eps = _absolute_client(str(cid), sess_c, grp["x"].to_numpy(dtype=float), mat, cfg)
            if item_cols:
                eps = [
                    replace(e, items_down=tuple(item_cols[int(j)] for j in e.items_down))
                    for e in eps
                ]
        else:
            eps = _relative_client(
                str(cid),
                sess_c,
                grp[["x", *sub_cols]].to_numpy(dtype=float),
                names,
                highs,
                inters,
                mat,
                item_cols,
                item_max,
                method,
                cfg,
            )
        episodes.extend(eps)
    return RuptureResult(
        method=method,
        episodes=tuple(episodes),
        config=cfg,
        scale=scale,
        reference_sd=inter,
        n_clients=int(work["c"].nunique()),
        notes=tuple(notes),
    )


# --------------------------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class DetectionScore:
    """How well one method found known ruptures (simulated ground truth)."""

    method: str
    n_true: int
    n_detected: int
    true_positives: int
    false_positives: int
    false_negatives: int
    recall: float
    precision: float
    repair_agreement: float | None
    during: int = 0

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def score_detection(
    result: RuptureResult | Sequence[RuptureEpisode],
    truth: pd.DataFrame,
    *,
    lag: int = 1,
    lead: int = 0,
    credit_during: bool = False,
    client: str = "client",
    start: str = "start_session",
    low: str = "low_session",
    repair: str = "repair_session",
) -> DetectionScore:
    """Recall and precision of detected episodes against known ruptures.

    Parameters
    ----------
    result
        Detected episodes (one method).
    truth
        Known ruptures, one row each, with ``client``, ``start_session``, ``low_session`` and
        ``repair_session`` (NaN if never repaired) — the simulator's ``.ruptures`` table.
    lag, lead
        A detected episode matches a true rupture of the same client when its start lies in
        ``[true start − lead, max(true low, true start) + lag]`` (default: not before the true
        start, at most one session after its low point).
    credit_during
        Precision only: a detected episode that matches no true rupture in time but starts
        while a true rupture of the client is still under way (from its start to the session
        before its repair; to the end of the data when it was never repaired) is a correct
        alarm, only a late one — the range-based view of precision of Tatbul et al. (2018),
        where a detection that overlaps a real anomalous range is not a false positive. Such
        episodes are counted in ``during``; recall is unchanged.

    Returns
    -------
    DetectionScore
        ``recall = matched true ruptures / true ruptures``;
        ``precision = (matched + during) detected episodes / detected episodes``;
        ``repair_agreement``: among matched pairs, the share where detected and true repair
        status (repaired or not) agree.

    References
    ----------
    Tatbul, N., Lee, T. J., Zdonik, S., Alam, M., & Gottschlich, J. (2018). Precision and
    recall for time series. *Advances in Neural Information Processing Systems*, 31.

    Examples
    --------
    >>> import pandas as pd
    >>> truth = pd.DataFrame({"client": ["client"], "start_session": [4], "low_session": [4],
    ...                       "repair_session": [float("nan")]})
    >>> found = detect_ruptures([50] * 3 + [48] + [44] * 9 + [38], rng=(12, 60), reference=2.0)
    >>> [(e.start_session, e.status) for e in found]
    [(5, 'unrepaired'), (14, 'ongoing')]
    >>> strict = score_detection(found, truth)
    >>> (strict.recall, strict.precision)
    (1.0, 0.5)
    >>> fair = score_detection(found, truth, credit_during=True)
    >>> (fair.recall, fair.precision, fair.during)
    (1.0, 1.0, 1)
    """
    eps = list(result.episodes if isinstance(result, RuptureResult) else result)
    method = eps[0].method if eps else (result.method if isinstance(result, RuptureResult) else "")
    t = truth.reset_index(drop=True)
    by_client: dict[str, list[RuptureEpisode]] = {}
    for e in eps:
        by_client.setdefault(str(e.client), []).append(e)
    matched_eps: set[int] = set()
    tp = 0
    agree: list[bool] = []
    for _, row in t.iterrows():
        c = str(row[client])
        s0 = int(row[start])
        s_low = int(row[low]) if low in t.columns and pd.notna(row[low]) else s0
        hi = max(s0, s_low) + lag
        hit = None
        for e in by_client.get(c, []):
            if s0 - lead <= e.start_session <= hi and id(e) not in matched_eps:
                hit = e
                break
        if hit is not None:
            tp += 1
            matched_eps.add(id(hit))
            if repair in t.columns:
                agree.append(bool(pd.notna(row[repair])) == hit.repaired)
    during = 0
    if credit_during:
        spans: dict[str, list[tuple[int, float]]] = {}
        for _, row in t.iterrows():
            end = (
                float(row[repair]) - 1
                if repair in t.columns and pd.notna(row[repair])
                else math.inf
            )
            spans.setdefault(str(row[client]), []).append((int(row[start]), end))
        for e in eps:
            if id(e) in matched_eps:
                continue
            if any(s0 <= e.start_session <= end for s0, end in spans.get(str(e.client), [])):
                during += 1
    n_true, n_det = len(t), len(eps)
    fp = n_det - len(matched_eps) - during
    return DetectionScore(
        method=method,
        n_true=n_true,
        n_detected=n_det,
        true_positives=tp,
        false_positives=fp,
        false_negatives=n_true - tp,
        recall=tp / n_true if n_true else math.nan,
        precision=(len(matched_eps) + during) / n_det if n_det else math.nan,
        repair_agreement=float(np.mean(agree)) if agree else None,
        during=during,
    )
