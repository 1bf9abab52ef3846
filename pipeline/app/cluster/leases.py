"""A camera actor's side of backend slots: leased shares, taken per look without a call.

:class:`LeasedPermits` holds, per limited backend, a grant of slots from the
:class:`~pipeline.app.cluster.slots.Slots` actor and renews it from one
background thread every third of its lease. A look takes one of those slots
in its own process (:class:`LimitedBackend`); it makes a remote call only
when its look has to wait (the renewal is sent at once and waits at the
slots actor until the share can grow) or when a grant shrank below the looks
in flight (the slots go back as those end). A grant not renewed in time runs
out: no look starts on it, looks already started finish.

Calls to the slots actor go one at a time from the renewal thread, each
saying which grant the actor works under, so the slots actor always knows an
upper bound of what the actor may be using (:mod:`pipeline.app.cluster.lease_book`).

Example:
    >>> class Link:
    ...     def renew(self, holder, reports, wait_s):
    ...         return {b: Grant(2, "e", 1, 10.0) for b in reports}
    ...     def release(self, holder): pass
    >>> permits = LeasedPermits(Link(), "g1-1", ["vlm"], lease_s=10)
    >>> permits.open()
    >>> permits.acquire("vlm", 5.0), permits.stats()["vlm"]["in_use"]
    (True, 1)
    >>> permits.release("vlm"); permits.close()
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from operators.backends.base import Availability, Backend, LookRequest
from pipeline.app.cluster.lease_book import Grant, Report
from pipeline.core.logs import log_unexpected
from pipeline.core.verdict import AnswerKind, Verdict

log = logging.getLogger("lookout.cluster")

RETRY_S = 1.0
"""Wait after a renewal that failed (the grant holds until its lease runs out)."""


class SlotsLink(Protocol):
    """How a holder reaches the slots actor."""

    def renew(self, holder: str, reports: dict[str, Report], wait_s: float) -> dict[str, Grant]:
        """Report and renew; with ``wait_s``, wait up to that long for a grant to change.

        Blocks; raises when the slots actor did not answer.
        """
        ...

    def release(self, holder: str) -> None:
        """Give back every slot of ``holder`` (its looks have ended); does not wait."""
        ...


@dataclass
class _Share:
    """One backend's slots in this actor."""

    grant: int = 0
    epoch: str = ""
    seq: int = 0
    valid_until: float = 0.0
    in_use: int = 0
    waiting: int = 0
    waits: int = 0
    peak: int = 0
    contended: bool = False
    given_back: int = 0


class LeasedPermits:
    """Backend slots leased from the slots actor (see the module docstring).

    Args:
        link: the slots actor.
        holder: this actor's name (group and generation).
        backends: backends with a cluster-wide limit.
        lease_s: the lease until the first grant says its own.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        link: SlotsLink,
        holder: str,
        backends: Iterable[str],
        lease_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.link = link
        self.holder = holder
        self.lease_s = lease_s
        self.clock = clock
        self.renewals = 0
        self.failures = 0
        self._shares = {b: _Share() for b in backends}
        self._cond = threading.Condition()
        self._poke = threading.Event()
        self._closing = threading.Event()
        self._thread: threading.Thread | None = None

    # ------------------------------------------------------------ looks

    def limited(self, backend: str) -> bool:
        """Whether ``backend`` has a cluster-wide limit."""
        with self._cond:
            return backend in self._shares

    def _granted(self, share: _Share) -> int:
        """The slots ``share`` may use now (none once its lease ran out)."""
        return share.grant if self.clock() < share.valid_until else 0

    def _free(self, share: _Share) -> bool:
        return share.in_use < self._granted(share)

    def acquire(self, backend: str, timeout_s: float) -> bool:
        """Take a slot of ``backend``; False when none came within ``timeout_s``."""
        deadline = self.clock() + timeout_s
        with self._cond:
            share = self._shares.get(backend)
            if share is None:
                return True
            if not self._free(share):
                share.waits += 1
                share.waiting += 1
                self._poke.set()  # ask at once
                try:
                    while not self._free(share):
                        left = deadline - self.clock()
                        if left <= 0 or self._closing.is_set():
                            return False
                        self._cond.wait(left)
                finally:
                    share.waiting -= 1
            share.in_use += 1
            share.peak = max(share.peak, share.in_use)
            return True

    def release(self, backend: str) -> None:
        """Give a slot back (to the slots actor at once where others wait or the grant shrank)."""
        with self._cond:
            share = self._shares.get(backend)
            if share is None:
                return
            share.in_use -= 1
            needed = share.in_use + share.waiting
            if share.contended and needed < share.grant:  # others want slots it does not use
                share.given_back += share.grant - needed
                share.grant = needed
                self._poke.set()
            elif share.in_use >= self._granted(share):  # it held more than its grant
                self._poke.set()
            self._cond.notify_all()

    # ------------------------------------------------------------ renewals

    def open(self) -> None:
        """Start renewing (the first renewal at once)."""
        self._thread = threading.Thread(target=self._run, name="slot-leases", daemon=True)
        self._thread.start()

    def close(self) -> None:
        """Stop renewing and give every grant back (call once no look is in flight)."""
        self._closing.set()
        self._poke.set()
        with self._cond:
            for share in self._shares.values():
                share.grant = 0
            self._cond.notify_all()
        if self._thread is not None:  # after its last call: nothing granted after the release
            self._thread.join(15)
        try:
            self.link.release(self.holder)
        except Exception as exc:
            log_unexpected(log, "slot leases: giving back", exc, expected=(Exception,))

    def track(self, backends: Iterable[str]) -> None:
        """The limited backends after a reload (new ones start with no slot)."""
        wanted = set(backends)
        with self._cond:
            for name in wanted - set(self._shares):
                self._shares[name] = _Share()
            for name in set(self._shares) - wanted:
                if self._shares[name].in_use == 0:
                    del self._shares[name]
        self._poke.set()

    def _reports(self) -> tuple[dict[str, Report], float]:
        """What to tell the slots actor, and how long it may wait (call with the lock)."""
        reports = {}
        short = owing = False
        for name, s in self._shares.items():
            had = self._granted(s)
            reports[name] = Report(s.in_use, s.in_use + s.waiting, had, s.epoch, s.seq, s.waits)
            short = short or (s.waiting > 0 and s.in_use + s.waiting > had)
            owing = owing or s.in_use > had
        return reports, self.lease_s / 3 if short and not owing else 0.0

    def _apply(self, grants: Mapping[str, Grant], sent: float) -> bool:
        """Take new grants (call with the lock); whether a look still waits for more."""
        for name, g in grants.items():
            share = self._shares.get(name)
            if share is None or (g.epoch == share.epoch and g.seq <= share.seq):
                continue
            share.grant, share.epoch, share.seq = g.slots, g.epoch, g.seq
            share.contended = g.contended
            share.valid_until = sent + g.lease_s
            self.lease_s = g.lease_s
        self._cond.notify_all()
        return any(s.waiting > 0 and not self._free(s) for s in self._shares.values())

    def _run(self) -> None:
        due = self.clock()
        while not self._closing.is_set():
            self._poke.wait(max(0.0, due - self.clock()))
            self._poke.clear()
            if self._closing.is_set():
                return
            with self._cond:
                reports, wait_s = self._reports()
            sent = self.clock()
            try:
                grants = self.link.renew(self.holder, reports, wait_s)
            except Exception as exc:
                self.failures += 1
                log_unexpected(log, "slot leases: renewal", exc, expected=(Exception,))
                due = sent + min(RETRY_S, self.lease_s / 3)
                continue
            self.renewals += 1
            with self._cond:
                short = self._apply(grants, sent)
            due = sent if short and wait_s > 0 else sent + self.lease_s / 3

    def stats(self) -> dict[str, dict[str, int]]:
        """Per backend: grant, in_use, waiting, waits, peak, given_back."""
        keys = ("grant", "in_use", "waiting", "waits", "peak", "given_back")
        with self._cond:
            return {
                name: {k: getattr(s, k) for k in keys} for name, s in sorted(self._shares.items())
            }


class LimitedBackend:
    """A backend whose looks each take a cluster-wide slot first (see the module docstring).

    Args:
        inner: the backend.
        permits: where slots come from.
        wait_s: the longest wait for a slot (the backend's request timeout).
    """

    def __init__(self, inner: Backend, permits: LeasedPermits, wait_s: float) -> None:
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
        if not self.permits.acquire(self.name, self.wait_s):
            return Verdict.failed(
                AnswerKind.UNAVAILABLE,
                f"backend {self.name}: every slot in the cluster was busy for {self.wait_s:g} s",
            )
        try:
            return self.inner.judge(request)
        finally:
            self.permits.release(self.name)

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Describe an image within a slot."""
        if not self.permits.acquire(self.name, self.wait_s):
            raise TimeoutError(f"backend {self.name}: no free slot in {self.wait_s:g} s")
        try:
            return self.inner.describe(jpeg, prompt)
        finally:
            self.permits.release(self.name)

    def __getattr__(self, name: str) -> Any:
        if name == "inner":  # not set yet (never recurse)
            raise AttributeError(name)
        return getattr(self.inner, name)
