"""The snapshot refresh against check-ins committed by other connections at the same time
(PostgreSQL: real transactions and row locks; run with ``DATABASE_URL``).

Whichever way a refresh and a check-in for the same episode interleave, the check-in is never
hidden: either the refresh sees it, or the snapshot is left stale (and a refresh queued).
"""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from django.db import connection
from django.utils import timezone

from alliance_web.audit.trail import Actor
from alliance_web.care import analysis, insight, services
from alliance_web.care.models import EpisodeInsight
from tests.web.api_helpers import answers_for

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@pytest.fixture(autouse=True)
def _postgres_only():
    if connection.vendor != "postgresql":
        pytest.skip("needs PostgreSQL's row locks between connections (set DATABASE_URL)")


@pytest.fixture
def episode(therapist_a, client_of_a):
    return services.open_episode(
        therapist_a,
        client_of_a,
        concerns=["depression"],
        first_session_at=timezone.now() - timedelta(days=1),
    )


def submit(episode, number: int, value: float = 1):
    checkin, _ = services.issue_checkin(episode, session=episode.sessions.get(number=number))
    answers = {
        "phq9": {**answers_for("phq9", value), "phq9_9": 0},
        "gad7": answers_for("gad7", value),
    }
    return services.submit_checkin(checkin, services.Submission(answers=answers))


def in_another_connection(target) -> threading.Thread:
    def run():
        try:
            target()
        finally:
            connection.close()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def points(episode) -> list[float]:
    return [p["total"] for p in EpisodeInsight.objects.get(episode=episode).outcome["points"]]


def test_a_check_in_committed_during_the_reads_makes_the_refresh_compute_again(
    episode, monkeypatch
):
    submit(episode, 1)
    actor = Actor.system("test", episode.practice_id)
    insight.refresh(episode, actor=actor)
    real = insight._ruptures
    calls = []

    def meanwhile(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            in_another_connection(lambda: submit(episode, 2, 2)).join()
        return real(*args, **kwargs)

    monkeypatch.setattr(insight, "_ruptures", meanwhile)
    insight.refresh(episode, actor=actor)
    assert len(calls) == 2
    assert points(episode) == [8.0, 16.0]
    assert not insight.is_stale(episode)


def test_a_check_in_that_waits_for_the_refreshs_write_leaves_the_snapshot_stale(
    episode, monkeypatch
):
    submit(episode, 1)
    actor = Actor.system("test", episode.practice_id)
    insight.refresh(episode, actor=actor)
    queued: list[int] = []
    monkeypatch.setattr(analysis, "queue_refresh", queued.append)
    real = insight._store
    other: list[threading.Thread] = []

    def hold_the_row(*args, **kwargs):
        real(*args, **kwargs)  # the snapshot row is now locked until this refresh commits
        other.append(in_another_connection(lambda: submit(episode, 2, 2)))
        time.sleep(0.5)  # the check-in reaches its stale mark and waits for the row

    monkeypatch.setattr(insight, "_store", hold_the_row)
    insight.refresh(episode, actor=actor)
    other[0].join()
    assert points(episode) == [8.0]  # the refresh did not see it ...
    assert insight.is_stale(episode)  # ... and the check-in marked the snapshot stale
    assert queued == [episode.pk]  # and asked for a refresh
    monkeypatch.setattr(insight, "_store", real)
    insight.refresh(episode, actor=actor)
    assert points(episode) == [8.0, 16.0]
