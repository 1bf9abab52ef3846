"""A model server that refuses the API key (401/403) says so: log, watch state, listing, metrics.

"unauthorized: check the API key" is logged once per change (not per look), is
each failed look's error (so the watch state's ``error_message``), the
``python -m pipeline backends`` row, and ``lookout_backend_unauthorized`` 1.
Servers differ in what they protect: OpenAI protects ``/v1/models``; some
llama.cpp builds leave ``/v1/models`` public and protect ``/props``.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Callable

import pytest

from operators.backends.listing import backends_command, list_backends
from operators.backends.openai import OpenAIBackend
from operators.look import Look
from operators.verdicts import Agreement, judge_look
from operators.watch_spec import WatchSpec
from pipeline.app.metrics import _backend_metrics
from pipeline.app.prometheus import MetricsText
from pipeline.core.events import WatchState
from pipeline.core.verdict import AnswerKind
from tests.support.look_requests import look, openai_config
from tests.support.model_server import Reply, ScriptedModelServer

UNAUTHORIZED = "unauthorized: check the API key"
MET = '{"condition_met": true, "next_run_in": 5, "reasoning": "A box."}'
Factory = Callable[..., OpenAIBackend]


@pytest.fixture(params=["models-protected", "models-public"])
def keyed_server(
    request: pytest.FixtureRequest, model_server_factory: Callable[..., ScriptedModelServer]
) -> ScriptedModelServer:
    server = model_server_factory(api_key="sk-the-right-key")
    if request.param == "models-public":  # as llama.cpp builds where only /props is protected
        server.public_paths = {"/v1/models", "/models", "/health"}
    return server


def auth_lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if UNAUTHORIZED in r.getMessage()]


def test_a_refused_key_is_logged_once_and_each_look_says_why(
    keyed_server: ScriptedModelServer, make_backend: Factory, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="lookout")
    backend = make_backend(keyed_server.base_url, api_key="sk-a-wrong-key", retries=0,
                           circuit_failures=100)  # fmt: skip
    backend.start()
    verdicts = [backend.judge(look()) for _ in range(3)]
    for verdict in verdicts:
        assert verdict.kind is AnswerKind.UNAVAILABLE
        assert f"vlm: {UNAUTHORIZED} (HTTP 401)" == verdict.error
    assert len(auth_lines(caplog)) == 1, auth_lines(caplog)  # once per change, not per look
    assert backend.unauthorized is not None
    assert "sk-a-wrong-key" not in caplog.text

    keyed_server.more_api_keys = ["sk-a-wrong-key"]  # the key is accepted now
    keyed_server.push(Reply(MET), Reply(MET))
    assert backend.judge(look()).kind is AnswerKind.MET
    assert backend.judge(look()).kind is AnswerKind.MET
    assert backend.unauthorized is None
    assert caplog.text.count("the API key is accepted again") == 1


def test_the_watch_state_says_why_its_looks_fail(
    keyed_server: ScriptedModelServer, make_backend: Factory
) -> None:
    backend = make_backend(keyed_server.base_url, api_key="sk-a-wrong-key", retries=0)
    verdict = backend.judge(look())
    spec = WatchSpec(name="porch", camera="front", condition="a package is on the porch")
    state = WatchState(id="job", name="porch", camera="front", condition=spec.condition)
    judged = judge_look(spec, "job", Look("timer", 0.0, verdict, None, None), state,
                        Agreement(), 1)  # fmt: skip
    assert judged.changes["error_message"] == f"vlm: {UNAUTHORIZED} (HTTP 401)"
    keyed_server.api_key = "sk-a-wrong-key"
    keyed_server.push(Reply(MET))
    answered = backend.judge(look())
    judged = judge_look(spec, "job", Look("timer", 5.0, answered, None, None), state,
                        Agreement(), 2)  # fmt: skip
    assert judged.changes["error_message"] is None  # an answered look clears it


def test_backends_listing_says_unauthorized(keyed_server: ScriptedModelServer) -> None:
    configs = {"vlm": openai_config(keyed_server.base_url, api_key="sk-a-wrong-key")}
    (row,) = [r for r in list_backends(configs) if r.name == "vlm"]
    assert not row.available
    assert UNAUTHORIZED in row.reason and UNAUTHORIZED in (row.probe or "")
    out = io.StringIO()
    backends_command(configs, out=out)
    assert UNAUTHORIZED in out.getvalue()
    assert "auto chose 'vlm'" not in out.getvalue()  # auto does not pick a server that refuses us
    assert "sk-a-wrong-key" not in out.getvalue()


def test_metrics_show_the_refused_key(
    keyed_server: ScriptedModelServer, make_backend: Factory
) -> None:
    refused = make_backend(keyed_server.base_url, api_key="sk-a-wrong-key", retries=0)
    accepted = OpenAIBackend(
        "good", openai_config(keyed_server.base_url, api_key="sk-the-right-key")
    )
    try:
        keyed_server.push(Reply(MET))
        assert accepted.judge(look()).kind is AnswerKind.MET
        refused.judge(look())
        text = MetricsText()
        _backend_metrics(text, {}, {"vlm": refused, "good": accepted})
        rendered = text.render()
    finally:
        accepted.stop()
    assert 'lookout_backend_unauthorized{backend="vlm"} 1' in rendered
    assert 'lookout_backend_unauthorized{backend="good"} 0' in rendered
