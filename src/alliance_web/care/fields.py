"""Field-level encryption at rest for client free text and notes (SECURITY.md REQ-CR1).

Values are encrypted with Fernet (AES-128-CBC + HMAC-SHA256, from ``cryptography``) under the
first key of ``FIELD_ENCRYPTION_KEYS`` (``"kid:key,kid:key"``; keys are 32 url-safe base64 bytes,
from the environment or a ``*_FILE`` secret, never the database). Each stored value is prefixed
with its key id (``k2$gAAAA…``) so that old keys keep decrypting after a rotation and
``manage.py rotate_field_key`` can find what still needs re-encrypting.
"""

from __future__ import annotations

import json
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db import models

SEPARATOR = "$"


class KeyRing:
    """The configured keys: the first encrypts, all decrypt."""

    def __init__(self, spec: str) -> None:
        self.keys: dict[str, Fernet] = {}
        self.order: list[str] = []
        for part in (p.strip() for p in spec.split(",") if p.strip()):
            kid, sep, key = part.partition(":")
            if not sep or not kid or SEPARATOR in kid:
                raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS entries look like 'k1:<key>'")
            try:
                self.keys[kid] = Fernet(key.encode())
            except ValueError:
                raise ImproperlyConfigured(
                    f"FIELD_ENCRYPTION_KEYS key {kid!r} is not 32 url-safe base64-encoded bytes"
                ) from None
            self.order.append(kid)
        if not self.order:
            raise ImproperlyConfigured("FIELD_ENCRYPTION_KEYS is empty")

    @property
    def current(self) -> str:
        return self.order[0]

    def encrypt(self, plaintext: str) -> str:
        token = self.keys[self.current].encrypt(plaintext.encode("utf-8")).decode("ascii")
        return f"{self.current}{SEPARATOR}{token}"

    def decrypt(self, stored: str) -> str:
        kid, sep, token = stored.partition(SEPARATOR)
        if not sep or kid not in self.keys:
            raise ImproperlyConfigured(
                f"an encrypted value uses key {kid!r}, which is not in FIELD_ENCRYPTION_KEYS"
            )
        try:
            return self.keys[kid].decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise ImproperlyConfigured(
                f"an encrypted value does not verify under key {kid!r}"
            ) from None

    @staticmethod
    def key_id(stored: str) -> str:
        return stored.partition(SEPARATOR)[0]


@lru_cache(maxsize=4)
def _ring(spec: str) -> KeyRing:
    return KeyRing(spec)


def keyring() -> KeyRing:
    return _ring(settings.FIELD_ENCRYPTION_KEYS)


class EncryptedTextField(models.TextField):
    """A text field stored encrypted. It cannot be filtered or ordered on (by design)."""

    def get_prep_value(self, value: Any) -> Any:
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return keyring().encrypt(str(value))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return value
        return keyring().decrypt(value)


class EncryptedJSONField(models.TextField):
    """JSON stored encrypted (e.g. a check-in draft holding the private note)."""

    def get_prep_value(self, value: Any) -> Any:
        if value is None:
            return None
        return keyring().encrypt(json.dumps(value, separators=(",", ":"), ensure_ascii=False))

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> Any:
        if value is None or value == "":
            return None
        return json.loads(keyring().decrypt(value))

    def to_python(self, value: Any) -> Any:
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value
