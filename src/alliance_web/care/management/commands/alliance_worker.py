"""The background worker: Django's database task queue plus a minute clock for scheduled work.

``alliance serve`` starts it as a child process. The clock enqueues the periodic sweep (invitations
due, reminders, expiry, nightly recalibration) once a minute; the sweep itself is idempotent, so two
workers or a restart never send anything twice.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand

log = logging.getLogger("alliance.worker")


def _clock(stop: threading.Event, interval: float) -> None:
    from alliance_web.care import tasks

    while not stop.is_set():
        try:
            tasks.enqueue_sweep()
        except Exception:
            log.exception("scheduled sweep could not be enqueued")
        stop.wait(interval)


class Command(BaseCommand):
    help = "Run the background worker (task queue and scheduler clock)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--interval", type=float, default=60.0, help="Seconds between scheduler ticks."
        )
        parser.add_argument("--no-clock", action="store_true", help="Only run queued tasks.")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        if not options["no_clock"]:
            threading.Thread(
                target=_clock, args=(stop, options["interval"]), daemon=True, name="alliance-clock"
            ).start()
        try:
            call_command("db_worker", verbosity=0)
        finally:
            stop.set()
