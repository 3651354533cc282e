"""Importing historical scores from another system (SPEC C8): CSV in, a validation report first,
then all rows stored in one transaction — or none.

The CSV is long: one row per administration. A :class:`ColumnMapping` names the columns —
``client`` (the client's Alliance id), ``date`` (ISO date or date-time of the administration),
optionally ``instrument`` (or one fixed instrument for the whole file), ``session`` (session
number), ``total`` and item columns (``{"phq9_1": "Q1", …}``), and how the other system spells
instrument names (``{"PHQ-9": "phq9"}``).

With item answers a row is scored by the engine exactly as a check-in is (reverse keys, the
instrument's proration rule, bands, flags such as the PHQ-9 item-9 safety flag); a total given as
well must agree. With a total only, the total is checked against the instrument's range and its
severity band is looked up; the score's method is then :data:`METHOD_TOTAL_ONLY` (no item flags
can be known). Each stored row becomes a completed check-in (no link), its response and its score,
in the episode of care that covers the date.

Re-running an import is harmless: a row equal to a score already stored (client, instrument,
date, total) is reported as already present and skipped.
"""

from __future__ import annotations

import contextlib
import csv
import datetime as dt
import hashlib
import io
import json
import math
import uuid
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

import alliance as al
from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.care.access import Scope
from alliance_web.care.models import (
    CheckIn,
    CheckInKind,
    CheckInStatus,
    Client,
    Episode,
    Response,
    Score,
)

METHOD_TOTAL_ONLY = "imported_total"
MAX_ROWS = 50_000
MAX_BYTES = 10 * 1024 * 1024


class ImportRefused(Exception):
    """The file cannot be imported as it is; the report says why."""

    def __init__(self, report: ImportReport) -> None:
        super().__init__(f"{len(report.errors)} problem(s) in the file; nothing was imported")
        self.report = report


@dataclass(frozen=True)
class ColumnMapping:
    client: str = "client"
    date: str = "date"
    instrument: str | None = "instrument"
    session: str | None = None
    total: str | None = "total"
    items: dict[str, str] = field(default_factory=dict)
    instrument_names: dict[str, str] = field(default_factory=dict)
    fixed_instrument: str | None = None

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ColumnMapping:
        known = set(cls.__dataclass_fields__)
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown mapping key(s): {', '.join(unknown)}")
        return cls(**data)


@dataclass(frozen=True)
class RowProblem:
    line: int
    column: str
    message: str

    def as_dict(self) -> dict[str, Any]:
        return {"line": self.line, "column": self.column, "message": self.message}


@dataclass
class _Row:
    line: int
    client: Client
    episode: Episode
    instrument: str
    when: dt.datetime
    session: int | None
    answers: dict[str, float]
    result: Any  # alliance Score, or None for totals only
    total: float
    severity: str


@dataclass
class ImportReport:
    rows: int = 0
    ready: int = 0
    already_present: int = 0
    errors: list[RowProblem] = field(default_factory=list)
    warnings: list[RowProblem] = field(default_factory=list)
    by_instrument: dict[str, int] = field(default_factory=dict)
    clients: int = 0
    applied: bool = False
    planned: list[_Row] = field(default_factory=list, repr=False)

    @property
    def ok(self) -> bool:
        return not self.errors

    def as_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "ready": self.ready,
            "already_present": self.already_present,
            "clients": self.clients,
            "by_instrument": dict(self.by_instrument),
            "errors": [p.as_dict() for p in self.errors[:200]],
            "n_errors": len(self.errors),
            "warnings": [p.as_dict() for p in self.warnings[:200]],
            "applied": self.applied,
        }


def _parse_when(raw: str) -> dt.datetime | None:
    try:
        moment = parse_datetime(raw)
        if moment is None:
            day = parse_date(raw)
            if day is None:
                return None
            moment = dt.datetime.combine(day, dt.time(12, 0))
    except ValueError:
        return None
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def _number(raw: str) -> float | None:
    text = raw.strip()
    if text == "":
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"{text[:20]!r} is not a number") from None
    if not math.isfinite(value):
        raise ValueError("not a finite number")
    return value


def validate(text: str, mapping: ColumnMapping, scope: Scope) -> ImportReport:
    """Read and check every row; write nothing. The report lists each problem by line."""
    report = ImportReport()
    if len(text.encode("utf-8")) > MAX_BYTES:
        report.errors.append(RowProblem(0, "", f"the file is larger than {MAX_BYTES} bytes"))
        return report
    library = al.instruments()
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff")))
    header = reader.fieldnames or []
    needed = [mapping.client, mapping.date]
    if mapping.fixed_instrument is None and mapping.instrument:
        needed.append(mapping.instrument)
    needed += [c for c in (mapping.session, mapping.total) if c]
    needed += list(mapping.items.values())
    missing = [c for c in needed if c not in header]
    if missing:
        report.errors.append(
            RowProblem(
                1, ", ".join(missing), "column(s) missing from the header: " + ", ".join(missing)
            )
        )
        return report
    if mapping.fixed_instrument and mapping.fixed_instrument not in library:
        report.errors.append(RowProblem(0, "", f"unknown instrument {mapping.fixed_instrument!r}"))
        return report
    if not mapping.total and not mapping.items:
        report.errors.append(RowProblem(0, "", "map a total column, item columns, or both"))
        return report
    clients = {str(c.public_id): c for c in scope.own_clients()}
    episodes: dict[int, list[Episode]] = {}
    for ep in scope.own_episodes().select_related("client"):
        episodes.setdefault(ep.client_id, []).append(ep)
    seen: set[tuple[Any, ...]] = set()

    for line, row in enumerate(reader, start=2):
        report.rows += 1
        if report.rows > MAX_ROWS:
            report.errors.append(RowProblem(line, "", f"more than {MAX_ROWS} rows; split the file"))
            break
        problems: list[RowProblem] = []

        def bad(column: str, message: str, *, _line: int = line, _p: list = problems) -> None:
            _p.append(RowProblem(_line, column, message))

        raw_client = (row.get(mapping.client) or "").strip()
        client = None
        with contextlib.suppress(ValueError):
            client = clients.get(str(uuid.UUID(raw_client)))
        if client is None:
            bad(mapping.client, "not a client id you may import for (their Alliance id)")
        when = _parse_when((row.get(mapping.date) or "").strip())
        if when is None:
            bad(mapping.date, "not a date (YYYY-MM-DD or an ISO date-time)")
        elif when > timezone.now():
            bad(mapping.date, "in the future")
        name = mapping.fixed_instrument or (row.get(mapping.instrument or "") or "").strip()
        inst_id = mapping.instrument_names.get(name, name)
        if inst_id not in library:
            bad(mapping.instrument or "instrument", f"unknown instrument {name[:40]!r}")
            report.errors.extend(problems)
            continue
        inst = library[inst_id]
        session = None
        if mapping.session and (row.get(mapping.session) or "").strip():
            raw = row[mapping.session].strip()
            if not raw.isdigit() or not 1 <= int(raw) <= 999:
                bad(mapping.session, "a session number is a whole number from 1")
            else:
                session = int(raw)
        answers: dict[str, float] = {}
        for item_id, column in mapping.items.items():
            if not item_id.startswith(inst_id + "_") and item_id not in inst.item_ids:
                continue  # an item of another instrument in the same file
            if item_id not in inst.item_ids:
                bad(column, f"{item_id} is not an item of {inst_id}")
                continue
            try:
                value = _number(row.get(column) or "")
            except ValueError as exc:
                bad(column, str(exc))
                continue
            if value is not None:
                answers[item_id] = value
        given_total = None
        total_unreadable = False
        if mapping.total:
            try:
                given_total = _number(row.get(mapping.total) or "")
            except ValueError as exc:
                bad(mapping.total, str(exc))
                total_unreadable = True
        result = None
        total = given_total
        severity = ""
        if answers:
            result = al.score_one(inst, answers)
            if result.error:
                bad(mapping.items.get(next(iter(answers)), "items"), result.error)
            else:
                total = result.total
                severity = result.severity or ""
                if (
                    given_total is not None
                    and total is not None
                    and abs(given_total - total) > 1e-6
                ):
                    report.warnings.append(
                        RowProblem(
                            line,
                            mapping.total or "total",
                            f"the file's total {given_total:g} differs from the items' "
                            f"{total:g}; the items' total is stored",
                        )
                    )
        elif total is None:
            if not total_unreadable:
                bad(mapping.total or "total", "no total and no item answers")
        else:
            lo, hi = inst.scoring.range
            if not lo <= total <= hi:
                bad(
                    mapping.total or "total",
                    f"{total:g} is outside {inst.short_name}'s range {lo:g}–{hi:g}",
                )
            else:
                severity = inst.band_for(total) or ""
        episode = None
        if client is not None and when is not None:
            covering = [
                e
                for e in episodes.get(client.pk, [])
                if e.opened_at.date() <= when.date()
                and (e.closed_at is None or e.closed_at.date() >= when.date())
            ]
            if not covering:
                bad(
                    mapping.date,
                    "no episode of care of this client covers the date; open one first "
                    "(it may be backdated)",
                )
            else:
                episode = max(covering, key=lambda e: e.opened_at)
                if not scope.may_treat(episode):
                    bad(mapping.client, "only the client's treating therapist may import scores")
        key = (raw_client, inst_id, when, total)
        if not problems and key in seen:
            bad(mapping.date, "the same score appears twice in the file")
        seen.add(key)
        if problems:
            report.errors.extend(problems)
            continue
        if client is None or episode is None or when is None:  # pragma: no cover - reported above
            continue
        if Score.objects.filter(
            episode__client=client, instrument=inst_id, administered_at=when, total=total
        ).exists():
            report.already_present += 1
            continue
        report.planned.append(
            _Row(
                line,
                client,
                episode,
                inst_id,
                when,
                session,
                answers,
                result,
                float(total or 0),
                severity,
            )
        )
    report.ready = len(report.planned)
    report.by_instrument = dict(Counter(r.instrument for r in report.planned))
    report.clients = len({r.client.pk for r in report.planned})
    return report


def _hash(data: Any) -> str:
    return hashlib.sha256(
        json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def apply(report: ImportReport, by: Any) -> ImportReport:
    """Store every planned row in one transaction, or refuse (nothing stored) when the report has
    errors."""
    if not report.ok:
        raise ImportRefused(report)
    actor = Actor.of(by)
    with transaction.atomic():
        per_client: Counter[str] = Counter()
        for row in report.planned:
            inst = al.instrument(row.instrument)
            checkin = CheckIn.objects.create(
                practice_id=row.episode.practice_id,
                episode=row.episode,
                kind=CheckInKind.PRE_SESSION if inst.rater == "client" else CheckInKind.THERAPIST,
                instruments=[row.instrument],
                status=CheckInStatus.COMPLETED,
                created_at=timezone.now(),
                opens_at=row.when,
                expires_at=row.when,
                completed_at=row.when,
                completed_by=by,
            )
            response = Response.objects.create(
                checkin=checkin,
                instrument=row.instrument,
                instrument_version=inst.version,
                answers=row.answers,
                submitted_at=row.when,
                content_hash=_hash(
                    {"instrument": row.instrument, "answers": row.answers, "total": row.total}
                ),
            )
            r = row.result
            Score.objects.create(
                response=response,
                episode=row.episode,
                instrument=row.instrument,
                rater=inst.rater,
                session_number=row.session,
                administered_at=row.when,
                total=row.total,
                subscales=dict(r.subscales) if r is not None else {},
                severity=row.severity,
                flags=list(r.flags) if r is not None else [],
                prorated=bool(r.prorated) if r is not None else False,
                method=r.method if r is not None else METHOD_TOTAL_ONLY,
                engine_version=al.__version__,
            )
            per_client[str(row.client.public_id)] += 1
        for client_id, n in per_client.items():
            record(actor, Action.CREATE, "score_import", "", client_id, detail={"scores": n})
        record(
            actor,
            Action.EXECUTE,
            "score_import",
            detail={
                "rows": report.ready,
                "clients": len(per_client),
                "skipped": report.already_present,
            },
        )
    report.applied = True
    return report


def import_scores(
    text: str, mapping: ColumnMapping, by: Any, scope: Scope, *, dry_run: bool
) -> ImportReport:
    report = validate(text, mapping, scope)
    if dry_run or not report.ok:
        return report
    return apply(report, by)


__all__ = [
    "METHOD_TOTAL_ONLY",
    "ColumnMapping",
    "ImportRefused",
    "ImportReport",
    "RowProblem",
    "apply",
    "import_scores",
    "validate",
]
