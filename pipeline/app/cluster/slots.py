"""A backend's concurrency limit across the cluster: slots handed out by one actor.

In one process a backend's ``max_concurrency`` is a semaphore. On a cluster
every camera actor has its own copy of the backend, so the limit would
multiply by the number of actors; instead each look first takes a slot from
:class:`Slots` (one asyncio actor on the head) and gives it back when the
answer came. A slot held by an actor that was lost is given back when its
cameras move (:meth:`Slots.release_holder`), so a dead node never shrinks
the limit. :class:`LimitedBackend` wraps a backend with it; a look that waits
longer than the backend's request timeout for a slot fails like an
unreachable backend (retried in 30 s).

Example:
    >>> import asyncio
    >>> s = Slots({"vlm": 1})
    >>> asyncio.run(s.acquire("vlm", "g1-1", "lease-a")), s.stats()["vlm"]["in_use"]
    (True, 1)
    >>> asyncio.run(s.release("lease-a")); s.stats()["vlm"]["in_use"]
    0
"""

from __future__ import annotations

import asyncio
import os
from collections import Counter
from collections.abc import Mapping
from typing import Any, Protocol

from operators.backends.base import Availability, Backend, LookRequest
from pipeline.core.config import LookoutConfig
from pipeline.core.verdict import AnswerKind, Verdict


def backend_limits(cfg: LookoutConfig) -> dict[str, int]:
    """``max_concurrency`` of every backend that has one (model servers), by name.

    Example:
        >>> from pipeline.core.config_loader import load_config_text
        >>> backend_limits(load_config_text('[cameras.a]\\nurl = "a.mp4"\\n[backends.vlm]\\n'
        ...     'type = "openai"\\nbase_url = "http://127.0.0.1:8080/v1"\\nmax_concurrency = 3\\n'))
        {'vlm': 3}
    """
    out = {}
    for name, backend in cfg.backends.items():
        limit = getattr(backend, "max_concurrency", None)
        if isinstance(limit, int):
            out[name] = limit
    return out


class Slots:
    """Slots per backend for the whole cluster (run as an asyncio Ray actor).

    Args:
        limits: backend name -> slots; a backend not named is not limited.
    """

    def __init__(self, limits: Mapping[str, int]) -> None:
        self.limits = dict(limits)
        self.in_use: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.waits: Counter[str] = Counter()
        self.leases: dict[str, tuple[str, str]] = {}
        self._cancelled: set[str] = set()
        self._cond: asyncio.Condition | None = None

    def _condition(self) -> asyncio.Condition:
        if self._cond is None:
            self._cond = asyncio.Condition()
        return self._cond

    async def acquire(self, backend: str, holder: str, lease: str) -> bool:
        """Wait for a slot of ``backend`` for ``holder``; False when the lease was cancelled."""
        cond = self._condition()
        async with cond:
            if self.in_use[backend] >= self.limits.get(backend, 1 << 30):
                self.waits[backend] += 1
            await cond.wait_for(
                lambda: (
                    lease in self._cancelled
                    or self.in_use[backend] < self.limits.get(backend, 1 << 30)
                )
            )
            if lease in self._cancelled:
                self._cancelled.discard(lease)
                return False
            self.in_use[backend] += 1
            self.peak[backend] = max(self.peak[backend], self.in_use[backend])
            self.leases[lease] = (backend, holder)
            return True

    def _free(self, lease: str) -> bool:
        held = self.leases.pop(lease, None)
        if held is None:
            return False
        self.in_use[held[0]] -= 1
        return True

    async def release(self, lease: str) -> None:
        """Give a slot back."""
        cond = self._condition()
        async with cond:
            if self._free(lease):
                cond.notify_all()

    async def cancel(self, lease: str) -> None:
        """The caller stopped waiting: give the slot back if it was granted, else never grant it."""
        cond = self._condition()
        async with cond:
            if not self._free(lease):
                self._cancelled.add(lease)
            cond.notify_all()

    async def release_holder(self, holder: str) -> int:
        """Give back every slot ``holder`` (a lost actor) held; returns how many."""
        cond = self._condition()
        async with cond:
            mine = [lease for lease, (_, h) in self.leases.items() if h == holder]
            for lease in mine:
                self._free(lease)
            cond.notify_all()
            return len(mine)

    async def set_limits(self, limits: Mapping[str, int]) -> None:
        """New limits (a reload)."""
        cond = self._condition()
        async with cond:
            self.limits = dict(limits)
            cond.notify_all()

    def pid(self) -> int:
        """The id of this actor's process (the benchmark measures it)."""
        return os.getpid()

    def stats(self) -> dict[str, dict[str, int]]:
        """Per backend: limit, in_use, peak, waits."""
        return {
            b: {
                "limit": limit,
                "in_use": self.in_use[b],
                "peak": self.peak[b],
                "waits": self.waits[b],
            }
            for b, limit in sorted(self.limits.items())
        }


class Permits(Protocol):
    """How a camera actor takes slots (blocking)."""

    def limited(self, backend: str) -> bool:
        """Whether ``backend`` has a cluster-wide limit."""
        ...

    def acquire(self, backend: str, timeout_s: float) -> str | None:
        """A lease on a slot of ``backend``, or ``None`` after ``timeout_s``."""
        ...

    def release(self, lease: str) -> None:
        """Give the slot back."""
        ...


class LimitedBackend:
    """A backend whose looks each take a cluster-wide slot first (see the module docstring).

    Args:
        inner: the backend.
        permits: where slots come from.
        wait_s: the longest wait for a slot (the backend's request timeout).
    """

    def __init__(self, inner: Backend, permits: Permits, wait_s: float) -> None:
        self.inner = inner
        self.permits = permits
        self.wait_s = wait_s

    @property
    def name(self) -> str:
        """The backend's name."""
        return self.inner.name

    @property
    def type(self) -> str:
        """The backend's type."""
        return self.inner.type

    @property
    def needs_gpu(self) -> bool:
        """Whether it needs a GPU."""
        return self.inner.needs_gpu

    @property
    def ram_mb(self) -> int:
        """Approximate RAM."""
        return self.inner.ram_mb

    @property
    def takes_images(self) -> bool:
        """Whether it takes images (may change once the server is probed)."""
        return self.inner.takes_images

    def availability(self) -> Availability:
        """As the backend's."""
        return self.inner.availability()

    def start(self) -> None:
        """Start the backend."""
        self.inner.start()

    def stop(self) -> None:
        """Stop the backend."""
        self.inner.stop()

    def forget(self, watch: str) -> None:
        """Pass ``forget`` on, where the backend has one."""
        forget = getattr(self.inner, "forget", None)
        if callable(forget):
            forget(watch)

    def judge(self, request: LookRequest) -> Verdict:
        """Judge one look within a slot; no slot in time is an unavailable backend."""
        lease = self.permits.acquire(self.name, self.wait_s)
        if lease is None:
            return Verdict.failed(
                AnswerKind.UNAVAILABLE,
                f"backend {self.name}: every slot in the cluster was busy for {self.wait_s:g} s",
            )
        try:
            return self.inner.judge(request)
        finally:
            self.permits.release(lease)

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Describe an image within a slot."""
        lease = self.permits.acquire(self.name, self.wait_s)
        if lease is None:
            raise TimeoutError(f"backend {self.name}: no free slot in {self.wait_s:g} s")
        try:
            return self.inner.describe(jpeg, prompt)
        finally:
            self.permits.release(lease)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (never recurse)
            raise AttributeError(name)
        return getattr(self.inner, name)
