"""A backend's concurrency limit across the cluster: the hub leases slots out.

In one process a backend's ``max_concurrency`` is a semaphore. On a cluster
every camera actor has its own copy of the backend, so the limit would
multiply by the number of actors; instead :class:`Slots` (held by the hub
actor on the head, :mod:`pipeline.app.cluster.hub`: no process of its own)
leases each actor a share of the limit for a while
(:mod:`pipeline.app.cluster.lease_book`), and the actor renews its leases in
the background and takes a slot for each look in its own process
(:mod:`pipeline.app.cluster.leases`): no remote call per look. An actor whose
looks wait for a slot asks at once and waits here (a long poll) until its
share can grow; the share of one that stops renewing comes back when its
lease and its longest look have run out, or at once when the driver knows it
is dead (:meth:`Slots.release_holder`). The hub makes it with
``fresh=False`` and the driver then calls :meth:`Slots.begin`: a hub that Ray
starts again after a crash (same arguments, no ``begin``) grants nothing new
until every lease the old one made has run out. Its methods are thread-safe;
a waiting renewal holds its thread (the hub runs them in a concurrency group
of their own).

Example:
    >>> s = Slots({"vlm": 2})
    >>> grants = s.renew("g1-1", {"vlm": Report(wanted=1)})
    >>> grants["vlm"].slots, s.stats()["vlm"]["leased"]
    (1, 1)
    >>> s.release_holder("g1-1"), s.stats()["vlm"]["leased"]
    (1, 0)
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterable, Mapping

from pipeline.app.cluster.lease_book import Grant, LeaseBook, Report
from pipeline.core.config import LookoutConfig

RECHECK_S = 1.0
"""How often a waiting renewal looks again at leases that may have expired meanwhile."""
SLOTS_GROUP = "slots"
"""The hub's Ray concurrency group for renewals that wait (each holds a thread while it waits)."""
SLOTS_THREADS = 64
"""Threads of that group: camera actors whose looks may wait for a slot at the same time."""


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


def backend_drains(cfg: LookoutConfig) -> dict[str, float]:
    """The longest one look may hold a slot, per limited backend, in seconds.

    Every attempt at its request timeout, the backoff before each retry, and two
    more attempts for a request reshaped to what the server takes.

    Example:
        >>> from pipeline.core.config_loader import load_config_text
        >>> backend_drains(load_config_text('[cameras.a]\\nurl = "a.mp4"\\n[backends.vlm]\\n'
        ...     'type = "openai"\\nbase_url = "http://127.0.0.1:8080/v1"\\n'
        ...     'request_timeout_s = 10\\nretries = 1\\nbackoff_max_s = 2\\n'))
        {'vlm': 42.0}
    """
    out = {}
    for name in backend_limits(cfg):
        backend = cfg.backends[name]
        timeout = float(getattr(backend, "request_timeout_s", 120.0))
        retries = int(getattr(backend, "retries", 0))
        backoff = float(getattr(backend, "backoff_max_s", 0.0))
        out[name] = (retries + 3) * timeout + retries * backoff
    return out


class Slots:
    """Leases on backend slots for the whole cluster (in the hub actor; thread-safe).

    Args:
        limits: backend name -> slots; a backend not named is not limited.
        drains: backend name -> the longest a look may hold a slot (:func:`backend_drains`).
        lease_s: how long a grant holds without a renewal.
        fresh: whether no lease can exist yet (else: wait for :meth:`begin`).
    """

    def __init__(
        self,
        limits: Mapping[str, int],
        drains: Mapping[str, float] | None = None,
        lease_s: float = 10.0,
        fresh: bool = True,
    ) -> None:
        self.book = LeaseBook(limits, drains, lease_s, fresh=fresh)
        self._cond = threading.Condition()

    def begin(self) -> None:
        """No lease was granted before this actor (the driver's first call): grant at once."""
        with self._cond:
            self.book.grace_until = 0.0
            self._cond.notify_all()

    def begin_after(self, holders: Iterable[str]) -> None:
        """Every holder alive is among ``holders`` (the others died): grant once they reported."""
        with self._cond:
            self.book.await_holders(holders)
            self._cond.notify_all()

    def renew(
        self, holder: str, reports: Mapping[str, Report], wait_s: float = 0.0
    ) -> dict[str, Grant]:
        """Take ``holder``'s reports and renew its leases.

        With ``wait_s``, first wait up to that long for one of its grants to change
        (a holder whose looks wait for a slot asks this way).
        """
        cond = self._cond
        with cond:
            self.book.report(holder, reports)
            cond.notify_all()  # its reservation may have shrunk
            deadline = time.monotonic() + wait_s
            while not self._changed(holder, reports):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                if not cond.wait(min(left, RECHECK_S)):
                    self.book.expire()
            grants = self.book.grant(holder, reports)
            cond.notify_all()  # others' offers may have shrunk
            return grants

    def _changed(self, holder: str, reports: Mapping[str, Report]) -> bool:
        if self.book.dropped(holder):
            return True
        return any(self.book.offer(holder, b) != r.had for b, r in reports.items())

    def release_holder(self, holder: str) -> int:
        """Free every slot ``holder`` (known dead, or stopping) reserved; returns how many."""
        with self._cond:
            freed = self.book.drop(holder)
            self._cond.notify_all()
            return freed

    def set_limits(
        self, limits: Mapping[str, int], drains: Mapping[str, float], lease_s: float
    ) -> None:
        """New limits (a reload); shares follow at the holders' next renewals."""
        with self._cond:
            self.book.set_limits(limits, drains, lease_s)
            self._cond.notify_all()

    def stats(self) -> dict[str, dict[str, int]]:
        """Per backend: limit, leased, reserved, peak, in_use, waits, holders."""
        with self._cond:
            self.book.expire()
            return self.book.stats()
