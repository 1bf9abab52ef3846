"""A circuit breaker: stop calling a failing server, probe it again after a while.

Example:
    >>> t = [0.0]
    >>> cb = CircuitBreaker(failures=2, reset_s=10.0, clock=lambda: t[0])
    >>> cb.record_failure(); cb.record_failure(); cb.state
    <CircuitState.OPEN: 'open'>
    >>> cb.allow()
    False
    >>> t[0] = 10.0
    >>> cb.allow(), cb.state
    (True, <CircuitState.HALF_OPEN: 'half_open'>)
    >>> cb.record_success(); cb.state
    <CircuitState.CLOSED: 'closed'>
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum


class CircuitState(StrEnum):
    """The breaker's states."""

    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed, open after ``failures`` consecutive failures, half-open after ``reset_s``.

    In the half-open state exactly one call (the probe) is let through; its
    success closes the circuit, its failure opens it again for ``reset_s``.
    Thread-safe. Time comes from ``clock`` (monotonic seconds) so tests can
    drive it.

    Args:
        failures: consecutive failures that open the circuit (>= 1).
        reset_s: seconds the circuit stays open before a probe (> 0).
        clock: monotonic time source.

    Raises:
        ValueError: for a bad argument.
    """

    def __init__(
        self, failures: int, reset_s: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if failures < 1:
            raise ValueError(f"failures must be at least 1, got {failures}.")
        if reset_s <= 0:
            raise ValueError(f"reset_s must be positive, got {reset_s}.")
        self.failures = failures
        self.reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = CircuitState.CLOSED
        self._count = 0
        self._opened_at = 0.0
        self._probe_out = False
        self.transitions: list[tuple[float, CircuitState]] = []

    def _set(self, state: CircuitState) -> None:
        if state is not self._state:
            self._state = state
            self.transitions.append((self._clock(), state))

    @property
    def state(self) -> CircuitState:
        """The current state (an open circuit past ``reset_s`` reads as half-open)."""
        with self._lock:
            if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.reset_s:
                return CircuitState.HALF_OPEN
            return self._state

    def retry_in(self) -> float:
        """Seconds until a probe will be allowed (0 when calls are allowed now)."""
        with self._lock:
            if self._state is not CircuitState.OPEN:
                return 0.0
            return max(0.0, self.reset_s - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """Whether a call may go out now; in half-open, only the single probe may."""
        with self._lock:
            if self._state is CircuitState.CLOSED:
                return True
            if self._state is CircuitState.OPEN:
                if self._clock() - self._opened_at < self.reset_s:
                    return False
                self._set(CircuitState.HALF_OPEN)
                self._probe_out = False
            if self._probe_out:
                return False
            self._probe_out = True
            return True

    def record_success(self) -> None:
        """Record a success: close the circuit and reset the failure count."""
        with self._lock:
            self._count = 0
            self._probe_out = False
            self._set(CircuitState.CLOSED)

    def record_failure(self) -> None:
        """Record a failure: count it; open the circuit at the limit or after a failed probe."""
        with self._lock:
            self._count += 1
            if self._state is CircuitState.HALF_OPEN or self._count >= self.failures:
                self._opened_at = self._clock()
                self._probe_out = False
                self._set(CircuitState.OPEN)
                # Re-opening restarts the wait even when already open.

    def release_probe(self) -> None:
        """Forget the half-open probe that ended without reaching the server."""
        with self._lock:
            self._probe_out = False
