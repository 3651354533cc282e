"""Alliance series: client- and therapist-rated alliance per session, on a common 0–1 scale.

Alliance instruments differ in range (WAI-SR 12–60, SRS 0–40, …). To compare perspectives and
instruments, every total and subscale is expressed as a proportion of its possible range
(POMP, "percent of maximum possible", here as a fraction): ``(x − min) / (max − min)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from alliance.errors import InvalidParameter, InvalidResponse
from alliance.instruments import Instrument
from alliance.instruments import get as get_instrument
from alliance.instruments.registry import default_library
from alliance.relationship._common import FloatArray, as_float_array, to_dict

__all__ = [
    "ScaleRange",
    "alliance_series",
    "normalise",
    "scale_range",
    "subscale_ranges",
]


@dataclass(frozen=True, slots=True)
class ScaleRange:
    """The possible range of a score (``low`` worst, ``high`` best for alliance measures)."""

    low: float
    high: float
    source: str = "given"

    def __post_init__(self) -> None:
        if not (np.isfinite(self.low) and np.isfinite(self.high)) or self.low >= self.high:
            raise InvalidParameter(f"a scale range needs low < high, got ({self.low}, {self.high})")

    @property
    def width(self) -> float:
        """``high − low``."""
        return self.high - self.low

    def to_dict(self) -> dict[str, Any]:
        """A JSON-serialisable dict."""
        return to_dict(self)


def _resolve(instrument: str | Instrument) -> Instrument:
    return get_instrument(instrument) if isinstance(instrument, str) else instrument


def scale_range(
    instrument: str | Instrument | None = None,
    rng: tuple[float, float] | ScaleRange | None = None,
) -> ScaleRange:
    """The range of an instrument's total, or an explicit ``rng``.

    Parameters
    ----------
    instrument
        An instrument id (``"wai_sr"``) or definition; its ``scoring.range`` is used.
    rng
        An explicit ``(low, high)`` that overrides the instrument.

    Returns
    -------
    ScaleRange

    Examples
    --------
    >>> scale_range(rng=(12, 60)).width
    48.0
    """
    if isinstance(rng, ScaleRange):
        return rng
    if rng is not None:
        return ScaleRange(float(rng[0]), float(rng[1]))
    if instrument is None:
        raise InvalidParameter("give an instrument or an explicit (low, high) range")
    inst = _resolve(instrument)
    low, high = inst.scoring.range
    return ScaleRange(float(low), float(high), source=f"{inst.id} scoring.range")


def subscale_ranges(instrument: str | Instrument) -> dict[str, ScaleRange]:
    """The range of each subscale of an instrument (sum or mean of its items' ranges)."""
    inst = _resolve(instrument)
    shipped = default_library()
    if inst.id in shipped and shipped[inst.id] is inst:
        # A shipped definition never changes: its ranges are worked out once per process.
        return dict(_shipped_subscale_ranges(inst.id))
    return _subscale_ranges(inst)


@lru_cache(maxsize=64)
def _shipped_subscale_ranges(instrument_id: str) -> tuple[tuple[str, ScaleRange], ...]:
    """:func:`subscale_ranges` of a shipped instrument, as immutable pairs."""
    return tuple(_subscale_ranges(default_library()[instrument_id]).items())


def _subscale_ranges(inst: Instrument) -> dict[str, ScaleRange]:
    out: dict[str, ScaleRange] = {}
    for sub in inst.scoring.subscales:
        lows, highs = zip(*(inst.item(i).value_range for i in sub.items), strict=True)
        if inst.scoring.subscale_method == "mean":
            low, high = float(np.mean(lows)), float(np.mean(highs))
        else:
            low, high = float(np.sum(lows)), float(np.sum(highs))
        out[sub.id] = ScaleRange(low, high, source=f"{inst.id} subscale {sub.id}")
    return out


def normalise(
    values: Sequence[float] | npt.ArrayLike,
    rng: tuple[float, float] | ScaleRange,
) -> FloatArray:
    """Express scores as a fraction of their possible range (0 = lowest, 1 = highest).

    Parameters
    ----------
    values
        Scores on the instrument's own scale (missing values as ``None`` or NaN).
    rng
        ``(low, high)`` of the scale, e.g. ``scale_range("wai_sr")``.

    Returns
    -------
    numpy.ndarray
        ``(x − low) / (high − low)``; values outside the range raise ``InvalidResponse``.

    Notes
    -----
    The proportion of maximum possible (POMP) score of Cohen, Cohen, Aiken & West (1999),
    as a fraction instead of a percentage.

    References
    ----------
    Cohen, P., Cohen, J., Aiken, L. S., & West, S. G. (1999). The problem of units and the
    circumstance for POMP. *Multivariate Behavioral Research*, 34(3), 315–346.

    Examples
    --------
    >>> normalise([12, 36, 60], (12, 60)).tolist()
    [0.0, 0.5, 1.0]
    """
    r = rng if isinstance(rng, ScaleRange) else ScaleRange(float(rng[0]), float(rng[1]))
    x = as_float_array(values, "alliance")
    bad = ~np.isnan(x) & ((x < r.low - 1e-9) | (x > r.high + 1e-9))
    if bad.any():
        raise InvalidResponse(
            f"alliance scores must lie within {r.low:g}–{r.high:g}; got {x[bad][:3].tolist()}"
        )
    out: FloatArray = (x - r.low) / r.width
    return out


def alliance_series(
    frame: pd.DataFrame,
    *,
    instrument: str | Instrument | None = None,
    therapist_instrument: str | Instrument | None = None,
    rng: tuple[float, float] | None = None,
    therapist_rng: tuple[float, float] | None = None,
    client: str = "client",
    session: str = "session",
    alliance: str = "alliance",
    therapist_alliance: str = "therapist_alliance",
    subscales: Sequence[str] = ("alliance_bond", "alliance_task", "alliance_goal"),
) -> pd.DataFrame:
    """Per-session alliance, client and therapist perspective, normalised to 0–1.

    Parameters
    ----------
    frame
        One row per client and session with the raw alliance total (and optionally the
        therapist's rating and subscale columns such as ``alliance_bond``).
    instrument, therapist_instrument
        The instruments used (e.g. ``"wai_sr"`` and ``"wai_sr_t"``); or give ``rng`` /
        ``therapist_rng`` explicitly. The therapist's range defaults to the client's.
    client, session, alliance, therapist_alliance
        Column names.
    subscales
        Subscale columns to normalise when present; their ranges come from the instrument's
        subscales (``alliance_bond`` ↔ subscale ``bond``).

    Returns
    -------
    pandas.DataFrame
        Sorted by client and session, with ``alliance_norm`` (and ``therapist_alliance_norm``,
        ``alliance_bond_norm`` … where present) added.

    Examples
    --------
    >>> import pandas as pd
    >>> f = pd.DataFrame({"client": ["a", "a"], "session": [1, 2], "alliance": [36, 48]})
    >>> alliance_series(f, rng=(12, 60))["alliance_norm"].tolist()
    [0.5, 0.75]
    """
    for col in (client, session, alliance):
        if col not in frame.columns:
            raise InvalidResponse(f"the alliance data needs a {col!r} column")
    r = scale_range(instrument, rng)
    out = frame.sort_values([client, session], kind="stable").reset_index(drop=True).copy()
    out[f"{alliance}_norm"] = normalise(out[alliance].to_numpy(), r)
    if therapist_alliance in out.columns:
        tr = (
            scale_range(therapist_instrument, therapist_rng)
            if (therapist_instrument is not None or therapist_rng is not None)
            else r
        )
        out[f"{therapist_alliance}_norm"] = normalise(out[therapist_alliance].to_numpy(), tr)
    present = [s for s in subscales if s in out.columns]
    if present and instrument is not None:
        ranges = subscale_ranges(instrument)
        for col in present:
            key = col.removeprefix(f"{alliance}_")
            if key in ranges:
                out[f"{col}_norm"] = normalise(out[col].to_numpy(), ranges[key])
    return out
