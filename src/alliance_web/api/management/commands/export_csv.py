"""``alliance manage export_csv research|practice --as USERNAME [--instrument ID] [--out FILE]``

``research``: de-identified scores of consenting clients (a clinical supervisor's scope);
``practice``: the practice's identified record (a practice admin). Both formula-safe and audited.
The per-user hourly export limit (``ALLIANCE_EXPORT_LIMIT_PER_HOUR``) applies here too.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alliance_web.accounts.models import User
from alliance_web.audit.ratelimit import ExportLimitExceeded
from alliance_web.care import exports
from alliance_web.care.access import scope_for


class Command(BaseCommand):
    help = "Export research (de-identified) or practice (identified) data as CSV."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("kind", choices=["research", "practice"])
        parser.add_argument("--as", dest="username", required=True)
        parser.add_argument("--instrument", default=None)
        parser.add_argument("--out", default=None, help="File to write (default: standard output).")

    def handle(self, *args: Any, **options: Any) -> None:
        user = User.objects.filter(username=options["username"], is_active=True).first()
        if user is None:
            raise CommandError(f"No active user {options['username']!r}.")
        try:
            if options["kind"] == "research":
                text = exports.research_csv(user, scope_for(user), instrument=options["instrument"])
            else:
                text = exports.practice_csv(user)
        except (exports.ExportRefused, ExportLimitExceeded) as exc:
            raise CommandError(str(exc)) from None
        if options["out"]:
            path = Path(options["out"])
            path.touch(mode=0o600)
            path.write_text(text, encoding="utf-8")
            self.stderr.write(f"Wrote {text.count(chr(10)) - 1} row(s) to {path}.")
        else:
            sys.stdout.write(text)
