"""A check-in's snapshot refresh after commit (care.insight, care.tasks.refresh_episode).

The submission's transaction keeps what must not wait — scores with their recovery signal, the
safety and off-track alerts, the audit entry — and marks the episode's snapshot stale; the rest of
the snapshot is computed after commit by the worker, or by the next page that shows it, so nothing
is lost when no worker runs.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

import alliance as al
from alliance_web.audit.trail import Actor
from alliance_web.care import analysis, insight, services, tasks
from alliance_web.care.models import (
    Alert,
    AlertKind,
    AlertStatus,
    EpisodeInsight,
    PracticeModel,
    Score,
    Signal,
)
from alliance_web.compat import TASKS_DUMMY_BACKEND, TASKS_IMMEDIATE_BACKEND
from alliance_web.workspace import caseload
from tests.web.api_helpers import answers_for

pytestmark = pytest.mark.django_db


def phq9(value: float) -> dict[str, float]:
    """Every PHQ-9 item at ``value`` except the critical item 9 (no safety flag)."""
    return {**answers_for("phq9", value), "phq9_9": 0}


def submit(episode, number: int, phq: float, gad: float = 1, **extra):
    session = episode.sessions.get(number=number)
    checkin, _ = services.issue_checkin(episode, session=session)
    answers = {"phq9": phq9(phq), "gad7": answers_for("gad7", gad)}
    answers["phq9"].update(extra.pop("phq9_items", {}))
    return services.submit_checkin(checkin, services.Submission(answers=answers, **extra))


def same_to_rounding(a, b) -> bool:
    """Equal, with floats compared to 1e-12 relative."""
    if isinstance(a, float) and isinstance(b, float):
        return a == pytest.approx(b, rel=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_to_rounding(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(map(same_to_rounding, a, b))
    return a == b


def stale(episode) -> bool:
    episode.refresh_from_db()
    return insight.is_stale(episode)


@pytest.fixture
def queued(monkeypatch):
    """Refresh requests made after commit, by episode id (the queue itself is not run)."""
    calls: list[int] = []
    monkeypatch.setattr(analysis, "queue_refresh", calls.append)
    return calls


@pytest.fixture
def model_for_phq9(practice_a):
    """A calibrated PHQ-9 recovery model stored as the practice's active one (fitted on a small
    simulated practice, as the nightly recalibration would)."""
    practice = al.simulate_practice(
        al.SimulationConfig(n_therapists=2, n_clients=60, max_sessions=10, seed=3)
    )
    scores = practice.scores
    frame = scores.loc[scores["instrument"] == "phq9", ["client", "session", "score"]]
    model = al.fit_etr(frame, instrument="phq9")
    data = model.to_dict()
    return PracticeModel.objects.create(
        practice=practice_a,
        instrument="phq9",
        method="loglinear_intake",
        n_clients=60,
        n_obs=len(frame),
        model=data,
    )


def test_a_check_in_stores_its_scores_signals_and_marks_the_snapshot_stale(episode_of_a):
    submit(episode_of_a, 1, 2)
    insight.refresh(episode_of_a, actor=Actor.system("test", episode_of_a.practice_id))
    assert not stale(episode_of_a)
    result = submit(episode_of_a, 2, 0)
    assert stale(episode_of_a)
    phq = next(s for s in result.scores if s.instrument == "phq9")
    assert phq.signal == Score.objects.get(pk=phq.pk).signal == Signal.RECOVERED
    snapshot = EpisodeInsight.objects.get(episode=episode_of_a)
    assert snapshot.last_checkin_at == phq.administered_at
    assert snapshot.computed_at < phq.administered_at


@pytest.mark.parametrize("calibrated", [False, True], ids=["rational rule", "practice model"])
def test_the_signal_stored_with_a_check_in_is_the_one_the_full_refresh_computes(
    request, episode_of_a, calibrated
):
    if calibrated:
        request.getfixturevalue("model_for_phq9")
    for number, (phq, gad) in enumerate([(2, 2), (2, 1), (3, 3), (1, 1), (0, 2), (1, 0)], 1):
        submit(episode_of_a, number, phq, gad)
    stored = {s.pk: (s.signal, s.signal_detail) for s in Score.objects.filter(episode=episode_of_a)}
    assert all(signal for signal, _ in stored.values())
    phq_methods = {
        detail["method"]
        for pk, (_, detail) in stored.items()
        if Score.objects.get(pk=pk).instrument == "phq9"
    }
    assert phq_methods == {"empirical_etr" if calibrated else "rational_reliable_change"}
    insight.refresh(episode_of_a, actor=Actor.system("test", episode_of_a.practice_id))
    again = {s.pk: (s.signal, s.signal_detail) for s in Score.objects.filter(episode=episode_of_a)}
    # The same signals and reasons; the numbers to the last bits (the check-in evaluates one
    # course, the refresh all of them in one batch, so sums may be ordered differently).
    assert same_to_rounding(again, stored)


def test_an_off_track_check_in_raises_its_alert_before_commit_and_the_refresh_adds_none(
    episode_of_a,
):
    submit(episode_of_a, 1, 0)
    result = submit(episode_of_a, 2, 2)  # PHQ-9 0 → 16: reliable deterioration
    phq = next(s for s in result.scores if s.instrument == "phq9")
    assert phq.signal == Signal.OFF_TRACK
    assert [a.kind for a in result.alerts] == [AlertKind.OFF_TRACK]
    assert stale(episode_of_a)
    alerts = insight.refresh(episode_of_a, actor=Actor.system("test", episode_of_a.practice_id))
    assert AlertKind.OFF_TRACK not in [a.kind for a in alerts]
    assert Alert.objects.filter(episode=episode_of_a, kind=AlertKind.OFF_TRACK).count() == 1
    snapshot = EpisodeInsight.objects.get(episode=episode_of_a)
    assert snapshot.signal["code"] == Signal.OFF_TRACK
    assert snapshot.triage == insight.TRIAGE["off_track"]


def test_a_safety_alert_tops_the_caseload_before_any_refresh(
    client, login, therapist_a, episode_of_a, monkeypatch
):
    calm = services.create_client(therapist_a, preferred_name="Alex", therapist=therapist_a)
    other = services.open_episode(
        therapist_a,
        calm,
        concerns=["depression"],
        first_session_at=timezone.now() - timedelta(days=1),
    )
    submit(other, 1, 3)
    result = submit(episode_of_a, 1, 0, phq9_items={"phq9_9": 2})
    assert [a.kind for a in result.alerts] == [AlertKind.SAFETY]
    monkeypatch.setattr(caseload, "REFRESH_ON_VIEW", 0)  # as if every refresh were still queued
    login(client, therapist_a)
    html = client.get("/w/").content.decode()
    assert html.find(">Sam</a>") < html.find(">Alex</a>")
    assert "⚠</span> Safety" in html
    assert stale(episode_of_a)


def test_after_commit_the_refresh_task_brings_the_snapshot_up_to_date(
    settings, episode_of_a, django_capture_on_commit_callbacks
):
    settings.TASKS = {"default": {"BACKEND": TASKS_IMMEDIATE_BACKEND}}
    with django_capture_on_commit_callbacks(execute=True) as callbacks:
        submit(episode_of_a, 1, 2)
    assert len(callbacks) == 1  # the refresh (no alert to notify)
    assert not stale(episode_of_a)
    snapshot = EpisodeInsight.objects.get(episode=episode_of_a)
    assert [p["total"] for p in snapshot.outcome["points"]] == [16.0]
    assert snapshot.stage["suggested"]


def test_a_burst_of_check_ins_for_one_episode_queues_one_refresh(
    episode_of_a, queued, django_capture_on_commit_callbacks
):
    for number in (1, 2, 3):
        with django_capture_on_commit_callbacks(execute=True):
            submit(episode_of_a, number, 1)
    assert queued == [episode_of_a.pk]
    assert tasks.refresh_episode.call(episode_of_a.pk) == "refreshed"
    assert tasks.refresh_episode.call(episode_of_a.pk) == "fresh"
    assert not stale(episode_of_a)
    snapshot = EpisodeInsight.objects.get(episode=episode_of_a)
    assert len(snapshot.outcome["points"]) == 3
    with django_capture_on_commit_callbacks(execute=True):
        submit(episode_of_a, 4, 1)
    assert queued == [episode_of_a.pk, episode_of_a.pk]  # fresh again: the next one queues


def test_the_refresh_request_goes_to_the_task_queue(settings, episode_of_a):
    settings.TASKS = {"default": {"BACKEND": TASKS_DUMMY_BACKEND}}
    backend = tasks.refresh_episode.get_backend()
    analysis.queue_refresh(episode_of_a.pk)
    [result] = backend.results
    assert result.task.func is tasks.refresh_episode.func
    assert list(result.args) == [episode_of_a.pk]


def test_the_client_page_refreshes_a_stale_snapshot_when_no_worker_runs(
    client, login, therapist_a, episode_of_a
):
    submit(episode_of_a, 1, 0)
    submit(episode_of_a, 2, 2)
    assert stale(episode_of_a)
    login(client, therapist_a)
    response = client.get(f"/w/clients/{episode_of_a.client.public_id}/")
    assert response.status_code == 200
    assert not stale(episode_of_a)
    assert response.context["signal_code"] == Signal.OFF_TRACK
    assert len(response.context["outcome"].rows) == 2


@pytest.mark.parametrize("page", ["close/", "report.pdf"])
def test_the_close_form_and_the_report_refresh_a_stale_snapshot_first(
    client, login, therapist_a, episode_of_a, page
):
    submit(episode_of_a, 1, 0)
    submit(episode_of_a, 2, 2)
    assert stale(episode_of_a)
    login(client, therapist_a)
    url = (
        f"/w/episodes/{episode_of_a.public_id}/close/"
        if page == "close/"
        else f"/w/clients/{episode_of_a.client.public_id}/report.pdf"
    )
    assert client.get(url).status_code == 200
    assert not stale(episode_of_a)


def test_the_caseload_refreshes_a_few_stale_snapshots_per_view(
    client, login, therapist_a, monkeypatch
):
    monkeypatch.setattr(caseload, "REFRESH_ON_VIEW", 2)
    episodes = []
    for name in ("Ana", "Ben", "Cai"):
        person = services.create_client(therapist_a, preferred_name=name, therapist=therapist_a)
        episode = services.open_episode(
            therapist_a,
            person,
            concerns=["depression"],
            first_session_at=timezone.now() - timedelta(days=1),
        )
        submit(episode, 1, 0)
        episodes.append(episode)
    submit(episodes[2], 2, 2)  # Cai goes off track
    login(client, therapist_a)
    client.get("/w/")
    assert sum(stale(e) for e in episodes) == 1
    html = client.get("/w/").content.decode()
    assert not any(stale(e) for e in episodes)
    assert html.find(">Cai</a>") < min(html.find(">Ana</a>"), html.find(">Ben</a>"))


def test_the_caseload_costs_the_same_queries_when_every_snapshot_is_fresh(
    client, login, therapist_a, episode_of_a, django_assert_max_num_queries
):
    submit(episode_of_a, 1, 1)
    login(client, therapist_a)
    client.get("/w/")  # refreshes the one stale snapshot
    with CaptureQueriesContext(connection) as fresh:
        client.get("/w/")
    submit(episode_of_a, 2, 1)
    with CaptureQueriesContext(connection) as healing:
        client.get("/w/")
    assert len(healing) > len(fresh)
    with CaptureQueriesContext(connection) as again:
        client.get("/w/")
    assert len(again) == len(fresh)


def test_the_sweep_refreshes_snapshots_left_stale(settings, episode_of_a):
    settings.TASKS = {"default": {"BACKEND": TASKS_DUMMY_BACKEND}}
    submit(episode_of_a, 1, 1)
    assert stale(episode_of_a)
    counts = tasks.sweep.call()
    assert counts["refreshed"] == 1
    assert not stale(episode_of_a)
    assert tasks.sweep.call()["refreshed"] == 0


def test_a_check_in_committed_while_the_refresh_computes_makes_it_compute_again(
    episode_of_a, monkeypatch
):
    submit(episode_of_a, 1, 1)
    real = insight._ruptures
    reads = []

    def a_check_in_arrives(*args, **kwargs):
        reads.append(1)
        if len(reads) == 1:
            submit(episode_of_a, 2, 3)  # commits between the refresh's reads and its write
        return real(*args, **kwargs)

    monkeypatch.setattr(insight, "_ruptures", a_check_in_arrives)
    insight.refresh(episode_of_a, actor=Actor.system("test", episode_of_a.practice_id))
    assert len(reads) == 2
    assert not stale(episode_of_a)
    snapshot = EpisodeInsight.objects.get(episode=episode_of_a)
    assert [p["total"] for p in snapshot.outcome["points"]] == [8.0, 24.0]


def test_a_refresh_that_keeps_losing_the_race_leaves_the_snapshot_stale(episode_of_a, monkeypatch):
    submit(episode_of_a, 1, 1)
    real = insight._ruptures
    numbers = iter(range(2, 10))

    def check_ins_keep_arriving(*args, **kwargs):
        submit(episode_of_a, next(numbers), 1)
        return real(*args, **kwargs)

    monkeypatch.setattr(insight, "_ruptures", check_ins_keep_arriving)
    alerts = insight.refresh(episode_of_a, actor=Actor.system("test", episode_of_a.practice_id))
    assert alerts == []
    assert stale(episode_of_a)  # left for the next trigger; nothing half-written
    assert EpisodeInsight.objects.get(episode=episode_of_a).signal == {}


def test_the_first_check_in_of_an_episode_stores_a_stale_placeholder(episode_of_a, queued):
    assert not EpisodeInsight.objects.filter(episode=episode_of_a).exists()
    submit(episode_of_a, 1, 1)
    snapshot = EpisodeInsight.objects.get(episode=episode_of_a)
    assert snapshot.signal == {}
    assert stale(episode_of_a)


def test_an_acted_on_safety_alert_is_resolved_by_the_refresh_after_a_clear_check_in(
    therapist_a, episode_of_a
):
    first = submit(episode_of_a, 1, 1, phq9_items={"phq9_9": 1})
    [alert] = first.alerts
    services.record_alert_action(therapist_a, alert, "safety_plan")
    submit(episode_of_a, 2, 1)
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.ACTIONED
    insight.refresh(episode_of_a, actor=Actor.system("test", episode_of_a.practice_id))
    assert Alert.objects.get(pk=alert.pk).status == AlertStatus.RESOLVED
    assert EpisodeInsight.objects.get(episode=episode_of_a).triage != insight.TRIAGE["safety"]


def test_practice_models_are_read_in_one_query_and_parsed_once(
    model_for_phq9, practice_a, django_assert_num_queries, monkeypatch
):
    insight._PARSED_MODELS.clear()
    with django_assert_num_queries(2):
        first = insight.practice_models(practice_a.pk, ["phq9", "gad7"])
    with django_assert_num_queries(1):
        second = insight.practice_models(practice_a.pk, ["phq9", "gad7"])
    assert set(first) == {"phq9"}
    assert second["phq9"] is first["phq9"]
    # A refit is a new row: the new model is read, the old one no longer used.
    model_for_phq9.active = False
    model_for_phq9.save(update_fields=["active"])
    refit = PracticeModel.objects.create(
        practice=practice_a,
        instrument="phq9",
        method=model_for_phq9.method,
        n_clients=1,
        n_obs=1,
        model=model_for_phq9.model,
    )
    with django_assert_num_queries(2):
        third = insight.practice_models(practice_a.pk, ["phq9"])
    assert third["phq9"] is not first["phq9"]
    assert (refit.pk, refit.fitted_at) in insight._PARSED_MODELS
