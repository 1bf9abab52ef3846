"""The lifecycle of one watch run: its states, its end, the quiet period, the next look's delay.

A run goes ``queued`` -> ``running`` -> ``success`` (``once`` mode, after its
alert), ``failed`` (timed out after ``max_duration_minutes``, or an internal
error) or ``cancelled``. In ``repeat`` mode an alert starts a quiet period
(wakes are dropped, the next look comes when it ends) and re-arms the watch.
The quiet period's end is kept on the scheduler's clock
(:mod:`operators.clock`), so the look at its end comes exactly once, never
again at the same instant.

:class:`WatchRun` holds the state record; events are queued under its lock
and delivered after it is released (:class:`~operators.serial.SerialEmitter`).

Example:
    >>> from reactivex.observer import Observer
    >>> from reactivex.testing import TestScheduler
    >>> from operators.watch_spec import WatchSpec
    >>> spec = WatchSpec(name="w", camera="c", condition="a cat", max_duration_minutes=1)
    >>> s, seen = TestScheduler(), []
    >>> run = WatchRun(spec, "job1", s, Observer(lambda e: seen.append(e.status.value)))
    >>> run.begin(); _ = run.time_limit(); s.advance_to(60.0); seen
    ['queued', 'running', 'failed']
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from reactivex import abc
from reactivex.disposable import Disposable

from operators.clock import NEVER, deadline, now_s, reached, seconds_until
from operators.look import Look
from operators.resume import Resume
from operators.serial import SerialEmitter
from operators.token_bucket import Budget, TokenBucket
from operators.verdicts import Agreement, judge_look
from operators.watch_spec import WatchSpec
from pipeline.core.events import WatchEvent, WatchState, WatchStatus
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from pipeline.core.verdict import AnswerKind, clamp_next_run

log = logging.getLogger("lookout.watch")

DROP_QUIET = "quiet period"
"""The reason a wake during the quiet period is dropped."""


class QuietPeriod:
    """The quiet after an alert (``repeat`` mode), on the scheduler's own clock.

    Example:
        >>> from reactivex.testing import TestScheduler
        >>> s = TestScheduler(); q = QuietPeriod(s)
        >>> q.start(20.0); q.active(), q.remaining()
        (True, 20.0)
        >>> s.advance_to(20.0); q.active(), q.remaining()
        (False, 0.0)
    """

    def __init__(self, scheduler: abc.SchedulerBase) -> None:
        self._sched = scheduler
        self._until = NEVER

    def start(self, seconds: float) -> None:
        """Be quiet for ``seconds`` from now."""
        self._until = deadline(self._sched, seconds)

    def active(self) -> bool:
        """Whether the quiet period is on now."""
        return not reached(self._sched, self._until)

    def remaining(self) -> float:
        """Seconds left (a whole number of clock ticks; 0 once over)."""
        return seconds_until(self._sched, self._until)


def retry_delay(look: Look, now: float) -> float:
    """Seconds from now to the next look after ``look``, outside a quiet period.

    The model's ``next_run_in`` (clamped to [1, 300]) or the baseline's retry
    delay, counted from the answer; a look without a frame is retried 10 s
    after the look *began*, however long it waited for a frame.

    Example:
        >>> from pipeline.core.verdict import AnswerKind, Verdict
        >>> no_frame = Look("timer", 100.0, Verdict.failed(AnswerKind.NO_FRAME, "x"), None, None)
        >>> retry_delay(no_frame, now=102.0)
        8.0
    """
    v = look.verdict
    delay = clamp_next_run(v.next_run_in)
    if v.kind is AnswerKind.NO_FRAME:
        return max(0.0, delay - (now - look.time))
    return delay


class WatchRun:
    """One run of a watch: the state it publishes and what each look means for it.

    Args:
        spec: the watch.
        job_id: the run's id.
        scheduler: its clock.
        observer: where states, look records and alerts go.
        budget: the look budget (its count goes into the state).
        on_rearm: called (with no lock held) when a ``repeat`` watch re-arms
            after an alert (forget the conversation and the backend's streaks).
        on_end: called once when the run ended (dispose its subscriptions).
        on_drop: told of each wake dropped in the quiet period.
    """

    def __init__(
        self,
        spec: WatchSpec,
        job_id: str,
        scheduler: abc.SchedulerBase,
        observer: abc.ObserverBase[WatchEvent],
        *,
        budget: Budget | None = None,
        on_rearm: Callable[[], None] | None = None,
        on_end: Callable[[], None] | None = None,
        on_drop: Callable[[float, str], None] | None = None,
    ) -> None:
        self.spec = spec
        self.sched = scheduler
        self.lock = threading.RLock()
        self.out: SerialEmitter[WatchEvent] = SerialEmitter(observer)
        self.budget = (
            budget if budget is not None else TokenBucket(spec.max_looks_per_hour, spec.look_burst)
        )
        self.quiet = QuietPeriod(scheduler)
        self.agreement = Agreement(spec.agree_looks, spec.agree_window)
        self.on_rearm = on_rearm
        self.on_end = on_end
        self.on_drop = on_drop
        self.ended = False
        self.job_id = job_id
        self.state = WatchState(
            id=job_id,
            name=spec.name,
            camera=spec.camera,
            condition=spec.condition,
            labels=tuple(spec.labels),
            zones=tuple(spec.zones),
            status=WatchStatus.QUEUED,
        )

    def _emit_state(self, **changes: Any) -> None:
        self.state = self.state.evolve(**changes)
        self.out.push_next(self.state)

    def _end(self, status: WatchStatus, error: str | None = None) -> bool:
        """Queue the final state (call with ``lock`` held); False if already ended."""
        if self.ended:
            return False
        self.ended = True
        self._emit_state(status=status, ended_at=now_s(self.sched), error_message=error)
        self.out.push_completed()
        return True

    def _ended(self, done: bool) -> None:
        """After the lock is released: run ``on_end`` once, deliver what is queued."""
        if done and self.on_end is not None:
            self.on_end()
        self.out.drain()

    def resume(self, carried: Resume) -> None:
        """Take over an earlier run (call before :meth:`begin`): counters, start, quiet period.

        The job id is the one this run was made with; the caller passes the
        carried one (:func:`operators.watch.run_watch` does).
        """
        with self.lock:
            self.state = self.state.evolve(
                iterations=carried.iterations,
                alerts=carried.alerts,
                restarts=carried.restarts,
                started_at=carried.started_at,
            )
            if carried.quiet_until is not None:
                left = carried.quiet_until - now_s(self.sched)
                if left > 0:
                    self.quiet.start(left)

    def begin(self) -> None:
        """Publish ``queued`` then ``running`` (a resumed run keeps its first start time)."""
        with self.lock:
            self._emit_state()
            started = self.state.started_at
            self._emit_state(
                status=WatchStatus.RUNNING,
                started_at=now_s(self.sched) if started is None else started,
            )
        self.out.drain()

    def finish(self, status: WatchStatus, error: str | None = None) -> None:
        """End the run (cancelled, failed...) unless it has ended already."""
        with self.lock:
            done = self._end(status, error)
        self._ended(done)

    def fail(self, exc: Exception) -> None:
        """End as failed by an unexpected internal error."""
        log_unexpected(log, f"watch {self.spec.name}: internal error", exc)
        self.finish(WatchStatus.FAILED, redact(f"internal error: {type(exc).__name__}: {exc}"))

    def abandon(self) -> None:
        """The subscriber went away: publish nothing more."""
        with self.lock:
            self.ended = True

    def time_limit(self) -> abc.DisposableBase:
        """Schedule the end ``max_duration_minutes`` after the start (nothing when 0)."""
        minutes = self.spec.max_duration_minutes
        if minutes <= 0:
            return Disposable()
        started = self.state.started_at
        elapsed = 0.0 if started is None else max(0.0, now_s(self.sched) - started)

        def time_out(_s: abc.SchedulerBase, _st: Any = None) -> None:
            self.finish(WatchStatus.FAILED, f"timed out after {minutes:g} minutes")

        return self.sched.schedule_relative(max(0.0, minutes * 60.0 - elapsed), time_out)

    def awake(self, _: Any = None) -> bool:
        """Whether a wake may pass now (not in the quiet period); a dropped one is told."""
        if not self.quiet.active():
            return True
        if self.on_drop is not None:
            self.on_drop(now_s(self.sched), DROP_QUIET)
        return False

    def next_delay(self, look: Look) -> float:
        """Seconds until the next look after ``look`` (the quiet period's end while it lasts)."""
        if self.quiet.active():
            return self.quiet.remaining()
        return retry_delay(look, now_s(self.sched))

    def on_look(self, look: Look) -> None:
        """Publish what ``look`` means; end the run or re-arm it after an alert."""
        rearm = False
        with self.lock:
            done = False
            if not self.ended:
                done, rearm = self._judge(look)
        if rearm and self.on_rearm is not None:
            self.on_rearm()
        self._ended(done)

    def _judge(self, look: Look) -> tuple[bool, bool]:
        """Queue the look's events (lock held); return (the run ended, it re-arms)."""
        now = now_s(self.sched)
        j = judge_look(self.spec, self.job_id, look, self.state, self.agreement,
                       self.budget.used(now))  # fmt: skip
        budget = self.budget.snapshot(now)
        j.changes.update(
            budget_tokens=budget.tokens,
            budget_per_hour=budget.per_hour,
            budget_exhausted_at=budget.exhausted_at,
            looks_deferred=budget.deferred,
        )
        self.out.push_next(j.record)
        if j.alert is not None:
            self.out.push_next(j.alert)
            if self.spec.mode == "once":
                self._emit_state(**j.changes, next_look_in=None)
                return self._end(WatchStatus.SUCCESS), False
            self.quiet.start(self.spec.quiet_period_s)
        self._emit_state(**j.changes, next_look_in=self.next_delay(look))
        return False, j.alert is not None
