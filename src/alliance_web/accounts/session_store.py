"""Database sessions that refuse malformed session ids before they reach the database.

Django's own keys are 32 characters of ``[a-z0-9]``. A tampered cookie holding anything else (a
NUL byte, a path, 4 kB of junk) is treated as no session at all — PostgreSQL would otherwise refuse
the lookup with an error and the request would fail with a 500 (SECURITY.md 4a, "tampered session
cookie": logged out, nothing else).
"""

from __future__ import annotations

import re

from django.contrib.sessions.backends.db import SessionStore as DbSessionStore

_KEY = re.compile(r"[a-z0-9]{8,40}")


class SessionStore(DbSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        return bool(key) and _KEY.fullmatch(str(key)) is not None


__all__ = ["SessionStore"]
