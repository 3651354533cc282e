"""The background tasks, run in-process: invitations at the right time, reminders, expiry and
missed check-ins, idempotent sends with retries, alert notifications without PHI, nightly
recalibration. (A real worker process is tested in test_tasks_worker_process.py.)"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import django
import pytest
from django.utils import timezone

import alliance as al
from alliance_web.care import services, tasks
from alliance_web.care.models import (
    Alert,
    AlertKind,
    CheckIn,
    CheckInStatus,
    ConsentScope,
    Delivery,
    DeliveryKind,
    EpisodeInsight,
    PracticeModel,
    Session,
)
from alliance_web.compat import TASKS_DUMMY_BACKEND, TASKS_IMMEDIATE_BACKEND

pytestmark = pytest.mark.django_db


@pytest.fixture
def outbox(settings, tmp_path) -> Path:
    """Email and SMS go to files under tmp_path; tasks run at once (ImmediateBackend)."""
    settings.DATA_DIR = tmp_path
    backend = {
        "BACKEND": "alliance_web.care.channels.OutboxEmailBackend",
        "OPTIONS": {"file_path": str(tmp_path / "outbox" / "email")},
    }
    if django.VERSION >= (6, 1):
        settings.MAILERS = {"default": backend}
    else:
        settings.EMAIL_BACKEND = backend["BACKEND"]
        settings.EMAIL_FILE_PATH = backend["OPTIONS"]["file_path"]
    settings.ALLIANCE_SMS_SENDER = "alliance_web.care.channels.FileSmsSender"
    settings.TASKS = {"default": {"BACKEND": TASKS_IMMEDIATE_BACKEND}}
    return tmp_path / "outbox"


def files(outbox: Path, kind: str) -> list[Path]:
    folder = outbox / kind
    return sorted(folder.glob("*.eml" if kind == "email" else "*.txt")) if folder.exists() else []


@pytest.fixture
def reachable(therapist_a):
    """A client who agreed to messages, with an email address and a phone number."""
    client = services.create_client(
        therapist_a,
        preferred_name="Robin",
        therapist=therapist_a,
        email="robin@example.org",
        phone="+1 416 555 0100",
        consents=[ConsentScope.CARE, ConsentScope.MESSAGES],
    )
    return client


def open_with_session_in(therapist, client, hours: float):
    return services.open_episode(
        therapist,
        client,
        concerns=["depression"],
        first_session_at=timezone.now() + timedelta(hours=hours),
        sessions=3,
        interval_days=7,
    )


def test_an_invitation_goes_out_once_when_the_lead_time_is_reached(outbox, therapist_a, reachable):
    episode = open_with_session_in(therapist_a, reachable, hours=23)  # lead time is 24 h
    counts = tasks.sweep.call()
    assert counts["invited"] == 1
    assert len(files(outbox, "email")) == 1
    assert len(files(outbox, "sms")) == 1
    session = episode.sessions.get(number=1)
    assert session.invited_at is not None
    checkin = CheckIn.objects.get(session=session)
    assert checkin.expires_at > session.scheduled_at
    assert Delivery.objects.filter(checkin=checkin, sent_at__isnull=False).count() == 2
    # Again and again: nothing new.
    for _ in range(3):
        assert tasks.sweep.call()["invited"] == 0
    assert len(files(outbox, "email")) == 1
    assert len(files(outbox, "sms")) == 1


def test_no_invitation_before_the_lead_time(outbox, therapist_a, reachable):
    episode = open_with_session_in(therapist_a, reachable, hours=30)
    assert tasks.sweep.call()["invited"] == 0
    assert files(outbox, "email") == []
    Session.objects.filter(episode=episode, number=1).update(
        scheduled_at=timezone.now() + timedelta(hours=20)
    )
    assert tasks.sweep.call()["invited"] == 1


def test_an_invitation_carries_the_link_and_no_clinical_content(outbox, therapist_a, reachable):
    open_with_session_in(therapist_a, reachable, hours=2)
    tasks.sweep.call()
    (email,) = files(outbox, "email")
    text = email.read_text()
    assert "/c/" in text
    assert "Robin" in text
    for word in ("PHQ", "depress", "score", "safety"):
        assert word.lower() not in text.lower()
    (sms,) = files(outbox, "sms")
    assert "/c/" in sms.read_text()


def test_no_message_without_consent_to_messages(outbox, therapist_a):
    client = services.create_client(
        therapist_a, preferred_name="Lee", therapist=therapist_a, email="lee@example.org"
    )
    open_with_session_in(therapist_a, client, hours=2)
    assert tasks.sweep.call()["invited"] == 1  # the check-in is made, for the waiting room
    assert files(outbox, "email") == []
    assert Delivery.objects.count() == 0


def test_a_hand_issued_link_is_not_doubled_by_the_scheduler(outbox, therapist_a, reachable):
    episode = open_with_session_in(therapist_a, reachable, hours=2)
    services.issue_checkin(episode, session=episode.sessions.get(number=1))
    tasks.sweep.call()
    assert CheckIn.objects.filter(episode=episode).count() == 1
    assert files(outbox, "email") == []


def test_a_reminder_follows_an_unanswered_invitation_once(outbox, therapist_a, reachable):
    episode = open_with_session_in(therapist_a, reachable, hours=20)
    tasks.sweep.call()
    checkin = CheckIn.objects.get(episode=episode)
    # Seven hours later, and the link expires within 12 hours: one reminder per channel.
    Delivery.objects.update(sent_at=timezone.now() - timedelta(hours=7))
    CheckIn.objects.filter(pk=checkin.pk).update(expires_at=timezone.now() + timedelta(hours=10))
    assert tasks.sweep.call()["reminded"] == 2
    assert tasks.sweep.call()["reminded"] == 0
    reminders = Delivery.objects.filter(kind=DeliveryKind.REMINDER)
    assert reminders.count() == 2
    assert all(d.sent_at for d in reminders)
    assert len(files(outbox, "email")) == 2


def test_no_reminder_once_the_client_has_answered(outbox, therapist_a, reachable):
    episode = open_with_session_in(therapist_a, reachable, hours=20)
    tasks.sweep.call()
    checkin = CheckIn.objects.get(episode=episode)
    CheckIn.objects.filter(pk=checkin.pk).update(
        status=CheckInStatus.COMPLETED, expires_at=timezone.now() + timedelta(hours=10)
    )
    Delivery.objects.update(sent_at=timezone.now() - timedelta(hours=7))
    assert tasks.sweep.call()["reminded"] == 0


def test_a_failed_send_is_retried_with_back_off_and_then_sent_once(
    outbox, therapist_a, reachable, monkeypatch
):
    open_with_session_in(therapist_a, reachable, hours=2)
    real_send = tasks.channels.send
    calls = {"n": 0}

    def flaky(delivery):
        calls["n"] += 1
        if calls["n"] <= 2:
            raise ConnectionError("smtp down")
        real_send(delivery)

    monkeypatch.setattr(tasks.channels, "send", flaky)
    tasks.sweep.call()
    failed = Delivery.objects.filter(sent_at__isnull=True)
    assert failed.count() == 2
    assert {d.last_error for d in failed} == {"ConnectionError"}
    assert all(d.due_at > timezone.now() for d in failed)  # backed off
    Delivery.objects.update(due_at=timezone.now())
    tasks.sweep.call()
    assert Delivery.objects.filter(sent_at__isnull=True).count() == 0
    assert len(files(outbox, "email")) == 1
    assert len(files(outbox, "sms")) == 1


def test_a_claimed_delivery_is_not_sent_by_a_second_worker(
    outbox, therapist_a, reachable, settings
):
    open_with_session_in(therapist_a, reachable, hours=2)
    settings.TASKS = {"default": {"BACKEND": TASKS_DUMMY_BACKEND}}
    tasks.sweep.call()
    delivery = Delivery.objects.first()
    Delivery.objects.filter(pk=delivery.pk).update(claimed_at=timezone.now())  # worker 1 holds it
    assert tasks.send_delivery.call(delivery.pk) == "skipped"
    # The lease runs out (worker 1 died): the delivery is free again, sent once.
    Delivery.objects.filter(pk=delivery.pk).update(claimed_at=timezone.now() - timedelta(hours=1))
    assert tasks.send_delivery.call(delivery.pk) == "sent"
    assert tasks.send_delivery.call(delivery.pk) == "skipped"


def test_resending_after_a_crash_rewrites_the_same_outbox_file(outbox, therapist_a, reachable):
    open_with_session_in(therapist_a, reachable, hours=2)
    tasks.sweep.call()
    # Simulate the crash window: the message left, sent_at was never stored.
    Delivery.objects.update(sent_at=None, claimed_at=None)
    tasks.sweep.call()
    assert len(files(outbox, "email")) == 1
    assert len(files(outbox, "sms")) == 1


def test_expired_check_ins_raise_one_missed_alert_per_run(outbox, therapist_a, reachable):
    episode = open_with_session_in(therapist_a, reachable, hours=200)
    past = timezone.now() - timedelta(minutes=1)
    for n in (1, 2, 3):
        checkin, _ = services.issue_checkin(episode, session=episode.sessions.get(number=n))
        CheckIn.objects.filter(pk=checkin.pk).update(expires_at=past - timedelta(days=3 - n))
        if n == 1:
            assert tasks.sweep.call()["expired"] == 1
            assert not Alert.objects.filter(kind=AlertKind.MISSED).exists()
    assert tasks.sweep.call()["expired"] == 2
    (alert,) = Alert.objects.filter(kind=AlertKind.MISSED)
    assert alert.detail["in_a_row"] == 3
    assert tasks.sweep.call()["expired"] == 0
    assert Alert.objects.filter(kind=AlertKind.MISSED).count() == 1
    assert EpisodeInsight.objects.get(episode=episode).overdue_checkins == 3


def test_an_alert_notification_is_sent_once_without_phi(outbox, therapist_a, episode_of_a):
    therapist_a.email = "therapist@example.org"
    therapist_a.save()
    alert = Alert.objects.create(
        practice_id=episode_of_a.practice_id,
        episode=episode_of_a,
        kind=AlertKind.SAFETY,
        priority=0,
        dedupe_key="t:1",
    )
    assert tasks.notify_alert.call(alert.pk) == "sent"
    assert tasks.notify_alert.call(alert.pk) == "skipped"
    (email,) = files(outbox, "email")
    text = email.read_text()
    assert "safety alert" in text
    assert "Sam" not in text
    assert str(episode_of_a.client.public_id) not in text


def test_the_sweep_picks_up_a_notification_whose_enqueue_was_lost(
    outbox, therapist_a, episode_of_a
):
    therapist_a.email = "therapist@example.org"
    therapist_a.save()
    alert = Alert.objects.create(
        practice_id=episode_of_a.practice_id,
        episode=episode_of_a,
        kind=AlertKind.OFF_TRACK,
        priority=1,
        dedupe_key="t:2",
        created_at=timezone.now() - timedelta(minutes=5),
    )
    assert tasks.sweep.call()["notifications"] == 1
    alert.refresh_from_db()
    assert alert.notified_at is not None
    assert tasks.sweep.call()["notifications"] == 0


def _one_phq9_score(episode):
    checkin, _ = services.issue_checkin(episode, session=episode.sessions.get(number=1))
    answers = {
        inst: {i.id: 1 for i in al.instrument(inst).items if i.kind == "choice"}
        for inst in checkin.instruments
    }
    services.submit_checkin(checkin, services.Submission(answers=answers))


def test_the_nightly_task_waits_for_enough_clients(therapist_a, episode_of_a, settings):
    _one_phq9_score(episode_of_a)
    settings.ALLIANCE_RECALIBRATION_MIN_CLIENTS = 30
    results = tasks.recalibrate_all.call()
    assert f"{therapist_a.practice_id}:phq9" in results
    assert "needed" in results[f"{therapist_a.practice_id}:phq9"]
    assert not PracticeModel.objects.exists()


@pytest.mark.slow
def test_the_nightly_task_fits_and_activates_the_practice_model(
    therapist_a, episode_of_a, settings, monkeypatch
):
    from alliance_web.care import calibration

    _one_phq9_score(episode_of_a)
    data = al.recovery.example_data(n_clients=60, seed=3)
    monkeypatch.setattr(calibration, "course_data", lambda practice, instrument: data)
    settings.ALLIANCE_RECALIBRATION_MIN_CLIENTS = 30
    assert tasks.recalibrate_all.call()[f"{therapist_a.practice_id}:phq9"] == "fitted"
    tasks.recalibrate_all.call()
    model = PracticeModel.objects.get(active=True, instrument="phq9")
    assert model.method == "loglinear_intake"
    assert model.n_clients == 60
    refit = al.ETRModel.from_dict(model.model)
    assert refit.expected(4, intake=18) == pytest.approx(al.fit_etr(data).expected(4, intake=18))
    assert PracticeModel.objects.filter(instrument="phq9").count() == 2


def test_check_ins_work_with_no_worker_and_the_notification_waits_in_the_queue(
    episode_of_a, django_capture_on_commit_callbacks
):
    """The web request never needs the worker: the submission and its safety alert are stored at
    once; the therapist's email waits as a queued task (and the sweep would find it anyway)."""
    from django_tasks_db.models import DBTaskResult

    checkin, _ = services.issue_checkin(episode_of_a, session=episode_of_a.sessions.get(number=1))
    answers = {
        inst: {i.id: 1 for i in al.instrument(inst).items if i.kind == "choice"}
        for inst in checkin.instruments
    }
    with django_capture_on_commit_callbacks(execute=True):
        result = services.submit_checkin(checkin, services.Submission(answers=answers))
    assert result.safety
    alert = Alert.objects.get(kind=AlertKind.SAFETY)
    assert alert.notified_at is None
    queued = DBTaskResult.objects.filter(task_path__endswith="notify_alert")
    assert [r.args_kwargs["args"] for r in queued] == [[alert.pk]]
