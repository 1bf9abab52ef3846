"""Model APIs as they are today: what a 400 names is what changes; bounded answers; the key.

- A 400 changes ``response_format`` only when it is about it; "Unsupported
  parameter: 'max_tokens'" (current OpenAI models) moves the limit to
  ``max_completion_tokens``; a rejected ``temperature`` is left out; any other
  400 fails the look and changes nothing.
- The answer schema bounds its strings and ``next_run_in``; an answer cut off
  after its fields is still parsed.
- ``OPENAI_API_KEY`` is read when an ``openai`` backend names no key source.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from operators.backends.openai import OpenAIBackend
from operators.backends.prompt import ANSWER_SCHEMA
from pipeline.core.verdict import AnswerKind
from tests.support.look_requests import look
from tests.support.model_server import Reply, ScriptedModelServer, Status

Factory = Callable[..., OpenAIBackend]
MET = json.dumps({"condition_met": True, "next_run_in": 4, "reasoning": "A box."})
NO_MAX_TOKENS = (
    "Unsupported parameter: 'max_tokens' is not supported with this model. "
    "Use 'max_completion_tokens' instead."
)
NO_TEMPERATURE = (
    "Unsupported value: 'temperature' does not support 0 with this model. "
    "Only the default (1) value is supported."
)


def error(message: str, param: str | None = None) -> dict[str, Any]:
    """An OpenAI-style 400 body."""
    return {"error": {"message": message, "type": "invalid_request_error", "param": param}}


def bodies(server: ScriptedModelServer) -> list[dict[str, Any]]:
    return [r.json for r in server.chat_requests()]


def test_unsupported_max_tokens_moves_to_max_completion_tokens(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Status(400, error(NO_MAX_TOKENS, "max_tokens")), Reply(MET), Reply(MET))
    backend = make_backend(model_server.base_url, max_tokens=200)
    assert backend.judge(look()).kind is AnswerKind.MET
    assert backend.judge(look()).kind is AnswerKind.MET
    first, second, third = bodies(model_server)
    assert first["max_tokens"] == 200 and "max_completion_tokens" not in first
    for later in (second, third):  # learned once, kept
        assert later["max_completion_tokens"] == 200 and "max_tokens" not in later
    # Structured output was never the trouble: it stays.
    assert all(b["response_format"]["type"] == "json_schema" for b in (first, second, third))
    assert backend.response_format == "json_schema" and backend.stats.format_fallbacks == []


def test_max_completion_tokens_as_a_setting(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Reply(MET))
    backend = make_backend(model_server.base_url, token_limit_field="max_completion_tokens")
    assert backend.judge(look()).kind is AnswerKind.MET
    (body,) = bodies(model_server)
    assert body["max_completion_tokens"] == 300 and "max_tokens" not in body


def test_a_rejected_temperature_is_left_out(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Status(400, error(NO_TEMPERATURE, "temperature")), Reply(MET), Reply(MET))
    backend = make_backend(model_server.base_url)
    assert backend.judge(look()).kind is AnswerKind.MET
    assert backend.judge(look()).kind is AnswerKind.MET
    first, second, third = bodies(model_server)
    assert first["temperature"] == 0.0
    assert "temperature" not in second and "temperature" not in third
    assert third["response_format"]["type"] == "json_schema"


def test_temperature_default_is_never_sent(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Reply(MET))
    assert make_backend(model_server.base_url, temperature="default").judge(look()).kind is (
        AnswerKind.MET
    )
    assert "temperature" not in bodies(model_server)[0]


def test_a_400_about_something_else_changes_nothing(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    too_long = "This model's maximum context length is 4096 tokens; you asked for 5120."
    model_server.push(Status(400, error(too_long)), Reply(MET))
    backend = make_backend(model_server.base_url)
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.ERROR and "maximum context length" in (verdict.error or "")
    assert len(model_server.chat_requests()) == 1  # one request, not three
    assert backend.judge(look()).kind is AnswerKind.MET
    assert bodies(model_server)[1]["response_format"]["type"] == "json_schema"
    assert backend.response_format == "json_schema"


def test_a_schema_refused_for_its_bounds_is_sent_without_them(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    strict = "Invalid schema for response_format 'watch_answer': 'maxLength' is not permitted."
    model_server.push(Status(400, error(strict, "response_format")), Reply(MET))
    backend = make_backend(model_server.base_url)
    assert backend.judge(look()).kind is AnswerKind.MET
    first, second = (b["response_format"] for b in bodies(model_server))
    assert "maxLength" in json.dumps(first)
    assert second["type"] == "json_schema" and "maxLength" not in json.dumps(second)
    assert "maximum" not in json.dumps(second)


def test_the_answer_schema_is_bounded(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Reply(MET))
    make_backend(model_server.base_url).judge(look())
    sent = bodies(model_server)[0]["response_format"]["json_schema"]["schema"]
    assert sent == ANSWER_SCHEMA
    props = sent["properties"]
    assert props["next_run_in"] == {"type": "integer", "minimum": 1, "maximum": 300}
    assert 0 < props["reasoning"]["maxLength"] <= 600
    assert 0 < props["notification_message"]["maxLength"] <= 200


@pytest.mark.parametrize(
    ("answer", "kind", "next_run_in", "reasoning"),
    [
        # cut inside the reasoning: the fields before it are whole
        ('{"condition_met": true, "next_run_in": 5, "reasoning": "A brown box lies by the do',
         AnswerKind.MET, 5.0, "A brown box lies by the do…"),
        # cut inside the notification message: it is dropped, not sent half written
        ('{"condition_met": true, "next_run_in": 5, "reasoning": "A box.", '
         '"notification_message": "Package on th', AnswerKind.MET, 5.0, "A box."),
        # cut inside a key
        ('{"condition_met": false, "next_run_in": 60, "reasoning": "Empty.", "notifica',
         AnswerKind.NOT_MET, 60.0, "Empty."),
        # cut before condition_met was whole: not an answer
        ('{"condition_met": fal', AnswerKind.UNPARSEABLE, 30.0, ""),
    ],
)  # fmt: skip
def test_an_answer_cut_off_after_its_fields_is_parsed(
    model_server: ScriptedModelServer,
    make_backend: Factory,
    answer: str,
    kind: AnswerKind,
    next_run_in: float,
    reasoning: str,
) -> None:
    model_server.push(Reply(answer, finish_reason="length"))
    verdict = make_backend(model_server.base_url).judge(look())
    assert (verdict.kind, verdict.next_run_in) == (kind, next_run_in)
    assert verdict.reasoning == reasoning
    assert verdict.notification_message is None


def test_openai_api_key_is_read_when_no_key_source_is_named(
    model_server_factory: Callable[..., ScriptedModelServer],
    make_backend: Factory,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-the-environment")
    monkeypatch.setenv("OTHER_KEY", "sk-named-by-api-key-env")
    server = model_server_factory(api_key="sk-from-the-environment")
    server.more_api_keys = ["sk-named-by-api-key-env", "sk-in-the-config"]
    server.push(Reply(MET), Reply(MET), Reply(MET), Reply(MET))
    assert make_backend(server.base_url).judge(look()).kind is AnswerKind.MET
    assert make_backend(server.base_url, api_key_env="OTHER_KEY").judge(look()).kind is (
        AnswerKind.MET
    )
    assert make_backend(server.base_url, api_key="sk-in-the-config").judge(look()).kind is (
        AnswerKind.MET
    )
    own = make_backend(server.base_url, headers={"Authorization": "Bearer sk-in-the-config"})
    assert own.judge(look()).kind is AnswerKind.MET
    sent = [r.headers["authorization"] for r in server.chat_requests()]
    assert sent == [
        "Bearer sk-from-the-environment",  # no key source: OPENAI_API_KEY, as OpenAI's clients
        "Bearer sk-named-by-api-key-env",  # api_key_env comes first
        "Bearer sk-in-the-config",  # api_key comes first
        "Bearer sk-in-the-config",  # an Authorization header is a key source too
    ]
