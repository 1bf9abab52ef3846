"""Run-time changes racing looks that are being delivered: no lock is held across a delivery.

A watch's state after a look goes to the sinks on the look's thread. A reload or
a same-name ``set`` that cancels that watch at the same moment must neither wait
for the pipeline's lock held by the delivery, nor make the delivery wait for
the watch's lock held by the cancel (the deadlock a reviewer reproduced).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from pipeline.app.reload import apply_config
from pipeline.app.runner import Pipeline
from pipeline.core.config import LookoutConfig
from pipeline.core.config_loader import load_config_text
from pipeline.core.events import WatchState
from sinks.base import Sink
from tests.support.clips import Clip

WATCHES = ("w0", "w1", "w2", "w3")
ITERATIONS = 12
OP_TIMEOUT_S = 10.0


class SlowLookSink(Sink):
    """Holds each state delivered on a look thread for a moment and says which watch it is."""

    def __init__(self) -> None:
        super().__init__("slow")
        self.inside = threading.Event()
        self.watch: str | None = None
        self._lock = threading.Lock()

    def _write_state(self, state: WatchState) -> None:
        if not threading.current_thread().name.startswith("ThreadPool"):
            return
        with self._lock:
            self.watch = state.name
        self.inside.set()
        time.sleep(0.15)

    def wait_look(self, timeout: float) -> str:
        self.inside.clear()
        assert self.inside.wait(timeout), "no look was delivered"
        with self._lock:
            assert self.watch is not None
            return self.watch


def config(clip: Clip, conditions: dict[str, str]) -> LookoutConfig:
    text = f"""
[cameras.c]
url = "{clip.path}"
loop = true
[backends.none]
type = "none"
next_run_in_s = 1
"""
    for name in WATCHES:
        text += f"""
[[watches]]
name = "{name}"
camera = "c"
condition = "{conditions.get(name, "a cat")}"
backend = "none"
"""
    return load_config_text(text)


@pytest.fixture
def pipeline(h264_clip: Clip) -> Iterator[tuple[Pipeline, SlowLookSink]]:
    p = Pipeline(config(h264_clip, {}))
    sink = SlowLookSink()
    sink.open()
    p.start()
    p.sinks.replace({"slow": sink})
    try:
        yield p, sink
    finally:
        # Bounded: after a deadlock, stopping would wait forever too.
        stopper = threading.Thread(target=p.stop, kwargs={"grace_s": 2}, daemon=True)
        stopper.start()
        stopper.join(20)


def _bounded(action: Any) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        try:
            action()
        except BaseException as exc:
            errors.append(exc)

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(OP_TIMEOUT_S)
    assert not t.is_alive(), "a run-time change waited forever for a look being delivered"
    if errors:
        raise errors[0]


@pytest.mark.timeout(90)
def test_replace_and_reload_while_looks_are_delivered(
    pipeline: tuple[Pipeline, SlowLookSink], h264_clip: Clip
) -> None:
    p, sink = pipeline
    for i in range(ITERATIONS):
        name = sink.wait_look(15)
        if i % 2:
            new = config(h264_clip, {name: f"a dog {i}"})
            _bounded(lambda new=new: apply_config(p, new))
            p.sinks.replace({"slow": sink})  # the reload keeps only the config's sinks
        else:
            watch = next(w for w in p.config.watches if w.name == name)
            _bounded(lambda watch=watch: p.start_watch(watch))
        assert set(p.watches) == set(WATCHES)
    # Every watch still looks after all that.
    seen = {sink.wait_look(15) for _ in range(12)}
    assert len(seen) >= 2
