"""FHIR plumbing shared by the facade: JSON in and out as ``application/fhir+json``, errors as
``OperationOutcome`` resources with a diagnostic that says what to fix."""

from __future__ import annotations

import json
import logging
from typing import Any

from django.conf import settings
from django.http import Http404
from rest_framework import exceptions
from rest_framework.negotiation import BaseContentNegotiation
from rest_framework.parsers import BaseParser
from rest_framework.renderers import BaseRenderer
from rest_framework.response import Response

from alliance_web.api.errors import ApiError

log = logging.getLogger(__name__)

FHIR_JSON = "application/fhir+json"
MAX_BODY = 2_621_440  # the same limit as Django's DATA_UPLOAD_MAX_MEMORY_SIZE default
MAX_DEPTH = 64

# HTTP status → OperationOutcome issue type (FHIR R4 IssueType value set).
ISSUE_TYPE = {
    400: "invalid",
    401: "login",
    403: "forbidden",
    404: "not-found",
    405: "not-supported",
    406: "not-supported",
    409: "conflict",
    410: "deleted",
    413: "too-costly",
    415: "not-supported",
    422: "processing",
    500: "exception",
}


class FhirError(Exception):
    """A refusal answered with an OperationOutcome."""

    def __init__(
        self,
        status: int,
        diagnostics: str,
        *,
        code: str | None = None,
        expression: list[str] | None = None,
        issues: list[dict[str, Any]] | None = None,
    ) -> None:
        super().__init__(diagnostics)
        self.status = status
        self.diagnostics = diagnostics
        self.code = code or ISSUE_TYPE.get(status, "processing")
        self.expression = expression or []
        self.issues = issues or []


def issue(
    severity: str, code: str, diagnostics: str, expression: list[str] | None = None
) -> dict[str, Any]:
    out: dict[str, Any] = {"severity": severity, "code": code, "diagnostics": diagnostics}
    if expression:
        out["expression"] = expression
    return out


def operation_outcome(issues: list[dict[str, Any]]) -> dict[str, Any]:
    return {"resourceType": "OperationOutcome", "issue": issues}


def outcome_response(status: int, issues: list[dict[str, Any]]) -> Response:
    return Response(operation_outcome(issues), status=status)


class FhirJSONRenderer(BaseRenderer):
    media_type = FHIR_JSON
    format = "json"
    charset = "utf-8"

    def render(
        self, data: Any, accepted_media_type: Any = None, renderer_context: Any = None
    ) -> bytes:
        if data is None:
            return b""
        return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


class AlwaysFhirJSON(BaseContentNegotiation):
    """FHIR servers answer JSON as ``application/fhir+json`` whatever the Accept header says
    (this facade has no XML)."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        content_type = (request.content_type or "").split(";")[0].strip().lower()
        for parser in parsers:
            if content_type in parser.media_types:
                return parser
        return None

    def select_renderer(self, request: Any, renderers: Any, format_suffix: Any = None) -> Any:
        renderer = renderers[0]
        return renderer, renderer.media_type


def _depth(value: Any, level: int = 0) -> int:
    if level > MAX_DEPTH:
        return level
    if isinstance(value, dict):
        return max((_depth(v, level + 1) for v in value.values()), default=level)
    if isinstance(value, list):
        return max((_depth(v, level + 1) for v in value), default=level)
    return level


class SafeJSONParser(BaseParser):
    """JSON with a size and nesting limit; strict (no NaN/Infinity)."""

    media_type = "application/json"
    media_types = ("application/json",)

    def parse(self, stream: Any, media_type: Any = None, parser_context: Any = None) -> Any:
        request = (parser_context or {}).get("request")
        limit = getattr(settings, "DATA_UPLOAD_MAX_MEMORY_SIZE", None) or MAX_BODY
        raw = stream.read(limit + 1) if stream is not None else b""
        if len(raw) > limit:
            raise ApiError(413, "too_large", f"The body is larger than {limit} bytes.")
        del request

        def no_constants(name: str) -> Any:
            raise ValueError(f"{name} is not valid JSON")

        try:
            data = json.loads(raw.decode("utf-8"), parse_constant=no_constants)
        except (ValueError, UnicodeDecodeError) as exc:
            raise exceptions.ParseError(f"The body is not valid JSON: {exc}") from None
        except RecursionError:
            raise exceptions.ParseError("The body is nested too deeply.") from None
        if _depth(data) > MAX_DEPTH:
            raise exceptions.ParseError(f"The body is nested more than {MAX_DEPTH} levels deep.")
        return data


class FhirJSONParser(SafeJSONParser):
    media_type = FHIR_JSON
    media_types = (FHIR_JSON, "application/json", "application/json+fhir")


def handle(exc: Exception, context: dict[str, Any]) -> Response:
    """Exception handler of the FHIR views: every error is an OperationOutcome."""
    headers: dict[str, str] = {}
    if isinstance(exc, FhirError):
        issues = [issue("error", exc.code, exc.diagnostics, exc.expression), *exc.issues]
        return Response(operation_outcome(issues), status=exc.status)
    if isinstance(exc, Http404):
        return outcome_response(
            404, [issue("error", "not-found", "Not found (or not yours to see).")]
        )
    if isinstance(exc, ApiError):
        return outcome_response(
            exc.status_code,
            [issue("error", ISSUE_TYPE.get(exc.status_code, "processing"), str(exc.detail))],
        )
    if isinstance(exc, exceptions.APIException):
        status = exc.status_code
        if isinstance(exc, exceptions.NotAuthenticated | exceptions.AuthenticationFailed):
            headers["WWW-Authenticate"] = "Bearer"
            status = 401
        detail = exc.detail
        text = detail if isinstance(detail, str) else json.dumps(detail)
        response = outcome_response(
            status, [issue("error", ISSUE_TYPE.get(status, "processing"), str(text))]
        )
        for k, v in headers.items():
            response[k] = v
        return response
    log.exception("unexpected FHIR error (%s)", type(exc).__name__)
    return outcome_response(
        500, [issue("fatal", "exception", "Something went wrong on our side; nothing was stored.")]
    )
