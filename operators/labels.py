"""Keep only detections whose label a watch cares about."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from reactivex import Observable, abc

from pipeline.core.detection import Detection


def label_matches(labels: frozenset[str], detection: Detection) -> bool:
    """Whether ``detection`` has one of ``labels`` (any label when ``labels`` is empty).

    Labels compare case-insensitively. A detection's ``tags`` match too, so
    ``person:alice`` (a face Frigate recognised) or ``plate:ab123cd`` can be asked for.

    Example:
        >>> from pipeline.core.detection import Box
        >>> d = Detection(camera="c", label="Person", score=0.9, box=Box(0, 0, 1, 1), time=0)
        >>> label_matches(frozenset({"person"}), d), label_matches(frozenset(), d)
        (True, True)
    """
    if not labels or detection.label.lower() in labels:
        return True
    return any(tag in labels for tag in detection.tags)


def filter_labels(
    labels: Iterable[str],
) -> Callable[[Observable[Detection]], Observable[Detection]]:
    """Rx operator: pass detections whose label is in ``labels`` (all when empty).

    Example:
        >>> detections.pipe(filter_labels(["person", "car"]))  # doctest: +SKIP

    Args:
        labels: labels to keep, case-insensitive; empty keeps every label.

    Returns:
        An operator from detections to the matching detections.

    Raises:
        ValueError: when a label is blank.
    """
    wanted = [str(label).strip().lower() for label in labels]
    if any(not label for label in wanted):
        raise ValueError("Labels must not be blank.")
    keep = frozenset(wanted)

    def _op(source: Observable[Detection]) -> Observable[Detection]:
        if not keep:
            return source  # every label: no stage at all

        # ops.filter, with its predicate inlined: this sits on every detection.
        def subscribe(
            observer: abc.ObserverBase[Detection], scheduler: abc.SchedulerBase | None = None
        ) -> abc.DisposableBase:
            def on_next(d: Detection) -> None:
                try:  # label_matches, inlined
                    match = d.label.lower() in keep or (
                        bool(d.tags) and not keep.isdisjoint(d.tags)
                    )
                except Exception as exc:  # not a detection: as ops.filter, report it
                    observer.on_error(exc)
                    return
                if match:
                    observer.on_next(d)

            return source.subscribe(
                on_next, observer.on_error, observer.on_completed, scheduler=scheduler
            )

        return Observable(subscribe)

    return _op
