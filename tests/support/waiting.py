"""The one wait-until helper of the tests: poll a condition, fail with what was awaited.

Example::

    wait_until(lambda: len(receiver.ok()) == 2, 10, "two deliveries")
    stats = wait_until(lambda: (s := camera.stats()).decoded and s, 10, "a decoded frame")

Tests never sleep for a fixed time to let something happen: they wait until it
has happened, bounded by ``timeout``.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def wait_until(
    predicate: Callable[[], T | None],
    timeout: float = 10.0,
    what: str | Callable[[], str] = "condition",
    *,
    interval: float = 0.02,
) -> T:
    """Call ``predicate`` until it returns a truthy value and return that value.

    Args:
        predicate: checked at once, then every ``interval`` seconds.
        timeout: seconds to wait at most.
        what: what the test waits for, said in the failure; a callable is asked at
            the time of failure (to show the state that was seen last).
        interval: seconds between checks.

    Returns:
        The predicate's first truthy value.

    Raises:
        AssertionError: ``predicate`` stayed falsy for ``timeout`` seconds.
    """
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            said = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {said}")
        time.sleep(interval)
