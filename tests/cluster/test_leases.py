"""Leased slots in camera actors: looks without calls, the limit across actors, dead actors.

Each holder is a real :class:`LeasedPermits` (its renewal thread and all); the
hub's :class:`Slots` is called from each holder's renewal thread, as a camera
actor reaches it, one blocking call at a time.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from pipeline.app.cluster.lease_book import Grant, LeaseBook, Report
from pipeline.app.cluster.leases import LeasedPermits
from pipeline.app.cluster.slots import Slots
from tests.support.waiting import wait_until


class Head:
    """The hub's backend slots (thread-safe: each holder calls from its renewal thread)."""

    def __init__(self, limit: int, lease_s: float, drain_s: float) -> None:
        self.slots = Slots({"vlm": limit}, {"vlm": drain_s}, lease_s)

    def call(self, holder: str, reports: dict[str, Report], wait_s: float) -> dict[str, Grant]:
        return self.slots.renew(holder, reports, wait_s)

    def release_holder(self, holder: str) -> int:
        return self.slots.release_holder(holder)

    def stop(self) -> None:
        """Nothing runs of its own."""


class Link:
    """One camera actor's way to the head: counts its calls; ``down`` as when its node died."""

    def __init__(self, head: Head) -> None:
        self.head = head
        self.calls = 0
        self.down = False

    def renew(self, holder: str, reports: dict[str, Report], wait_s: float) -> dict[str, Grant]:
        if self.down:
            raise ConnectionError("the head is unreachable")
        self.calls += 1
        return self.head.call(holder, reports, wait_s)

    def release(self, holder: str) -> None:
        if self.down:
            raise ConnectionError("the head is unreachable")
        self.head.release_holder(holder)


class InFlight:
    """Looks in flight across every holder, and the most there ever were."""

    def __init__(self) -> None:
        self.now = 0
        self.most = 0
        self.done = 0
        self.lock = threading.Lock()

    def look(self, permits: LeasedPermits) -> None:
        assert permits.acquire("vlm", 60)
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        time.sleep(0.001)  # the model at work
        with self.lock:
            self.now -= 1
            self.done += 1
        permits.release("vlm")


class World:
    """A head and the holders made in a test: holders close first, then the head stops."""

    def __init__(self) -> None:
        self.heads: list[Head] = []
        self.holders: list[LeasedPermits] = []

    def head(self, limit: int, lease_s: float, drain_s: float) -> Head:
        self.heads.append(Head(limit, lease_s, drain_s))
        return self.heads[-1]

    def holder(self, link: Link, name: str, lease_s: float, start: bool = True) -> LeasedPermits:
        permits = LeasedPermits(link, name, ["vlm"], lease_s)
        self.holders.append(permits)
        if start:
            permits.open()
        return permits


@pytest.fixture
def world() -> Iterator[World]:
    made = World()
    yield made
    for permits in made.holders:
        permits.close()
    for head in made.heads:
        head.stop()


def _run_looks(permits: list[LeasedPermits], threads: int, looks: int, flight: InFlight) -> None:
    def worker(p: LeasedPermits) -> None:
        for _ in range(looks):
            flight.look(p)

    workers = [threading.Thread(target=worker, args=(p,)) for p in permits for _ in range(threads)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
    assert flight.done == len(permits) * threads * looks


def test_looks_take_leased_slots_without_a_call_each(world: World) -> None:
    head = world.head(limit=64, lease_s=600, drain_s=1)
    links = [Link(head) for _ in range(3)]
    holders = [world.holder(link, f"g{i}-1", 600) for i, link in enumerate(links)]
    flight = InFlight()
    _run_looks(holders, threads=4, looks=100, flight=flight)
    calls = sum(link.calls for link in links)
    assert calls < 1200 / 20, f"{calls} calls for 1200 looks"
    assert flight.most <= 64


def test_the_limit_holds_across_actors_that_all_want_more(world: World) -> None:
    head = world.head(limit=2, lease_s=3, drain_s=1)
    holders = [world.holder(Link(head), f"g{i}-1", 3) for i in range(3)]
    flight = InFlight()
    _run_looks(holders, threads=3, looks=40, flight=flight)  # each actor gets its turns
    assert flight.most <= 2
    stats = head.slots.stats()["vlm"]
    assert stats["peak"] == 2 and stats["waits"] > 0


def _take_in_background(permits: LeasedPermits) -> tuple[threading.Event, threading.Thread]:
    """A look that waits for a slot on a thread; the event is set once it has one."""
    got = threading.Event()

    def take() -> None:
        if permits.acquire("vlm", 60):
            got.set()

    taker = threading.Thread(target=take)
    taker.start()
    return got, taker


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_dead_actors_lease_runs_out_and_its_slots_go_to_another(world: World) -> None:
    head = world.head(limit=1, lease_s=3, drain_s=5)
    clock = Clock()  # the head's: its leases run out when the test says
    head.slots.book = LeaseBook({"vlm": 1}, {"vlm": 5}, 3, clock=clock)
    dead_link, link = Link(head), Link(head)
    dead = world.holder(dead_link, "g1-1", 3)
    assert dead.acquire("vlm", 30)  # it holds the only slot...
    dead_link.down = True  # ...and its node dies
    alive = world.holder(link, "g2-1", 3)
    got, taker = _take_in_background(alive)
    wait_until(lambda: link.calls >= 3, 20, "the other actor asking again")
    assert not got.is_set()  # the dead actor's lease and longest look are not over
    clock.now = 3 + 5 + 0.1
    wait_until(got.is_set, 20, "the slot given to the other actor")
    taker.join(10)
    alive.release("vlm")
    assert head.slots.stats()["vlm"]["holders"] == 1


def test_the_driver_frees_a_dead_actors_slots_at_once_and_a_stop_gives_them_back(
    world: World,
) -> None:
    head = world.head(limit=1, lease_s=600, drain_s=600)
    dead_link = Link(head)
    dead = world.holder(dead_link, "g1-1", 600)
    alive, other = world.holder(Link(head), "g2-1", 600), world.holder(Link(head), "g3-1", 600)
    assert dead.acquire("vlm", 30)
    dead_link.down = True
    got, taker = _take_in_background(alive)
    wait_until(lambda: head.slots.stats()["vlm"]["waits"] > 0, 20, "a look waiting")
    assert head.release_holder("g1-1") == 1  # Ray said the actor died
    wait_until(got.is_set, 20, "the slot given to a live actor")
    taker.join(10)
    alive.release("vlm")
    alive.close()  # a graceful stop gives its grant back
    assert other.acquire("vlm", 30)
    other.release("vlm")
