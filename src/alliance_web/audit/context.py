"""Per-request facts for the audit trail and the logs, without touching the database."""

from __future__ import annotations

import contextvars
import logging
import re
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


# Check-in link tokens live in paths (/c/<token>/); API tokens in Authorization headers; invitation
# and backup codes are never logged by the app. Anything that looks like them is masked.
_SECRETS = re.compile(
    r"(?P<a>/c/)[A-Za-z0-9_-]{10,100}|(?P<b>[Bb]earer\s+)\S+|(?P<c>alli_)[A-Za-z0-9_-]+"
)


def redact(text: str) -> str:
    return _SECRETS.sub(
        lambda m: (m.group("a") or m.group("b") or m.group("c")) + "[redacted]", text
    )


class RedactFilter(logging.Filter):
    """Masks check-in tokens and bearer tokens in log messages (ASVS 16.2.5, 14.2.1): Django's
    request logger writes the path of a failed request, and a check-in path holds a token."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is passed on untouched
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True
