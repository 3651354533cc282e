"""Check-in links and waiting-room codes.

A link token is an HMAC of the check-in's random public id under a key derived from SECRET_KEY, so
the server can put the same link in an email and a text message without storing it; only its SHA-256
is stored for lookup. Links are single use (a completed check-in no longer opens) and expire.

A short code (8 characters from an alphabet without look-alikes) is for a waiting-room tablet: it is
valid for 30 minutes, stored hashed, and guessing is throttled by the portal.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from datetime import timedelta
from typing import TYPE_CHECKING

from django.conf import settings
from django.utils import timezone

if TYPE_CHECKING:
    from alliance_web.care.models import CheckIn

CODE_ALPHABET = "ABCDEFGHJKMNPQRSTUVWXYZ23456789"
CODE_LENGTH = 8
CODE_LIFETIME = timedelta(minutes=30)


def _key() -> bytes:
    return hashlib.sha256(b"alliance.checkin-link:" + settings.SECRET_KEY.encode()).digest()


def link_token(checkin: CheckIn) -> str:
    mac = hmac.new(_key(), f"checkin:{checkin.public_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:18]).decode().rstrip("=")


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def link_path(checkin: CheckIn) -> str:
    return f"/c/{link_token(checkin)}/"


def link_url(checkin: CheckIn) -> str:
    return settings.ALLIANCE_BASE_URL.rstrip("/") + link_path(checkin)


def normalise_code(code: str) -> str:
    return "".join(ch for ch in code.upper() if ch.isalnum())


def new_short_code() -> tuple[str, str]:
    """A fresh code and its hash."""
    code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(CODE_LENGTH))
    return code, token_hash("code:" + code)


def code_hash(code: str) -> str:
    return token_hash("code:" + normalise_code(code))


def code_expiry() -> timezone.datetime:
    return timezone.now() + CODE_LIFETIME
