"""Backup codes for two-factor sign-in, stored hashed (see ``BackupCodeDevice``).

A code reads ``abcd-efgh-jkmn``: the first group finds the stored row (it is not secret), the
other eight characters are the secret (31-letter alphabet without look-alikes: ≈ 40 bits), hashed
with the first of ``PASSWORD_HASHERS`` (Argon2id) with its own salt — ASVS 5.0 6.5.2 asks for a
salted password hash for lookup secrets under 112 bits. The Argon2id parameters are OWASP's
minimum for passwords (19 MiB, t=2, p=1; Password Storage Cheat Sheet) rather than Django's
100 MiB, so that ten codes can be made at enrolment in well under a second. Guessing is throttled by the device (the
delay doubles after each failure) and by django-axes at the password step.
"""

from __future__ import annotations

import secrets
from typing import Any

from django.contrib.auth.hashers import Argon2PasswordHasher
from django.db import transaction

ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
GROUP = 4
COUNT = 10


class BackupCodeHasher(Argon2PasswordHasher):
    memory_cost = 19456  # KiB = 19 MiB
    time_cost = 2
    parallelism = 1


HASHER = BackupCodeHasher()


def hash_secret(secret: str) -> str:
    return HASHER.encode(secret, HASHER.salt())


def check_secret(secret: str, encoded: str) -> bool:
    return HASHER.verify(secret, encoded)


def _group() -> str:
    return "".join(secrets.choice(ALPHABET) for _ in range(GROUP))


def split(code: str) -> tuple[str, str] | None:
    """``(lookup, secret)`` of a typed code, or None when it cannot be one."""
    clean = "".join(ch for ch in code.lower() if ch.isalnum())
    if len(clean) != 3 * GROUP or any(ch not in ALPHABET for ch in clean):
        return None
    return clean[:GROUP], clean[GROUP:]


@transaction.atomic
def new_codes(user: Any, count: int = COUNT) -> list[str]:
    """Replace the person's backup codes with ``count`` fresh ones; return them (shown once)."""
    from alliance_web.accounts.models import BackupCode, BackupCodeDevice

    device, _ = BackupCodeDevice.objects.get_or_create(
        user=user, name="backup codes", defaults={"confirmed": True}
    )
    device.codes.all().delete()
    device.throttle_reset(commit=False)
    device.confirmed = True
    device.save()
    codes, lookups = [], set()
    while len(codes) < count:
        lookup = _group()
        if lookup in lookups:
            continue
        lookups.add(lookup)
        secret = _group() + _group()
        BackupCode.objects.create(device=device, lookup=lookup, code_hash=hash_secret(secret))
        codes.append(f"{lookup}-{secret[:GROUP]}-{secret[GROUP:]}")
    return codes


__all__ = ["ALPHABET", "COUNT", "check_secret", "hash_secret", "new_codes", "split"]
