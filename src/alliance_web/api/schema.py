"""The OpenAPI 3 document: every operation lists its error responses, its allow-listed filters
and ``ordering`` values, and the ``Idempotency-Key`` header where it applies."""

from __future__ import annotations

from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter

from alliance_web.api.serializers import ErrorSerializer

_ERRORS = {
    "400": "Invalid input: `fields` says what to fix.",
    "401": "No credentials, or a revoked token.",
    "403": "Your role may not do this.",
    "404": "Not found, or not yours to see.",
    "409": "The object is in a state that does not allow this.",
    "422": "The Idempotency-Key was already used for a different request.",
    "429": "Too many exports in the last hour (ALLIANCE_EXPORT_LIMIT_PER_HOUR); "
    "`Retry-After` gives the seconds to wait.",
}
_KINDS = {"uuid": OpenApiTypes.UUID, "date": OpenApiTypes.DATE, "int": OpenApiTypes.INT}


class AllianceAutoSchema(AutoSchema):
    def get_override_parameters(self) -> list[Any]:
        params = list(super().get_override_parameters())
        view = self.view
        if self._is_list_view() and hasattr(view, "filters"):
            for f in view.filters:
                params.append(
                    OpenApiParameter(
                        f.param,
                        _KINDS.get(f.kind, OpenApiTypes.STR),
                        OpenApiParameter.QUERY,
                        enum=list(f.choices) or None,
                        description=f.description or None,
                    )
                )
            if getattr(view, "orderings", None):
                params.append(
                    OpenApiParameter(
                        "ordering",
                        OpenApiTypes.STR,
                        OpenApiParameter.QUERY,
                        enum=view.ordering_choices(),
                        description=f"Sort order (default {view.default_ordering}).",
                    )
                )
        if self.method == "POST" and getattr(self._view_method(), "idempotent", False):
            params.append(
                OpenApiParameter(
                    "Idempotency-Key",
                    OpenApiTypes.STR,
                    OpenApiParameter.HEADER,
                    description="Makes a retry safe: the first response is stored and replayed; "
                    "the same key with a different body is refused with 422.",
                )
            )
        return params

    def _view_method(self) -> Any:
        action = getattr(self.view, "action", None)
        return getattr(self.view, action, None) if action else None

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        codes = ["400", "401", "403", "404"] if self.method != "GET" else ["400", "401", "403"]
        if self.method == "GET" and not self._is_list_view():
            codes.append("404")
        if self.method == "POST":
            codes += ["409", "422"]
        if getattr(self.view, "export_limited", False):  # audit.ratelimit (ASVS 2.4.1)
            codes.append("429")
        for code in codes:
            if code not in responses:
                responses[code] = self._get_response_for_code(ErrorSerializer, code)
                responses[code]["description"] = _ERRORS[code]
        return responses


class BearerTokenScheme(OpenApiAuthenticationExtension):
    target_class = "alliance_web.api.auth.BearerTokenAuthentication"
    name = "bearerAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A practice API token (`alliance manage api_token issue USER`).",
        }


class VerifiedSessionScheme(OpenApiAuthenticationExtension):
    target_class = "alliance_web.api.auth.VerifiedSessionAuthentication"
    name = "cookieAuth"

    def get_security_definition(self, auto_schema: Any) -> dict[str, Any]:
        return {
            "type": "apiKey",
            "in": "cookie",
            "name": "sessionid",
            "description": "A signed-in session that has passed two-factor sign-in (plus the "
            "CSRF token for writes).",
        }
