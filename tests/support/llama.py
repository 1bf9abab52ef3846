"""A real llama.cpp ``llama-server`` with the tiny random-weight vision model, for tests.

The binary comes from ``scripts/build-llama-server`` (built once per machine and cached under
``~/.cache/lookout/llama-server/``; ``scripts/test`` runs it before pytest, so here it is only a
look-up). ``LOOKOUT_LLAMA_SERVER=/path/to/llama-server`` uses another binary instead. The model
is the committed fixture ``tests/fixtures/tiny-vlm/`` (``scripts/make-tiny-vlm`` regenerates it):
random weights, so answers are nonsense unless a JSON schema or grammar in the request shapes
them.

Fixtures (import them into a ``conftest.py``):

* ``llama_server_binary`` (session): path of the binary. Without one, tests fail under
  ``CI=true`` and skip elsewhere, with the command to build it.
* ``llama_server_factory``: ``factory(parallel=2, api_key=None, extra_args=[...])`` starts more
  servers; all are stopped after the test.
* ``real_llama_server``: one started server (``.base_url``, ``.api_key``, ``.process``, ...).

Example::

    def test_health(real_llama_server):
        status, body = real_llama_server.get("/health")
        assert status == 200

Every server listens on 127.0.0.1 only and runs in its own process group, which is stopped
(SIGTERM, then SIGKILL) with everything it started.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import secrets
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import pytest

from tests.support._proc import tail
from tests.support.ports import LOOPBACK, free_port

REPO = Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO / "scripts" / "build-llama-server"
FIXTURE_DIR = REPO / "tests" / "fixtures" / "tiny-vlm"
TINY_MODEL = FIXTURE_DIR / "tiny-vlm.gguf"
TINY_MMPROJ = FIXTURE_DIR / "tiny-vlm-mmproj.gguf"
#: A cold build takes 15-35 minutes on 2 cores; give up after this many seconds.
BUILD_TIMEOUT_S = 3600.0
BUILD_HINT = "run `bash scripts/build-llama-server` (cached once built; needs cmake, g++, pip)"


def in_ci() -> bool:
    """Whether this is a CI run (``CI`` set to anything but empty/0/false)."""
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def build_llama_server(timeout_s: float = BUILD_TIMEOUT_S) -> Path:
    """Run ``scripts/build-llama-server`` and return the binary it prints on its last line.

    Instant when the binary is cached. The build's own output goes to
    ``~/.cache/lookout/llama-server/build.log``.

    Raises:
        RuntimeError: the script failed, timed out or printed no executable path.
    """
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    log_path = cache / "lookout" / "llama-server" / "build.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen(
            ["bash", str(BUILD_SCRIPT)],
            stdout=subprocess.PIPE,
            stderr=log,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # its own group: a timeout stops cmake and the compilers too
        )
        try:
            out, _ = proc.communicate(timeout=timeout_s)
        except BaseException:
            _kill_group(proc)
            raise
    lines = out.decode(errors="replace").strip().splitlines()
    if proc.returncode != 0 or not lines:
        raise RuntimeError(
            f"scripts/build-llama-server failed (exit {proc.returncode}); "
            f"log {log_path}:\n{tail(log_path, 3000)}"
        )
    binary = Path(lines[-1].strip())
    if not (binary.is_file() and os.access(binary, os.X_OK)):
        raise RuntimeError(f"scripts/build-llama-server printed {binary}, not an executable")
    return binary


def find_llama_server() -> Path:
    """``$LOOKOUT_LLAMA_SERVER``, else the cached build (building it when missing).

    Raises:
        RuntimeError: no binary, and building one failed.
    """
    override = os.environ.get("LOOKOUT_LLAMA_SERVER")
    if override:
        path = Path(override)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"LOOKOUT_LLAMA_SERVER={override} is not an executable file")
        return path
    with _timeout_paused():
        return build_llama_server()


@contextlib.contextmanager
def _timeout_paused() -> Iterator[None]:
    """Pause pytest-timeout's SIGALRM timer (its default method) while a build runs.

    A cold build takes far longer than one test's timeout; the time left is restored after.
    """
    paused = None
    if threading.current_thread() is threading.main_thread():
        paused = signal.setitimer(signal.ITIMER_REAL, 0)
    try:
        yield
    finally:
        if paused is not None and paused[0] > 0:
            signal.setitimer(signal.ITIMER_REAL, *paused)


def _kill_group(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> None:
    """SIGTERM ``proc``'s process group, SIGKILL it if still there after ``timeout``; reap."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout=timeout)
            break
        except subprocess.TimeoutExpired:
            continue
    # The leader is reaped; make sure nothing it started outlived it.
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)


class LlamaServer:
    """One ``llama-server`` process with the tiny model on a free loopback port.

    ``start()`` returns once ``GET /health`` answers 200. ``close()`` stops the process group.

    Attributes:
        host: always ``"127.0.0.1"``.
        port: the HTTP port.
        base_url: ``http://127.0.0.1:<port>`` (the OpenAI API is under ``/v1``).
        api_key: the key the server demands (``Authorization: Bearer ...``), or ``None``.
        process: the ``Popen`` while it runs.
        log_path: the server's stdout and stderr.
        args: the full command line of the last start.
    """

    host: str = LOOPBACK

    def __init__(
        self,
        binary: Path | str,
        *,
        model: Path = TINY_MODEL,
        mmproj: Path | None = TINY_MMPROJ,
        parallel: int = 1,
        ctx_size: int = 4096,
        threads: int | None = None,
        api_key: str | None = None,
        extra_args: Sequence[str] = (),
        workdir: Path,
        start_timeout: float = 60.0,
    ) -> None:
        self.binary = Path(binary)
        self.model = model
        self.mmproj = mmproj
        self.parallel = parallel
        self.ctx_size = ctx_size
        self.threads = threads or min(2, os.cpu_count() or 1)
        self.api_key = api_key
        self.extra_args = list(extra_args)
        self.workdir = Path(workdir)
        self.start_timeout = start_timeout
        self.port = 0
        self.process: subprocess.Popen[bytes] | None = None
        self._stopped = False
        self.log_path = self.workdir / "llama-server.log"
        self.args: list[str] = []

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def openai_base_url(self) -> str:
        return f"{self.base_url}/v1"

    def command(self, port: int) -> list[str]:
        cmd = [str(self.binary), "--model", str(self.model)]
        if self.mmproj is not None:
            cmd += ["--mmproj", str(self.mmproj)]
        cmd += [
            "--host", self.host,
            "--port", str(port),
            "--parallel", str(self.parallel),
            "--ctx-size", str(self.ctx_size),
            "--threads", str(self.threads),
        ]  # fmt: skip
        if self.api_key:
            cmd += ["--api-key", self.api_key]
        return cmd + self.extra_args

    def start(self) -> Self:
        """Start on a free port and wait for ``/health``; a lost port race is retried.

        Raises:
            RuntimeError: the server exited or was not healthy within ``start_timeout``;
                the message holds the end of its log.
        """
        self.workdir.mkdir(parents=True, exist_ok=True)
        last_error = ""
        for _ in range(3):
            self.port = free_port()
            self.args = self.command(self.port)
            with open(self.log_path, "ab") as log:
                log.write(f"==== {' '.join(self._shown_args())}\n".encode())
                log.flush()
                self._stopped = False
                self.process = subprocess.Popen(
                    self.args,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            outcome = self._wait_healthy()
            if outcome is None:
                return self
            last_error = outcome
            self.close()
            if "bind" not in outcome.lower() and "address" not in outcome.lower():
                break
        raise RuntimeError(f"llama-server did not start: {last_error}\n{tail(self.log_path)}")

    def _shown_args(self) -> list[str]:
        shown = list(self.args)
        if "--api-key" in shown:
            shown[shown.index("--api-key") + 1] = "***"
        return shown

    def _wait_healthy(self) -> str | None:
        """``None`` once healthy, else why not (the process is left to ``close()``)."""
        assert self.process is not None
        deadline = time.monotonic() + self.start_timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                return f"exited with code {self.process.returncode}: {tail(self.log_path, 400)}"
            with contextlib.suppress(OSError, http.client.HTTPException):
                status, _ = self.get("/health", timeout=2.0, auth=False)
                if status == 200:
                    return None
            time.sleep(0.05)
        return f"not healthy within {self.start_timeout:g} s"

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        timeout: float = 30.0,
        auth: bool = True,
    ) -> tuple[int, Any]:
        """One HTTP request to the server; returns ``(status, parsed JSON or text)``."""
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            headers = {"Content-Type": "application/json"}
            if auth and self.api_key:
                headers["Authorization"] = f"Bearer {self.api_key}"
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers=headers)
            resp = conn.getresponse()
            raw = resp.read().decode(errors="replace")
            try:
                return resp.status, json.loads(raw)
            except ValueError:
                return resp.status, raw
        finally:
            conn.close()

    def get(self, path: str, **kwargs: Any) -> tuple[int, Any]:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any, **kwargs: Any) -> tuple[int, Any]:
        return self.request("POST", path, body, **kwargs)

    def kill(self) -> None:
        """SIGKILL the server (no clean shutdown), as a crash would."""
        if self.process is not None and self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=5)
            self._stopped = True

    def close(self) -> None:
        """Stop the process group (SIGTERM, then SIGKILL after 5 s); safe to call twice."""
        if self.process is not None and not self._stopped:
            self._stopped = True
            _kill_group(self.process)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


# ---------------------------------------------------------------- steering the tiny model


def steered_answer(
    condition_met: bool | None = None,
    message: str | None = None,
    next_run_in: tuple[int, int] = (1, 30),
) -> dict[str, Any]:
    """``extra_body`` that decides the tiny model's answer with a JSON schema (the documented way).

    The backend's own ``response_format`` is replaced by this one (``extra_body`` is
    merged into the request last); llama-server turns the schema into a grammar, so
    the random-weight model can only write what it allows. ``condition_met`` ``True``
    or ``False`` is a ``const``; ``None`` leaves the model a free boolean. Every
    string has a ``maxLength`` and ``next_run_in`` a range: unbounded fields let the
    tiny model run to ``max_tokens`` and return cut-off JSON.

    Example:
        >>> body = steered_answer(True, "Package on the porch")
        >>> body["response_format"]["json_schema"]["schema"]["properties"]["condition_met"]
        {'const': True}
    """
    low, high = next_run_in
    properties: dict[str, Any] = {
        "condition_met": {"type": "boolean"} if condition_met is None else {"const": condition_met},
        "next_run_in": {"type": "integer", "minimum": low, "maximum": high},
        "reasoning": {"type": "string", "maxLength": 60},
        "notification_message": (
            {"type": "string", "maxLength": 40} if message is None else {"const": message}
        ),
    }
    schema = {
        "type": "object",
        "properties": properties,
        "required": list(properties),
        "additionalProperties": False,
    }
    return {
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "watch_answer", "schema": schema, "strict": True},
        }
    }


# ---------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def llama_server_binary() -> Path:
    """The ``llama-server`` binary: fails under CI=true when there is none, skips elsewhere."""
    try:
        return find_llama_server()
    except RuntimeError as exc:
        message = f"no llama-server binary: {exc}\n{BUILD_HINT}"
        if in_ci():
            pytest.fail(message, pytrace=False)
        pytest.skip(message)


@pytest.fixture
def llama_server_factory(
    llama_server_binary: Path, tmp_path: Path
) -> Iterator[Callable[..., LlamaServer]]:
    """Start servers with ``LlamaServer`` options (``parallel``, ``api_key``, ``extra_args``...).

    All are stopped after the test. Example: ``srv = llama_server_factory(parallel=2)``.
    """
    started: list[LlamaServer] = []

    def factory(**kwargs: Any) -> LlamaServer:
        kwargs.setdefault("workdir", tmp_path / f"llama-server-{len(started)}")
        server = LlamaServer(llama_server_binary, **kwargs)
        started.append(server)
        return server.start()

    try:
        yield factory
    finally:
        for server in reversed(started):
            server.close()


@pytest.fixture
def real_llama_server(llama_server_factory: Callable[..., LlamaServer]) -> LlamaServer:
    """A started llama-server with the tiny model and a random API key (``--parallel 1``)."""
    return llama_server_factory(api_key="lookout-" + secrets.token_hex(8))
