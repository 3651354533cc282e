"""Shared test set-up.

Engine tests need nothing from here. For web tests, the audit table refuses DELETE at the
database level; Django's test flush (after transactional tests) deletes every row on SQLite, so the
flush lifts the trigger for its own statements and restores it afterwards. PostgreSQL's flush uses
TRUNCATE, which row triggers do not see.
"""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _audit_trigger_aware_flush():
    try:
        from django.db.backends.sqlite3.operations import DatabaseOperations
    except ImportError:  # Django not installed: engine-only run
        yield
        return
    from alliance_web.audit.migrations import _triggers

    original = DatabaseOperations.sql_flush

    def sql_flush(self, style, tables, *, reset_sequences=False, allow_cascade=False):
        statements = original(
            self, style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
        )
        if "audit_auditevent" not in tables:
            return statements
        return [_triggers.SQLITE_DROP_DELETE, *statements, _triggers.SQLITE_DELETE]

    DatabaseOperations.sql_flush = sql_flush
    yield
    DatabaseOperations.sql_flush = original


_DB_FIXTURES = (
    "django_db_serialized_rollback",
    "django_db_reset_sequences",
    "transactional_db",
    "live_server",
    "db",
)


@pytest.fixture(autouse=True)
def _audit_chain_verifies(request):
    """The audit chain verifies after every test that used the database (SECURITY.md REQ-AU1):
    whatever a test did through the app, the trail it left is intact. Tests that tamper with the
    trail on purpose are marked ``audit_tamper``.

    The check runs in this fixture's teardown, before the database fixture rolls back (this
    fixture asks for the test's database fixture itself, so that one is torn down after it).
    """
    names = set(request.fixturenames)
    marker = request.node.get_closest_marker("django_db")
    if request.node.get_closest_marker("audit_tamper") or not (names & set(_DB_FIXTURES) or marker):
        yield
        return
    wanted = next((n for n in _DB_FIXTURES if n in names), None)
    if wanted in (None, "live_server"):
        transactional = wanted == "live_server" or bool(marker and marker.kwargs.get("transaction"))
        wanted = "transactional_db" if transactional else "db"
    request.getfixturevalue(wanted)
    yield
    from django.db import connections

    from alliance_web.audit.trail import verify_chain

    if any("cursor" in vars(c) for c in connections.all(initialized_only=True)):
        return  # the test replaced the database cursor (a simulated outage) for its whole run
    verify_chain()
