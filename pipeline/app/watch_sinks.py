"""Sinks that a run-time watch brings itself (its ``webhook``): the protocol and their closing.

Example:
    >>> if isinstance(watch, BringsSinks):  # doctest: +SKIP
    ...     hub = SinkHub({s.name: s for s in watch.make_sinks()})
"""

from __future__ import annotations

import logging
import threading
from typing import Any, Protocol, runtime_checkable

from pipeline.core.logs import log_unexpected
from sinks.base import Sink
from sinks.registry import SinkHub

log = logging.getLogger("lookout")


@runtime_checkable
class BringsSinks(Protocol):
    """A watch that brings sinks of its own (a run-time watch's ``webhook``; see the control).

    Each run gets new sinks from :meth:`make_sinks`; they receive the watch's
    states and alerts besides the named sinks and are closed when the run ends.
    """

    def make_sinks(self) -> list[Sink]:
        """New, unopened sinks for one run (may raise: the watch does not start)."""
        ...

    def listing_extra(self) -> dict[str, Any]:
        """Secret-free keys added to the watch's listing (e.g. the webhook's endpoint label)."""
        ...


def close_own_sinks(name: str, sinks: SinkHub, flush_s: float) -> threading.Thread:
    """Flush (``wait_idle``, where a sink has it) and close a run's own sinks on a worker thread.

    A watch that ends with an alert ends right after it, on the thread that
    delivers its events; the alert must still get out, so closing waits for
    the sinks without holding that thread.
    """

    def close() -> None:
        for sink in sinks.sinks.values():
            flush = getattr(sink, "wait_idle", None)
            try:
                if callable(flush):
                    flush(flush_s)
                sink.close()
            except Exception as exc:
                log_unexpected(log, f"watch {name}: closing sink {sink.name!r}", exc)

    thread = threading.Thread(target=close, name=f"close-sinks-{name}", daemon=True)
    thread.start()
    return thread
