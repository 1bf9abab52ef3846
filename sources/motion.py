"""Motion detection by frame differencing on small grey frames.

Cheap enough for every camera: each analysed frame is shrunk (in swscale, for
decoder frames) to ``width`` pixels wide, turned grey, compared with the
previous analysed frame, and the changed pixels are grouped on a coarse grid
into boxes labelled ``motion``, in the original frame's pixel coordinates.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt
import reactivex
from reactivex import Observable
from reactivex import operators as ops
from reactivex.abc import SchedulerBase

from pipeline.core.config import MotionDetectConfig
from pipeline.core.detection import Box, Detection
from pipeline.core.frame import Frame
from sources.frame_pace import pace_frames

GreyArray = npt.NDArray[np.uint8]
CELL = 4
"""Side in analysis pixels of one grid cell; changes in neighbouring cells merge."""


class MotionDetector:
    """Stateful frame differencing: feed frames in order, get motion boxes back.

    Example:
        >>> import numpy as np
        >>> det = MotionDetector(MotionDetectConfig(width=64))
        >>> def frame(seq, rgb):
        ...     return Frame(camera="c", seq=seq, wall_time=float(seq), stream_time=None,
        ...                  width=128, height=96, rgb=rgb)
        >>> still = np.zeros((96, 128, 3), np.uint8)
        >>> moved = still.copy(); moved[40:80, 20:60] = 255
        >>> det.detect(frame(0, still)), len(det.detect(frame(1, moved)))
        ([], 1)

    The first frame (and the first after a change of frame size) only sets the
    reference and yields no boxes.
    """

    def __init__(self, config: MotionDetectConfig) -> None:
        self.config = config
        self._prev: npt.NDArray[np.int16] | None = None
        self._size: tuple[int, int] | None = None

    def reset(self) -> None:
        """Forget the reference frame (after a reconnect, for example)."""
        self._prev = None
        self._size = None

    def grey(self, frame: Frame) -> GreyArray:
        """Return the frame shrunk to the analysis width, in grey levels."""
        w = min(self.config.width, frame.width)
        h = max(CELL, round(frame.height * w / frame.width))
        if frame.video is not None:
            small = frame.reformat(w, h, format="gray", interpolation="AREA")  # thread-safe
            return np.asarray(small.to_ndarray(), dtype=np.uint8)[:h, :w]
        from PIL import Image

        assert frame.rgb is not None
        img = Image.fromarray(frame.rgb).convert("L").resize((w, h), Image.Resampling.BOX)
        return np.asarray(img, dtype=np.uint8)

    def detect(self, frame: Frame) -> list[Detection]:
        """Compare ``frame`` with the previous one and return the motion boxes."""
        grey = self.grey(frame).astype(np.int16)
        size = (frame.width, frame.height)
        prev = self._prev
        if prev is None or self._size != size or prev.shape != grey.shape:
            self._prev, self._size = grey, size
            return []
        self._prev = grey
        changed = np.abs(grey - prev) > self.config.threshold
        boxes = motion_boxes(changed, self.config.min_area)
        h, w = grey.shape
        sx, sy = frame.width / w, frame.height / h
        return [
            Detection(
                camera=frame.camera,
                label=self.config.label,
                score=score,
                box=Box(x1 * sx, y1 * sy, x2 * sx, y2 * sy),
                time=frame.wall_time,
                frame_size=size,
                source="motion",
            )
            for (x1, y1, x2, y2), score in boxes
        ]


def motion_boxes(
    changed: npt.NDArray[np.bool_], min_area: float
) -> list[tuple[tuple[int, int, int, int], float]]:
    """Group changed pixels into boxes; pure function behind :class:`MotionDetector`.

    Changed pixels are pooled into ``CELL`` x ``CELL`` cells, touching cells
    (8-neighbourhood, one empty cell bridged) form one region, and each region
    whose box covers at least ``min_area`` of the picture is returned as
    ``((x1, y1, x2, y2), score)`` in analysis pixels, ``score`` being the share
    of changed pixels inside the box.

    Example:
        >>> m = np.zeros((40, 40), bool); m[8:16, 8:20] = True
        >>> motion_boxes(m, 0.01)
        [((8, 8, 20, 16), 1.0)]
    """
    h, w = changed.shape
    hc, wc = -(-h // CELL), -(-w // CELL)
    padded = np.zeros((hc * CELL, wc * CELL), dtype=bool)
    padded[:h, :w] = changed
    cells: npt.NDArray[np.bool_] = np.asarray(padded.reshape(hc, CELL, wc, CELL).any(axis=(1, 3)))
    if not cells.any():
        return []
    # Bridge one-cell gaps so a person's body and legs make one region.
    grown = cells.copy()
    grown[1:, :] |= cells[:-1, :]
    grown[:-1, :] |= cells[1:, :]
    grown[:, 1:] |= cells[:, :-1]
    grown[:, :-1] |= cells[:, 1:]
    labels = np.zeros(grown.shape, dtype=np.int32)
    out: list[tuple[tuple[int, int, int, int], float]] = []
    total = float(h * w)
    n = 0
    for r0, c0 in np.argwhere(cells):
        if labels[r0, c0]:
            continue
        n += 1
        labels[r0, c0] = n
        stack = [(int(r0), int(c0))]
        rows: list[int] = []
        cols: list[int] = []
        while stack:
            r, c = stack.pop()
            if cells[r, c]:
                rows.append(r)
                cols.append(c)
            for rr in (r - 1, r, r + 1):
                for cc in (c - 1, c, c + 1):
                    if 0 <= rr < hc and 0 <= cc < wc and grown[rr, cc] and not labels[rr, cc]:
                        labels[rr, cc] = n
                        stack.append((rr, cc))
        cy1, cy2 = min(rows) * CELL, (max(rows) + 1) * CELL
        cx1, cx2 = min(cols) * CELL, (max(cols) + 1) * CELL
        region = changed[cy1:cy2, cx1:cx2]
        ys, xs = np.nonzero(region)
        x1, x2 = cx1 + int(xs.min()), cx1 + int(xs.max()) + 1
        y1, y2 = cy1 + int(ys.min()), cy1 + int(ys.max()) + 1
        area = (x2 - x1) * (y2 - y1)
        if area / total < min_area:
            continue
        score = float(np.count_nonzero(changed[y1:y2, x1:x2])) / area
        out.append(((x1, y1, x2, y2), min(1.0, score)))
    return out


def detect_motion(
    config: MotionDetectConfig, *, scheduler: SchedulerBase | None = None
) -> Callable[[Observable[Frame]], Observable[Detection]]:
    """Rx operator: frames in, ``motion`` detections out, at most ``config.fps`` frames analysed.

    Example:
        >>> frames.pipe(detect_motion(MotionDetectConfig(fps=5)))  # doctest: +SKIP

    The rate counts seconds of the frames' own time (stream time, else arrival
    time: see :func:`sources.frame_pace.pace_frames`), so a file decoded faster
    than real time is analysed at ``config.fps`` frames per second of video,
    as a live camera is. Frames arriving faster are skipped; each subscription
    has its own reference frame. A detector error goes to ``on_error``.

    Args:
        config: the ``[cameras.NAME.detect]`` table with ``type = "motion"``.
        scheduler: not used (the frames carry their own time); accepted so that
            existing calls keep working.

    Returns:
        An operator from frames to detections.
    """
    if not isinstance(config, MotionDetectConfig):
        raise ValueError("detect_motion needs a MotionDetectConfig.")

    def _op(source: Observable[Frame]) -> Observable[Detection]:
        def _factory(_: SchedulerBase | None) -> Observable[Detection]:
            detector = MotionDetector(config)
            return source.pipe(
                pace_frames(config.fps),
                ops.map(detector.detect),
                ops.flat_map(reactivex.from_iterable),
            )

        return reactivex.defer(_factory)

    return _op


def motion_detections(
    frames: Observable[Frame],
    config: MotionDetectConfig,
    *,
    scheduler: SchedulerBase | None = None,
) -> Observable[Detection]:
    """Motion detections of a frame stream: ``frames.pipe(detect_motion(config))``.

    Example:
        >>> motion_detections(camera_frames, MotionDetectConfig())  # doctest: +SKIP
    """
    return frames.pipe(detect_motion(config, scheduler=scheduler))
