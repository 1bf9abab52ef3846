"""The openai backend against a real scripted HTTP server: answers, faults, formats."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable

import pytest

from operators.backends.openai import OpenAIBackend
from pipeline.core.verdict import AnswerKind
from tests.support.look_requests import look
from tests.support.model_server import Drop, Hang, Reply, ScriptedModelServer, Status

MET = json.dumps(
    {
        "condition_met": True,
        "next_run_in": 4,
        "reasoning": "A box sits on the mat.",
        "notification_message": "Package on the porch",
    }
)

Factory = Callable[..., OpenAIBackend]


def test_good_answer_becomes_met_verdict(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Reply(MET))
    backend = make_backend(model_server.base_url)
    backend.start()
    verdict = backend.judge(look(labels=("package",)))
    assert verdict.kind is AnswerKind.MET
    assert verdict.next_run_in == 4.0
    assert verdict.notification_message == "Package on the porch"
    (req,) = model_server.chat_requests()
    body = req.json
    assert body["model"] == "scripted-vlm"  # from /v1/models
    assert body["messages"][0]["role"] == "system"
    assert "a package is on the porch" in body["messages"][0]["content"]
    assert len(req.image_urls()) == 1 and req.image_urls()[0].startswith("data:image/jpeg;base64,")
    assert body["response_format"]["type"] == "json_schema"


@pytest.mark.parametrize(
    ("content", "kind", "next_run_in"),
    [
        ('```json\n{"condition_met": false, "next_run_in": 900}\n```', AnswerKind.NOT_MET, 300.0),
        ('Sure! {"condition_met": "yes", "next_run_in": "2"} hope it helps', AnswerKind.MET, 2.0),
        ("", AnswerKind.EMPTY, 30.0),
        (None, AnswerKind.EMPTY, 30.0),
        ("I cannot tell from this picture.", AnswerKind.UNPARSEABLE, 30.0),
        ('{"condition_met": maybe}', AnswerKind.UNPARSEABLE, 30.0),
    ],
)
def test_malformed_answers_never_raise(
    model_server: ScriptedModelServer,
    make_backend: Factory,
    content: str | None,
    kind: AnswerKind,
    next_run_in: float,
) -> None:
    model_server.push(Reply(content))
    verdict = make_backend(model_server.base_url).judge(look())
    assert verdict.kind is kind
    assert verdict.next_run_in == next_run_in


def test_probe_reports_model_and_vision(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    backend = make_backend(model_server.base_url)
    result = backend.probe()
    assert result.reachable and result.models == ("scripted-vlm",) and result.vision is True
    assert backend.availability().available
    assert "takes images" in backend.availability().reason


def test_model_without_vision_is_unavailable_and_sends_nothing(
    model_server_factory: Callable[..., ScriptedModelServer], make_backend: Factory
) -> None:
    server = model_server_factory(vision=False, model_id="text-only")
    backend = make_backend(server.base_url)
    backend.start()
    avail = backend.availability()
    assert not avail.available and "cannot take images" in avail.reason
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE
    assert "text-only cannot take images" in (verdict.error or "")
    assert server.chat_requests() == []


def test_server_rejecting_images_at_run_time_marks_no_vision(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Status(400, {"error": {"message": "image input is not supported"}}))
    backend = make_backend(model_server.base_url)
    assert backend.judge(look()).kind is AnswerKind.UNAVAILABLE
    assert not backend.takes_images
    assert backend.judge(look()).kind is AnswerKind.UNAVAILABLE
    assert len(model_server.chat_requests()) == 1


def test_llama_server_without_mmproj_answers_500_no_vision_without_retries(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    # llama-server's own words and status (measured against the real binary).
    no_mmproj = "image input is not supported - hint: you may need to provide the mmproj"
    model_server.push(Status(500, {"error": {"code": 500, "message": no_mmproj}}))
    backend = make_backend(model_server.base_url, retries=3)
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE and "cannot take images" in (verdict.error or "")
    assert not backend.takes_images
    assert len(model_server.chat_requests()) == 1  # not retried
    assert backend.circuit.state.value == "closed"


def test_unreadable_image_fails_the_look_but_keeps_vision(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    # llama-server's answer to a JPEG it cannot decode (measured against the real binary).
    bad = {"error": {"code": 400, "message": "Failed to load image or audio file"}}
    model_server.push(Status(400, bad), Reply(MET))
    backend = make_backend(model_server.base_url)
    verdict = backend.judge(look(jpeg=b"\xff\xd8 not a jpeg"))
    assert verdict.kind is AnswerKind.ERROR
    assert "could not read the image" in (verdict.error or "")
    assert backend.takes_images
    assert backend.judge(look()).kind is AnswerKind.MET


def test_unreachable_server_fails_fast_as_unavailable(make_backend: Factory) -> None:
    from tests.support.ports import free_port

    backend = make_backend(f"http://127.0.0.1:{free_port()}/v1", retries=1)
    assert not backend.availability().available
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE and verdict.next_run_in == 30.0


def test_response_format_falls_back_when_rejected(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(
        Status(400, {"error": {"message": "response_format json_schema not supported"}}),
        Status(400, {"error": {"message": "unknown field response_format"}}),
        Reply(MET),
        Reply(MET),
    )
    backend = make_backend(model_server.base_url)
    assert backend.judge(look()).kind is AnswerKind.MET
    assert backend.judge(look()).kind is AnswerKind.MET
    formats = [r.json.get("response_format") for r in model_server.chat_requests()]
    assert formats[0]["type"] == "json_schema"
    assert formats[1] == {"type": "json_object"}
    assert formats[2] is None and formats[3] is None  # remembered
    assert backend.response_format == "none"


def test_other_client_errors_are_errors_not_retried(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    model_server.push(Status(404, {"error": {"message": "model not found"}}))
    verdict = make_backend(model_server.base_url, response_format="none").judge(look())
    assert verdict.kind is AnswerKind.ERROR and "model not found" in (verdict.error or "")
    assert len(model_server.chat_requests()) == 1


def test_api_key_is_sent_and_never_logged(
    model_server_factory: Callable[..., ScriptedModelServer],
    make_backend: Factory,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    secret = "sk-test-very-secret-123"
    server = model_server_factory(api_key=secret)
    server.push(Status(503), Drop(), Reply(MET))
    monkeypatch.setenv("VLM_KEY", secret)
    caplog.set_level(logging.DEBUG, logger="lookout")
    backend = make_backend(server.base_url, api_key_env="VLM_KEY", retries=3)
    backend.start()
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.MET
    assert server.chat_requests()[0].headers["authorization"] == f"Bearer {secret}"
    assert secret not in caplog.text
    wrong = make_backend(server.base_url, api_key="sk-wrong-key-456", retries=0)
    bad = wrong.judge(look())
    assert bad.kind is AnswerKind.UNAVAILABLE and "unauthorized: check the API key" in (
        bad.error or ""
    )
    assert "sk-wrong-key-456" not in repr(bad) + caplog.text


def test_slow_answer_past_read_timeout_is_unavailable_within_bound(
    model_server: ScriptedModelServer, make_backend: Factory
) -> None:
    import time

    model_server.push(Hang(5.0))
    backend = make_backend(model_server.base_url, read_timeout_s=0.3, retries=0)
    t0 = time.monotonic()
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE and "timed out" in (verdict.error or "")
    assert time.monotonic() - t0 < 0.3 + 1.0


def test_describe_returns_text(model_server: ScriptedModelServer, make_backend: Factory) -> None:
    model_server.push(Reply("A porch with a red door."))
    backend = make_backend(model_server.base_url)
    assert backend.describe(b"\xff\xd8jpeg", "Describe the image.") == "A porch with a red door."
    req = model_server.chat_requests()[0].json
    assert "response_format" not in req
