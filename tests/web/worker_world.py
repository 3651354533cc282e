"""Set-up and clock moves for the real-worker test, run in a subprocess against a file database:

    python -m tests.web.worker_world setup N     N clients, each with a session due for an
                                                 invitation now and one not due for 30 hours
    python -m tests.web.worker_world advance     the later sessions come within the lead time

Not a test module: the test process never opens this database through Django (its own test
database is in memory); it only starts processes and counts rows and files.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta


def main(argv: list[str]) -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "alliance_web.settings")
    import django

    django.setup()
    from django.utils import timezone

    from alliance_web.accounts.models import Role, User
    from alliance_web.care import services
    from alliance_web.care.models import ConsentScope, Practice, Session

    if argv[0] == "setup":
        n = int(argv[1])
        practice = Practice.objects.create(name="Worker Test Practice", slug="worker-test")
        therapist = User.objects.create_user(
            username="worker_therapist", password=None, practice=practice, role=Role.THERAPIST
        )
        now = timezone.now()
        for i in range(n):
            client = services.create_client(
                therapist,
                preferred_name=f"Client {i}",
                therapist=therapist,
                email=f"client{i}@example.org",
                phone=f"+1 416 555 {i:04d}",
                consents=[ConsentScope.CARE, ConsentScope.MESSAGES],
            )
            episode = services.open_episode(
                therapist,
                client,
                concerns=["anxiety"],
                first_session_at=now + timedelta(hours=2),
                sessions=2,
                interval_days=1,
            )
            # Session 2 is 30 hours away: outside the 24-hour lead time for now.
            Session.objects.filter(episode=episode, number=2).update(
                scheduled_at=now + timedelta(hours=30)
            )
    elif argv[0] == "advance":
        Session.objects.filter(number=2).update(scheduled_at=timezone.now() + timedelta(hours=20))
    else:
        raise SystemExit(f"unknown command {argv[0]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
