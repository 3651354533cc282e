"""``alliance manage verify_audit``: recompute the audit hash chain (SECURITY.md REQ-AU1).

Exit status 0 when every event matches its hash and follows the one before; 1 otherwise, with
the sequence number of the first bad event and what is wrong with it (altered, missing, or the
chain head not matching the last event). Run it nightly (docs/deployment.md).
"""

from __future__ import annotations

import json
import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError

from alliance_web.audit.trail import ChainBroken, verify_chain


class Command(BaseCommand):
    help = "Verify the audit trail's hash chain; exit 1 and say where if it was tampered with."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--json", action="store_true", help="print the result as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        started = time.monotonic()
        try:
            count = verify_chain()
        except ChainBroken as exc:
            if options["json"]:
                self.stdout.write(json.dumps({"ok": False, "seq": exc.seq, "reason": exc.reason}))
            raise CommandError(str(exc), returncode=1) from None
        seconds = time.monotonic() - started
        if options["json"]:
            self.stdout.write(
                json.dumps({"ok": True, "events": count, "seconds": round(seconds, 3)})
            )
        else:
            self.stdout.write(f"audit chain verified: {count} events in {seconds:.1f} s")
