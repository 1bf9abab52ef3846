"""The managed llama-server: its own process group, gone with Lookout, and a port of its own.

A killed Lookout (``kill -9``) leaves no llama-server, with the stand-in and with
the real binary; a picked port that another program takes first (the bind
fails, or another server answers ``/health`` without knowing this run's key) is
noticed and another port is tried.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from operators.backends.llama_server import LlamaServerBackend
from pipeline.core.verdict import AnswerKind
from tests.support.llama import TINY_MMPROJ, TINY_MODEL, llama_server_binary  # noqa: F401
from tests.support.look_requests import look
from tests.support.model_server import ScriptedModelServer
from tests.support.ports import LOOPBACK, free_port
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]


def gone(pid: int) -> bool:
    """Whether ``pid`` ended (a zombie nobody reaped counts as ended)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


@pytest.fixture
def taken_port() -> Iterator[int]:
    """A port bound by a socket that does not listen: a server's bind there fails."""
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        yield int(sock.getsockname()[1])


def picker(*ports: int) -> Callable[[str], int]:
    """Hand out ``ports`` first, then free ones."""
    queue = list(ports)
    return lambda host: queue.pop(0) if queue else free_port(host)


@pytest.fixture
def llama_on(make_llama: Any) -> Callable[..., LlamaServerBackend]:
    """``make_llama`` with a port picker (the backend is rebuilt with it, then started)."""

    def factory(ports: Callable[[str], int], **kw: Any) -> LlamaServerBackend:
        made = make_llama(**kw)
        backend = LlamaServerBackend(made.name, made.config, port_picker=ports)
        made.stop()
        backend.start()
        return backend

    return factory


def test_a_port_whose_bind_fails_is_given_up_for_another(
    llama_on: Callable[..., LlamaServerBackend], taken_port: int, tmp_path: Path
) -> None:
    backend = llama_on(picker(taken_port))
    try:
        assert backend.judge(look()).kind is AnswerKind.NOT_MET
        assert backend.starts == 2
        assert f":{taken_port}/" not in backend.endpoint
    finally:
        backend.stop()
    text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert f"lost the race for port {taken_port}" in text
    assert "taken before llama-server could bind it" in text


@pytest.mark.parametrize("foreign_key", [None, "someone-elses-key"], ids=["no-key", "own-key"])
def test_another_server_on_the_port_is_not_taken_for_ours(
    llama_on: Callable[..., LlamaServerBackend],
    model_server_factory: Callable[..., ScriptedModelServer],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    foreign_key: str | None,
) -> None:
    foreign = model_server_factory(api_key=foreign_key)  # answers /health, not our run's key
    foreign.public_paths = {"/health"}
    monkeypatch.setenv("FAKE_LLAMA_BIND_DELAY_S", "1.0")  # the foreign /health answers first
    backend = llama_on(picker(foreign.port))
    try:
        assert backend.judge(look()).kind is AnswerKind.NOT_MET
        assert f":{foreign.port}/" not in backend.endpoint
    finally:
        backend.stop()
    assert foreign.chat_requests() == []  # no look went to the other server
    text = (tmp_path / "logs" / "llama-server.log").read_text()
    assert f"lost the race for port {foreign.port}: another server answers there" in text


def test_a_configured_port_that_is_taken_is_a_clear_failure(
    make_llama: Any, taken_port: int
) -> None:
    backend = make_llama(port=taken_port)
    verdict = backend.judge(look())
    assert verdict.kind is AnswerKind.UNAVAILABLE
    assert f"port {taken_port}: it was taken" in (verdict.error or "")
    assert backend.starts == 1  # a configured port is not changed


@pytest.fixture(params=["stand-in", "real"])
def server_files(request: pytest.FixtureRequest, fake_binary: Path, model_files: Any) -> list[str]:
    """(binary, model, mmproj) of the stand-in, or of the real llama-server and tiny model."""
    if request.param == "real":
        binary = request.getfixturevalue("llama_server_binary")
        return [str(binary), str(TINY_MODEL), str(TINY_MMPROJ)]
    return [str(fake_binary), str(model_files[0]), str(model_files[1])]


def test_kill_9_of_lookout_leaves_no_llama_server(server_files: list[str], tmp_path: Path) -> None:
    child = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.backends.llama_child",
            *server_files,
            str(tmp_path / "l.log"),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    server_pid = None
    try:
        assert child.stdout is not None
        for line in child.stdout:  # ends when the child exits
            if line.startswith("PID "):
                server_pid = int(line.split()[1])
                break
        assert server_pid is not None, (tmp_path / "l.log").read_text()
        assert not gone(server_pid)
        assert os.getpgid(server_pid) == server_pid  # a process group of its own
        assert os.getpgid(server_pid) != os.getpgid(child.pid)
        child.send_signal(signal.SIGKILL)
        child.wait(10)
        wait_until(lambda: gone(server_pid), 15, "llama-server to end with the killed Lookout")
    finally:
        if child.poll() is None:
            child.kill()
            child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
        if server_pid is not None and not gone(server_pid):  # the test failed: leave nothing
            with contextlib.suppress(ProcessLookupError):
                os.kill(server_pid, signal.SIGKILL)
