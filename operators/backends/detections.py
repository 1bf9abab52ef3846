"""The ``detections`` backend: no model, the detectors decide.

A look is met when detections matching the watch (its labels; the runner has
already applied its zones) were seen on ``consecutive_looks`` looks in a row,
each time at most ``window_s`` old. The notification comes from a template.

Example:
    >>> from pipeline.core.config import DetectionsBackendConfig
    >>> from pipeline.core.detection import Box, Detection
    >>> backend = DetectionsBackendConfig(consecutive_looks=2)
    >>> b = DetectionsBackend("det", backend)
    >>> person = Detection(camera="porch", label="person", score=0.9,
    ...                    box=Box(0, 0, 5, 9), time=10.0)
    >>> req = LookRequest(watch="w", camera="porch", condition="someone at the door",
    ...                   labels=("person",), detections=(person,), time=10.5)
    >>> b.judge(req).condition_met, b.judge(req).notification_message
    (False, 'person seen on porch')
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from collections.abc import Sequence

from operators.backends.base import Availability, BackendError, LookRequest
from pipeline.core.config import DetectionsBackendConfig
from pipeline.core.detection import Detection
from pipeline.core.verdict import Verdict


def fresh_matches(request: LookRequest, window_s: float) -> list[Detection]:
    """Return the request's detections that match its labels and are at most ``window_s`` old.

    A request with ``time == 0`` (no clock) keeps every detection.
    """
    out = []
    for d in request.detections:
        if request.labels and d.label not in request.labels:
            continue
        if request.time > 0 and request.time - d.time > window_s:
            continue
        out.append(d)
    return out


MAX_RUNS = 1024
"""Default cap on the runs whose streaks a :class:`DetectionsBackend` remembers."""


def render_message(template: str, detections: Sequence[Detection], request: LookRequest) -> str:
    """Fill the notification template from the detections of a met look.

    Placeholders: ``{label}`` (most frequent label), ``{camera}``, ``{zones_text}``
    (`` in porch, drive`` or empty), ``{count}``, ``{condition}``. An unknown
    placeholder leaves the template as it is.
    """
    labels = Counter(d.label for d in detections)
    label = labels.most_common(1)[0][0] if labels else "object"
    zones = list(request.zones) or sorted({z for d in detections for z in d.zones})
    values = {
        "label": label,
        "camera": request.camera,
        "zones_text": f" in {', '.join(zones)}" if zones else "",
        "count": len(detections),
        "condition": request.condition,
    }
    try:
        return template.format(**values)
    except (KeyError, IndexError, ValueError):
        return template


class DetectionsBackend:
    """Decide from detections alone; a streak of matching looks per watch run.

    Streaks are keyed by ``(watch, job_id)``: a look of an ended run that comes
    back after the watch restarted counts toward the old run's streak, never the
    new one's. At most ``max_runs`` non-zero streaks are kept (least recently
    used dropped first), so run-time watches that come and go cannot grow it.

    Thread-safe. Call :meth:`forget` when a watch ends, restarts or re-arms.

    Args:
        name: the backend's name (``[backends.NAME]``).
        config: its ``[backends.NAME]`` table; defaults when ``None``.
        max_runs: how many runs' streaks to remember (>= 1).

    Raises:
        ValueError: when ``max_runs`` is below 1.
    """

    type = "detections"
    needs_gpu = False
    ram_mb = 0
    takes_images = False

    def __init__(
        self,
        name: str,
        config: DetectionsBackendConfig | None = None,
        max_runs: int = MAX_RUNS,
    ) -> None:
        if max_runs < 1:
            raise ValueError(f"max_runs must be at least 1, got {max_runs}.")
        self.name = name
        self.config = config or DetectionsBackendConfig.model_validate({})
        self.max_runs = max_runs
        self._streaks: OrderedDict[tuple[str, str], int] = OrderedDict()
        self._lock = threading.Lock()

    def availability(self) -> Availability:
        """Report it as always available (it needs a detection source to be useful)."""
        return Availability(True, "no model; decides from detections")

    def start(self) -> None:
        """Do nothing: there is nothing to load."""

    def stop(self) -> None:
        """Forget every watch's streak."""
        with self._lock:
            self._streaks.clear()

    def forget(self, watch: str) -> None:
        """Drop the streaks of every run of ``watch``."""
        with self._lock:
            for key in [k for k in self._streaks if k[0] == watch]:
                del self._streaks[key]

    def tracked_runs(self) -> int:
        """Return how many ``(watch, job_id)`` streaks are remembered (for tests and metrics)."""
        with self._lock:
            return len(self._streaks)

    def _count(self, key: tuple[str, str], matched: bool) -> int:
        """Extend or break ``key``'s streak and return it (call with the lock held)."""
        if not matched:
            self._streaks.pop(key, None)  # a zero streak needs no entry
            return 0
        streak = self._streaks.pop(key, 0) + 1
        self._streaks[key] = streak  # re-inserted last: most recently used
        while len(self._streaks) > self.max_runs:
            self._streaks.popitem(last=False)
        return streak

    def judge(self, request: LookRequest) -> Verdict:
        """Count this look into its run's streak; met once the streak is long enough."""
        cfg = self.config
        matches = fresh_matches(request, cfg.window_s)
        with self._lock:
            streak = self._count((request.watch, request.job_id), bool(matches))
        best = max((d.score for d in matches), default=None)
        if not matches:
            return Verdict.answered(
                False, cfg.next_run_in_s, "No matching detections.", confidence=0.0
            )
        label_counts = Counter(d.label for d in matches)
        seen = ", ".join(f"{n} {label}" for label, n in label_counts.most_common())
        need = cfg.consecutive_looks
        if streak < need:
            return Verdict.answered(
                False,
                min(cfg.next_run_in_s, cfg.window_s),
                f"Seen {seen} (look {streak} of {need} in a row).",
                confidence=best,
            )
        return Verdict.answered(
            True,
            cfg.next_run_in_s,
            f"Seen {seen} on {streak} looks in a row.",
            render_message(cfg.message, matches, request),
            confidence=best,
        )

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Refuse: this backend has no image model."""
        raise BackendError(f"{self.name}: the detections backend cannot describe images")
