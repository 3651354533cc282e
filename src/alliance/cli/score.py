"""``alliance score INSTRUMENT FILE``: score a file of responses.

FILE is a CSV whose columns are item ids (plus an optional ``id`` column, echoed back), or a
FHIR QuestionnaireResponse/Bundle JSON file (``.json``; read by :mod:`alliance.fhir`). With
``--json`` the output is a JSON array, one object per response, with ``id``, ``total`` (null
when unscorable), ``subscales``, ``severity``, ``flags``, ``prorated`` and ``error`` (null or a
message) — a contract that scripts rely on. A response that cannot be scored is reported in its
``error``; a file that does not fit the instrument at all is refused with exit status 1.
"""

from __future__ import annotations

import difflib
import importlib
from pathlib import Path
from typing import Any

import click
import pandas as pd

from alliance.cli._common import err_console, fail, print_json, print_table
from alliance.errors import AllianceError
from alliance.instruments import Instrument, get

_COLUMNS = ("id", "total", "severity", "clinical", "flags", "prorated", "error")


def _read_fhir(path: str, inst: Instrument) -> pd.DataFrame:
    """FHIR JSON goes through alliance.fhir.responses_from_file (the FHIR engineer's reader)."""
    try:
        fhir = importlib.import_module("alliance.fhir")
    except ModuleNotFoundError as exc:
        if exc.name not in ("alliance.fhir", "fhir", "fhir.resources"):
            raise
        fail(
            f"{path}: reading FHIR JSON needs the alliance.fhir module, which is not available "
            f"here ({exc}). Give a CSV file with one column per item instead."
        )
    try:
        frame: pd.DataFrame = fhir.responses_from_file(path, inst)
    except AllianceError as exc:
        fail(f"{path}: {exc}")
    for warning in frame.attrs.get("fhir_warnings", ()):
        err_console.print(f"warning: {warning}", markup=False, highlight=False)
    return frame


def _read_csv_responses(path: str, inst: Instrument) -> pd.DataFrame:
    from alliance.cli._common import read_csv

    frame = read_csv(path)
    known = set(inst.item_ids)
    unknown = [c for c in frame.columns if c != "id" and c not in known]
    if unknown:
        hints = []
        for col in unknown:
            close = difflib.get_close_matches(col, sorted(known), n=1)
            hints.append(f"{col!r}" + (f" (did you mean {close[0]}?)" if close else ""))
        items = list(inst.item_ids)
        listed = ", ".join(items) if len(items) <= 12 else f"{items[0]}, …, {items[-1]}"
        fail(
            f"{path}: {'column' if len(unknown) == 1 else 'columns'} {', '.join(hints)} "
            f"{'is not a' if len(unknown) == 1 else 'are not'} {inst.short_name} "
            f"{'item' if len(unknown) == 1 else 'items'}. The header "
            f"must name items ({listed}) and, optionally, an id column."
        )
    if not any(c in known for c in frame.columns):
        fail(f"{path}: no column names a {inst.short_name} item; the header needs item ids.")
    if "id" not in frame.columns:
        # Rows are numbered as in a spreadsheet (1 = the first row after the header).
        frame.index = pd.RangeIndex(1, len(frame) + 1)
    return frame


def _rows(scores: pd.DataFrame) -> list[dict[str, Any]]:
    records = scores.astype(object).where(scores.notna(), None).to_dict(orient="records")
    out = []
    for r in records:
        out.append(
            {
                "id": r["id"],
                "total": r["total"],
                "subscales": dict(r["subscales"]),
                "derived": dict(r["derived"]),
                "severity": r["severity"],
                "clinical": r["clinical"],
                "flags": list(r["flags"]),
                "prorated": bool(r["prorated"]),
                "n_missing": int(r["n_missing"]),
                "error": r["error"],
                "instrument": r["instrument"],
                "method": r["method"],
            }
        )
    return out


@click.command()
@click.argument("instrument")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (a stable contract).")
def score(instrument: str, file: str, as_json: bool) -> None:
    """Score the responses in FILE (CSV of item answers, or FHIR JSON) to INSTRUMENT."""
    from alliance.scoring import score as score_responses

    try:
        inst = get(instrument)
    except AllianceError as exc:
        fail(str(exc))
    if not Path(file).exists():
        fail(f"{file}: no such file")
    if file.lower().endswith(".json"):
        frame = _read_fhir(file, inst)
    else:
        frame = _read_csv_responses(file, inst)
    try:
        scores = score_responses(inst, frame)
    except AllianceError as exc:
        fail(f"{file}: {exc}")
    rows = _rows(scores)
    if as_json:
        print_json(rows)
        return
    n_bad = sum(1 for r in rows if r["error"])
    title = f"{inst.short_name}: {len(rows)} responses" + (
        f", {n_bad} not scorable" if n_bad else ""
    )
    print_table(rows, _COLUMNS, title=title)
