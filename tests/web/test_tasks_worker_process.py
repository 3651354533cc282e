"""A real worker process (``python -m alliance_web alliance_worker``) against a file SQLite
database: invitations are sent once, at the right time, and killing the worker with SIGKILL while
it sends loses nothing and duplicates nothing (outbox files vs ``Delivery.sent_at``).

The test's own database is in memory and cannot be shared with another process, so everything
here runs in subprocesses against ``<tmp>/alliance.sqlite3``: migrate, set up
(tests/web/worker_world.py), run the worker; the test only counts rows (read-only sqlite3) and
files. PostgreSQL runs of the suite use the same SQLite file for this test (DATABASE_URL is
removed from the children's environment) so that it never touches a shared database.
"""

from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
N_CLIENTS = 20


def _env(data: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_URL", "ALLIANCE_"))}
    env.update(
        ALLIANCE_DATA_DIR=str(data),
        ALLIANCE_SMS_SENDER="tests.web.slow_sms.SlowFileSmsSender",
        ALLIANCE_DELIVERY_LEASE_SECONDS="3",
        ALLIANCE_LOG_LEVEL="WARNING",
        PYTHONPATH=os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
        DJANGO_SETTINGS_MODULE="alliance_web.settings",
    )
    return env


def _run(env: dict[str, str], *args: str) -> None:
    subprocess.run(
        [sys.executable, *args], cwd=ROOT, env=env, check=True, capture_output=True, timeout=180
    )


class Worker:
    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.log = log.open("ab")
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "alliance_web",
                "alliance_worker",
                "--interval",
                "0.5",
                "--poll",
                "0.1",
                "--nightly-at",
                "off",
            ],
            cwd=ROOT,
            env=env,
            stdout=self.log,
            stderr=self.log,
        )

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)
        self.log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=30)
        self.log.close()


class World:
    def __init__(self, data: Path) -> None:
        self.data = data
        self.db = data / "alliance.sqlite3"

    def query(self, sql: str) -> list[tuple]:
        # closing(): sqlite3's own context manager commits but does not close (Python 3.13 warns).
        with closing(sqlite3.connect(f"file:{self.db}?mode=ro", uri=True, timeout=30)) as conn:
            return conn.execute(sql).fetchall()

    def sent(self) -> int:
        return self.query("SELECT COUNT(*) FROM care_delivery WHERE sent_at IS NOT NULL")[0][0]

    def deliveries(self) -> int:
        return self.query("SELECT COUNT(*) FROM care_delivery")[0][0]

    def outbox(self) -> dict[str, list[int]]:
        """Delivery ids named by the outbox files, per channel."""
        found: dict[str, list[int]] = {"email": [], "sms": []}
        for channel, pattern in (("email", "*.eml"), ("sms", "*.txt")):
            for path in (self.data / "outbox" / channel).glob(pattern):
                m = re.match(r"delivery-(\d+)", path.name)
                assert m, f"unexpected outbox file {path.name}"
                found[channel].append(int(m.group(1)))
        return found

    def wait(self, what, condition, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if condition():
                return
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}")


def test_a_real_worker_sends_each_invitation_once_at_its_time_and_survives_sigkill(tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    env = _env(data)
    _run(env, "-m", "alliance_web", "migrate", "--noinput", "-v", "0")
    _run(env, "-m", "tests.web.worker_world", "setup", str(N_CLIENTS))
    world = World(data)
    expected_now = 2 * N_CLIENTS  # email and SMS for every first session

    # 1. Start the worker; kill it with SIGKILL while it is sending.
    worker = Worker(env, tmp_path / "worker.log")
    try:
        world.wait("the first messages", lambda: world.sent() >= 6)
        assert world.sent() < expected_now, "the worker finished before it could be killed"
    finally:
        worker.kill()
    sent_at_kill = world.sent()
    files = world.outbox()
    ids_with_files = files["email"] + files["sms"]
    sent_ids = {r[0] for r in world.query("SELECT id FROM care_delivery WHERE sent_at IS NOT NULL")}
    # Nothing lost: every delivery marked sent has its file. Nothing doubled: one file per id.
    assert sent_ids <= set(ids_with_files)
    assert len(ids_with_files) == len(set(ids_with_files))
    # At most the one message in flight at the kill has a file but no sent_at yet.
    assert len(ids_with_files) - sent_at_kill <= 2

    # 2. A new worker finishes the job once the dead worker's lease (3 s) has run out.
    worker = Worker(env, tmp_path / "worker.log")
    try:
        world.wait("every first-session message", lambda: world.sent() == expected_now)
        files = world.outbox()
        assert sorted(files["email"] + files["sms"]) == sorted(
            r[0] for r in world.query("SELECT id FROM care_delivery")
        )
        assert len(files["email"]) == N_CLIENTS
        assert len(files["sms"]) == N_CLIENTS

        # 3. The later sessions (30 h away, lead time 24 h) are not invited early ...
        time.sleep(1.5)  # three more clock ticks
        assert world.query(
            "SELECT COUNT(*) FROM care_session WHERE number = 2 AND invited_at IS NOT NULL"
        ) == [(0,)]
        assert world.deliveries() == expected_now

        # ... and are invited once they come within the lead time.
        _run(env, "-m", "tests.web.worker_world", "advance")
        world.wait("the second-session messages", lambda: world.sent() == 2 * expected_now)
        time.sleep(1.5)
    finally:
        worker.stop()

    files = world.outbox()
    assert len(files["email"]) == 2 * N_CLIENTS
    assert len(files["sms"]) == 2 * N_CLIENTS
    assert len(set(files["email"] + files["sms"])) == 4 * N_CLIENTS
    assert world.deliveries() == 4 * N_CLIENTS
    # One check-in per session: no session was invited twice.
    assert world.query(
        "SELECT MAX(n) FROM (SELECT COUNT(*) AS n FROM care_checkin GROUP BY session_id)"
    ) == [(1,)]
    assert world.query("SELECT COUNT(*) FROM care_delivery WHERE sent_at IS NULL") == [(0,)]
