"""Small helpers shared by the relationship modules (not public API)."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from alliance.errors import InvalidParameter, InvalidResponse

__all__ = ["as_float_array", "check_fraction", "check_positive", "jsonable", "to_dict"]

FloatArray = npt.NDArray[np.float64]

#: Element types converted without the element-by-element fallback (exact types: not bool).
_PLAIN = (float, int, type(None))


def jsonable(value: Any) -> Any:
    """Turn dataclasses, NumPy scalars, tuples and NaN into plain JSON values (NaN -> None)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        return [jsonable(v) for v in value.tolist()]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    return value


def to_dict(obj: Any) -> dict[str, Any]:
    """A frozen result dataclass as a JSON-serialisable dict."""
    out = jsonable(obj)
    if not isinstance(out, dict):  # pragma: no cover - only called on dataclasses
        raise TypeError("to_dict needs a dataclass instance")
    return out


def as_float_array(values: Sequence[float] | npt.ArrayLike, name: str) -> FloatArray:
    """A 1-D float array; ``None`` becomes NaN; non-numeric input raises InvalidResponse.

    Always a new array. Numeric arrays and lists of plain numbers (the usual input: one
    client's ratings) are converted directly; anything else goes element by element.
    """
    if isinstance(values, np.ndarray) and values.dtype.kind in "biuf":
        return values.astype(float).ravel()
    if isinstance(values, (list, tuple)) and all(type(v) in _PLAIN for v in values):
        return np.array([np.nan if v is None else v for v in values], dtype=float)
    try:
        arr = np.asarray(
            [np.nan if v is None else v for v in np.asarray(values, dtype=object).ravel()],
            dtype=float,
        )
    except (TypeError, ValueError) as exc:
        raise InvalidResponse(f"{name}: every value must be a number or empty ({exc})") from exc
    return arr


def check_positive(value: float, name: str, *, allow_zero: bool = False) -> float:
    """Raise InvalidParameter unless ``value`` is a finite positive number."""
    v = float(value)
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise InvalidParameter(f"{name} must be {'≥' if allow_zero else '>'} 0, got {value!r}")
    return v


def check_fraction(value: float, name: str) -> float:
    """Raise InvalidParameter unless ``0 <= value <= 1``."""
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise InvalidParameter(f"{name} must lie between 0 and 1, got {value!r}")
    return v
