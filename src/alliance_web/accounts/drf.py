"""Cookie sessions for the REST and FHIR APIs only once two-factor sign-in is done.

The two-factor middleware leaves ``/api/`` and ``/fhir/`` open because API clients authenticate
with bearer tokens; DRF's own ``SessionAuthentication`` would then accept a session that signed in
with a password but never passed the second factor. This class refuses such a session (as if no
one were signed in), with the same exemption for demo accounts as the middleware.
"""

from __future__ import annotations

from typing import Any

from rest_framework.authentication import SessionAuthentication

from alliance_web.accounts.middleware import needs_second_factor


class VerifiedSessionAuthentication(SessionAuthentication):
    def authenticate(self, request: Any) -> tuple[Any, None] | None:
        result = super().authenticate(request)
        if result is None:
            return None
        if needs_second_factor(request._request):
            return None
        return result
