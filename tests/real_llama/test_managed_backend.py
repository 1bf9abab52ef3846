"""The managed ``llama_server`` backend running the real llama-server with the tiny vision model.

Lookout starts the binary itself (lazily, on the first look), waits for ``/health``, sends the
baseline prompt with the frame and history images, parses the JSON answers into verdicts, stops
the server when idle, appends its output to the log under a session header and restarts it
after it is killed.

The model's weights are random: every answer is steered by ``extra_body`` with a JSON schema
(:func:`tests.support.llama.steered_answer`), the documented way to make it answer what a test
needs. Idle time and restart backoff run on a :class:`ManualClock`, so nothing here waits for
them in real time.
"""

from __future__ import annotations

import http.client
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from operators.backends.base import ChatTurn, LookRequest
from operators.backends.llama_server import LlamaServerBackend
from pipeline.core.config import LlamaServerBackendConfig
from pipeline.core.verdict import AnswerKind
from tests.support.llama import TINY_MMPROJ, TINY_MODEL, steered_answer
from tests.support.look_requests import frame, jpeg_bytes, look
from tests.support.waiting import wait_until

Factory = Callable[..., LlamaServerBackend]
ROOT = Path(__file__).resolve().parents[2]


class ManualClock:
    """A monotonic clock the test moves by hand (idle time, restart backoff)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def make_managed(llama_server_binary: Path, tmp_path: Path) -> Iterator[Factory]:
    """Build managed backends on the real binary and tiny model; all stopped after the test."""
    made: list[LlamaServerBackend] = []

    def factory(clock: Callable[[], float] = time.monotonic, **kw: Any) -> LlamaServerBackend:
        kw.setdefault("binary", llama_server_binary)
        kw.setdefault("model", TINY_MODEL)
        kw.setdefault("mmproj", TINY_MMPROJ)
        kw.setdefault("log_file", tmp_path / "logs" / "llama-server.log")
        kw.setdefault("threads", min(2, os.cpu_count() or 1))
        kw.setdefault("startup_timeout_s", 60.0)
        kw.setdefault("extra_body", steered_answer(True, "Package on the porch"))
        backend = LlamaServerBackend("local", LlamaServerBackendConfig(**kw), clock=clock)
        made.append(backend)
        backend.start()
        return backend

    try:
        yield factory
    finally:
        for backend in made:
            backend.stop()


def server_get(backend: LlamaServerBackend, path: str, key: str | None = None) -> str:
    """GET ``path`` from the server the backend runs (its root, not ``/v1``); the body."""
    url = urlsplit(backend.endpoint)
    conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
    try:
        conn.request("GET", path, headers={"Authorization": f"Bearer {key}"} if key else {})
        resp = conn.getresponse()
        body = resp.read().decode()
        assert resp.status == 200, (path, resp.status, body)
        return body
    finally:
        conn.close()


def prompt_tokens(backend: LlamaServerBackend, key: str) -> int:
    """``llamacpp:prompt_tokens_total`` from the server's ``/metrics`` (needs ``--metrics``)."""
    text = server_get(backend, "/metrics", key)
    found = re.search(r"^llamacpp:prompt_tokens_total (\d+)", text, re.M)
    assert found, text[:500]
    return int(found.group(1))


def test_lazy_start_on_the_first_look_then_steered_verdicts(
    make_managed: Factory, tmp_path: Path
) -> None:
    key = "lookout-" + secrets.token_hex(8)
    backend = make_managed(extra_args=["--api-key", key, "--no-webui"])
    assert backend.availability().available
    assert not backend.running  # nothing starts before a look needs it

    verdict = backend.judge(look(frame=frame(1280, 720), jpeg=jpeg_bytes(1280, 720)))
    assert verdict.kind is AnswerKind.MET, verdict
    assert verdict.notification_message == "Package on the porch"
    assert 1 <= verdict.next_run_in <= 30 and len(verdict.reasoning) <= 60
    assert backend.running and backend.starts == 1
    # The server demands the key; Lookout sent it (the look was answered, not refused).
    assert "vision" in server_get(backend, "/props", key)

    log_text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert log_text.count("==== lookout session") == 1
    assert "--mmproj" in log_text and "--parallel 1" in log_text
    assert key not in log_text and "--api-key ***" in log_text
    assert "listening on" in log_text  # llama-server's own output
    assert "healthy on port" in log_text


def test_free_answers_parse_into_verdicts(make_managed: Factory) -> None:
    # A bounded schema without constants: the random model picks, Lookout must parse it.
    backend = make_managed(extra_body=steered_answer(None))
    kinds = set()
    for seed in range(3):
        verdict = backend.judge(look(jpeg=jpeg_bytes(160, 120, (40 * seed, 90, 200))))
        assert verdict.kind in (AnswerKind.MET, AnswerKind.NOT_MET), verdict
        assert verdict.raw_answer and verdict.error is None
        kinds.add(verdict.kind)
    assert backend.starts == 1


def test_history_images_reach_the_model(make_managed: Factory) -> None:
    # cache_prompt off: every look's whole prompt is counted in prompt_tokens_total.
    body = {**steered_answer(False), "cache_prompt": False}
    key = "lookout-" + secrets.token_hex(8)  # every managed server demands a key
    backend = make_managed(extra_args=["--metrics", "--api-key", key], extra_body=body,
                           history_images=1)  # fmt: skip
    answer = '{"condition_met": false, "next_run_in": 5, "reasoning": "Empty porch."}'
    old = jpeg_bytes(640, 360, (200, 40, 40))
    new = jpeg_bytes(640, 360, (40, 200, 40))

    def tokens_of(history: tuple[ChatTurn, ...]) -> int:
        before = prompt_tokens(backend, key) if backend.running else 0
        req = LookRequest(watch="w", camera="porch", condition="a package is on the porch",
                          jpeg=jpeg_bytes(), user_text="Frame captured at 12:00:10.",
                          history=history)  # fmt: skip
        verdict = backend.judge(req)
        assert verdict.kind is AnswerKind.NOT_MET, verdict
        return prompt_tokens(backend, key) - before

    turn0 = "Frame captured at 12:00:00."
    turn1 = "Frame captured at 12:00:05."
    text_only = tokens_of((ChatTurn(turn0, None, answer), ChatTurn(turn1, None, answer)))
    one_image = tokens_of((ChatTurn(turn0, None, answer), ChatTurn(turn1, new, answer)))
    both = tokens_of((ChatTurn(turn0, old, answer), ChatTurn(turn1, new, answer)))
    assert one_image > text_only  # the latest history image went to the projector
    assert both == one_image  # history_images = 1: the older turn went as text only
    assert backend.starts == 1


def test_idle_stop_after_idle_unload_s_then_start_again(
    make_managed: Factory, tmp_path: Path
) -> None:
    clock = ManualClock()
    backend = make_managed(clock=clock, idle_unload_s=2.0)
    assert backend.judge(look()).kind is AnswerKind.MET
    pid = backend.pid
    assert pid is not None

    clock.advance(1.5)  # not idle long enough: the watchdog (every 0.5 s) leaves it running
    with pytest.raises(AssertionError):
        wait_until(lambda: not backend.running, 1.2, "an idle stop too early")
    assert backend.pid == pid

    clock.advance(0.6)
    wait_until(lambda: not backend.running, 15, "the idle stop after idle_unload_s")
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)  # the process is gone, not just forgotten
    log_text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert "stopped (idle for 2 s)" in log_text

    assert backend.judge(look()).kind is AnswerKind.MET
    assert backend.starts == 2 and backend.pid != pid
    log_text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert log_text.count("==== lookout session") == 2  # appended, not overwritten


def test_restart_after_the_server_is_killed(make_managed: Factory, tmp_path: Path) -> None:
    clock = ManualClock()
    backend = make_managed(clock=clock)
    assert backend.judge(look()).kind is AnswerKind.MET
    pid = backend.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not backend.running, 10, "the killed server noticed")

    waiting = backend.judge(look())  # the crash is noticed: backoff before a restart
    assert waiting.kind is AnswerKind.UNAVAILABLE
    assert "restarting in 1.0 s" in (waiting.error or "")
    assert backend.starts == 1

    clock.advance(1.0)
    assert backend.judge(look()).kind is AnswerKind.MET
    assert backend.starts == 2 and backend.pid not in (None, pid)
    log_text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert f"exited with code -{int(signal.SIGKILL)}" in log_text
    assert log_text.count("==== lookout session") == 2
    assert log_text.count("listening on") == 2  # both runs' own output kept


#: A Lookout stand-in: starts the managed server from a look on a worker thread that then
#: ends (as pool threads do), prints the server's pid and waits to be killed.
CHILD = """
import sys, threading
from pathlib import Path
from operators.backends.llama_server import LlamaServerBackend
from pipeline.core.config import LlamaServerBackendConfig
from tests.support.look_requests import look
from tests.support.llama import steered_answer
binary, model, mmproj, log_file = sys.argv[1:5]
cfg = LlamaServerBackendConfig(binary=Path(binary), model=Path(model), mmproj=Path(mmproj),
                               log_file=Path(log_file), threads=1, extra_body=steered_answer(True))
backend = LlamaServerBackend("local", cfg)
backend.start()
kinds = []
worker = threading.Thread(target=lambda: kinds.append(backend.judge(look()).kind.value))
worker.start()
worker.join()
print(kinds[0], backend.pid, backend.endpoint, flush=True)
threading.Event().wait()
"""


def alive(pid: int) -> bool:
    """Whether ``pid`` runs (a zombie waiting for its reaper does not count)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[0] not in ("Z", "X")


def test_no_orphan_server_after_lookout_is_killed(
    llama_server_binary: Path, tmp_path: Path
) -> None:
    args = [llama_server_binary, TINY_MODEL, TINY_MMPROJ, tmp_path / "llama-server.log"]
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, *map(str, args)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    server_pid = 0
    try:
        assert child.stdout is not None
        line = child.stdout.readline().decode()
        kind, pid_text, endpoint = line.split()
        server_pid = int(pid_text)
        assert kind == "met", line
        # The thread that started the server has ended: the server must still be there.
        assert alive(server_pid)
        url = urlsplit(endpoint)
        conn = http.client.HTTPConnection(url.hostname or "", url.port, timeout=10)
        conn.request("GET", "/health")
        assert conn.getresponse().status == 200
        conn.close()

        os.kill(child.pid, signal.SIGKILL)  # no shutdown code of Lookout runs
        child.wait(10)
        wait_until(lambda: not alive(server_pid), 5, "llama-server to end with Lookout")
    finally:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
        if server_pid and alive(server_pid):
            os.kill(server_pid, signal.SIGKILL)
