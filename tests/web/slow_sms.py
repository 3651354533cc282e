"""An SMS sender for the real-worker test: the file outbox, a little slowly, so that the worker
can be killed while it is sending (not a test module)."""

from __future__ import annotations

import time

from alliance_web.care.channels import FileSmsSender


class SlowFileSmsSender(FileSmsSender):
    def send(self, to: str, body: str, key: str) -> None:
        time.sleep(0.15)
        super().send(to, body, key)
