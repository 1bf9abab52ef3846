"""LookGate: each way a frame selector asks for a frame counts one look in flight."""

from __future__ import annotations

import threading

import pytest

from pipeline.app.look_gate import LookGate
from pipeline.core.frame import Frame
from tests.support.fakes import rgb_frame


class Camera:
    """The three frame calls of a FrameSource, recording which was used."""

    name = "porch"

    def __init__(self) -> None:
        self.calls: list[tuple[str, float | None]] = []

    def latest(self, timeout: float | None = None) -> Frame | None:
        self.calls.append(("latest", timeout))
        return rgb_frame()

    def freshest(self, timeout: float | None = None, *, due: float | None = None) -> Frame | None:
        self.calls.append(("freshest", timeout))
        return rgb_frame(seq=2)

    def keyframe(
        self, max_age_s: float, timeout: float | None = None, *, due: float | None = None
    ) -> Frame | None:
        self.calls.append(("keyframe", max_age_s))
        return rgb_frame(seq=3)


@pytest.mark.parametrize(
    ("ask", "seq"),
    [
        (lambda g: g.latest(2.0), 1),
        (lambda g: g.freshest(2.0), 2),
        (lambda g: g.keyframe(4.0, 2.0), 3),
    ],
)
def test_every_frame_call_counts_one_look(ask, seq) -> None:  # type: ignore[no-untyped-def]
    camera = Camera()
    gate = LookGate(camera)  # type: ignore[arg-type]
    frame = ask(gate)
    assert frame is not None and frame.seq == seq
    assert gate.in_flight == 1
    assert gate.finished() is not None and gate.in_flight == 0


def test_a_closed_gate_gives_no_frame_once_released() -> None:
    camera = Camera()
    gate = LookGate(camera, max_wait_s=30.0)  # type: ignore[arg-type]
    gate.close()
    got: list[Frame | None] = []
    t = threading.Thread(target=lambda: got.append(gate.keyframe(1.0, 1.0)))
    t.start()
    gate.release()
    t.join(10)
    assert got == [None] and camera.calls == [] and gate.in_flight == 0


def test_the_calls_of_one_look_count_once() -> None:
    camera = Camera()
    gate = LookGate(camera)  # type: ignore[arg-type]
    # A keyframe selector: the keyframe, the next one, then the newest frame.
    assert gate.keyframe(2.0, 2.0) is not None
    assert gate.keyframe(0.0, 2.0) is not None
    assert gate.freshest(2.0) is not None
    assert gate.in_flight == 1
    assert gate.finished() is not None and gate.in_flight == 0
    other: list[int] = []

    def look_elsewhere() -> None:
        other.append(gate.in_flight)
        gate.latest(1.0)

    t = threading.Thread(target=look_elsewhere)
    gate.latest(1.0)  # the next look of this thread
    t.start()
    t.join(10)
    assert other == [1] and gate.in_flight == 2  # another thread: another look
    assert gate.wait_idle(0.0) is False
