"""Per-request facts for the audit trail and the logs, without touching the database."""

from __future__ import annotations

import contextvars
import logging
from dataclasses import dataclass


@dataclass(frozen=True)
class RequestMeta:
    request_id: str = ""
    ip: str | None = None
    user_agent: str = ""
    host: str = ""


_meta: contextvars.ContextVar[RequestMeta] = contextvars.ContextVar(
    "alliance_audit_meta",
    default=RequestMeta(),  # noqa: B039 - a frozen dataclass, immutable
)


def current_meta() -> RequestMeta:
    return _meta.get()


def set_meta(meta: RequestMeta) -> contextvars.Token[RequestMeta]:
    return _meta.set(meta)


def reset_meta(token: contextvars.Token[RequestMeta]) -> None:
    _meta.reset(token)


class RequestIdFilter(logging.Filter):
    """Adds the current request id to log records (never the path, which may hold a token)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = current_meta().request_id or "-"
        return True
