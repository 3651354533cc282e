"""``alliance manage export_audit``: the audit trail as FHIR R4 AuditEvents, for shipping off the
machine (ASVS 16.4.3; SECURITY.md §1.6 "nightly job ... ships FHIR-shaped JSON to a separate sink").

Writes newline-delimited JSON (one AuditEvent per line, the FHIR bulk-data format) for every event
after ``--after`` (a sequence number: the last one the sink already has), oldest first, and prints
the last sequence number written to stderr so a script can remember it. Each event carries its hash
and the previous hash, so the sink can verify the chain independently of this database.
"""

from __future__ import annotations

import json
from typing import Any

from django.core.management.base import BaseCommand

from alliance_web.audit.fhir import bundle, to_fhir
from alliance_web.audit.models import AuditEvent

BATCH = 2000


class Command(BaseCommand):
    help = "Print audit events as FHIR AuditEvent NDJSON (or one Bundle), oldest first."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--after", type=int, default=0, help="only events after this seq")
        parser.add_argument("--limit", type=int, default=None, help="at most this many events")
        parser.add_argument(
            "--bundle", action="store_true", help="one FHIR Bundle instead of NDJSON"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        last, written, events = options["after"], 0, []
        limit = options["limit"]
        while limit is None or written < limit:
            size = BATCH if limit is None else min(BATCH, limit - written)
            chunk = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:size])
            if not chunk:
                break
            if options["bundle"]:
                events.extend(chunk)
            else:
                for event in chunk:
                    self.stdout.write(json.dumps(to_fhir(event), separators=(",", ":")))
            last, written = chunk[-1].seq, written + len(chunk)
        if options["bundle"]:
            self.stdout.write(json.dumps(bundle(events), indent=1))
        self.stderr.write(f"last seq {last} ({written} events)")
