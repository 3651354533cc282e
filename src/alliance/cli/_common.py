"""Helpers shared by the commands: reading input files, printing JSON and tables, failing well."""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NoReturn

import click
import pandas as pd
from rich.console import Console
from rich.table import Table

from alliance.errors import AllianceError

__all__ = ["fail", "print_json", "print_table", "read_csv", "to_jsonable"]

err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Print ``Error: message`` to stderr and exit with status 1."""
    raise click.ClickException(message)


def read_csv(path: str | Path, required: Sequence[str] = ()) -> pd.DataFrame:
    """Read a CSV file, failing with a message that names the missing columns."""
    path = Path(path)
    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
    except FileNotFoundError:
        fail(f"{path}: no such file")
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        fail(f"{path}: not a readable CSV file ({exc}). Save it as UTF-8 CSV with a header row.")
    frame.columns = [str(c).strip() for c in frame.columns]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        fail(
            f"{path}: missing column(s) {', '.join(missing)}; "
            f"found {', '.join(frame.columns) or 'none'}. The file needs a header row with "
            f"{', '.join(required)}."
        )
    return frame


def to_jsonable(value: Any) -> Any:
    """Convert NumPy/pandas scalars, NaN and tuples into plain JSON values (NaN -> null)."""
    if isinstance(value, Mapping):
        return {str(k): to_jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_jsonable(v) for v in value]
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    return value


def print_json(data: Any) -> None:
    """Print data as JSON on stdout."""
    click.echo(json.dumps(to_jsonable(data), indent=2, ensure_ascii=False, allow_nan=False))


def print_table(
    rows: Iterable[Mapping[str, Any]], columns: Sequence[str], title: str | None = None
) -> None:
    """Print rows as a readable table."""
    table = Table(title=title, show_lines=False)
    for col in columns:
        table.add_column(col)
    for row in rows:
        cells = []
        for col in columns:
            v = to_jsonable(row.get(col))
            if v is None:
                cells.append("—")
            elif isinstance(v, float):
                cells.append(f"{v:.3g}" if abs(v) < 1000 else f"{v:.1f}")
            elif isinstance(v, list):
                cells.append(", ".join(map(str, v)) or "—")
            else:
                cells.append(str(v))
        table.add_row(*cells)
    Console().print(table)


def engine_errors() -> type[AllianceError]:
    """The engine's base error, for ``except`` clauses in commands."""
    return AllianceError
