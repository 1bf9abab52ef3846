"""Retries, Retry-After, the circuit breaker and the shared concurrency limit, over real HTTP."""

from __future__ import annotations

import itertools
import json
import threading
from collections.abc import Callable

import pytest

from operators.backends.circuit import CircuitBreaker, CircuitState
from operators.backends.openai import OpenAIBackend
from pipeline.core.backoff import backoff_delay
from pipeline.core.verdict import AnswerKind, Verdict
from tests.support.look_requests import look
from tests.support.model_server import Drop, Hang, Reply, ScriptedModelServer, Status

OK = json.dumps({"condition_met": False, "next_run_in": 7, "reasoning": "Empty porch."})
Factory = Callable[..., OpenAIBackend]
SLACK = 0.5  # scheduling slack on this 2-core machine


def gaps(server: ScriptedModelServer) -> list[float]:
    times = [r.time for r in server.chat_requests()]
    return [b - a for a, b in itertools.pairwise(times)]


def test_5xx_burst_is_retried_with_exponential_backoff_and_jitter(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Status(503), Status(502), Status(500), Reply(OK))
    backend = make_backend(
        model_server.base_url, retries=3, backoff_initial_s=0.1, backoff_max_s=1.0
    )
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.NOT_MET and verdict.next_run_in == 7.0
    g = gaps(model_server)
    assert len(g) == 3
    for attempt, gap in enumerate(g):
        base = min(1.0, 0.1 * 2**attempt)
        assert base / 2 <= gap <= base + SLACK, (attempt, gap)
    assert backend.stats.retries == 3


def test_retries_give_up_after_the_limit(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.default = Status(503)
    backend = make_backend(model_server.base_url, retries=2, circuit_failures=10)
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE and "HTTP 503" in (verdict.error or "")
    assert len(model_server.chat_requests()) == 3


def test_429_honours_retry_after(model_server: ScriptedModelServer, make_backend: Factory) -> None:
    model_server.push(Status(429, headers={"Retry-After": "1"}), Reply(OK))
    backend = make_backend(model_server.base_url, backoff_initial_s=0.01, backoff_max_s=5.0)
    assert backend.judge(look()).kind is AnswerKind.NOT_MET
    (gap,) = gaps(model_server)
    assert 1.0 <= gap <= 1.0 + SLACK


def test_long_retry_after_makes_watches_wait_without_requests(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Status(429, headers={"Retry-After": "120"}))
    backend = make_backend(model_server.base_url, backoff_max_s=5.0)
    first = backend.judge(look())
    assert first.kind is AnswerKind.UNAVAILABLE and first.next_run_in >= 120
    second = backend.judge(look())
    assert second.kind is AnswerKind.UNAVAILABLE and "Retry-After" in (second.error or "")
    assert len(model_server.chat_requests()) == 1


@pytest.mark.parametrize("reset", [False, True])
def test_dropped_connections_are_retried(
    model_server: ScriptedModelServer, make_backend: Factory, reset: bool
) -> None:
    model_server.push(Drop(reset=reset), Reply(OK))
    assert make_backend(model_server.base_url).judge(look()).kind is AnswerKind.NOT_MET


def test_timeout_is_retried_then_answers(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Hang(3.0), Reply(OK))
    backend = make_backend(model_server.base_url, read_timeout_s=0.3, retries=1)
    assert backend.judge(look()).kind is AnswerKind.NOT_MET


def test_circuit_opens_half_opens_and_closes(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    now = [1000.0]
    model_server.default = Status(503)
    cfg = dict(retries=0, circuit_failures=3, circuit_reset_s=30.0)
    backend = OpenAIBackend(
        "vlm", make_backend(model_server.base_url, **cfg).config, clock=lambda: now[0]
    )
    try:
        for _ in range(3):
            assert backend.judge(look()).kind is AnswerKind.UNAVAILABLE
        assert backend.circuit.state is CircuitState.OPEN
        assert len(model_server.chat_requests()) == 3
        # Open: watches wait, nothing reaches the server.
        for _ in range(5):
            v = backend.judge(look())
            assert v.kind is AnswerKind.UNAVAILABLE and "circuit open" in (v.error or "")
        assert len(model_server.chat_requests()) == 3
        now[0] += 30.0
        assert backend.circuit.state is CircuitState.HALF_OPEN
        # The probe fails: open again, for another reset time.
        assert backend.judge(look()).kind is AnswerKind.UNAVAILABLE
        assert backend.circuit.state is CircuitState.OPEN
        assert len(model_server.chat_requests()) == 4
        now[0] += 30.0
        model_server.default = Reply(OK)
        assert backend.judge(look()).kind is AnswerKind.NOT_MET
        assert backend.circuit.state is CircuitState.CLOSED
        states = [s for _, s in backend.circuit.transitions]
        assert states == [
            CircuitState.OPEN,
            CircuitState.HALF_OPEN,
            CircuitState.OPEN,
            CircuitState.HALF_OPEN,
            CircuitState.CLOSED,
        ]
    finally:
        backend.stop()


def test_half_open_lets_one_probe_through() -> None:
    now = [0.0]
    cb = CircuitBreaker(1, 5.0, clock=lambda: now[0])
    cb.record_failure()
    assert not cb.allow()
    now[0] = 5.0
    assert cb.allow()
    assert not cb.allow()  # a second caller waits for the probe
    cb.record_failure()
    assert cb.state is CircuitState.OPEN and cb.retry_in() == 5.0


def test_shared_concurrency_limit_is_never_exceeded(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.default = Reply(OK, delay=0.1)
    backend = make_backend(model_server.base_url, max_concurrency=2)
    verdicts: list[Verdict] = []
    lock = threading.Lock()

    def watch(i: int) -> None:
        v = backend.judge(look(watch=f"w{i}"))
        with lock:
            verdicts.append(v)

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    assert len(verdicts) == 10 and all(v.kind is AnswerKind.NOT_MET for v in verdicts)
    assert model_server.max_concurrency == 2
    assert backend.stats.max_in_flight == 2


def test_a_watch_survives_every_fault(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(
        Status(503),
        Drop(),
        Hang(2.0),
        Status(500, body="<html>oops</html>"),
        Reply("not json at all"),
        Reply(""),
        Status(200, body="not a completion"),
        Status(429, headers={"Retry-After": "0"}),
        Reply(OK),
    )
    backend = make_backend(
        model_server.base_url, retries=0, read_timeout_s=0.3, circuit_failures=100
    )
    kinds = [backend.judge(look()).kind for _ in range(9)]
    assert kinds == [
        AnswerKind.UNAVAILABLE,
        AnswerKind.UNAVAILABLE,
        AnswerKind.UNAVAILABLE,
        AnswerKind.UNAVAILABLE,
        AnswerKind.UNPARSEABLE,
        AnswerKind.EMPTY,
        AnswerKind.ERROR,
        AnswerKind.UNAVAILABLE,
        AnswerKind.NOT_MET,
    ]


def test_stop_interrupts_a_backoff_wait(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    import time

    model_server.default = Status(503)
    backend = make_backend(
        model_server.base_url, retries=5, backoff_initial_s=10.0, backoff_max_s=10.0
    )
    result: list[Verdict] = []
    t = threading.Thread(target=lambda: result.append(backend.judge(look())))
    t0 = time.monotonic()
    t.start()
    model_server.wait_for_chat_requests(1)
    backend.stop()
    t.join(5)
    assert result and result[0].kind is AnswerKind.UNAVAILABLE
    assert time.monotonic() - t0 < 5


@pytest.mark.parametrize("attempt", range(8))
def test_backoff_is_capped_and_jittered(attempt: int) -> None:
    import random

    rng = random.Random(attempt)
    for _ in range(50):
        d = backoff_delay(attempt, 0.5, 4.0, rng=rng)
        base = min(4.0, 0.5 * 2**attempt)
        assert base / 2 <= d <= base
