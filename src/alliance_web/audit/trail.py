"""Writing and checking the audit trail.

Call :func:`record` (or :func:`record_many` for a list page) inside the transaction that reads or
changes client data; it appends to the hash chain under a row lock on :class:`ChainHead`, so
concurrent writers queue rather than fork the chain.
"""

from __future__ import annotations

import contextvars
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from alliance import __version__
from alliance_web.audit.context import RequestMeta, current_meta
from alliance_web.audit.models import GENESIS, Action, AuditEvent, ChainHead, Outcome

__all__ = [
    "Actor",
    "ChainBroken",
    "RequestMeta",
    "batch",
    "current_meta",
    "record",
    "record_many",
    "verify_chain",
]


@dataclass(frozen=True)
class Actor:
    """Who did it: a staff user, a client (through a check-in link) or the system itself."""

    role: str
    user_id: int | None = None
    username: str = ""
    practice_id: int | None = None

    @classmethod
    def of(cls, user: Any) -> Actor:
        if user is None or not getattr(user, "is_authenticated", False):
            return cls(role="anonymous")
        return cls(
            role=getattr(user, "role", "") or "staff",
            user_id=user.pk,
            username=user.get_username(),
            practice_id=getattr(user, "practice_id", None),
        )

    @classmethod
    def client(cls, client: Any) -> Actor:
        return cls(
            role="client", username=f"client:{client.public_id}", practice_id=client.practice_id
        )

    @classmethod
    def system(cls, what: str, practice_id: int | None = None) -> Actor:
        return cls(role="system", username=what, practice_id=practice_id)


@dataclass
class _Row:
    action: str
    entity_type: str
    entity_id: str = ""
    patient_id: str = ""
    outcome: str = Outcome.SUCCESS
    purpose: str = ""
    detail: dict[str, Any] = field(default_factory=dict)


# While a batch is open (see :func:`batch`), rows wait here and are chained in one go at its end.
_pending: contextvars.ContextVar[list[tuple[Actor, _Row, RequestMeta]] | None] = (
    contextvars.ContextVar("alliance_audit_batch", default=None)
)


@contextmanager
def batch() -> Iterator[None]:
    """Write every audit row recorded inside the block in one append at its end.

    Use it inside a transaction whose work is long (a check-in submission scores, computes
    signals and refreshes the snapshot): the chain head is then locked only for the final insert,
    not for the whole transaction, so concurrent submissions do not queue behind each other. The
    rows are still written in the same transaction as the change they record.
    """
    if _pending.get() is not None:  # nested: the outer batch writes
        yield
        return
    token = _pending.set([])
    try:
        yield
        rows = _pending.get() or []
    finally:
        _pending.reset(token)
    if rows:
        _write(rows)


def _append(actor: Actor, rows: list[_Row]) -> None:
    meta = current_meta()
    buffer = _pending.get()
    if buffer is not None:
        buffer.extend((actor, row, meta) for row in rows)
        return
    _write([(actor, row, meta) for row in rows])


def _write(rows: list[tuple[Actor, _Row, RequestMeta]]) -> list[AuditEvent]:
    now = timezone.now()
    with transaction.atomic():
        head, _ = ChainHead.objects.select_for_update().get_or_create(
            id=1, defaults={"hash": GENESIS}
        )
        events = []
        prev, seq = head.hash, head.seq
        for actor, row, meta in rows:
            seq += 1
            event = AuditEvent(
                seq=seq,
                recorded=now,
                action=row.action,
                outcome=row.outcome,
                user_id=actor.user_id,
                username=actor.username,
                role=actor.role,
                practice_id=actor.practice_id,
                ip=meta.ip,
                user_agent=meta.user_agent[:200],
                source=f"alliance/{__version__}@{meta.host}"[:100],
                entity_type=row.entity_type,
                entity_id=str(row.entity_id),
                patient_id=str(row.patient_id or ""),
                purpose=row.purpose,
                request_id=meta.request_id,
                detail=row.detail,
                prev_hash=prev,
            )
            event.hash = event.compute_hash()
            prev = event.hash
            events.append(event)
        AuditEvent.objects.bulk_create(events)
        ChainHead.objects.filter(id=1).update(seq=seq, hash=prev)
    return events


def record(
    actor: Actor,
    action: str,
    entity_type: str,
    entity_id: Any = "",
    patient_id: Any = "",
    *,
    outcome: str = Outcome.SUCCESS,
    purpose: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one audit event. ``patient_id`` is the client's public id (or empty)."""
    if action not in Action.values:
        raise ValueError(f"unknown audit action {action!r}")
    row = _Row(
        action,
        entity_type,
        str(entity_id or ""),
        str(patient_id or ""),
        outcome,
        purpose,
        detail or {},
    )
    _append(actor, [row])


def record_many(
    actor: Actor,
    action: str,
    entity_type: str,
    items: Iterable[tuple[Any, Any]],
    *,
    purpose: str = "",
    detail: dict[str, Any] | None = None,
) -> None:
    """One event per (entity_id, patient_id): e.g. each client shown on a caseload page."""
    rows = [
        _Row(action, entity_type, str(e), str(p or ""), Outcome.SUCCESS, purpose, detail or {})
        for e, p in items
    ]
    if rows:
        _append(actor, rows)


class ChainBroken(Exception):
    def __init__(self, seq: int, reason: str) -> None:
        super().__init__(f"audit chain broken at event {seq}: {reason}")
        self.seq = seq
        self.reason = reason


def _iter_events(batch: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        chunk = list(AuditEvent.objects.filter(seq__gt=last).order_by("seq")[:batch])
        if not chunk:
            return
        yield from chunk
        last = chunk[-1].seq


def verify_chain() -> int:
    """Recompute every hash; return the number of events, or raise :class:`ChainBroken`."""
    prev, expected_seq, count = GENESIS, 1, 0
    for event in _iter_events():
        if event.seq != expected_seq:
            raise ChainBroken(event.seq, f"expected event {expected_seq} (a row is missing)")
        if event.prev_hash != prev:
            raise ChainBroken(event.seq, "prev_hash does not match the previous event")
        if event.compute_hash() != event.hash:
            raise ChainBroken(event.seq, "content does not match its hash (the row was altered)")
        prev, expected_seq, count = event.hash, expected_seq + 1, count + 1
    head = ChainHead.objects.filter(id=1).first()
    if head is not None and (head.seq != count or head.hash != prev):
        raise ChainBroken(count, "the chain head does not match the last event (rows were removed)")
    return count
