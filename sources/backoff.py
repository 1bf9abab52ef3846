"""Exponential reconnect delays with jitter: never zero, never above a cap."""

from __future__ import annotations

import random
from dataclasses import dataclass, field


@dataclass
class Backoff:
    """Delays for reconnect attempts: ``initial * factor**n``, capped, with random jitter.

    The delay after the n-th consecutive failure is drawn uniformly from
    ``[d * (1 - jitter), d]`` where ``d = min(cap, initial * factor**n)``, so two
    cameras that fail together do not reconnect in lockstep, and the delay is
    never below ``initial * (1 - jitter)`` (no zero-delay loops). ``reset()`` after
    a success starts again from ``initial``.

    Example:
        >>> b = Backoff(initial=1.0, cap=60.0, jitter=0.0)
        >>> [b.next_delay() for _ in range(8)]
        [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
        >>> b.reset(); b.next_delay()
        1.0

    Args:
        initial: first delay in seconds (> 0).
        cap: longest delay in seconds (>= initial).
        factor: growth per failure (>= 1).
        jitter: fraction of the delay that is random (0..1, exclusive of 1).
        rng: random source (inject a seeded ``random.Random`` for reproducible tests).
    """

    initial: float = 1.0
    cap: float = 60.0
    factor: float = 2.0
    jitter: float = 0.3
    rng: random.Random = field(default_factory=random.Random, repr=False)
    attempts: int = 0

    def __post_init__(self) -> None:
        if self.initial <= 0:
            raise ValueError(f"The first backoff delay must be positive, got {self.initial}.")
        if self.cap < self.initial:
            raise ValueError(f"The backoff cap ({self.cap}) must not be below the first delay.")
        if self.factor < 1:
            raise ValueError(f"The backoff factor must be at least 1, got {self.factor}.")
        if not 0 <= self.jitter < 1:
            raise ValueError(f"The backoff jitter must be in [0, 1), got {self.jitter}.")

    def next_delay(self) -> float:
        """Return the delay before the next attempt and count the attempt."""
        exponent = min(self.attempts, 64)
        delay = min(self.cap, self.initial * self.factor**exponent)
        self.attempts += 1
        if self.jitter:
            delay *= 1.0 - self.jitter * self.rng.random()
        return delay

    def reset(self) -> None:
        """Start again from the first delay (call after a successful connection)."""
        self.attempts = 0
