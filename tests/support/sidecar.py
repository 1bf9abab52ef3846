"""A vision sidecar over real HTTP for tests: ``POST /describe`` answers from a script.

Each request takes the next ``(status, json_body)`` of ``script`` (the last one
repeats), and is recorded (path, JSON body).

Example::

    with Sidecar([(200, {"description": "a cat"})]) as car:
        url = car.url("/describe")
"""

from __future__ import annotations

import json
from types import TracebackType
from typing import Any, Self

from tests.support.http_receiver import HttpReceiver, Reply


class Sidecar:
    """A scripted sidecar on a free loopback port (an :class:`HttpReceiver` answering JSON)."""

    def __init__(self, script: list[tuple[int, Any]]) -> None:
        replies = [
            Reply(status, {"Content-Type": "application/json"}, json.dumps(answer).encode())
            for status, answer in script
        ]
        self.server = HttpReceiver(replies[:-1], default=replies[-1])

    @property
    def requests(self) -> list[tuple[str, Any]]:
        """(path, JSON body) of every request, in order."""
        return [(r.path, json.loads(r.body or b"null")) for r in self.server.all()]

    def url(self, path: str = "/describe") -> str:
        """The sidecar's URL for ``path``."""
        return self.server.url_for(path)

    def __enter__(self) -> Self:
        self.server.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.server.stop()
