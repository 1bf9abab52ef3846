"""The generic HTTP sidecar backend against a real sidecar on loopback."""

from __future__ import annotations

import base64
import json

import pytest

from operators.backends.base import BackendError, LookRequest
from operators.backends.registry import build_backend
from pipeline.core.config import HttpBackendConfig
from pipeline.core.verdict import AnswerKind
from tests.support.sidecar import Sidecar

JPEG = b"\xff\xd8fake-jpeg\xff\xd9"


def _backend(url: str, **kw: object):  # type: ignore[no-untyped-def]
    cfg = HttpBackendConfig(url=url, backoff_initial_s=0.01, backoff_max_s=0.02, **kw)
    return build_backend("car", cfg)


def test_describe_sends_the_picture_and_prompt_and_reads_the_answer_field() -> None:
    with Sidecar([(200, {"description": "A cat sits on the mat."})]) as car:
        backend = _backend(car.url())
        assert backend.type == "http"
        assert backend.describe(JPEG, "What is here?") == "A cat sits on the mat."
        backend.stop()
    path, body = car.requests[0]
    assert path == "/describe"
    assert body == {"image": base64.b64encode(JPEG).decode(), "prompt": "What is here?"}


def test_a_custom_body_template_and_a_nested_answer_field() -> None:
    answer = {"choices": [{"message": {"content": "two cars"}}]}
    with Sidecar([(200, answer)]) as car:
        backend = _backend(car.url("/v2/caption"),
                           body={"input": {"img": "{image_data_url}", "q": "Q: {prompt}"}, "n": 1},
                           answer_field="choices.0.message.content")  # fmt: skip
        assert backend.describe(JPEG, "count") == "two cars"
        backend.stop()
    body = car.requests[0][1]
    assert body["input"]["img"].startswith("data:image/jpeg;base64,")
    assert body["input"]["q"] == "Q: count" and body["n"] == 1


def test_judge_reads_the_watch_json_from_the_answer() -> None:
    text = json.dumps({"condition_met": True, "next_run_in": 4, "reasoning": "The gate is open.",
                       "notification_message": "Gate open"})  # fmt: skip
    with Sidecar([(200, {"description": text})]) as car:
        backend = _backend(car.url())
        verdict = backend.judge(LookRequest(watch="w", camera="front", condition="the gate is open",
                                            jpeg=JPEG, user_text="Frame captured at 12:00:05."))  # fmt: skip
        backend.stop()
    assert verdict.kind is AnswerKind.MET and verdict.next_run_in == 4.0
    assert verdict.notification_message == "Gate open"
    prompt = car.requests[0][1]["prompt"]
    assert "Condition: the gate is open" in prompt and prompt.endswith(
        "Frame captured at 12:00:05."
    )


def test_judge_of_a_caption_that_is_not_json_is_unparseable() -> None:
    with Sidecar([(200, {"description": "A gate."})]) as car:
        backend = _backend(car.url())
        v = backend.judge(LookRequest(watch="w", camera="c", condition="x", jpeg=JPEG))
        backend.stop()
    assert v.kind is AnswerKind.UNPARSEABLE


def test_transient_errors_are_retried() -> None:
    with Sidecar([(503, {"error": "busy"}), (200, {"description": "ok"})]) as car:
        backend = _backend(car.url(), retries=2)
        assert backend.describe(JPEG, "p") == "ok"
        backend.stop()
    assert len(car.requests) == 2


@pytest.mark.parametrize(
    ("status", "answer", "needle"),
    [(400, {"error": "bad image"}, "HTTP 400"), (200, {"text": "x"}, "no 'description'")],
)
def test_errors_say_why(status: int, answer: object, needle: str) -> None:
    with Sidecar([(status, answer)]) as car:
        backend = _backend(car.url())
        with pytest.raises(BackendError, match=needle):
            backend.describe(JPEG, "p")
        v = backend.judge(LookRequest(watch="w", camera="c", condition="x", jpeg=JPEG))
        backend.stop()
    assert v.kind is AnswerKind.ERROR and needle in (v.error or "")


def test_an_unreachable_sidecar_is_unavailable_and_judge_off_refuses() -> None:
    backend = _backend("http://127.0.0.1:9/describe", retries=0, connect_timeout_s=0.5)
    v = backend.judge(LookRequest(watch="w", camera="c", condition="x", jpeg=JPEG))
    assert v.kind is AnswerKind.UNAVAILABLE
    off = _backend("http://127.0.0.1:9/describe", judge="off")
    assert off.judge(LookRequest(watch="w", camera="c", condition="x", jpeg=JPEG)).kind is (
        AnswerKind.UNAVAILABLE
    )
    backend.stop()
    off.stop()


def test_the_body_must_send_the_picture() -> None:
    with pytest.raises(ValueError, match="image_b64"):
        HttpBackendConfig(url="http://127.0.0.1:1/d", body={"prompt": "{prompt}"})
