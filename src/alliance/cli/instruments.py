"""``alliance instruments``: the instrument library, as a table or as JSON.

The JSON form is a contract that scripts rely on (SPEC §5, issue 2 part 7): an array with one
object per instrument holding at least ``id``, ``name``, ``direction``, ``range``, ``licence``,
``has_text`` and ``items`` (each with ``id`` and ``options``, a list of objects with ``value``).
"""

from __future__ import annotations

from typing import Any

import click

from alliance.cli._common import print_json, print_table
from alliance.instruments import Instrument, Item, default_library


def _num(v: float | None) -> float | int | None:
    """Whole numbers as ints, so that JSON reads ``[0, 27]`` rather than ``[0.0, 27.0]``."""
    if v is None:
        return None
    return int(v) if float(v).is_integer() else float(v)


def describe(inst: Instrument) -> dict[str, Any]:
    """The JSON description of one instrument (everything but references and notes)."""
    sc = inst.scoring
    norms = inst.norms
    return {
        "id": inst.id,
        "name": inst.name,
        "short_name": inst.short_name,
        "version": inst.version,
        "kind": inst.kind,
        "domain": inst.domain,
        "rater": inst.rater,
        "timing": inst.timing,
        "recall_period": inst.recall_period,
        "direction": inst.direction,
        "range": [_num(v) for v in sc.range],
        "licence": inst.licence.name,
        "licence_url": inst.licence.url,
        "text_included": inst.licence.text_included,
        "has_text": inst.has_text,
        "custom": inst.custom,
        "scoring": {
            "method": sc.method,
            "custom": sc.custom,
            "multiplier": _num(sc.multiplier),
            "max_missing": sc.proration.max_missing,
            "proration": sc.proration.method,
            "proration_scope": sc.proration.scope,
            "round_total": sc.proration.round_total,
            "derived": {k: _num(v) for k, v in sc.derived.items()},
        },
        "subscales": [
            {"id": s.id, "name": s.name, "items": list(s.items), "max_missing": s.max_missing}
            for s in sc.subscales
        ],
        "severity_bands": [
            {"min": _num(b.min), "max": _num(b.max), "label": b.label} for b in inst.severity_bands
        ],
        "clinical_cutoff": _num(inst.clinical_cutoff.value) if inst.clinical_cutoff else None,
        "reliable_change_points": _num(norms.reliable_change_points),
        "reliability": norms.reliability.value if norms.reliability else None,
        "critical": [
            {"item": c.item, "op": c.op, "value": _num(c.value), "flag": c.flag}
            for c in inst.critical
        ],
        "loinc": inst.loinc.panel,
        "items": [_item(it) for it in inst.items],
    }


def _item(it: Item) -> dict[str, Any]:
    out: dict[str, Any] = {
        "id": it.id,
        "text": it.text,
        "kind": it.kind,
        "scored": it.scored and it.kind != "text",
        "required": it.required,
        "reverse": it.reverse,
        "options": [_option(o.value, o.label, o.code) for o in it.options],
    }
    if it.kind == "scale":
        out.update(min=_num(it.min), max=_num(it.max), step=_num(it.step))
    if it.loinc:
        out["loinc"] = it.loinc
    return out


def _option(value: float, label: str | None, code: str | None) -> dict[str, Any]:
    out: dict[str, Any] = {"value": _num(value)}
    if label is not None:
        out["label"] = label
    if code is not None:
        out["code"] = code
    return out


def _short_licence(name: str) -> str:
    short = name.split(" — ")[0].split(" (")[0]
    return short if len(short) <= 30 else short[:29] + "…"


@click.command()
@click.option("--json", "as_json", is_flag=True, help="Print a JSON array (a stable contract).")
def instruments(as_json: bool) -> None:
    """List the instruments in the library."""
    described = [describe(inst) for inst in default_library().values()]
    if as_json:
        print_json(described)
        return
    rows = [
        {
            "id": d["id"],
            "name": d["short_name"],
            "items": sum(1 for it in d["items"] if it["scored"]),
            "range": f"{d['range'][0]:g}–{d['range'][1]:g}",
            "direction": "↑ better" if d["direction"] == "higher_is_better" else "↑ worse",
            "text": "yes" if d["has_text"] else "scoring only",
            "licence": _short_licence(d["licence"]),
        }
        for d in described
    ]
    print_table(
        rows,
        ["id", "name", "items", "range", "direction", "text", "licence"],
        title=f"{len(rows)} instruments",
    )
