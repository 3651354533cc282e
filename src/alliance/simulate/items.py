"""Item-level answers that add up to a given total, and the instrument facts they need.

An instrument enters the simulator as an :class:`ItemSpec` read from the instrument library:
its item ids, each item's lowest value and number of steps ("units"), and its subscales. A total
score ``T`` is a number of units above the instrument's minimum, ``T − Σ min``; the answers are
found by :func:`allocate`, which shares those units out over the items so that

* the answers always sum to the total exactly (``Σ v_k = units``), each within ``0..cap_k``;
* items with a higher *propensity* get more units: ``target_k = units / K + key_k`` where
  ``key_k`` (centred per row) holds the item's general location (PHQ-9 item 9 is rarely
  endorsed), the client's own profile and session noise.

Start from ``v = clip(round(target), 0, cap)`` and move one unit at a time, on every row that
is still off, to the item furthest below its target (or, when the sum is too high, from the item
furthest above it) until the sums match. Each pass is vectorised over rows; a few passes suffice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from alliance.errors import InvalidParameter, UnknownInstrument
from alliance.instruments import Instrument, Library, default_library

__all__ = ["ITEM_LOCATIONS", "ItemSpec", "allocate", "item_spec"]

IntArray = npt.NDArray[np.int64]
FloatArray = npt.NDArray[np.float64]

#: Relative item locations (units of the allocation key; 0 = average item). Illustrative: they
#: only shape which items carry the total. PHQ-9 item 9 (thoughts of death or self-harm) and
#: item 8 (psychomotor change) are endorsed less often than the core items; unknown
#: instruments have all items at 0.
ITEM_LOCATIONS: dict[str, tuple[float, ...]] = {
    "phq9": (0.3, 0.3, 0.3, 0.4, 0.0, 0.1, 0.0, -0.5, -2.2),
    "gad7": (0.2, 0.1, 0.2, 0.1, -0.3, 0.1, -0.3),
}


@dataclass(frozen=True)
class ItemSpec:
    """What the simulator needs to know about an instrument."""

    id: str
    item_ids: tuple[str, ...]
    item_min: tuple[float, ...]
    caps: tuple[int, ...]
    reverse: tuple[bool, ...]
    total_range: tuple[float, float]
    subscales: tuple[tuple[str, tuple[int, ...]], ...]
    reliable_change: float | None
    kind: str
    items_supported: bool

    @property
    def n_items(self) -> int:
        """Number of scored items."""
        return len(self.item_ids)

    @property
    def units(self) -> int:
        """Units between the lowest and the highest total."""
        return int(sum(self.caps))

    @property
    def lo(self) -> float:
        """Lowest total."""
        return self.total_range[0]

    @property
    def hi(self) -> float:
        """Highest total."""
        return self.total_range[1]

    def locations(self) -> FloatArray:
        """The item locations used by :func:`allocate` (zeros for unknown instruments)."""
        loc = ITEM_LOCATIONS.get(self.id)
        if loc is None or len(loc) != self.n_items:
            return np.zeros(self.n_items)
        return np.asarray(loc, dtype=np.float64)

    def subscale(self, name: str) -> tuple[int, ...] | None:
        """Column positions of the items of subscale ``name`` (``None`` if there is none)."""
        for sid, idx in self.subscales:
            if sid == name:
                return idx
        return None


def item_spec(instrument_id: str, library: Library | None = None) -> ItemSpec:
    """Read an instrument's items, ranges and subscales from the library.

    Item-level answers are generated for sum-scored instruments whose scored items take
    consecutive integer values (every outcome and alliance form the simulator uses); for any
    other instrument only totals are produced (``items_supported`` is ``False``).

    Raises
    ------
    UnknownInstrument
        If the library has no such instrument.
    InvalidParameter
        If its total range is not the sum of its item ranges (totals could not be split).
    """
    lib = library if library is not None else default_library()
    try:
        inst: Instrument = lib[instrument_id]
    except UnknownInstrument as exc:
        raise UnknownInstrument(f"simulate: {exc}") from None
    scored = inst.scored_items
    ids = tuple(it.id for it in scored)
    mins: list[float] = []
    caps: list[int] = []
    supported = inst.scoring.method == "sum" and inst.scoring.multiplier == 1 and bool(scored)
    for it in scored:
        if it.kind != "choice":
            supported = False
            lo, hi = it.value_range
            mins.append(float(lo))
            caps.append(int(hi - lo))
            continue
        values = sorted(it.values)
        steps = np.diff(values)
        if not all(float(v).is_integer() for v in values) or np.any(steps != 1):
            supported = False
        mins.append(float(values[0]))
        caps.append(int(values[-1] - values[0]))
    lo, hi = float(inst.scoring.range[0]), float(inst.scoring.range[1])
    if supported and (sum(mins) != lo or sum(mins) + sum(caps) != hi):
        raise InvalidParameter(
            f"simulate: {instrument_id}'s total range [{lo:g}, {hi:g}] is not the sum of its item "
            f"ranges [{sum(mins):g}, {sum(mins) + sum(caps):g}]"
        )
    position = {item_id: k for k, item_id in enumerate(ids)}
    subscales = tuple(
        (sub.id, tuple(position[i] for i in sub.items if i in position))
        for sub in inst.scoring.subscales
    )
    return ItemSpec(
        id=inst.id,
        item_ids=ids,
        item_min=tuple(mins),
        caps=tuple(caps),
        reverse=tuple(bool(it.reverse) for it in scored),
        total_range=(lo, hi),
        subscales=subscales,
        reliable_change=(
            float(inst.norms.reliable_change_points)
            if inst.norms.reliable_change_points is not None
            else None
        ),
        kind=inst.kind,
        items_supported=supported,
    )


def allocate(units: npt.ArrayLike, key: npt.ArrayLike, caps: npt.ArrayLike) -> npt.NDArray[np.int8]:
    """Share ``units`` out over items, each at most its cap, following the propensities ``key``.

    Parameters
    ----------
    units
        Shape ``(n,)``: integer units per row, each in ``0..sum(caps)``.
    key
        Shape ``(n, K)``: item propensities (only differences within a row matter).
    caps
        Shape ``(K,)``: the most units an item can take.

    Returns
    -------
    numpy.ndarray
        ``(n, K)`` int8 item units with ``v.sum(axis=1) == units`` and ``0 <= v <= caps``.

    Notes
    -----
    ``target = units / K + (key − row mean of key)``; start from the rounded, clipped targets
    and move single units until the row sums match (see the module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> v = allocate([0, 6, 12], np.array([[0.0, 0, 0], [1.5, 0, -1.5], [0.0, 0, 0]]), [4, 4, 4])
    >>> v.tolist()
    [[0, 0, 0], [4, 2, 0], [4, 4, 4]]
    """
    u = np.asarray(units, dtype=np.int64)
    k = np.asarray(key, dtype=np.float32)
    c = np.asarray(caps, dtype=np.int8)
    n_items = c.size
    if k.shape != (u.size, n_items):
        raise InvalidParameter(f"allocate: key has shape {k.shape}, expected ({u.size}, {n_items})")
    if u.size and (int(np.min(u)) < 0 or int(np.max(u)) > int(c.astype(np.int64).sum())):
        raise InvalidParameter("allocate: units outside 0..sum(caps)")
    target = (u[:, None] / n_items).astype(np.float32) + (k - k.mean(axis=1, keepdims=True))
    v = np.clip(np.rint(target), 0, c).astype(np.int8)
    gap_total = (u - v.sum(axis=1, dtype=np.int64)).astype(np.int64)
    active = np.flatnonzero(gap_total)
    while active.size:
        sub_v = v[active]
        gap = target[active] - sub_v
        up = gap_total[active] > 0
        down = ~up
        gap[up] = np.where(sub_v[up] < c, gap[up], -np.inf)
        gap[down] = np.where(sub_v[down] > 0, -gap[down], -np.inf)
        choice = gap.argmax(axis=1)
        step = np.where(up, 1, -1).astype(np.int8)
        v[active, choice] += step
        gap_total[active] -= step
        active = active[gap_total[active] != 0]
    return v
