"""``alliance manage invite_admin``: a practice's first admin (or a new one), from the server.

Creates the practice if its slug is new, then an admin account without a password, and prints a
one-time invitation code (72 hours). The person opens ``/accounts/welcome/``, chooses a password
with the code and their username, and sets up two-factor sign-in; from then on they add
colleagues themselves under Staff. Audited as the system.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from alliance_web.accounts import staff
from alliance_web.accounts.models import Role, User
from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.care.models import Practice


class Command(BaseCommand):
    help = (
        "Create a practice admin account (and the practice) and print a one-time invitation code."
    )

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--practice", required=True, help="the practice's slug")
        parser.add_argument("--practice-name", help="its name, when the practice is new")
        parser.add_argument("--username", required=True)
        parser.add_argument("--display-name", default="")
        parser.add_argument("--email", default="")

    @transaction.atomic
    def handle(self, *args: Any, **options: Any) -> None:
        practice = Practice.objects.filter(slug=options["practice"]).first()
        if practice is None:
            if not options["practice_name"]:
                raise CommandError("A new practice needs --practice-name.")
            practice = Practice.objects.create(
                name=options["practice_name"], slug=options["practice"]
            )
        if User.objects.filter(username__iexact=options["username"]).exists():
            raise CommandError("That username is taken.")
        user = User(
            username=options["username"],
            display_name=options["display_name"],
            email=options["email"],
            role=Role.ADMIN,
            practice=practice,
        )
        user.set_unusable_password()
        user.save()
        code = staff._new_invitation(None, user)
        record(
            Actor.system("invite_admin", practice.pk),
            Action.CREATE,
            "staff",
            user.pk,
            detail={"role": Role.ADMIN},
        )
        self.stdout.write(
            f"{user.username} is an admin of {practice.name}. Invitation code (shown once, valid "
            f"72 hours; enter it at /accounts/welcome/):\n{code}"
        )
