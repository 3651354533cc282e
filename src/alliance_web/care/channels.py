"""How messages leave Alliance: email and SMS, pluggable, idempotent by key.

Messages about check-ins carry the link and nothing clinical. Staff notifications say only that
something is waiting ("sign in to see it") — no PHI leaves by email (SECURITY.md 16.2.5 spirit).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Protocol

from django.conf import settings
from django.core.mail import EmailMessage
from django.core.mail.backends.base import BaseEmailBackend
from django.utils.module_loading import import_string

from alliance_web.care import tokens
from alliance_web.care.models import Channel, ConsentScope, Delivery, DeliveryKind


def channels_for(client: Any) -> list[str]:
    """Channels a client agreed to be contacted on (consent to messages, and an address)."""
    from alliance_web.care.services import has_consent

    if not has_consent(client, ConsentScope.MESSAGES):
        return []
    found = []
    if client.email:
        found.append(Channel.EMAIL)
    if client.phone:
        found.append(Channel.SMS)
    return found


class SmsSender(Protocol):
    def send(self, to: str, body: str, key: str) -> None: ...


class FileSmsSender:
    """Writes each text message to DATA_DIR/outbox/sms/<key>.txt (development and demo)."""

    def send(self, to: str, body: str, key: str) -> None:
        folder = Path(settings.DATA_DIR) / "outbox" / "sms"
        folder.mkdir(parents=True, exist_ok=True)
        _atomic_write(folder / f"{key}.txt", f"To: {to}\n\n{body}\n")


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


class OutboxEmailBackend(BaseEmailBackend):
    """Writes each email to a folder as ``<Message-ID>.eml``; sending the same message twice writes
    the same file (idempotent), unlike Django's file backend."""

    def __init__(self, file_path: str | None = None, **kwargs: Any) -> None:
        # fail_silently (if given) and alias pass through: Django 6.1's MAILERS refuses a
        # fail_silently it did not ask for.
        super().__init__(**kwargs)
        self.folder = Path(file_path or Path(settings.DATA_DIR) / "outbox" / "email")

    def send_messages(self, email_messages: Any) -> int:
        self.folder.mkdir(parents=True, exist_ok=True)
        sent = 0
        for message in email_messages:
            msg = message.message()
            key = str(msg["Message-ID"]).strip("<>").replace("/", "_").replace("@", "_at_")
            _atomic_write(self.folder / f"{key}.eml", msg.as_string())
            sent += 1
        return sent


def _message_id(key: str) -> str:
    host = (
        settings.ALLIANCE_BASE_URL.split("//")[-1].split("/")[0].split(":")[0] or "alliance.local"
    )
    return f"<{key}@{host}>"


def send(delivery: Delivery) -> None:
    checkin = delivery.checkin
    client = checkin.episode.client
    practice = client.practice
    link = tokens.link_url(checkin)
    reminder = delivery.kind == DeliveryKind.REMINDER
    key = f"delivery-{delivery.pk}"
    if delivery.channel == Channel.EMAIL:
        subject = f"{'Reminder: ' if reminder else ''}Your check-in before your next session"
        body = (
            f"Hello {client.preferred_name},\n\n"
            f"{'A gentle reminder: ' if reminder else ''}before your next session with {practice.name}, "
            "please take 2–4 minutes to answer a few short questions. Your answers help you and your "
            f"therapist see how things are going.\n\n{link}\n\n"
            "The link works once and expires before your session. If you did not expect this message, "
            f"please contact {practice.name}."
        )
        EmailMessage(
            subject, body, to=[client.email], headers={"Message-ID": _message_id(key)}
        ).send()
    elif delivery.channel == Channel.SMS:
        sender: SmsSender = import_string(settings.ALLIANCE_SMS_SENDER)()
        text = f"{practice.name}: {'reminder - ' if reminder else ''}your check-in before your next session: {link}"
        sender.send(client.phone, text, key)
    else:  # pragma: no cover - guarded by the model's choices
        raise ValueError(f"unknown channel {delivery.channel}")


def notify_staff(user: Any, alert: Any) -> None:
    if not user.email:
        return
    EmailMessage(
        "Alliance: a new alert is waiting",
        (
            f"Hello {user},\n\nThere is a new {alert.get_kind_display().lower()} alert for one of your "
            f"clients. Sign in to see it: {settings.ALLIANCE_BASE_URL}/w/alerts/\n\n"
            "(For privacy, this email does not say who or what.)"
        ),
        to=[user.email],
        headers={"Message-ID": _message_id(f"alert-{alert.pk}")},
    ).send()
