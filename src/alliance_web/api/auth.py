"""``Authorization: Bearer <token>`` for the REST and FHIR APIs."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone
from rest_framework import authentication, exceptions

from alliance_web.api.models import ApiToken, hash_token

LAST_USED_RESOLUTION = timedelta(minutes=5)


class BearerTokenAuthentication(authentication.BaseAuthentication):
    keyword = "Bearer"

    def authenticate(self, request: Any) -> tuple[Any, ApiToken] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != "bearer":
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed("Empty bearer token.")
        token = ApiToken.objects.select_related("user").filter(key_hash=hash_token(raw)).first()
        if token is None or not token.active or not token.user.is_active:
            raise exceptions.AuthenticationFailed("Invalid or revoked token.")
        if token.user.practice_id != token.practice_id:
            raise exceptions.AuthenticationFailed("Token no longer matches the user's practice.")
        now = timezone.now()
        # "Last used" to the nearest few minutes: a write on every request would serialise reads.
        if token.last_used_at is None or now - token.last_used_at > LAST_USED_RESOLUTION:
            ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        return token.user, token

    def authenticate_header(self, request: Any) -> str:
        return self.keyword


class VerifiedSessionAuthentication(authentication.SessionAuthentication):
    """The signed-in browser session, but only after two-factor sign-in (REQ-AN1).

    The session middleware lets ``/api/`` and ``/fhir/`` through unverified (they answer in JSON,
    not with a redirect to the two-factor page), so the check happens here.
    """

    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        from alliance_web.accounts.middleware import needs_second_factor

        result = super().authenticate(request)
        if result is None:
            return None
        if needs_second_factor(request._request):
            raise exceptions.AuthenticationFailed(
                "Finish two-factor sign-in before using the API with this session."
            )
        return result
