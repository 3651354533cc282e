"""The background worker: Django's task queue worker plus a clock for scheduled work.

``alliance serve`` starts it as a child process. It runs the snapshot refreshes that check-in
submissions queue after commit (``refresh_episode``). The clock enqueues the periodic sweep
(invitations due, reminders, expiry and missed check-ins, notifications left behind, snapshots left
stale) every ``--interval`` seconds, and the nightly recalibration once a day after ``--nightly-at``
(server time). The sweep
is idempotent, so two workers or a restart never send anything twice; a worker killed mid-task
loses nothing, because the outbox tables — not the queue — say what is still to send.

With the default database backend the queue worker is ``db_worker``; with another backend (Redis
through ``django-tasks-rq``, see docs/background.md) run that backend's worker and this command
with ``--clock-only``.
"""

from __future__ import annotations

import datetime as dt
import logging
import threading
from typing import Any

from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

log = logging.getLogger("alliance.worker")


def _clock(stop: threading.Event, interval: float, nightly_at: dt.time | None) -> None:
    from django.db import close_old_connections

    from alliance_web.care import tasks

    last_night: dt.date | None = None
    while not stop.is_set():
        try:
            tasks.enqueue_sweep()
            now = timezone.localtime()
            if nightly_at is not None and now.time() >= nightly_at and last_night != now.date():
                last_night = now.date()
                tasks.recalibrate_all.enqueue()
        except Exception:
            log.exception("scheduled work could not be enqueued")
        finally:
            close_old_connections()
        stop.wait(interval)


class Command(BaseCommand):
    help = "Run the background worker (task queue and scheduler clock)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument(
            "--interval", type=float, default=60.0, help="Seconds between scheduler ticks."
        )
        parser.add_argument(
            "--poll", type=float, default=1.0, help="Seconds between queue polls when idle."
        )
        parser.add_argument("--no-clock", action="store_true", help="Only run queued tasks.")
        parser.add_argument(
            "--clock-only",
            action="store_true",
            help="Only enqueue scheduled work (another worker runs the queue, e.g. RQ).",
        )
        parser.add_argument(
            "--nightly-at",
            default="02:30",
            help="Server time after which the nightly recalibration is queued ('off' to skip).",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        nightly: dt.time | None = None
        if options["nightly_at"] != "off":
            try:
                nightly = dt.time.fromisoformat(options["nightly_at"])
            except ValueError:
                raise CommandError("--nightly-at takes HH:MM or 'off'") from None
        stop = threading.Event()
        if options["clock_only"]:
            _clock(stop, options["interval"], nightly)
            return
        if not options["no_clock"]:
            threading.Thread(
                target=_clock,
                args=(stop, options["interval"], nightly),
                daemon=True,
                name="alliance-clock",
            ).start()
        try:
            call_command("db_worker", verbosity=0, interval=options["poll"], startup_delay=False)
        finally:
            stop.set()
