"""Leases on backend slots: shares, shrinking, expiry, restarts, and the limit that always holds."""

from __future__ import annotations

from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.app.cluster.lease_book import LeaseBook, Report, shares

LEASE_S = 3.0
DRAIN_S = 2.0


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@dataclass
class Holder:
    """A camera actor that follows the protocol: looks start only within its grant, while valid."""

    name: str
    grant: int = 0
    epoch: str = ""
    seq: int = 0
    valid_until: float = 0.0
    looks: list[float] = field(default_factory=list)  # when each look in flight must end
    waiting: int = 0
    dead: bool = False
    cut: bool = False  # alive, but renewals do not reach the book

    def granted(self, now: float) -> int:
        return self.grant if now < self.valid_until else 0

    def report(self, now: float) -> Report:
        in_use = len(self.looks)
        return Report(in_use, in_use + self.waiting, self.granted(now), self.epoch, self.seq)

    def renew(self, book: LeaseBook, now: float, lost: bool = False) -> None:
        book.report(self.name, {"vlm": self.report(now)})
        g = book.grant(self.name, ["vlm"])["vlm"]
        if not lost:  # a lost answer: the holder keeps working under its old grant
            self.grant, self.epoch, self.seq = g.slots, g.epoch, g.seq
            self.valid_until = now + g.lease_s


def _book(clock: Clock, limit: int, fresh: bool = True) -> LeaseBook:
    return LeaseBook({"vlm": limit}, {"vlm": DRAIN_S}, LEASE_S, clock=clock, fresh=fresh)


def test_shares_fit_the_demand_and_keep_a_part_back_then_go_max_min_fair() -> None:
    assert shares(64, {"a": 3, "b": 0, "c": 1}, {}, {}) == {"a": 18, "b": 15, "c": 16}
    assert shares(4, {"a": 10, "b": 10, "c": 1}, {}, {}) == {"a": 2, "b": 1, "c": 1}
    # The remainder goes to who holds least, then to who has been short longest.
    assert shares(1, {"a": 1, "b": 1}, {"a": 1}, {"a": 0.0, "b": 9.0}) == {"a": 0, "b": 1}
    assert shares(1, {"a": 1, "b": 1}, {}, {"a": 5.0, "b": 2.0}) == {"a": 0, "b": 1}


def test_a_smaller_grant_counts_only_once_the_holder_has_seen_it() -> None:
    clock = Clock()
    book = _book(clock, 2)
    a, b = Holder("a"), Holder("b")
    a.waiting = 2
    a.renew(book, clock.now)
    assert a.grant == 2
    a.looks, a.waiting = [9.0, 9.0], 0
    b.waiting = 1
    b.renew(book, clock.now)
    assert b.grant == 0  # a may be using both
    a.renew(book, clock.now, lost=True)  # told to shrink to 1, but the answer was lost
    b.renew(book, clock.now)
    assert b.grant == 0 and book.reserved("vlm") == 2
    a.looks = [9.0]  # one look ended; a reports again, now it sees its smaller grant
    a.renew(book, clock.now)
    assert a.grant == 1
    a.renew(book, clock.now)  # the book knows a has seen it
    b.renew(book, clock.now)
    assert b.grant == 1 and book.reserved("vlm") == 2


def test_a_grant_on_its_way_counts_when_the_holder_reports_before_it_arrived() -> None:
    clock = Clock()
    book = _book(clock, 2)
    book.report("a", {"vlm": Report(wanted=2)})
    assert book.grant("a", ["vlm"])["vlm"].slots == 2  # not yet received by a
    book.report("a", {"vlm": Report(wanted=2)})  # a second call of a, sent before it arrived
    book.report("b", {"vlm": Report(wanted=2)})
    assert book.grant("b", ["vlm"])["vlm"].slots == 0 and book.reserved("vlm") == 2
    # The same once a has seen a grant of this book.
    book = _book(clock, 2)
    book.report("a", {"vlm": Report(wanted=1)})
    first = book.grant("a", ["vlm"])["vlm"]
    seen = Report(0, 2, first.slots, first.epoch, first.seq)
    book.report("a", {"vlm": seen})
    assert book.grant("a", ["vlm"])["vlm"].slots == 2  # on its way
    book.report("a", {"vlm": seen})
    book.report("b", {"vlm": Report(wanted=2)})
    assert book.grant("b", ["vlm"])["vlm"].slots == 0 and book.reserved("vlm") == 2


def test_a_silent_holders_slots_come_back_after_its_lease_and_longest_look() -> None:
    clock = Clock()
    book = _book(clock, 1)
    a, b = Holder("a", waiting=1), Holder("b", waiting=1)
    a.renew(book, clock.now)
    assert a.grant == 1
    b.renew(book, clock.now)
    assert b.grant == 0
    clock.now = LEASE_S + DRAIN_S - 0.1  # a's lease ran out but a look may still run
    b.renew(book, clock.now)
    assert b.grant == 0
    clock.now = LEASE_S + DRAIN_S + 0.1
    b.renew(book, clock.now)
    assert b.grant == 1 and book.stats()["vlm"]["holders"] == 1


def test_a_holder_known_dead_gives_its_slots_back_at_once() -> None:
    clock = Clock()
    book = _book(clock, 3)
    a, b = Holder("a", waiting=3), Holder("b", waiting=3)
    a.renew(book, clock.now)
    b.renew(book, clock.now)
    assert (a.grant, b.grant) == (3, 0)
    assert book.drop("a") == 3
    b.renew(book, clock.now)
    assert b.grant == 3


def test_a_restarted_book_only_renews_what_holders_have_until_old_leases_are_over() -> None:
    clock = Clock()
    old = _book(clock, 4)
    a, b = Holder("a", waiting=2), Holder("b", waiting=1)
    a.renew(old, clock.now)
    b.renew(old, clock.now)
    a.waiting, b.waiting = 0, 3
    c = Holder("c", waiting=1)  # a newcomer
    new = _book(clock, 4, fresh=False)
    while clock.now < LEASE_S + DRAIN_S + 3:  # every holder renews each second
        before = {h.name: h.granted(clock.now) for h in (a, b, c)}
        for h in (a, b, c):
            h.renew(new, clock.now)
        if clock.now < LEASE_S + DRAIN_S:  # the grace: nobody gets more than it had
            assert all(h.grant <= before[h.name] for h in (a, b, c))
        clock.now += 1.0
    assert (a.grant, b.grant, c.grant) == (0, 3, 1)


def test_a_restarted_book_told_who_lives_grants_once_they_all_reported() -> None:
    # The hub died with the group it hosted (holder "h"); "a" and "b" live on.
    clock = Clock()
    old = _book(clock, 2)
    a, b, h = Holder("a", waiting=1), Holder("b"), Holder("h", waiting=1)
    for holder in (a, b, h):
        holder.renew(old, clock.now)
    new = _book(clock, 2, fresh=False)
    new.await_holders(["a", "b"])
    moved = Holder("h2", waiting=1)  # the dead group, started again
    moved.renew(new, clock.now)
    a.renew(new, clock.now)
    assert moved.grant == 0  # b has not reported: it may hold what h had
    b.renew(new, clock.now)
    moved.renew(new, clock.now)
    assert (a.grant, b.grant, moved.grant) == (1, 0, 1)
    assert clock.now < LEASE_S + DRAIN_S  # long before the old leases ran out


ACTIONS = st.lists(
    st.tuples(
        st.sampled_from(["start", "end", "renew", "lost", "tick", "die", "cut", "heal", "restart"]),
        st.integers(0, 3),
        st.floats(0.05, 2.5),
    ),
    max_size=120,
)


@settings(max_examples=500, deadline=None)
@given(limit=st.integers(1, 5), actions=ACTIONS, drop_dead=st.booleans())
def test_looks_in_flight_across_holders_never_exceed_the_limit(
    limit: int, actions: list[tuple[str, int, float]], drop_dead: bool
) -> None:
    clock = Clock()
    book = _book(clock, limit)
    holders = [Holder(f"g{i}-1", waiting=limit) for i in range(4)]  # each wants every slot
    for kind, i, x in actions:
        h = holders[i]
        now = clock.now
        if kind == "tick":
            clock.now += x
            for each in holders:  # a look lasts at most DRAIN_S
                each.looks = [end for end in each.looks if end > clock.now]
        elif kind == "restart":
            book = _book(clock, limit, fresh=False)
        elif h.dead:
            continue
        elif kind == "start":  # as many looks as its grant allows
            while len(h.looks) < h.granted(now):
                h.looks.append(now + min(x, DRAIN_S))
        elif kind == "end" and h.looks:
            h.looks.pop(0)
        elif kind in ("renew", "lost") and not h.cut:
            h.renew(book, now, lost=kind == "lost")
        elif kind == "die":
            h.dead, h.looks = True, []
            if drop_dead:
                book.drop(h.name)
        elif kind in ("cut", "heal"):
            h.cut = kind == "cut"
        assert sum(len(each.looks) for each in holders) <= limit
        assert book.reserved("vlm") <= limit
