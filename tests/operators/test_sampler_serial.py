"""SerialEmitter: one message at a time, in push order, never nested, nothing after the end."""

from __future__ import annotations

import threading

import pytest
from reactivex.observer import Observer

from operators.serial import SerialEmitter


def test_reentrant_pushes_are_delivered_after_the_current_message() -> None:
    seen: list[object] = []
    out: SerialEmitter[int] = SerialEmitter(Observer(lambda x: on_next(x), seen.append))

    def on_next(x: int) -> None:
        seen.append(("in", x))
        if x == 1:
            out.on_next(2)  # from inside the observer: queued, not nested
        seen.append(("out", x))

    out.on_next(1)
    out.on_completed()
    out.on_next(3)
    assert seen == [("in", 1), ("out", 1), ("in", 2), ("out", 2)]
    assert out.stopped


def test_a_push_while_another_thread_delivers_is_delivered_by_that_thread() -> None:
    inside, go_on = threading.Event(), threading.Event()
    seen: list[tuple[str, int]] = []

    def on_next(x: int) -> None:
        seen.append((threading.current_thread().name, x))
        if x == 1:
            inside.set()
            assert go_on.wait(10)

    out: SerialEmitter[int] = SerialEmitter(Observer(on_next))
    t = threading.Thread(target=out.on_next, args=(1,), name="first")
    t.start()
    assert inside.wait(10)
    out.on_next(2)  # returns at once: "first" is delivering
    assert seen == [("first", 1)]
    go_on.set()
    t.join(10)
    assert seen == [("first", 1), ("first", 2)]


def test_push_next_first_claims_delivery_only_when_idle() -> None:
    seen: list[object] = []

    def on_next(x: int) -> None:
        seen.append(x)
        if x == 1:
            # Re-entrant: queued behind the claimed item, never claimed, never nested.
            assert not out.push_next_first(2)
            out.drain()  # another delivery is running: a no-op here
            seen.append("after 2 queued")

    out: SerialEmitter[int] = SerialEmitter(
        Observer(on_next, seen.append, lambda: seen.append("C"))
    )
    assert out.push_next_first(1)
    out.deliver_first(1)  # delivers 1, then the 2 queued meanwhile
    assert seen == [1, "after 2 queued", 2]
    out.push_next(3)  # queued and not yet drained: the next push may not overtake it
    assert not out.push_next_first(4)
    out.drain()
    out.on_completed()
    assert not out.push_next_first(5)  # after the end: dropped
    out.drain()
    assert seen == [1, "after 2 queued", 2, 3, 4, "C"]


def test_a_claim_while_another_thread_delivers_is_queued_for_that_thread() -> None:
    inside, go_on = threading.Event(), threading.Event()
    seen: list[tuple[str, int]] = []

    def on_next(x: int) -> None:
        seen.append((threading.current_thread().name, x))
        if x == 1:
            inside.set()
            assert go_on.wait(10)

    out: SerialEmitter[int] = SerialEmitter(Observer(on_next))

    def first() -> None:
        assert out.push_next_first(1)
        out.deliver_first(1)

    t = threading.Thread(target=first, name="first")
    t.start()
    assert inside.wait(10)
    assert not out.push_next_first(2)  # "first" is delivering: queued for it
    out.drain()
    assert seen == [("first", 1)]
    go_on.set()
    t.join(10)
    assert seen == [("first", 1), ("first", 2)]


def test_an_observer_that_raises_frees_the_emitter() -> None:
    def on_next(x: int) -> None:
        if x == 1:
            raise RuntimeError("boom")
        seen.append(x)

    seen: list[int] = []
    out: SerialEmitter[int] = SerialEmitter(Observer(on_next))
    assert out.push_next_first(1)
    with pytest.raises(RuntimeError, match="boom"):
        out.deliver_first(1)  # the error reaches the caller
    assert out.push_next_first(2)  # not stuck "delivering"
    out.deliver_first(2)
    assert seen == [2]
