"""The ``openai`` backend pointed at a running llama-server with the tiny vision model.

What the real server does that a scripted one only imitates: its ``/v1/models`` and ``/props``
(the vision probe), its acceptance of ``response_format`` with a JSON schema, its slots
(``--parallel``), its 401 for a wrong key, its 400 for an image it cannot decode and its 500 when
it has no ``--mmproj``. Answers are steered by ``extra_body`` (see
:func:`tests.support.llama.steered_answer`): the weights are random.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from pydantic import SecretStr

from operators.backends.openai import OpenAIBackend
from pipeline.core.config import OpenAIBackendConfig
from pipeline.core.verdict import AnswerKind
from tests.support.llama import TINY_MODEL, LlamaServer, steered_answer
from tests.support.look_requests import jpeg_bytes, look

Factory = Callable[..., OpenAIBackend]


@pytest.fixture
def make_openai() -> Iterator[Factory]:
    """Build openai backends for a server (its URL and key); all stopped after the test."""
    made: list[OpenAIBackend] = []

    def factory(server: LlamaServer, **kw: Any) -> OpenAIBackend:
        if server.api_key:
            kw.setdefault("api_key", SecretStr(server.api_key))
        kw.setdefault("read_timeout_s", 30.0)
        kw.setdefault("backoff_initial_s", 0.05)
        kw.setdefault("backoff_max_s", 0.2)
        backend = OpenAIBackend("vlm", OpenAIBackendConfig(base_url=server.openai_base_url, **kw))
        made.append(backend)
        return backend

    try:
        yield factory
    finally:
        for backend in made:
            backend.stop()


def test_probe_finds_the_model_and_its_vision(
    real_llama_server: LlamaServer, make_openai: Factory
) -> None:
    backend = make_openai(real_llama_server)
    result = backend.probe()
    assert result.reachable, result
    assert result.models == (str(TINY_MODEL),)  # llama-server names the model by its path
    assert result.model == str(TINY_MODEL) and result.vision is True
    avail = backend.availability()
    assert avail.available and "takes images" in avail.reason


def test_server_without_mmproj_is_found_to_take_no_images(
    llama_server_factory: Callable[..., LlamaServer], make_openai: Factory
) -> None:
    server = llama_server_factory(mmproj=None)
    probed = make_openai(server)
    result = probed.probe()
    assert result.reachable and result.vision is False  # capabilities: completion only
    assert not probed.availability().available
    assert "cannot take images" in (probed.judge(look()).error or "")

    # Not probed (the server came up after Lookout): the first look learns it from the
    # server's 500 "image input is not supported ... mmproj", without retrying it.
    unprobed = make_openai(server, retries=3)
    verdict = unprobed.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE
    assert "cannot take images" in (verdict.error or "") and "mmproj" in (verdict.error or "")
    assert not unprobed.takes_images
    assert unprobed.stats.attempts == 1 and unprobed.stats.retries == 0


def test_json_schema_response_format_is_accepted(
    real_llama_server: LlamaServer, make_openai: Factory
) -> None:
    backend = make_openai(real_llama_server, extra_body=steered_answer(False))
    backend.start()
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.NOT_MET, verdict
    assert json.loads(verdict.raw_answer or "")["condition_met"] is False
    assert backend.response_format == "json_schema" and backend.stats.format_fallbacks == []


def test_default_answer_schema_gives_parseable_answers(
    real_llama_server: LlamaServer, make_openai: Factory
) -> None:
    backend = make_openai(real_llama_server)  # no steering: Lookout's own response_format
    backend.start()
    for seed in range(3):
        verdict = backend.judge(look(jpeg=jpeg_bytes(160, 120, (60 * seed, 90, 200))))
        assert verdict.kind in (AnswerKind.MET, AnswerKind.NOT_MET), verdict
    assert backend.response_format == "json_schema" and backend.stats.format_fallbacks == []


def test_concurrent_looks_use_two_slots(
    llama_server_factory: Callable[..., LlamaServer], make_openai: Factory
) -> None:
    server = llama_server_factory(parallel=2)
    backend = make_openai(server, max_concurrency=2, extra_body=steered_answer(True))
    backend.start()
    looks = 6
    start = threading.Barrier(looks, timeout=10)
    kinds: list[AnswerKind] = []

    def watch(i: int) -> None:
        start.wait()
        kinds.append(backend.judge(look(f"w{i}", jpeg=jpeg_bytes(160, 120, (40 * i, 90, 9)))).kind)

    threads = [threading.Thread(target=watch, args=(i,)) for i in range(looks)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert not any(thread.is_alive() for thread in threads)
    assert kinds == [AnswerKind.MET] * looks
    assert backend.stats.max_in_flight == 2  # the limit, reached and kept
    assert backend.stats.retries == 0


def test_unreadable_image_fails_that_look_only(
    real_llama_server: LlamaServer, make_openai: Factory
) -> None:
    backend = make_openai(real_llama_server, extra_body=steered_answer(True))
    backend.start()
    # llama-server answers 400 "Failed to load image or audio file".
    bad = backend.judge(look(jpeg=b"\xff\xd8\xff\xe0 this is not a JPEG"))
    assert bad.kind is AnswerKind.ERROR, bad
    assert "could not read the image" in (bad.error or "")
    assert "Failed to load image" in (bad.error or "")
    assert backend.takes_images  # not mistaken for a model without vision
    assert backend.stats.retries == 0
    assert backend.judge(look()).kind is AnswerKind.MET  # the next good frame is judged


def test_wrong_api_key_is_refused_clearly(
    real_llama_server: LlamaServer, make_openai: Factory
) -> None:
    backend = make_openai(real_llama_server, api_key=SecretStr("wrong-key"), retries=0)
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE
    assert "unauthorized: check the API key (HTTP 401)" in (verdict.error or "")
    assert "wrong-key" not in (verdict.error or "")
