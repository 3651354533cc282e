"""``alliance fhir``: export instruments as FHIR Questionnaires, import them, rescore responses."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
import yaml

from alliance.cli._common import fail, print_json, print_table, to_jsonable
from alliance.errors import AllianceError


@click.group()
def fhir() -> None:
    """FHIR R4 Questionnaires and QuestionnaireResponses (see docs/fhir.md)."""


def _read_json(path: str) -> Any:
    from alliance.fhir._resources import load_json

    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        fail(f"{path}: cannot read the file ({exc.strerror or exc})")
    try:
        return load_json(data, origin=path)
    except AllianceError as exc:
        fail(str(exc))


def _write(path: str, text: str) -> None:
    try:
        Path(path).write_text(text, encoding="utf-8")
    except OSError as exc:
        fail(f"{path}: cannot write the file ({exc.strerror or exc})")


@fhir.command("export")
@click.argument("instrument")
@click.option("--out", "out", type=click.Path(dir_okay=False), help="Write to FILE, not stdout.")
@click.option(
    "--base-url",
    default=None,
    help="Base of the canonical URL (default http://alliance.invalid/fhir).",
)
@click.option(
    "--score-extension",
    type=click.Choice(["ordinalValue", "itemWeight"]),
    default="ordinalValue",
    show_default=True,
    help="Extension that carries each answer's score (itemWeight is the R5 name).",
)
def export(instrument: str, out: str | None, base_url: str | None, score_extension: str) -> None:
    """Print INSTRUMENT as a FHIR R4 Questionnaire (JSON)."""
    from alliance.fhir import DEFAULT_BASE_URL, questionnaire_from_instrument
    from alliance.instruments import get

    try:
        inst = get(instrument)
        q = questionnaire_from_instrument(
            inst,
            base_url=base_url or DEFAULT_BASE_URL,
            score_extension="itemWeight" if score_extension == "itemWeight" else "ordinalValue",
        )
    except AllianceError as exc:
        fail(str(exc))
    text = json.dumps(q, indent=2, ensure_ascii=False)
    if out:
        _write(out, text + "\n")
        click.echo(f"Wrote the {inst.short_name} Questionnaire to {out}", err=True)
    else:
        click.echo(text)


@fhir.command("import")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@click.option(
    "--out",
    "out",
    type=click.Path(dir_okay=False),
    help="Write the imported instrument definition as YAML (name it <id>.yaml to load it).",
)
@click.option("--strict", is_flag=True, help="Refuse a Questionnaire the R4B model rejects.")
def import_(file: str, as_json: bool, out: str | None, strict: bool) -> None:
    """Read a FHIR Questionnaire FILE: match it to a known instrument or create a custom one."""
    from alliance.fhir import instrument_from_questionnaire

    data = _read_json(file)
    try:
        match = instrument_from_questionnaire(data, strict=strict)
    except AllianceError as exc:
        fail(f"{file}: {exc}")
    if out:
        definition = match.instrument.model_dump(mode="json", exclude_none=True)
        _write(out, yaml.safe_dump(definition, sort_keys=False, allow_unicode=True, width=100))
    summary = match.summary()
    if out:
        summary["written"] = out
    if as_json:
        print_json(summary)
        return
    inst = match.instrument
    verb = "Matched" if match.matched else "Created"
    click.echo(f"{verb} {inst.id} ({inst.name}): {match.reason}")
    if match.text_merged:
        click.echo("Imported item text merged into the scoring-only definition.")
    print_table(summary["items"], ["linkId", "item", "how"], title=f"{len(match.links)} items")
    for warning in match.warnings:
        click.echo(f"warning: {warning}", err=True)
    if out:
        click.echo(f"Wrote the definition to {out}", err=True)


@fhir.command("score")
@click.argument("file", type=click.Path(dir_okay=False))
@click.option(
    "--questionnaire",
    "questionnaire",
    type=click.Path(dir_okay=False),
    help="The Questionnaire the responses answer (JSON).",
)
@click.option("--instrument", "instrument", help="The instrument the responses answer.")
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON.")
def score(file: str, questionnaire: str | None, instrument: str | None, as_json: bool) -> None:
    """Recompute the scores of FHIR QuestionnaireResponses in FILE (one, a list or a Bundle)."""
    from alliance.fhir import score_fhir_response

    data = _read_json(file)
    q = _read_json(questionnaire) if questionnaire else None
    try:
        results = score_fhir_response(data, q, instrument=instrument)
    except AllianceError as exc:
        fail(f"{file}: {exc}")
    rows = [r.as_dict() for r in results]
    if as_json:
        print_json(rows)
        return
    print_table(
        [{**r, "subscales": None} for r in rows],
        ["id", "instrument", "total", "severity", "flags", "prorated", "stored_total", "error"],
        title="Recomputed scores",
    )
    for r in rows:
        for warning in r["warnings"]:
            click.echo(f"warning: {r['id']}: {to_jsonable(warning)}", err=True)
