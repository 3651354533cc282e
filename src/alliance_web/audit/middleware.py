"""Request id, client address and cache headers for every request."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, JsonResponse

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


MAX_JSON_DEPTH = 64


def _too_deep(value: object, limit: int) -> bool:
    stack: list[tuple[object, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth > limit:
                return True
            children = item.values() if isinstance(item, dict) else item
            stack.extend((child, depth + 1) for child in children)
    return False


class JsonDepthMiddleware:
    """A JSON body nested deeper than 64 levels is refused with 400 before any view parses it
    (SECURITY.md 4a "deeply nested JSON"): Python's parser raises RecursionError at about 1000
    levels, which DRF would turn into a 500, and deep structures cost memory and time."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.method in ("POST", "PUT", "PATCH") and "json" in request.content_type:
            try:
                body = request.body
            except Exception:  # noqa: BLE001 - an oversized body is refused by Django itself below
                return self.get_response(request)
            try:
                parsed = json.loads(body) if body else None
            except RecursionError:
                return _refuse_json()
            except ValueError:
                parsed = None  # malformed: the view says so in its own words
            if parsed is not None and _too_deep(parsed, MAX_JSON_DEPTH):
                return _refuse_json()
        return self.get_response(request)


def _refuse_json() -> HttpResponse:
    return JsonResponse(
        {"detail": f"The JSON body is nested more than {MAX_JSON_DEPTH} levels deep."}, status=400
    )
