"""What a check-in submission costs in queries (SPEC §6: hundreds per second on two cores).

The submission's transaction reads the check-in (locked), the episode's earlier scores and the
practice's recovery models once each, writes its rows in bulk, marks the snapshot stale with one
UPDATE and appends one audit row; nothing in it grows with the episode's history. The snapshot
refresh that follows after commit has its own, also constant, budget.
"""

from __future__ import annotations

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from alliance_web.audit.trail import Actor
from alliance_web.care import insight, services
from alliance_web.care.models import CheckInKind
from tests.web.api_helpers import answers_for

pytestmark = pytest.mark.django_db

# The goals, for the validation (1); lock the check-in (1); earlier scores (1); recovery models
# (1); responses and scores (2 bulk INSERTs); the check-in and the client (2 UPDATEs); the snapshot
# mark (1); the audit append (lock the chain head, insert, move the head: 3); and, in a test's
# outer transaction, two savepoints with their releases (4) where production has BEGIN/COMMIT.
SUBMISSION_BUDGET = 16
# Goal ratings and a private note, when given, are one INSERT each.
RATINGS_AND_NOTE = 2
# A safety alert adds its savepoint and INSERT (3 queries).
SAFETY_EXTRA = 3
# Episode with snapshot, scores, sessions (3), models (1), overdue check-ins (1), goals (1), stage
# (1), alerts (1); the write: savepoint, stage, compare-and-set (3 + savepoints).
REFRESH_BUDGET = 12


def answers(phq: float = 1, safety: bool = False) -> dict[str, dict[str, float]]:
    return {
        "phq9": {**answers_for("phq9", phq), "phq9_9": 1 if safety else 0},
        "gad7": answers_for("gad7", 1),
    }


def submission_queries(episode, number: int, **kwargs) -> list[str]:
    checkin, _ = services.issue_checkin(episode, session=episode.sessions.get(number=number))
    checkin.episode.client  # noqa: B018 - loaded by the view that finds the check-in
    goals = kwargs.pop("goals", False)
    note = kwargs.pop("note", "")
    goal_ratings = {str(g.public_id): 6 for g in episode.goals.all()} if goals else {}
    sub = services.Submission(answers=answers(**kwargs), goal_ratings=goal_ratings, note=note)
    with CaptureQueriesContext(connection) as ctx:
        services.submit_checkin(checkin, sub)
    return [q["sql"] for q in ctx.captured_queries]


def test_a_check_in_costs_a_small_fixed_number_of_queries(episode_of_a):
    submission_queries(episode_of_a, 1)
    queries = submission_queries(episode_of_a, 2)
    assert len(queries) <= SUBMISSION_BUDGET, "\n".join(queries)


def test_goal_ratings_and_a_note_add_one_insert_each(episode_of_a):
    submission_queries(episode_of_a, 1)
    plain = submission_queries(episode_of_a, 2)
    full = submission_queries(episode_of_a, 3, goals=True, note="A hard week.")
    assert len(full) == len(plain) + RATINGS_AND_NOTE


def test_the_cost_does_not_grow_with_the_episodes_history(episode_of_a):
    submission_queries(episode_of_a, 1)
    early = submission_queries(episode_of_a, 2)
    for number in range(3, 11):
        submission_queries(episode_of_a, number)
    late = submission_queries(episode_of_a, 11)
    assert len(late) == len(early)


def test_a_safety_alert_costs_its_insert_and_no_look_up(episode_of_a):
    submission_queries(episode_of_a, 1)
    plain = submission_queries(episode_of_a, 2)
    flagged = submission_queries(episode_of_a, 3, safety=True)
    assert len(flagged) == len(plain) + SAFETY_EXTRA
    assert not any('FROM "care_alert"' in q for q in flagged)  # no exists-then-insert


def test_the_lock_reads_the_check_ins_state_and_the_snapshot_time_only(episode_of_a):
    submission_queries(episode_of_a, 1)
    queries = submission_queries(episode_of_a, 2)
    [lock] = [q for q in queries if 'FROM "care_checkin"' in q]
    select = lock.split(" FROM ")[0]
    assert '"care_episodeinsight"."computed_at"' in select
    assert '"care_episodeinsight"."outcome"' not in select
    assert '"care_episode"."' not in select  # the caller loaded the episode already
    assert sum('"care_goal"' in q for q in queries) == 1  # goals read once, for the validation


def test_the_api_submission_stays_within_its_budget(api_as, therapist_a, episode_of_a):
    api = api_as(therapist_a)
    for number in (1, 2):
        checkin, _ = services.issue_checkin(
            episode_of_a, session=episode_of_a.sessions.get(number=number)
        )
        with CaptureQueriesContext(connection) as ctx:
            response = api.post(
                f"/api/v1/checkins/{checkin.public_id}/submit/",
                {"answers": answers()},
                format="json",
            )
        assert response.status_code == 201
    # The bearer token and the scoped check-in (2) on top of the service.
    assert len(ctx.captured_queries) <= SUBMISSION_BUDGET + 2


def test_a_therapist_rating_costs_no_more_than_a_check_in(therapist_a, episode_of_a):
    session = episode_of_a.sessions.get(number=1)
    services.rate_as_therapist(therapist_a, episode_of_a, session, answers_for("wai_sr_t", 4))
    checkin, _ = services.issue_checkin(
        episode_of_a, kind=CheckInKind.THERAPIST, session=episode_of_a.sessions.get(number=2)
    )
    sub = services.Submission(answers={"wai_sr_t": answers_for("wai_sr_t", 4)})
    with CaptureQueriesContext(connection) as ctx:
        services.submit_checkin(checkin, sub, by=therapist_a)
    assert len(ctx.captured_queries) <= SUBMISSION_BUDGET - 1  # no goals to read


def test_the_full_refresh_costs_a_fixed_number_of_queries(episode_of_a):
    actor = Actor.system("test", episode_of_a.practice_id)
    for number in (1, 2):
        submission_queries(episode_of_a, number)
    insight.refresh(episode_of_a, actor=actor)
    submission_queries(episode_of_a, 3)
    with CaptureQueriesContext(connection) as small:
        insight.refresh(episode_of_a, actor=actor)
    for number in range(4, 11):
        submission_queries(episode_of_a, number)
    with CaptureQueriesContext(connection) as large:
        insight.refresh(episode_of_a, actor=actor)
    assert len(small.captured_queries) <= REFRESH_BUDGET, "\n".join(
        q["sql"][:120] for q in small.captured_queries
    )
    # The score signals are written only when they change, so only the stage may differ.
    assert abs(len(large.captured_queries) - len(small.captured_queries)) <= 1
