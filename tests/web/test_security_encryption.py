"""Field-level encryption at rest and key rotation (SECURITY.md REQ-CR1)."""

from __future__ import annotations

import base64
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command
from django.db import connection

from alliance_web.care import services
from alliance_web.care.fields import KeyRing, keyring
from alliance_web.care.models import (
    Alert,
    AlertAction,
    AlertKind,
    ClientNote,
    Goal,
    PrivateNote,
    RelationshipNote,
)
from alliance_web.env import envsecret
from tests.web.portal_helpers import full_answers

SECRETS = {
    "goal": "Tell my mother about the diagnosis",
    "client_note": "I lied to you last week about drinking",
    "private_note": "PROCESS: strong countertransference",
    "relationship": "She walked out after the homework review",
    "alert_action": "Called her at home; safety plan reviewed",
    "draft": "half-written note about the accident",
}
SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture
def written(client, therapist_a, episode_of_a):
    services.set_goal(therapist_a, episode_of_a, 3, SECRETS["goal"])
    checkin, path = services.issue_checkin(episode_of_a, session=episode_of_a.sessions.first())
    client.post(path, {"action": "save", "note": SECRETS["draft"]})
    second, path2 = services.issue_checkin(episode_of_a)
    data = full_answers(second)
    data["note"] = SECRETS["client_note"]
    assert client.post(path2, data).status_code == 200
    services.add_private_note(therapist_a, episode_of_a, SECRETS["private_note"])
    services.log_relationship_event(
        therapist_a, episode_of_a, event="rupture", text=SECRETS["relationship"]
    )
    alert = Alert.objects.create(
        practice_id=episode_of_a.practice_id,
        episode=episode_of_a,
        kind=AlertKind.OFF_TRACK,
        priority=1,
        dedupe_key="enc:1",
    )
    services.record_alert_action(therapist_a, alert, "contacted", SECRETS["alert_action"])
    return checkin


COLUMNS = [
    ("care_goal", "text", "goal"),
    ("care_clientnote", "text", "client_note"),
    ("care_privatenote", "text", "private_note"),
    ("care_relationshipnote", "text", "relationship"),
    ("care_alertaction", "note", "alert_action"),
    ("care_checkin", "draft", "draft"),
]


@pytest.mark.parametrize(("table", "column", "secret"), COLUMNS, ids=[c[2] for c in COLUMNS])
def test_free_text_is_ciphertext_in_the_database(written, table, column, secret):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL AND {column} <> ''"
        )
        raw = [row[0] for row in cursor.fetchall()]
    assert raw, f"nothing stored in {table}.{column}"
    for value in raw:
        assert value.startswith(keyring().current + "$")
        assert SECRETS[secret] not in value
        assert SECRETS[secret].split()[-1] not in value
    dump = " ".join(raw)
    for text in SECRETS.values():
        assert text not in dump


def test_the_app_reads_the_plaintext_back(written, episode_of_a):
    assert Goal.objects.get(episode=episode_of_a, position=3).text == SECRETS["goal"]
    assert ClientNote.objects.get(episode=episode_of_a).text == SECRETS["client_note"]
    assert PrivateNote.objects.get(episode=episode_of_a).text == SECRETS["private_note"]
    assert RelationshipNote.objects.get(episode=episode_of_a).text == SECRETS["relationship"]
    assert AlertAction.objects.get().note == SECRETS["alert_action"]
    written.refresh_from_db()
    assert SECRETS["draft"] in json.dumps(written.draft)


def test_process_notes_are_a_separate_model_from_the_record():
    """REQ-PN1 (HIPAA §164.501): the therapist's process notes are not a field of the record."""
    from alliance_web.care.models import Episode

    assert PrivateNote._meta.db_table != Episode._meta.db_table
    assert "shared_with_supervisors" in {f.name for f in PrivateNote._meta.fields}


def _key() -> str:
    return base64.urlsafe_b64encode(os.urandom(32)).decode()


def test_a_tampered_or_foreign_ciphertext_does_not_decrypt():
    ring = KeyRing(f"k1:{_key()}")
    stored = ring.encrypt("hello")
    with pytest.raises(ImproperlyConfigured):
        ring.decrypt(stored[:-3] + ("AAA" if stored[-3:] != "AAA" else "BBB"))
    with pytest.raises(ImproperlyConfigured, match="k9"):
        ring.decrypt("k9$" + stored.split("$", 1)[1])
    with pytest.raises(ImproperlyConfigured):
        KeyRing(f"k2:{_key()}").decrypt(stored.replace("k1$", "k2$"))


@pytest.mark.parametrize("spec", ["", "k1", "k1:short", "k$1:" + "A" * 44, ":" + "A" * 44])
def test_nonsense_key_settings_fail_loudly(spec):
    with pytest.raises(ImproperlyConfigured):
        KeyRing(spec)


def test_a_secret_can_come_from_a_file(tmp_path, monkeypatch):
    path = tmp_path / "field_keys"
    path.write_text(f"k7:{_key()}\n", encoding="utf-8")
    monkeypatch.setenv("ALLIANCE_FIELD_KEYS_FILE", str(path))
    monkeypatch.setenv("ALLIANCE_FIELD_KEYS", "ignored when the file is set")
    assert envsecret("ALLIANCE_FIELD_KEYS").startswith("k7:")
    monkeypatch.setenv("ALLIANCE_FIELD_KEYS_FILE", str(tmp_path / "missing"))
    with pytest.raises(ImproperlyConfigured):
        envsecret("ALLIANCE_FIELD_KEYS")


def test_production_settings_take_the_keys_from_the_environment_or_a_file(tmp_path):
    path = tmp_path / "keys"
    path.write_text(f"k3:{_key()}", encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ALLIANCE_", "DATABASE_URL"))}
    env.update(
        {
            "ALLIANCE_PRODUCTION": "True",
            "ALLIANCE_SECRET_KEY": _key() + _key(),
            "ALLIANCE_ALLOWED_HOSTS": "x.example",
            "ALLIANCE_FIELD_KEYS_FILE": str(path),
            "ALLIANCE_DATA_DIR": str(tmp_path / "data"),
            "DJANGO_SETTINGS_MODULE": "alliance_web.settings",
            "PYTHONPATH": str(SRC),
        }
    )
    code = "import django; django.setup(); from alliance_web.care.fields import keyring; print(keyring().current)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "k3"
    assert not (tmp_path / "data" / "secrets.json").exists()  # production never writes keys to disk
    del env["ALLIANCE_FIELD_KEYS_FILE"]
    out = subprocess.run(
        [sys.executable, "-c", code],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert out.returncode != 0
    assert "ALLIANCE_FIELD_KEYS" in out.stderr
    assert "rotate_field_key --generate" in out.stderr


def test_generate_prints_a_valid_new_key_with_the_next_id(settings):
    settings.FIELD_ENCRYPTION_KEYS = f"k4:{_key()},k1:{_key()}"
    out = io.StringIO()
    call_command("rotate_field_key", "--generate", stdout=out)
    kid, key = out.getvalue().strip().split(":", 1)
    assert kid == "k5"
    Fernet(key.encode())


def _raw(table, column):
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {column} FROM {table} WHERE {column} IS NOT NULL AND {column} <> ''"
        )
        return [r[0] for r in cursor.fetchall()]


def test_rotation_re_encrypts_every_column_under_the_first_key(written, settings, episode_of_a):
    old_spec = settings.FIELD_ENCRYPTION_KEYS
    old_id = keyring().current
    settings.FIELD_ENCRYPTION_KEYS = f"k99:{_key()},{old_spec}"
    dry = io.StringIO()
    call_command("rotate_field_key", "--dry-run", "--json", stdout=dry)
    report = json.loads(dry.getvalue())
    assert report["current_key"] == "k99"
    assert report["columns"]["care.Goal.text"]["rotated"] == Goal.objects.count()
    assert all(
        v.startswith(old_id + "$") for v in _raw("care_goal", "text")
    )  # dry run changed nothing
    call_command("rotate_field_key", stdout=io.StringIO())
    for table, column, _ in COLUMNS:
        assert all(v.startswith("k99$") for v in _raw(table, column)), table
    again = io.StringIO()
    call_command("rotate_field_key", "--json", stdout=again)
    assert sum(c["rotated"] for c in json.loads(again.getvalue())["columns"].values()) == 0
    settings.FIELD_ENCRYPTION_KEYS = settings.FIELD_ENCRYPTION_KEYS.split(",")[
        0
    ]  # the old key removed
    assert Goal.objects.get(episode=episode_of_a, position=3).text == SECRETS["goal"]
    assert PrivateNote.objects.get(episode=episode_of_a).text == SECRETS["private_note"]
