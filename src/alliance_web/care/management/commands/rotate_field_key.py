"""``alliance manage rotate_field_key``: re-encrypt every encrypted column under the first key.

Rotation (SECURITY.md REQ-CR1, docs/deployment.md):

1. ``alliance manage rotate_field_key --generate`` prints a new key, e.g. ``k2:…``;
2. put it first: ``ALLIANCE_FIELD_KEYS="k2:<new>,k1:<old>"`` and restart (new writes use k2, old
   values still decrypt with k1);
3. ``alliance manage rotate_field_key`` re-encrypts every value not under k2 and reports counts
   per column (``--dry-run`` only counts);
4. when it reports nothing left under k1, remove k1 from the setting.

Each batch of rows is re-encrypted in one transaction; running it twice is harmless.
"""

from __future__ import annotations

import base64
import json
import os
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand
from django.db import transaction
from django.db.models import F, TextField
from django.db.models.functions import Cast

from alliance_web.care.fields import EncryptedJSONField, EncryptedTextField, KeyRing, keyring

BATCH = 500


def encrypted_columns() -> list[tuple[Any, str]]:
    """Every (model, field name) stored encrypted, across all installed apps."""
    found = []
    for model in apps.get_models():
        for field in model._meta.concrete_fields:
            if isinstance(field, EncryptedTextField | EncryptedJSONField):
                found.append((model, field.name))
    return found


class Command(BaseCommand):
    help = "Re-encrypt encrypted columns with the first key of ALLIANCE_FIELD_KEYS (or --generate one)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--generate", action="store_true", help="print a new key and exit")
        parser.add_argument("--key-id", help="the id for --generate (default: the next k<n>)")
        parser.add_argument("--dry-run", action="store_true", help="count only, change nothing")
        parser.add_argument("--json", action="store_true", help="print the counts as JSON")

    def handle(self, *args: Any, **options: Any) -> None:
        ring = keyring()
        if options["generate"]:
            self.stdout.write(f"{options['key_id'] or _next_id(ring)}:{_new_key()}")
            return
        report = {}
        for model, name in encrypted_columns():
            counts = self._rotate(model, name, ring, dry_run=options["dry_run"])
            report[f"{model._meta.label}.{name}"] = counts
        if options["json"]:
            self.stdout.write(
                json.dumps({"current_key": ring.current, "columns": report}, indent=1)
            )
            return
        verb = "would re-encrypt" if options["dry_run"] else "re-encrypted"
        for column, c in report.items():
            self.stdout.write(
                f"{column}: {verb} {c['rotated']}, already under {ring.current} {c['current']}, empty {c['empty']}"
            )
        total = sum(c["rotated"] for c in report.values())
        self.stdout.write(f"{verb} {total} value(s); the current key is {ring.current}")

    def _rotate(self, model: Any, name: str, ring: KeyRing, *, dry_run: bool) -> dict[str, int]:
        counts = {"rotated": 0, "current": 0, "empty": 0}
        prefix = ring.current + "$"
        last_pk: Any = None
        manager = model._base_manager
        while True:
            qs = manager.annotate(_raw=Cast(F(name), TextField())).order_by("pk")
            if last_pk is not None:
                qs = qs.filter(pk__gt=last_pk)
            batch = list(qs.values_list("pk", "_raw")[:BATCH])
            if not batch:
                return counts
            last_pk = batch[-1][0]
            stale = []
            for pk, raw in batch:
                if raw in (None, ""):
                    counts["empty"] += 1
                elif raw.startswith(prefix):
                    counts["current"] += 1
                else:
                    stale.append((pk, raw))
            counts["rotated"] += len(stale)
            if dry_run or not stale:
                continue
            field = model._meta.get_field(name)
            with transaction.atomic():
                for pk, raw in stale:
                    value = field.from_db_value(raw, None, None)  # decrypt under its old key
                    manager.filter(pk=pk).update(**{name: value})  # re-encrypts under the first


def _new_key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode("ascii")


def _next_id(ring: KeyRing) -> str:
    numbers = [int(k[1:]) for k in ring.order if k[:1] == "k" and k[1:].isdigit()]
    return f"k{max(numbers, default=0) + 1}"
