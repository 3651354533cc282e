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


_DB_FIXTURES = {
    "db",
    "transactional_db",
    "django_db_reset_sequences",
    "django_db_serialized_rollback",
    "live_server",
}


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item):
    """The audit chain verifies after every test that used the database (SECURITY.md REQ-AU1):
    whatever a test did through the app, the trail it left is intact. Tests that tamper with the
    trail on purpose are marked ``audit_tamper``."""
    result = yield
    uses_db = bool(
        _DB_FIXTURES & set(getattr(item, "fixturenames", ()))
    ) or item.get_closest_marker("django_db")
    if uses_db and not item.get_closest_marker("audit_tamper"):
        from alliance_web.audit.trail import verify_chain

        verify_chain()
    return result
