"""Endpoints that asked to be left alone for a while (429/503 with ``Retry-After``).

Example:
    >>> PAUSES.left("https://example.com/never-paused", now=0.0)
    0.0
"""

from __future__ import annotations

import threading


class EndpointPauses:
    """Until when each endpoint asked not to be called (429/503 with ``Retry-After``).

    Shared by every webhook sink of the process, keyed by URL: while an endpoint
    is paused no event is POSTed to it, whichever event or sink got the answer.

    Example:
        >>> pauses = EndpointPauses()
        >>> pauses.pause("https://example.com/h", until=110.0)
        >>> pauses.left("https://example.com/h", now=100.0), pauses.left("https://x.org", 100.0)
        (10.0, 0.0)
    """

    def __init__(self) -> None:
        self._until: dict[str, float] = {}
        self._lock = threading.Lock()

    def pause(self, url: str, until: float) -> None:
        """Call nothing at ``url`` before ``until`` (a later pause never shortens one)."""
        with self._lock:
            self._until[url] = max(until, self._until.get(url, until))

    def left(self, url: str, now: float) -> float:
        """Seconds the pause of ``url`` still lasts (0.0: not paused)."""
        with self._lock:
            until = self._until.get(url)
            if until is not None and until <= now:
                del self._until[url]
            return 0.0 if until is None or until <= now else until - now


PAUSES = EndpointPauses()
"""The process's endpoint pauses."""
