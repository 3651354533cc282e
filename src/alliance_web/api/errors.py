"""Errors as clear JSON: ``{"status", "code", "detail", "fields"}`` for every refusal.

``detail`` says what went wrong and what to do; ``fields`` maps an input field to its messages
(only for invalid input). Service refusals (:class:`~alliance_web.care.services.ServiceError`)
become 400s with the service's own message; unexpected errors never leak a traceback.
"""

from __future__ import annotations

import logging
from typing import Any

from django.core.exceptions import PermissionDenied
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from alliance_web.care.services import CheckInClosed, CheckInInvalid, ServiceError

log = logging.getLogger(__name__)


class ApiError(exceptions.APIException):
    """A refusal with its own status and code: ``raise ApiError(409, "conflict", "…")``."""

    def __init__(
        self,
        status_code: int,
        code: str,
        detail: str,
        fields: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail=detail, code=code)
        self.status_code = status_code
        self.code = code
        self.fields = fields or {}
        self.headers = headers or {}  # e.g. Retry-After on a 429


def _flatten(data: Any, prefix: str = "") -> dict[str, list[str]]:
    """DRF's nested error dicts as ``{"a.b": ["message"]}``."""
    out: dict[str, list[str]] = {}
    if isinstance(data, dict):
        for key, value in data.items():
            name = f"{prefix}.{key}" if prefix else str(key)
            out.update(_flatten(value, name))
    elif isinstance(data, list):
        if all(not isinstance(v, dict | list) for v in data):
            out[prefix or "non_field_errors"] = [str(v) for v in data]
        else:
            for i, value in enumerate(data):
                out.update(_flatten(value, f"{prefix}.{i}" if prefix else str(i)))
    else:
        out[prefix or "non_field_errors"] = [str(data)]
    return out


def body(status_code: int, code: str, detail: str, fields: dict[str, Any] | None = None) -> dict:
    out: dict[str, Any] = {"status": status_code, "code": code, "detail": detail}
    if fields:
        out["fields"] = fields
    return out


def handle(exc: Exception, context: dict[str, Any]) -> Response | None:
    """DRF exception handler for the REST API."""
    if isinstance(exc, ApiError):
        return Response(
            body(exc.status_code, exc.code, str(exc.detail), exc.fields),
            exc.status_code,
            headers=exc.headers or None,
        )
    if isinstance(exc, CheckInInvalid):
        fields = {k: [v] for k, v in exc.errors.items()}
        return Response(
            body(400, "invalid", "Some answers cannot be accepted; see fields.", fields), 400
        )
    if isinstance(exc, CheckInClosed):
        return Response(body(409, "closed", str(exc)), 409)
    if isinstance(exc, ServiceError):
        return Response(body(400, "refused", str(exc)), 400)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound("Not found (or not yours to see).")
    elif isinstance(exc, PermissionDenied):
        exc = exceptions.PermissionDenied()
    response = drf_exception_handler(exc, context)
    if response is None:
        log.exception("unexpected API error (%s)", type(exc).__name__)
        return Response(
            body(500, "server_error", "Something went wrong on our side; nothing was changed."),
            status.HTTP_500_INTERNAL_SERVER_ERROR,
        )
    if isinstance(exc, exceptions.ValidationError):
        fields = _flatten(exc.detail)
        response.data = body(400, "invalid", "The request has invalid fields; see fields.", fields)
        return response
    detail = exc.detail if isinstance(exc, exceptions.APIException) else str(exc)
    code = exc.get_codes() if isinstance(exc, exceptions.APIException) else "error"
    if isinstance(detail, dict | list):
        response.data = body(response.status_code, "invalid", "See fields.", _flatten(detail))
    else:
        response.data = body(response.status_code, str(code), str(detail))
    return response
