"""Issue, list and revoke API tokens: ``alliance manage api_token issue USERNAME --name NAME``.

A token belongs to one user and that user's practice; it works while both hold (a user moved to
another practice, disabled, or a revoked token gets 401). Only a hash is stored: the raw token is
printed once, at issue.
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from alliance_web.accounts.models import User
from alliance_web.api.models import ApiToken
from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record


class Command(BaseCommand):
    help = "Issue, list or revoke API tokens (Authorization: Bearer …)."

    def add_arguments(self, parser: Any) -> None:
        sub = parser.add_subparsers(dest="what", required=True)
        issue = sub.add_parser("issue", help="Issue a token for a user (printed once).")
        issue.add_argument("username")
        issue.add_argument("--name", default="api", help="What the token is for.")
        listing = sub.add_parser("list", help="List tokens (hints only).")
        listing.add_argument("--user", dest="username", default=None)
        revoke = sub.add_parser("revoke", help="Revoke a token by its hint or all of a user's.")
        revoke.add_argument("hint", nargs="?", default=None, help="The token's first characters.")
        revoke.add_argument("--user", dest="username", default=None)

    def handle(self, *args: Any, **options: Any) -> None:
        what = options["what"]
        if what == "issue":
            user = self._user(options["username"])
            if user.practice_id is None:
                raise CommandError(
                    f"{user.username} belongs to no practice; tokens are per practice."
                )
            token, raw = ApiToken.issue(user, options["name"][:80])
            record(
                Actor.system("api_token", user.practice_id),
                Action.CREATE,
                "api_token",
                token.pk,
                detail={"user": user.username, "name": token.name},
            )
            self.stdout.write(raw)
            self.stderr.write(
                f"Token {token.hint}… for {user.username} ({token.name}); it is shown only now."
            )
        elif what == "list":
            tokens = ApiToken.objects.select_related("user").order_by("created_at")
            if options["username"]:
                tokens = tokens.filter(user=self._user(options["username"]))
            for t in tokens:
                state = "revoked" if t.revoked_at else "active"
                used = t.last_used_at.isoformat(timespec="minutes") if t.last_used_at else "never"
                self.stdout.write(
                    f"{t.hint}…\t{t.user.username}\t{t.name}\t{state}\tlast used {used}"
                )
        else:
            tokens = ApiToken.objects.filter(revoked_at__isnull=True)
            if options["username"]:
                tokens = tokens.filter(user=self._user(options["username"]))
            if options["hint"]:
                tokens = tokens.filter(hint__startswith=options["hint"][:12])
            elif not options["username"]:
                raise CommandError(
                    "Say which token: its hint, or --user to revoke all of a user's."
                )
            revoked = list(tokens)
            if not revoked:
                raise CommandError("No active token matches.")
            now = timezone.now()
            for t in revoked:
                ApiToken.objects.filter(pk=t.pk).update(revoked_at=now)
                record(
                    Actor.system("api_token", t.practice_id),
                    Action.UPDATE,
                    "api_token",
                    t.pk,
                    detail={"revoked": True},
                )
            self.stdout.write(f"Revoked {len(revoked)} token(s).")

    def _user(self, username: str) -> User:
        user = User.objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user {username!r}.")
        return user
