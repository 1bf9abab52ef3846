"""A real SMTP server (aiosmtpd) on a free loopback port that keeps every message, for tests.

Example::

    with SmtpReceiver() as smtp:
        send_mail(f"mailto://127.0.0.1:{smtp.port}?from=a@example.com&to=b@example.com")
        message = smtp.wait_for(1)[0]      # an email.message.EmailMessage
"""

from __future__ import annotations

import email
import email.policy
import threading
import time
from email.message import EmailMessage
from types import TracebackType
from typing import Any, Self

from aiosmtpd.controller import Controller

from tests.support.ports import LOOPBACK, free_port


class SmtpReceiver:
    """aiosmtpd's ``Controller`` with a handler that parses and keeps each message.

    ``stop()`` and ``start()`` keep the port, so a test can take the server down and up.
    """

    def __init__(self, port: int | None = None) -> None:
        self.host = LOOPBACK
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self._lock = threading.Lock()
        self._controller: Controller | None = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        parsed = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        with self._lock:
            self.messages.append(parsed)
            self.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        return "250 Message accepted for delivery"

    def start(self) -> Self:
        self._controller = Controller(self, hostname=self.host, port=self.port)
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def received(self) -> list[EmailMessage]:
        with self._lock:
            return list(self.messages)

    def wait_for(self, count: int, timeout: float = 15.0) -> list[EmailMessage]:
        deadline = time.monotonic() + timeout
        while len(self.received()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"SMTP server got {len(self.received())} of {count} messages")
            time.sleep(0.02)
        return self.received()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()
