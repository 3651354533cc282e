"""Request id, client address and cache headers for every request."""

from __future__ import annotations

import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

from alliance_web.audit.context import RequestMeta, reset_meta, set_meta


class RequestIdMiddleware:
    """Gives each request an id (echoed as ``X-Request-ID``) and records where it came from."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        request_id = uuid.uuid4().hex
        request.request_id = request_id  # type: ignore[attr-defined]
        token = set_meta(
            RequestMeta(
                request_id=request_id,
                ip=request.META.get("REMOTE_ADDR") or None,
                user_agent=request.META.get("HTTP_USER_AGENT", "")[:200],
                host=request.get_host()
                if request.META.get("HTTP_HOST") or request.META.get("SERVER_NAME")
                else "",
            )
        )
        try:
            response = self.get_response(request)
        finally:
            reset_meta(token)
        response["X-Request-ID"] = request_id
        return response


class NoStoreMiddleware:
    """Pages with client data must not be cached anywhere (ASVS 14.3.2): everything but static
    files and the health check gets ``Cache-Control: no-store``."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith("/static/") and "Cache-Control" not in response:
            response["Cache-Control"] = "no-store"
        return response
