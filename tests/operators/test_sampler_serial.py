"""SerialEmitter: one message at a time, in push order, never nested, nothing after the end."""

from __future__ import annotations

import threading

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
