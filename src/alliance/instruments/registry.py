"""Loading instrument definitions and looking them up.

The shipped definitions live in ``definitions/<id>.yaml``, one file per instrument. A
:class:`Library` is an immutable mapping from id to :class:`Instrument`; a practice that imports
its own (e.g. licensed text through FHIR) gets a new library with :meth:`Library.with_instruments`,
never a changed global.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError

from alliance.errors import InstrumentError, UnknownInstrument
from alliance.instruments.schema import Instrument

__all__ = ["DEFINITIONS", "Library", "default_library", "get", "load", "parse"]

DEFINITIONS = Path(__file__).with_name("definitions")


def parse(data: Mapping[str, Any], origin: str = "<data>") -> Instrument:
    """Validate a definition given as a mapping.

    Parameters
    ----------
    data
        The definition, as read from YAML or JSON.
    origin
        Where it came from, for error messages (a file name).

    Raises
    ------
    InstrumentError
        Naming the field and what is wrong with it.
    """
    try:
        return Instrument.model_validate(dict(data))
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            where = ".".join(str(p) for p in err["loc"]) or "definition"
            lines.append(f"  {where}: {err['msg']}")
        raise InstrumentError(
            f"invalid instrument definition {origin}:\n" + "\n".join(lines)
        ) from None


def load(path: str | Path) -> Instrument:
    """Load and validate one YAML definition file."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as exc:
        raise InstrumentError(f"cannot read instrument definition {path}: {exc}") from None
    if not isinstance(data, dict):
        raise InstrumentError(f"{path}: an instrument definition must be a mapping")
    inst = parse(data, origin=str(path.name))
    if path.stem != inst.id:
        raise InstrumentError(f"{path}: file name must be the instrument id ({inst.id}.yaml)")
    return inst


class Library(Mapping[str, Instrument]):
    """An immutable set of instruments, looked up by id."""

    def __init__(self, instruments: Iterable[Instrument]) -> None:
        items: dict[str, Instrument] = {}
        for inst in instruments:
            if inst.id in items:
                raise InstrumentError(f"two instruments share the id {inst.id!r}")
            items[inst.id] = inst
        self._items = dict(sorted(items.items()))

    def __getitem__(self, key: str) -> Instrument:
        try:
            return self._items[key]
        except KeyError:
            known = ", ".join(self._items)
            raise UnknownInstrument(
                f"unknown instrument {key!r}; known instruments: {known}"
            ) from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    def with_instruments(self, *extra: Instrument) -> Library:
        """A new library with ``extra`` added (an id already present is replaced)."""
        merged = {**self._items, **{i.id: i for i in extra}}
        return Library(merged.values())

    @classmethod
    def from_directory(cls, folder: str | Path) -> Library:
        """Load every ``*.yaml`` definition in a folder."""
        return cls(load(p) for p in sorted(Path(folder).glob("*.yaml")))


@lru_cache(maxsize=1)
def default_library() -> Library:
    """The instruments shipped with Alliance (loaded and validated once per process)."""
    return Library.from_directory(DEFINITIONS)


def get(instrument_id: str) -> Instrument:
    """A shipped instrument by id, e.g. ``get("phq9")``."""
    return default_library()[instrument_id]
