"""Every model request has a total deadline: dribbling, stalled and silent servers end on time.

A socket read timeout bounds each read only: a server that sends a byte every
second never trips it. These tests talk to a real loopback server that does
exactly that (``Dribble``), one that stops half way (``stall_after``) and one
that never answers (``Hang``). The look fails at ``request_timeout_s``, is
retried like any failed look, and the request slot is free again afterwards.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable

import pytest

from operators.backends.openai import OpenAIBackend
from pipeline.core.verdict import AnswerKind, Verdict
from pipeline.net.deadline import ALARMS
from tests.support.look_requests import look
from tests.support.model_server import Dribble, Hang, Reply, ScriptedModelServer, Step

Factory = Callable[..., OpenAIBackend]
MET = json.dumps({"condition_met": True, "next_run_in": 4, "reasoning": "A box."})
BOUND_S = 20.0
"""How long a test waits for a judge that should end at its ~1 s deadline (old code: minutes)."""


def judge_within(backend: OpenAIBackend, bound_s: float = BOUND_S) -> Verdict:
    """Run ``judge`` in a thread; fail if it is still running after ``bound_s``."""
    result: list[Verdict] = []
    thread = threading.Thread(target=lambda: result.append(backend.judge(look())), daemon=True)
    thread.start()
    thread.join(bound_s)
    assert not thread.is_alive(), f"the look was still in flight after {bound_s} s"
    return result[0]


SLOW_STEPS = {
    # headers at once, then one byte a second: every read gets a byte within read_timeout_s
    "dribble": Dribble(MET, interval_s=0.5),
    # headers and a few bytes, then nothing while the connection stays open
    "stall": Dribble(MET, interval_s=0.01, stall_after=5),
    # no answer at all
    "silent": Hang(120.0),
}


@pytest.mark.parametrize("kind", list(SLOW_STEPS))
def test_a_slow_answer_fails_at_the_deadline_and_is_retried(
    model_server: ScriptedModelServer, make_backend: Factory, kind: str
) -> None:
    step: Step = SLOW_STEPS[kind]
    model_server.push(step, step)
    backend = make_backend(
        model_server.base_url,
        read_timeout_s=30.0,
        request_timeout_s=1.0,
        retries=1,
        max_concurrency=1,
        queue_timeout_s=1.0,
    )
    verdict = judge_within(backend)
    assert verdict.kind is AnswerKind.UNAVAILABLE
    assert "within 1 s (request_timeout_s)" in (verdict.error or "")
    assert verdict.next_run_in == 30.0  # the baseline's retry delay of a failed look
    assert len(model_server.chat_requests()) == 2  # one retry, like any transient failure
    assert backend.stats.in_flight == 0
    # The request slot is free: the next look gets it and its answer.
    model_server.push(Reply(MET))
    assert judge_within(backend).kind is AnswerKind.MET


def test_the_deadline_counts_the_whole_answer_not_each_read(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    # Each byte comes well within read_timeout_s; only the total bound can end it.
    model_server.push(Dribble(MET, interval_s=0.2))
    backend = make_backend(
        model_server.base_url, read_timeout_s=5.0, request_timeout_s=1.5, retries=0
    )
    verdict = judge_within(backend)
    assert verdict.kind is AnswerKind.UNAVAILABLE and "1.5 s" in (verdict.error or "")


def test_an_answer_within_the_deadline_disarms_its_alarm(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Reply(MET), Reply(MET))
    backend = make_backend(model_server.base_url, request_timeout_s=600.0)
    before = ALARMS.pending()
    assert backend.judge(look()).kind is AnswerKind.MET
    assert backend.judge(look()).kind is AnswerKind.MET
    assert ALARMS.pending() == before


def test_stop_ends_a_look_in_flight_at_once(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Hang(120.0))
    backend = make_backend(
        model_server.base_url, read_timeout_s=300.0, request_timeout_s=600.0, retries=3
    )
    result: list[Verdict] = []
    thread = threading.Thread(target=lambda: result.append(backend.judge(look())), daemon=True)
    thread.start()
    model_server.wait_for_chat_requests(1)
    backend.stop()
    thread.join(BOUND_S)
    assert not thread.is_alive(), "stop() left the look in flight"
    assert result[0].kind is AnswerKind.UNAVAILABLE
    assert len(model_server.chat_requests()) == 1  # stopping: no retry
