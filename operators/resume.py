"""Pick a watch run up where it was: the same job id, counters, quiet period and look budget.

A watch whose process was lost (a cluster node died) starts again elsewhere.
What it carries over is a plain value, :class:`Resume`, built from the last
state the run published (and the alerts it sent); :func:`operators.watch.run_watch`
takes it as ``resume=``. The conversation history is *not* carried: the next
look starts a fresh conversation. The ``repeat`` agreement window starts empty
(it can only delay an alert, never repeat one).

Example:
    >>> from pipeline.core.events import WatchState, WatchStatus
    >>> last = WatchState(id="job1", name="gate", camera="c", condition="a van",
    ...                   status=WatchStatus.RUNNING, started_at=100.0, iterations=7, alerts=1)
    >>> r = Resume.from_state(last, quiet_until=400.0, at=250.0)
    >>> r.job_id, r.iterations, r.alerts, r.restarts, r.quiet_until
    ('job1', 7, 1, 1, 400.0)
"""

from __future__ import annotations

from dataclasses import dataclass

from pipeline.core.events import WatchState


@dataclass(frozen=True, slots=True)
class Resume:
    """What a watch run carries over to its next process (times on the scheduler's clock).

    Attributes:
        job_id: the run's job id (kept).
        started_at: when the run first started (its ``max_duration_minutes`` counts from it).
        iterations: looks made so far.
        alerts: alerts sent so far.
        restarts: times the run has been moved, this one included.
        quiet_until: ``repeat``: the end of the quiet period after the last alert, if any.
        budget_tokens: looks the budget allowed at ``at`` (``None``: no budget, or full).
        budget_exhausted_at: when the budget last ran dry.
        looks_deferred: looks that had to wait for the budget so far.
        at: when the carried values were true (the budget refills from then).
    """

    job_id: str
    started_at: float | None = None
    iterations: int = 0
    alerts: int = 0
    restarts: int = 1
    quiet_until: float | None = None
    budget_tokens: float | None = None
    budget_exhausted_at: float | None = None
    looks_deferred: int = 0
    at: float | None = None

    @classmethod
    def from_state(
        cls, state: WatchState, *, quiet_until: float | None = None, at: float | None = None
    ) -> Resume:
        """The resume point of a run whose last published state is ``state``.

        Args:
            state: the run's last state.
            quiet_until: the quiet period's end, when an alert started one.
            at: when ``state`` was published (the budget refills from then).
        """
        return cls(
            job_id=state.id,
            started_at=state.started_at,
            iterations=state.iterations,
            alerts=state.alerts,
            restarts=state.restarts + 1,
            quiet_until=quiet_until,
            budget_tokens=state.budget_tokens,
            budget_exhausted_at=state.budget_exhausted_at,
            looks_deferred=state.looks_deferred,
            at=at,
        )
