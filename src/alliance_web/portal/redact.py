"""Keep check-in tokens out of the logs (SECURITY.md ASVS 16.2.5).

Django's own loggers write request paths (``Forbidden (CSRF token missing.): /c/<token>/``,
``Not Found: …``); a check-in token in a path is a credential. :class:`RedactCheckInTokens` rewrites
such records before any handler sees them; :func:`install` attaches it to the loggers that write
paths (called from the portal's ``AppConfig.ready``).
"""

from __future__ import annotations

import logging
import re

PATH_LOGGERS = (
    "django.request",
    "django.server",
    "django.security.csrf",
    "django.security",
    "django.channels",
)
_TOKEN = re.compile(r"/c/(?!tablet/)[A-Za-z0-9_-]{10,100}")
REDACTED = "/c/[token]"


def redact(text: str) -> str:
    return _TOKEN.sub(REDACTED, text)


class RedactCheckInTokens(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a broken format string is not ours to fix here
            return True
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, ()
        return True


def install() -> None:
    for name in PATH_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactCheckInTokens) for f in logger.filters):
            logger.addFilter(RedactCheckInTokens())
