"""Staggered camera opening: cameras of one server open one after another, with jitter.

Opening 40 RTSP sessions on one server at the same instant (Lookout starting,
or every camera reconnecting after the server restarted) can stall every
session; real cameras and NVRs dislike a thundering herd too. An
:class:`OpenStagger` hands out opening turns per server (host name): each
turn comes at least ``spacing_s`` after the previous one on that host, plus
a random jitter of up to ``jitter_s``. Cameras on different hosts do not wait
for each other; files and devices (no host) never wait.

Example:
    >>> import random
    >>> s = OpenStagger(spacing_s=0.5, jitter_s=0.0, clock=lambda: 10.0, rng=random.Random(1))
    >>> [s.turn("nvr.lan") for _ in range(3)], s.turn("other.lan"), s.turn(None)
    ([0.0, 0.5, 1.0], 0.0, 0.0)

A camera asks for its turn before every open (the first and each reconnect) and
waits the delay it gets; :func:`shared_open_stagger` is the process-wide one.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from urllib.parse import urlsplit

OPEN_SPACING_S = 0.15
"""Least time between two openings on one host (seconds)."""
OPEN_JITTER_S = 0.15
"""Random extra delay of each opening on a host (up to this, seconds)."""


class OpenStagger:
    """Opening turns per host: ``spacing_s`` apart plus up to ``jitter_s`` of jitter.

    Thread-safe. A turn is reserved when asked for: the caller then waits the
    returned delay (and may give up, e.g. when released; the turn is spent).

    Args:
        spacing_s: least time between two turns on one host.
        jitter_s: each turn comes up to this much later, at random.
        clock: monotonic clock of the turns.
        rng: random source (a seeded ``random.Random`` in tests).

    Raises:
        ValueError: a negative spacing or jitter.
    """

    def __init__(
        self,
        spacing_s: float = OPEN_SPACING_S,
        jitter_s: float = OPEN_JITTER_S,
        *,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
    ) -> None:
        if spacing_s < 0 or jitter_s < 0:
            raise ValueError("spacing_s and jitter_s must not be negative.")
        self.spacing_s = spacing_s
        self.jitter_s = jitter_s
        self._clock = clock
        self._rng = rng or random.Random()
        self._next: dict[str, float] = {}
        self._lock = threading.Lock()

    def turn(self, host: str | None) -> float:
        """Reserve the next opening turn on ``host``; return the seconds to wait for it.

        ``None`` (a file, a device) never waits.
        """
        if host is None:
            return 0.0
        with self._lock:
            now = self._clock()
            at = max(now, self._next.get(host, now))
            if self.jitter_s:
                at += self._rng.uniform(0.0, self.jitter_s)
            self._next[host] = at + self.spacing_s
            if len(self._next) > 4096:  # forget hosts whose turns are long past
                self._next = {h: t for h, t in self._next.items() if t > now}
            return at - now


def stagger_host(target: str) -> str | None:
    """The host a camera URL opens a connection to (``None`` for files and devices).

    Example:
        >>> stagger_host("rtsp://u:pw@NVR.lan:554/cam1"), stagger_host("/dev/video0")
        ('nvr.lan', None)
    """
    if "://" not in target:
        return None
    try:
        host = urlsplit(target).hostname
    except ValueError:
        return None
    return host or None


_shared: OpenStagger | None = None
_shared_lock = threading.Lock()


def shared_open_stagger() -> OpenStagger:
    """The process-wide :class:`OpenStagger` (default spacing and jitter), made on first use."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = OpenStagger()
        return _shared
