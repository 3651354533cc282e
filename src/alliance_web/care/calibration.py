"""Calibrating the expected-recovery model on a practice's own data (SPEC C3).

A new practice gets signals on day one from the rational rule (reliable change from intake). Once
it has enough clients with follow-up scores, :func:`recalibrate` fits the ``loglinear_intake`` model
(REML; ``alliance.fit_etr``) on its data, cross-validates the signals by client, and stores the model
as the practice's active :class:`PracticeModel`; from then on the workspace shows the expected band
and signals use the empirical method. The nightly task calls :func:`recalibrate_all`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import pandas as pd
from django.db import transaction

import alliance as al
from alliance_web.audit.models import Action
from alliance_web.audit.trail import Actor, record
from alliance_web.care.models import Practice, PracticeModel, Score

log = logging.getLogger(__name__)

METHOD = "loglinear_intake"
# Clients with an intake and at least one follow-up score needed before the practice's own model
# replaces the rational rule. A heuristic: fewer clients give unstable random-effect variances.
MIN_CLIENTS = 30


@dataclass(frozen=True)
class Calibration:
    practice_id: int
    instrument: str
    fitted: bool
    reason: str
    n_clients: int = 0
    n_obs: int = 0
    model_id: int | None = None


def course_data(practice: Practice, instrument: str) -> pd.DataFrame:
    """Client-rated totals of one instrument across the practice: client, session, score."""
    rows = (
        Score.objects.filter(
            episode__practice=practice,
            instrument=instrument,
            rater="client",
            total__isnull=False,
            session_number__isnull=False,
        )
        .order_by("administered_at", "pk")
        .values_list("episode_id", "session_number", "total")
    )
    frame = pd.DataFrame(list(rows), columns=["client", "session", "score"])
    # Two administrations for one session (a re-issued link, an import) count once: the first.
    return frame.drop_duplicates(["client", "session"], keep="first").reset_index(drop=True)


def recalibrate(
    practice: Practice, instrument: str, *, min_clients: int = MIN_CLIENTS, validate: bool = True
) -> Calibration:
    frame = course_data(practice, instrument)
    with_followup = frame[frame["session"] >= 2]["client"].nunique() if len(frame) else 0
    has_intake = set(frame.loc[frame["session"] == 1, "client"]) if len(frame) else set()
    usable = len(has_intake & set(frame.loc[frame["session"] >= 2, "client"])) if len(frame) else 0
    if usable < min_clients:
        return Calibration(
            practice.pk,
            instrument,
            False,
            f"{usable} clients with an intake and a follow-up score; {min_clients} needed",
            n_clients=int(with_followup),
        )
    try:
        model = al.fit_etr(frame, METHOD, instrument=instrument)
    except al.AllianceError as exc:
        log.warning("calibration of %s for practice %s failed: %s", instrument, practice.pk, exc)
        return Calibration(practice.pk, instrument, False, f"the model could not be fitted: {exc}")
    validation: dict[str, Any] = {}
    if validate:
        try:
            result = al.validate_signals(frame, instrument, folds=5)
            validation = _jsonable(result.to_dict() if hasattr(result, "to_dict") else {})
        except al.AllianceError as exc:
            validation = {"error": str(exc)}
    data = model.to_dict()
    with transaction.atomic():
        PracticeModel.objects.filter(practice=practice, instrument=instrument, active=True).update(
            active=False
        )
        row = PracticeModel.objects.create(
            practice=practice,
            instrument=instrument,
            method=METHOD,
            n_clients=int(data.get("n_clients", usable)),
            n_obs=int(data.get("n_obs", len(frame))),
            model=data,
            validation=validation,
        )
        record(
            Actor.system("calibration", practice.pk),
            Action.EXECUTE,
            "recovery_model",
            row.pk,
            detail={"instrument": instrument, "n_clients": row.n_clients, "n_obs": row.n_obs},
        )
    return Calibration(practice.pk, instrument, True, "fitted", row.n_clients, row.n_obs, row.pk)


def recalibrate_all(*, min_clients: int = MIN_CLIENTS) -> list[Calibration]:
    """Every practice, every outcome instrument it uses."""
    results = []
    for practice in Practice.objects.all():
        instruments = (
            Score.objects.filter(episode__practice=practice, rater="client")
            .values_list("instrument", flat=True)
            .distinct()
        )
        for inst in sorted(set(instruments)):
            if al.instrument(inst).kind == "outcome":
                results.append(recalibrate(practice, inst, min_clients=min_clients))
    return results


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=lambda o: None if o != o else str(o)))
