"""``alliance manage retention [--apply]``: destroy records past their retention date (REQ-RT1).

A record is kept 10 years after the client's last contact, or 10 years after their 18th birthday
if that is later (Ontario psychology and psychotherapy record-keeping standard; SECURITY.md [P6]).
Clients with an open episode are never due. Without ``--apply`` the command only lists what it
would destroy (a dry run, audited as one); with it, each due record is erased in its own
transaction (``care.privacy.erase_client``) and audited — run it in a maintenance window, after a
backup. The audit trail itself is kept: it holds no PHI and its rows must be kept for years.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.care import privacy
from alliance_web.care.models import Practice


class Command(BaseCommand):
    help = "List (dry run) or destroy (--apply) client records past their retention date."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--apply", action="store_true", help="destroy the records listed")
        parser.add_argument("--practice", help="only this practice (its slug)")
        parser.add_argument(
            "--today",
            type=date.fromisoformat,
            help="pretend today is this date (YYYY-MM-DD), to preview a future run",
        )
        parser.add_argument("--json", action="store_true", help="print the list as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        practice_id = None
        if options["practice"]:
            practice = Practice.objects.filter(slug=options["practice"]).first()
            if practice is None:
                raise CommandError(f"No practice with slug {options['practice']!r}.")
            practice_id = practice.pk
        due = privacy.due_for_destruction(today=options["today"], practice_id=practice_id)
        rows = [
            {
                "client": str(d.client.public_id),
                "pseudonym": d.client.pseudonym,
                "practice": d.client.practice.slug,
                "last_contact": d.client.last_contact_at.date().isoformat(),
                "born": d.client.date_of_birth.isoformat() if d.client.date_of_birth else None,
                "keep_until": d.until.isoformat(),
            }
            for d in due
        ]
        actor = Actor.system("retention", practice_id)
        if not options["apply"]:
            record(
                actor, Action.EXECUTE, "retention_run", detail={"dry_run": True, "due": len(rows)}
            )
            self._print(rows, options["json"], "would be destroyed (dry run; --apply to destroy)")
            return
        totals = privacy.destroy(due, actor=actor)
        record(actor, Action.DELETE, "retention_run", detail={"dry_run": False, **totals})
        self._print(rows, options["json"], "destroyed")
        if not options["json"]:
            self.stdout.write("totals: " + ", ".join(f"{k} {v}" for k, v in sorted(totals.items())))

    def _print(self, rows: list[dict[str, Any]], as_json: bool, verb: str) -> None:
        if as_json:
            self.stdout.write(json.dumps(rows, indent=1))
            return
        for row in rows:
            self.stdout.write(
                f"{row['pseudonym']}  {row['client']}  {row['practice']}  last contact "
                f"{row['last_contact']}  keep until {row['keep_until']}"
            )
        self.stdout.write(f"{len(rows)} record(s) {verb}")
