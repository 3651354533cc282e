"""``alliance manage import_scores FILE --as USERNAME [--map COLUMN=NAME …] [--apply]``

Historical scores from another system. Without ``--apply`` it only prints the validation report;
with it every row is stored in one transaction, or none (the report says why). Mapping keys:
client, date, instrument, session, total; ``--item phq9_1=Q1`` maps item columns,
``--instrument-name PHQ-9=phq9`` the other system's names, ``--instrument phq9`` one instrument
for the whole file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alliance_web.accounts.models import User
from alliance_web.care import imports
from alliance_web.care.access import scope_for


def _pairs(values: list[str], what: str) -> dict[str, str]:
    out = {}
    for value in values:
        key, sep, target = value.partition("=")
        if not sep or not key or not target:
            raise CommandError(f"{what} takes KEY=VALUE, not {value!r}")
        out[key.strip()] = target.strip()
    return out


class Command(BaseCommand):
    help = "Import historical scores from a CSV file (validation report first; all or nothing)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("file")
        parser.add_argument("--as", dest="username", required=True, help="The therapist importing.")
        parser.add_argument("--map", action="append", default=[], help="FIELD=COLUMN")
        parser.add_argument("--item", action="append", default=[], help="ITEM_ID=COLUMN")
        parser.add_argument("--instrument-name", action="append", default=[], help="THEIRS=OURS")
        parser.add_argument("--instrument", default=None, help="One instrument for all rows.")
        parser.add_argument(
            "--apply", action="store_true", help="Store the rows (default: report)."
        )
        parser.add_argument("--json", action="store_true", help="Print the report as JSON.")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['username']!r}.")
        fields = _pairs(options["map"], "--map")
        unknown = sorted(set(fields) - {"client", "date", "instrument", "session", "total"})
        if unknown:
            raise CommandError(f"unknown --map field(s): {', '.join(unknown)}")
        mapping = imports.ColumnMapping(
            **fields,
            items=_pairs(options["item"], "--item"),
            instrument_names=_pairs(options["instrument_name"], "--instrument-name"),
            fixed_instrument=options["instrument"],
        )
        try:
            text = Path(options["file"]).read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise CommandError(f"{options['file']}: {exc}") from None
        report = imports.import_scores(
            text, mapping, user, scope_for(user), dry_run=not options["apply"]
        )
        if options["json"]:
            self.stdout.write(json.dumps(report.as_dict(), indent=2))
        else:
            self.stdout.write(
                f"{report.rows} rows: {report.ready} ready, {report.already_present} already "
                f"present, {len(report.errors)} problem(s), {len(report.warnings)} warning(s)"
            )
            for p in report.errors[:50]:
                self.stdout.write(f"  line {p.line}, {p.column}: {p.message}")
            for p in report.warnings[:50]:
                self.stdout.write(f"  (warning) line {p.line}, {p.column}: {p.message}")
        if not report.ok:
            raise CommandError("Nothing was imported; fix the problems above and run it again.")
        if report.applied:
            self.stdout.write(f"Imported {report.ready} score(s) for {report.clients} client(s).")
        else:
            self.stdout.write("Dry run: nothing stored. Add --apply to import.")
