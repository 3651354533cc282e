"""``Idempotency-Key`` for POSTs that create (draft-ietf-httpapi-idempotency-key-header).

A client that sends the header may retry the same request safely: the first successful response
is stored with a fingerprint of the request (method, path and body), in the **same transaction**
as the work itself, and replayed for every retry (with ``Idempotent-Replayed: true``). The same
key with a different request is refused with 422. Two concurrent requests with one key: the unique
constraint on (user, key) lets one commit; the other's work is rolled back and it replays the
winner's response. Failed requests store nothing, so they may be retried with the same key.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import wraps
from typing import Any

from django.db import IntegrityError, transaction
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.response import Response

from alliance_web.api.errors import ApiError
from alliance_web.api.models import IdempotencyRecord

HEADER = "Idempotency-Key"
MAX_KEY = 128


def fingerprint(request: Request) -> str:
    try:
        payload = json.dumps(request.data, sort_keys=True, separators=(",", ":"), default=str)
    except TypeError:
        payload = repr(request.data)
    raw = f"{request.method}\n{request.path}\n{payload}".encode()
    return hashlib.sha256(raw).hexdigest()


def _replay(record: IdempotencyRecord, digest: str, path: str) -> Response:
    if record.request_hash != digest or record.path != path:
        raise ApiError(
            422,
            "idempotency_key_reused",
            "This Idempotency-Key was already used for a different request; use a new key for a "
            "new request.",
        )
    response = Response(record.body, status=record.status_code)
    response["Idempotent-Replayed"] = "true"
    return response


def idempotent(method: Callable[..., Response]) -> Callable[..., Response]:
    """Wrap a viewset action that creates something."""

    @wraps(method)
    def wrapper(self: Any, request: Request, *args: Any, **kwargs: Any) -> Response:
        key = request.headers.get(HEADER)
        if key is None:
            return method(self, request, *args, **kwargs)
        if not 1 <= len(key) <= MAX_KEY or not key.isascii() or not key.isprintable():
            raise ApiError(
                400,
                "invalid",
                f"{HEADER} must be 1 to {MAX_KEY} printable ASCII characters (a UUID is ideal).",
                {HEADER: ["1 to 128 printable ASCII characters"]},
            )
        digest = fingerprint(request)
        earlier = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
        if earlier is not None:
            return _replay(earlier, digest, request.path)
        try:
            with transaction.atomic():
                response = method(self, request, *args, **kwargs)
                if 200 <= response.status_code < 300:
                    body = json.loads(JSONRenderer().render(response.data) or b"null")
                    IdempotencyRecord.objects.create(
                        user=request.user,
                        key=key,
                        method=request.method or "POST",
                        path=request.path[:300],
                        request_hash=digest,
                        status_code=response.status_code,
                        body=body,
                    )
        except IntegrityError:
            winner = IdempotencyRecord.objects.filter(user=request.user, key=key).first()
            if winner is None:
                raise
            return _replay(winner, digest, request.path)
        return response

    return wrapper
