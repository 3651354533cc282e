"""The audit trail is append-only, hash-chained and verifiable (SECURITY.md REQ-AU1, §1.6).

These run on the configured database: SQLite by default, PostgreSQL with
``DATABASE_URL=postgres://… python -m pytest tests/web/test_audit_chain.py`` (both are run before
each release; docs/security.md).
"""

from __future__ import annotations

import io
import itertools
import json

import pytest
from django.core.management import ManagementUtility, call_command
from django.core.management.base import CommandError
from django.db import DatabaseError, connection, transaction

from alliance_web.audit.migrations import _triggers
from alliance_web.audit.models import Action, AuditEvent, ChainHead, MaintenanceWindow, Outcome
from alliance_web.audit.trail import Actor, ChainBroken, record, record_many, verify_chain


@pytest.fixture
def trail(db):
    """Five events of different shapes."""
    actor = Actor(role="therapist", user_id=7, username="therapist_a", practice_id=1)
    record(actor, Action.READ, "client", "c1", "c1")
    record_many(actor, Action.READ, "client", [("c2", "c2"), ("c3", "c3")], purpose="caseload")
    record(Actor(role="anonymous"), Action.EXECUTE, "login", outcome=Outcome.DENY)
    record(Actor.system("scheduler", 1), Action.CREATE, "checkin", "k1", "c1", detail={"n": 1})
    return list(AuditEvent.objects.order_by("seq"))


def _tamper(sql: str, params=()):
    """Run ``sql`` with the append-only protection lifted, then put it back (what an attacker with
    the database owner's rights could do)."""
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("DROP TRIGGER IF EXISTS audit_no_update")
            cursor.execute(_triggers.SQLITE_DROP_DELETE)
            cursor.execute(sql, params)
            cursor.execute(_triggers.SQLITE_UPDATE)
            cursor.execute(_triggers.SQLITE_DELETE)
        elif connection.vendor == "postgresql":
            cursor.execute("ALTER TABLE audit_auditevent DISABLE TRIGGER audit_no_update_delete")
            cursor.execute(sql, params)
            cursor.execute("ALTER TABLE audit_auditevent ENABLE TRIGGER audit_no_update_delete")
        else:  # pragma: no cover
            pytest.skip(f"no trigger handling for {connection.vendor}")


def test_an_untouched_trail_verifies_and_the_command_says_how_many(trail):
    assert verify_chain() == 5
    out = io.StringIO()
    call_command("verify_audit", stdout=out)
    assert "5 events" in out.getvalue()
    out = io.StringIO()
    call_command("verify_audit", "--json", stdout=out)
    assert json.loads(out.getvalue())["ok"] is True


def test_each_event_hashes_its_content_and_the_one_before(trail):
    for before, after in itertools.pairwise(trail):
        assert after.prev_hash == before.hash
        assert after.compute_hash() == after.hash
    assert ChainHead.objects.get(id=1).hash == trail[-1].hash


@pytest.mark.audit_tamper
@pytest.mark.parametrize(
    ("sql", "seq", "reason"),
    [
        ("UPDATE audit_auditevent SET username = 'mallory' WHERE seq = 2", 2, "altered"),
        ("UPDATE audit_auditevent SET outcome = 'success' WHERE seq = 4", 4, "altered"),
        ("UPDATE audit_auditevent SET recorded = recorded WHERE seq = 1; ", None, None),
        ("DELETE FROM audit_auditevent WHERE seq = 3", 4, "missing"),
        ("DELETE FROM audit_auditevent WHERE seq = 5", 4, "removed"),
    ],
    ids=["username", "outcome", "no-op", "middle-row-deleted", "last-row-deleted"],
)
def test_tampering_with_a_row_is_detected_and_located(trail, sql, seq, reason):
    _tamper(sql.rstrip("; "))
    if seq is None:  # rewriting a value with itself changes nothing
        assert verify_chain() == 5
        return
    with pytest.raises(ChainBroken) as caught:
        verify_chain()
    assert caught.value.seq == seq
    assert reason in caught.value.reason
    with pytest.raises(CommandError) as failed:
        call_command("verify_audit")
    assert failed.value.returncode == 1
    assert f"event {seq}" in str(failed.value)


@pytest.mark.audit_tamper
def test_a_recomputed_hash_breaks_the_link_to_the_next_event(trail):
    """Rewriting a row *and* its hash still fails: the next event names the old hash."""
    victim = trail[1]
    victim.username = "mallory"
    _tamper(
        "UPDATE audit_auditevent SET username = %s, hash = %s WHERE seq = %s",
        ["mallory", victim.compute_hash(), victim.seq],
    )
    with pytest.raises(ChainBroken) as caught:
        verify_chain()
    assert caught.value.seq == 3
    assert "prev_hash" in caught.value.reason


@pytest.mark.audit_tamper
def test_the_command_exits_with_status_1_on_tampering(trail, capsys):
    _tamper("UPDATE audit_auditevent SET role = 'admin' WHERE seq = 1")
    with pytest.raises(SystemExit) as exited:
        ManagementUtility(["alliance manage", "verify_audit"]).execute()
    assert exited.value.code == 1
    assert "event 1" in capsys.readouterr().err


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE audit_auditevent SET username = 'mallory'",
        "UPDATE audit_auditevent SET hash = prev_hash WHERE seq = 1",
        "DELETE FROM audit_auditevent",
        "DELETE FROM audit_auditevent WHERE seq = 1",
    ],
)
def test_the_database_refuses_update_and_delete(trail, statement):
    with (
        pytest.raises(DatabaseError) as refused,
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(statement)
    assert "append-only" in str(refused.value)
    assert AuditEvent.objects.count() == 5
    assert verify_chain() == 5


def test_the_orm_cannot_update_or_delete_either(trail):
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=1).update(username="mallory")
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=1).delete()
    event = AuditEvent.objects.get(seq=2)
    event.username = "mallory"
    with pytest.raises(DatabaseError), transaction.atomic():
        event.save()
    assert verify_chain() == 5


@pytest.mark.audit_tamper
def test_delete_is_possible_only_in_an_open_maintenance_window(trail):
    with transaction.atomic():
        MaintenanceWindow.objects.create(reason="retention: events older than 10 years")
        AuditEvent.objects.filter(seq=1).delete()
        MaintenanceWindow.objects.all().delete()
    assert AuditEvent.objects.count() == 4
    with pytest.raises(DatabaseError), transaction.atomic():
        AuditEvent.objects.filter(seq=2).delete()


def test_an_audit_row_holds_no_free_text_values(db, therapist_a, episode_of_a):
    """Detail is codes and counts: the goal text and the name never reach the trail."""
    from alliance_web.care import services

    services.set_goal(therapist_a, episode_of_a, 1, "Run a 5k with my sister Marguerite")
    services.add_private_note(therapist_a, episode_of_a, "Worried about her marriage to Étienne")
    dump = json.dumps(
        [
            {
                f: str(getattr(e, f))
                for f in ("username", "entity_type", "entity_id", "purpose", "detail")
            }
            for e in AuditEvent.objects.all()
        ]
    )
    for secret in ("Marguerite", "Étienne", "marriage", "Sam"):
        assert secret not in dump


def test_recorded_times_are_utc(trail):
    assert all(e.recorded.utcoffset().total_seconds() == 0 for e in trail)


def test_an_unknown_action_is_refused(db):
    with pytest.raises(ValueError):
        record(Actor(role="system"), "X", "client")
