"""Password rules beyond Django's: allow long passphrases but cap absurd lengths (ASVS 6.2.9)."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError


class MaximumLengthValidator:
    """Passwords of up to 128 characters are accepted; Argon2 hashes them all the same."""

    def __init__(self, max_length: int = 128) -> None:
        self.max_length = max_length

    def validate(self, password: str, user: Any = None) -> None:
        if len(password) > self.max_length:
            raise ValidationError(
                f"This password is longer than {self.max_length} characters.",
                code="password_too_long",
            )

    def get_help_text(self) -> str:
        return f"Your password can be up to {self.max_length} characters long; a passphrase is welcome."
