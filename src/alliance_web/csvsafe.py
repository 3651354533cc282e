"""CSV that spreadsheets cannot turn into formulas (ASVS 5.0 1.2.10; SECURITY.md 4a).

A cell typed by a person (a name, a goal, a note) that starts with ``=``, ``+``, ``-``, ``@``, a tab,
a carriage return or a NUL is prefixed with ``'``, which Excel, LibreOffice and Google Sheets show
as text rather than evaluate (OWASP "CSV Injection"). Numbers are written as numbers — a negative
score stays ``-3``, not ``'-3`` (the Grafana regression fixed in grafana/grafana#17363) — so pass
numbers as ``int``/``float``, not as strings. Quoting is RFC 4180 (``csv.QUOTE_MINIMAL``, CRLF).

Every CSV the web app produces goes through this module; a test fails if another module imports
:mod:`csv` to write one.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.http import HttpResponse

TRIGGERS = ("=", "+", "-", "@", "\t", "\r", "\0")


def safe_cell(value: Any) -> Any:
    """The value to write: numbers unchanged, text defused, dates in ISO 8601, None empty."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float | Decimal):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    text = str(value)
    if text.startswith(TRIGGERS):
        return "'" + text
    return text


class SafeWriter:
    """``csv.writer`` with every cell passed through :func:`safe_cell`."""

    def __init__(self, stream: Any) -> None:
        self._writer = csv.writer(stream, quoting=csv.QUOTE_MINIMAL, lineterminator="\r\n")

    def writerow(self, row: Iterable[Any]) -> Any:
        return self._writer.writerow([safe_cell(v) for v in row])

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        for row in rows:
            self.writerow(row)


def writer(stream: Any) -> SafeWriter:
    return SafeWriter(stream)


def to_text(header: Sequence[str], rows: Iterable[Iterable[Any]]) -> str:
    buffer = io.StringIO(newline="")
    out = writer(buffer)
    out.writerow(header)
    out.writerows(rows)
    return buffer.getvalue()


def response(filename: str, header: Sequence[str], rows: Iterable[Iterable[Any]]) -> HttpResponse:
    """A CSV download (UTF-8 with a byte-order mark, so spreadsheets read accents right)."""
    body = "\ufeff" + to_text(header, rows)
    result = HttpResponse(body.encode("utf-8"), content_type="text/csv; charset=utf-8")
    safe_name = "".join(ch for ch in filename if ch.isalnum() or ch in "._-") or "export.csv"
    result["Content-Disposition"] = f'attachment; filename="{safe_name}"'
    return result


__all__ = ["TRIGGERS", "SafeWriter", "response", "safe_cell", "to_text", "writer"]
