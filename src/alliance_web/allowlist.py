"""Sort and filter choices from allow-lists only (SECURITY.md REQ-IJ1).

Django's ORM has had SQL injection through user-controlled *field names* again and again
(``order_by`` CVE-2021-35042, ``annotate``/``aggregate``/``extra`` CVE-2022-28346, JSONField
``values`` CVE-2024-42005, ``FilteredRelation`` aliases CVE-2025-57833, ``order_by`` with
``FilteredRelation`` CVE-2026-1312). Request data therefore only ever *selects* a key of a fixed
map; the ORM receives the value the code wrote. Unknown keys fall back to the default, so a probe
such as ``?sort=id;DROP`` gets the default order, never an error with SQL in it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Generic, TypeVar

V = TypeVar("V")


class AllowList(Generic[V]):
    """A fixed map from what a request may say to what the code uses."""

    def __init__(self, choices: Mapping[str, V], *, default: str) -> None:
        if default not in choices:
            raise ValueError(f"default {default!r} is not one of the choices")
        self._choices = dict(choices)
        self.default = default

    def key(self, requested: object) -> str:
        """The requested key if allowed, else the default."""
        return (
            requested if isinstance(requested, str) and requested in self._choices else self.default
        )

    def get(self, requested: object) -> V:
        return self._choices[self.key(requested)]

    def order_by(self, requested: object) -> tuple[str, ...]:
        """For sorts: the ORM ordering as a tuple of field names."""
        value = self.get(requested)
        return (value,) if isinstance(value, str) else tuple(value)  # type: ignore[arg-type]

    def keys(self) -> Iterator[str]:
        return iter(self._choices)

    def __iter__(self) -> Iterator[str]:
        return iter(self._choices)

    def __contains__(self, requested: object) -> bool:
        return isinstance(requested, str) and requested in self._choices


__all__ = ["AllowList"]
