"""The arithmetic of backend slots on a cluster: who may hold how many, and for how long.

A backend's ``max_concurrency`` is split into leases: each camera actor (a
*holder*) holds a share for ``lease_s`` and renews it in the background
(:mod:`pipeline.app.cluster.leases`), so a look takes a slot in its own
process, without a remote call. For each holder and backend the book keeps an
upper bound of what the holder may be using, its *reservation*: the largest
grant it may still be working under and the looks it reported in flight.
Grants are made only from what the others' reservations leave, so the
reservations, and with them the looks in flight across the cluster, never add
up to more than the limit.

- Shares (:func:`shares`): while every holder's demand fits, each gets its
  demand plus an even part of the spare slots (one part is kept back for a
  newcomer); when demand exceeds the limit the slots are shared max-min
  fairly, a remainder going first to who holds least, then to who has been
  short longest.
- A smaller grant counts only once the holder has seen it: until it reports
  the grant's number back (``seq``), the book keeps counting the larger one.
- A holder that stops renewing loses its lease ``lease_s`` after it sent its
  last renewal (on its own clock; it then starts no look); the book frees the
  slots ``drain_s`` later still (the longest a look already started can
  last), or at once when the holder is known dead (:meth:`LeaseBook.drop`).
- A book that starts again (its actor restarted) knows nothing of the leases
  out there: for ``lease_s + drain_s`` it renews what holders say they have
  and grants nothing more.

Example:
    >>> t = [0.0]
    >>> book = LeaseBook({"vlm": 2}, lease_s=10, clock=lambda: t[0])
    >>> book.report("g1-1", {"vlm": Report(wanted=1)})
    >>> book.grant("g1-1", ["vlm"])["vlm"].slots   # its demand, the spare kept for others
    1
    >>> book.report("g2-1", {"vlm": Report(wanted=2)})
    >>> book.grant("g2-1", ["vlm"])["vlm"].slots   # g1-1 reserves one
    1
    >>> t[0] = 100.0; book.expire()  # nobody renewed
    ['g1-1', 'g2-1']
    >>> book.stats()["vlm"]["holders"]
    0
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

UNLIMITED = 1 << 16
"""What a backend without a cluster-wide limit grants (any number of looks)."""


@dataclass(frozen=True, slots=True)
class Report:
    """What a holder says of one backend when it renews.

    Attributes:
        in_use: its looks holding a slot now.
        wanted: those plus its looks waiting for one.
        had: the grant it works under (0 once its lease ran out).
        epoch, seq: the book and number of that grant (``""``, 0: none yet).
        waits: looks that had to wait for a slot, since it started.
    """

    in_use: int = 0
    wanted: int = 0
    had: int = 0
    epoch: str = ""
    seq: int = 0
    waits: int = 0


@dataclass(frozen=True, slots=True)
class Grant:
    """A lease on ``slots`` slots of one backend, for ``lease_s`` from when it was asked for.

    ``contended``: another holder wants more than it has (slots not needed go back at once).
    """

    slots: int
    epoch: str
    seq: int
    lease_s: float
    contended: bool = False


@dataclass
class _Hold:
    """The book's record of one holder on one backend."""

    sent: list[tuple[int, int]] = field(default_factory=list)  # (seq, slots) not yet seen
    had: int = 0
    in_use: int = 0
    wanted: int = 0
    reserved: int = 0
    short_since: float | None = None
    seen_at: float = 0.0
    lease_s: float = 0.0
    waits: int = 0


def shares(
    limit: int, wants: Mapping[str, int], holds: Mapping[str, int], short_since: Mapping[str, float]
) -> dict[str, int]:
    """Each holder's fair share of ``limit`` slots, given what each wants and holds now.

    Example:
        >>> shares(10, {"a": 2, "b": 1}, {}, {})  # spare 7 in three parts, one kept back
        {'a': 4, 'b': 3}
        >>> shares(1, {"a": 1, "b": 1, "c": 1}, {"a": 1}, {"b": 5.0, "c": 7.0})
        {'a': 0, 'b': 1, 'c': 0}
        >>> shares(5, {"a": 9, "b": 1}, {}, {})
        {'a': 4, 'b': 1}
    """
    names = sorted(wants)
    total = sum(wants.values())
    if total <= limit:
        part = (limit - total) // (len(names) + 1)
        return {h: wants[h] + part for h in names}
    out = dict.fromkeys(names, 0)
    left = limit
    short = [h for h in names if wants[h] > 0]
    while short and left >= len(short):  # raise everyone's level together
        step = min(left // len(short), min(wants[h] - out[h] for h in short))
        for h in short:
            out[h] += step
        left -= step * len(short)
        short = [h for h in short if out[h] < wants[h]]
    never = float("inf")
    short.sort(key=lambda h: (holds.get(h, 0), short_since.get(h, never), h))
    for h in short[:left]:
        out[h] += 1
    return out


class LeaseBook:
    """Leases on backend slots, per backend and holder (see the module docstring).

    Args:
        limits: backend name -> slots for the whole cluster.
        drains: backend name -> the longest one look may last, in seconds.
        lease_s: how long a grant holds from when it was asked for.
        clock: monotonic seconds.
        fresh: False when this book replaces one that had granted leases.
    """

    def __init__(
        self,
        limits: Mapping[str, int],
        drains: Mapping[str, float] | None = None,
        lease_s: float = 10.0,
        *,
        clock: Callable[[], float] = time.monotonic,
        fresh: bool = True,
    ) -> None:
        self.limits = dict(limits)
        self.drains = dict(drains or {})
        self.lease_s = lease_s
        self.clock = clock
        self.epoch = uuid.uuid4().hex[:12]
        self.peak: Counter[str] = Counter()
        self._seq = 0
        self._holds: dict[str, dict[str, _Hold]] = {}
        self._dead: set[str] = set()
        self._gone_waits: Counter[str] = Counter()
        longest = max(self.drains.values(), default=0.0)
        self.grace_until = 0.0 if fresh else clock() + lease_s + longest
        self._reported: set[str] = set()
        self._awaited: set[str] | None = None

    def await_holders(self, holders: Iterable[str]) -> None:
        """Every holder alive is among ``holders``: the grace ends once each has reported.

        A book that replaces one whose other holders are known dead (their
        processes ended) need not wait for leases it cannot know of to run out.

        Example:
            >>> book = LeaseBook({"vlm": 2}, fresh=False)
            >>> book.await_holders(["g1-1"]); book.grace_until > 0
            True
            >>> book.report("g1-1", {}); book.grace_until
            0.0
        """
        missing = set(holders) - self._reported
        if missing:
            self._awaited = missing
        else:
            self.grace_until, self._awaited = 0.0, None

    # ------------------------------------------------------------ renewals

    def report(self, holder: str, reports: Mapping[str, Report]) -> None:
        """Take what ``holder`` says of each backend (its reservation follows from it)."""
        now = self.clock()
        self.expire()
        if holder in self._dead:
            return
        self._reported.add(holder)
        if self._awaited is not None:
            self._awaited.discard(holder)
            if not self._awaited:
                self.grace_until, self._awaited = 0.0, None
        for backend, r in reports.items():
            hold = self._holds.setdefault(backend, {}).setdefault(
                holder, _Hold(lease_s=self.lease_s)
            )
            if r.epoch == self.epoch:  # grants after the one it saw may be on their way
                hold.sent = [(s, n) for s, n in hold.sent if s > r.seq]
            hold.reserved = max([r.in_use, r.had, *(n for _, n in hold.sent)])
            hold.had, hold.in_use, hold.wanted = r.had, r.in_use, max(r.wanted, r.in_use)
            hold.waits = r.waits
            hold.seen_at = now
            if hold.wanted <= r.had:
                hold.short_since = None
            elif hold.short_since is None:
                hold.short_since = now

    def offer(self, holder: str, backend: str) -> int:
        """What ``holder`` (which has reported) would be granted of ``backend`` now."""
        limit = self.limits.get(backend)
        if holder in self._dead:
            return 0
        if limit is None:
            return UNLIMITED
        holds = self._holds.get(backend, {})
        mine = holds.get(holder, _Hold())
        target = shares(
            limit,
            {h: x.wanted for h, x in holds.items()} | {holder: mine.wanted},
            {h: x.had for h, x in holds.items()},
            {h: x.short_since for h, x in holds.items() if x.short_since is not None},
        )[holder]
        free = limit - sum(x.reserved for h, x in holds.items() if h != holder)
        offer = max(0, min(target, free))
        if self.clock() < self.grace_until:
            offer = min(offer, mine.had)
        return offer

    def grant(self, holder: str, backends: Iterable[str]) -> dict[str, Grant]:
        """Grant ``holder`` its offer of each backend (after :meth:`report`)."""
        now = self.clock()
        out = {}
        for backend in backends:
            slots = self.offer(holder, backend)
            self._seq += 1
            holds = self._holds.setdefault(backend, {})
            contended = any(x.wanted > x.had for h, x in holds.items() if h != holder)
            out[backend] = Grant(slots, self.epoch, self._seq, self.lease_s, contended)
            if backend not in self.limits or holder in self._dead:
                continue
            hold = holds.setdefault(holder, _Hold())
            hold.sent.append((self._seq, slots))
            hold.reserved = max(hold.reserved, slots)
            hold.seen_at = now
            hold.lease_s = max(hold.lease_s, self.lease_s)
            self.peak[backend] = max(self.peak[backend], self.reserved(backend))
        return out

    def dropped(self, holder: str) -> bool:
        """Whether ``holder`` was dropped (:meth:`drop`)."""
        return holder in self._dead

    def reserved(self, backend: str) -> int:
        """Slots of ``backend`` that holders may be using now (never above its limit)."""
        return sum(x.reserved for x in self._holds.get(backend, {}).values())

    # ------------------------------------------------------------ holders that go

    def drop(self, holder: str) -> int:
        """Free every slot of a holder known to be dead (or done); returns how many it reserved.

        A call of it still on its way (a renewal waiting here) records nothing more.
        """
        self._dead.add(holder)
        freed = 0
        for backend, holds in self._holds.items():
            hold = holds.pop(holder, None)
            if hold is not None:
                freed += hold.reserved
                self._gone_waits[backend] += hold.waits
        return freed

    def expire(self) -> list[str]:
        """Forget holds not renewed for their lease and drain time; returns their holders."""
        now = self.clock()
        gone = []
        for backend, holds in self._holds.items():
            drain = self.drains.get(backend, 0.0)
            for holder, hold in list(holds.items()):
                if now > hold.seen_at + hold.lease_s + drain:
                    del holds[holder]
                    self._gone_waits[backend] += hold.waits
                    gone.append(holder)
        return gone

    def set_limits(
        self, limits: Mapping[str, int], drains: Mapping[str, float], lease_s: float
    ) -> None:
        """New limits, look bounds and lease time (a reload); grants shrink at renewals."""
        self.limits = dict(limits)
        self.drains = dict(drains)
        self.lease_s = lease_s

    def stats(self) -> dict[str, dict[str, int]]:
        """Per backend: limit, leased (granted now), reserved, peak, in_use, waits, holders."""
        out = {}
        for backend, limit in sorted(self.limits.items()):
            holds = self._holds.get(backend, {})
            out[backend] = {
                "limit": limit,
                "leased": sum(x.sent[-1][1] if x.sent else x.had for x in holds.values()),
                "reserved": self.reserved(backend),
                "peak": self.peak[backend],
                "in_use": sum(x.in_use for x in holds.values()),
                "waits": self._gone_waits[backend] + sum(x.waits for x in holds.values()),
                "holders": len(holds),
            }
        return out
