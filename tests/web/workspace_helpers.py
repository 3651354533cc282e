"""Helpers and fixtures shared by the workspace tests (not a test module).

Import the fixtures into a test module to use them::

    from tests.web.workspace_helpers import sam, robin, priya, foreign  # noqa: F401

People (from ``tests/web/conftest.py``): therapist_a treats Sam and Robin; therapist_b treats Priya;
the supervisor sees all three (while they consent to supervision); the practice admin sees none;
the outsider (practice B) treats Kim.
"""

from __future__ import annotations

import base64
import re
import zlib

import pytest

from alliance_web.audit.models import AuditEvent, ChainHead, Outcome
from alliance_web.workspace import sample

PROBES = [
    "<script>alert(1)</script>",
    '"><img src=x onerror=alert(1)>',
    "<svg onload=alert(1)>",
    "javascript:alert(1)",
]
XSS_RAW = ("<script>alert(1)</script>", "<img src=x onerror", "<svg onload")


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """Persona accounts hash their password once each; MD5 keeps that instant in tests (the
    production hasher, Argon2id, is tested with sign-in)."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def sam(therapist_a):
    """Off track with a safety alert, an unrepaired rupture and a private note; 6 sessions."""
    return sample.add_client(
        therapist_a, "Sam", course="off_track", sessions=6, safety=True, rupture=True, seed=1
    )


@pytest.fixture
def robin(therapist_a):
    """Recovered, a repaired rupture; 8 sessions; no alerts."""
    return sample.add_client(
        therapist_a, "Robin", course="recovered", sessions=8, rupture=True, seed=2, note=None
    )


@pytest.fixture
def priya(therapist_b):
    """therapist_b's client, at risk."""
    return sample.add_client(therapist_b, "Priya", course="at_risk", sessions=5, seed=3)


@pytest.fixture
def foreign(outsider):
    """A client of another practice."""
    return sample.add_client(outsider, "Kim", course="off_track", sessions=4, safety=True, seed=4)


def audit_head() -> int:
    head = ChainHead.objects.filter(id=1).first()
    return head.seq if head else 0


def audit_since(seq: int, **filters):
    return AuditEvent.objects.filter(seq__gt=seq, **filters)


def denied_since(seq: int) -> bool:
    return audit_since(seq, outcome=Outcome.DENY).exists()


def assert_escaped(html: str, probe: str) -> None:
    """The probe is on the page only in its escaped form."""
    for raw in XSS_RAW:
        if raw in probe:
            assert raw not in html, f"{raw!r} reached the page unescaped"
    if "<" in probe:
        assert probe.replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;") in html
    assert 'href="javascript:' not in html


def pdf_text(data: bytes) -> str:
    """The content streams of a reportlab PDF, decoded (ASCII85, then Flate) so that the text of
    its ``Tj`` operators can be searched."""
    out = []
    for match in re.finditer(rb"stream\r?\n(.*?)\r?\n?endstream", data, re.S):
        chunk = match.group(1).strip()
        try:
            if chunk.endswith(b"~>"):
                chunk = base64.a85decode(chunk[:-2])
            out.append(zlib.decompress(chunk).decode("latin-1"))
        except (ValueError, zlib.error):
            out.append(match.group(1).decode("latin-1"))
    return "\n".join(out)
