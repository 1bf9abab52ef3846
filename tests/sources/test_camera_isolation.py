"""One camera failing in a loop leaves the others running at their rate."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

from pipeline.core.backoff import Backoff
from pipeline.core.config import CameraConfig
from pipeline.core.frame import Frame
from sources.camera import CameraSource
from tests.support.clips import Clip

WINDOW_S = 3.0


def test_a_failing_camera_does_not_slow_the_others(
    clip_factory: Callable[..., Clip], tmp_path: Path
) -> None:
    clip = clip_factory(seconds=2.0, fps=20, gop=10)
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(clip.path.read_bytes()[:3000])  # truncated: header, then nothing
    bad = CameraSource(
        "bad", CameraConfig(url=str(corrupt), loop=True), backoff=Backoff(initial=0.05, cap=0.05)
    )
    good = [CameraSource(f"good{i}", CameraConfig(url=str(clip.path), loop=True)) for i in (1, 2)]
    counts = {camera.name: 0 for camera in good}
    lock = threading.Lock()
    counting = threading.Event()

    def counter(name: str) -> Callable[[Frame], None]:
        def on_next(_frame: Frame) -> None:
            if counting.is_set():
                with lock:
                    counts[name] += 1

        return on_next

    hold_bad = bad.connect()
    subs = [camera.frames().subscribe(counter(camera.name)) for camera in good]
    try:
        for camera in good:
            assert camera.latest(timeout=10) is not None
        time.sleep(0.5)  # everyone is running
        counting.set()
        time.sleep(WINDOW_S)
        counting.clear()
        failures = bad.state.reconnects
    finally:
        for sub in subs:
            sub.dispose()
        hold_bad.dispose()
        for camera in [bad, *good]:
            camera.close()
    expected = WINDOW_S * clip.fps
    assert failures >= 10  # it really was failing in a loop
    assert bad.state.last_error and "bad" not in counts
    for name, n in counts.items():
        assert abs(n - expected) <= 0.1 * expected, (name, n, expected)
