"""The ``llama_server`` backend: a local llama-server that Lookout starts and stops itself.

The server starts when the first look needs it, Lookout waits for its
``/health``, appends its output to a log file under a session header (so the
evidence of a crash survives the restart), restarts it after a crash with
backoff, stops it after ``idle_unload_s`` without looks and at shutdown. Looks
go through the :class:`~operators.backends.openai.OpenAIBackend` code, with
the frame and the latest ``history_images`` history images shrunk to
``image_width`` x ``image_height`` at ``jpeg_quality`` (older turns as text), so
a look fits a small context (:mod:`operators.backends.image_fit`). Secret
``extra_args`` values (``--api-key``, ``--api-key-file``'s keys, ``--hf-token``)
are masked in the log header and registered with
:func:`~pipeline.core.redact.register_secret`.

The server runs in its own process group and is killed with Lookout (even
``kill -9``); each start adds a random API key of its own (``--api-key-file``,
a 0600 file removed once the server is up) that Lookout sends with every
request, and a port taken by someone else first is noticed and another one
tried (:mod:`operators.backends.llama_process`).

Example:
    >>> from pathlib import Path
    >>> from pipeline.core.config import LlamaServerBackendConfig
    >>> cfg = LlamaServerBackendConfig(binary=Path("/nonexistent/llama-server"),
    ...                                model=Path("/nonexistent/m.gguf"))
    >>> LlamaServerBackend("local", cfg).availability().reason
    'binary /nonexistent/llama-server not found'
"""

from __future__ import annotations

import contextlib
import logging
import subprocess
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO

from pydantic import SecretStr

from operators.backends.base import Availability, BackendError, LookRequest
from operators.backends.image_fit import ShrinkCache, fit_request
from operators.backends.llama_args import command_line, masked_args, resolve_binary, secret_args
from operators.backends.llama_process import (
    PORT_TRIES,
    SPAWNER,
    PortLost,
    RunKey,
    bind_failed,
    healthy,
    identify,
    pick_port,
    stop_group,
)
from operators.backends.openai import OpenAIBackend
from pipeline.core.backoff import backoff_delay
from pipeline.core.config import LlamaServerBackendConfig, OpenAIBackendConfig
from pipeline.core.redact import redact, register_secret
from pipeline.core.verdict import AnswerKind, Verdict
from pipeline.net.http import HttpClient

log = logging.getLogger("lookout.backends.llama_server")

RESTART_BACKOFF_INITIAL_S = 1.0
RESTART_BACKOFF_MAX_S = 60.0


class LlamaServerBackend:
    """A managed local llama-server, spoken to with the ``openai`` backend's code.

    Thread-safe; share one instance between the watches that use it.

    Args:
        name: the backend's name in ``pipeline.toml``.
        config: its ``[backends.NAME]`` table.
        clock: monotonic seconds (idle time, restart backoff).
        port_picker: picks a free port for ``host`` when ``port`` is not set (tests
            give ports that are taken, to lose the race on purpose).
    """

    type = "llama_server"

    def __init__(
        self,
        name: str,
        config: LlamaServerBackendConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
        port_picker: Callable[[str], int] = pick_port,
    ) -> None:
        self.name = name
        self.config = config
        for secret in secret_args(config.extra_args):
            register_secret(secret)
        self._shrunk = ShrinkCache()
        self.needs_gpu = config.gpu_layers > 0
        self.takes_images = config.mmproj is not None
        self.ram_mb = self._estimate_ram_mb()
        self._clock = clock
        self._pick_port = port_picker
        self._lock = threading.RLock()
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._inner: OpenAIBackend | None = None
        self._port: int | None = None
        self._last_used = clock()
        self._in_flight = 0
        self._crashes = 0
        self._next_start = 0.0
        self._closing = threading.Event()
        self._watchdog: threading.Thread | None = None
        self.starts = 0

    def _estimate_ram_mb(self) -> int:
        size = 0
        for path in (self.config.model, self.config.mmproj):
            with contextlib.suppress(OSError, TypeError):
                size += path.stat().st_size if path is not None else 0
        return int(size / (1 << 20) + self.config.ctx_size / 16 + 200)

    # ------------------------------------------------------------ status

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        with self._lock:
            return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while it runs."""
        with self._lock:
            return self._proc.pid if self._proc is not None and self._proc.poll() is None else None

    @property
    def endpoint(self) -> str:
        """Where the server listens (or will)."""
        port = self._port or self.config.port or 0
        return f"http://{self.config.host}:{port}/v1"

    @property
    def unauthorized(self) -> str | None:
        """Why the running server refuses the API key, if it does (see ``OpenAIBackend``)."""
        inner = self._inner
        return inner.unauthorized if inner is not None else None

    def availability(self) -> Availability:
        """Available when the binary, the model and the projector files exist."""
        cfg = self.config
        if resolve_binary(cfg.binary) is None:
            return Availability(False, f"binary {cfg.binary} not found")
        if not cfg.model.is_file():
            return Availability(False, f"model file {cfg.model} not found")
        if cfg.mmproj is None:
            return Availability(False, "no mmproj file configured: the model cannot take images")
        if not cfg.mmproj.is_file():
            return Availability(False, f"mmproj file {cfg.mmproj} not found")
        return Availability(True, f"{cfg.binary} and model files present ({cfg.model.name})")

    # ------------------------------------------------------------ lifecycle

    def start(self) -> None:
        """Arm the idle watchdog; the server itself starts lazily with the first look."""
        self._closing.clear()
        with self._lock:
            if self._watchdog is None or not self._watchdog.is_alive():
                self._watchdog = threading.Thread(
                    target=self._watch_idle, name=f"llama-server-{self.name}-idle", daemon=True
                )
                self._watchdog.start()

    def stop(self) -> None:
        """Stop the server (SIGTERM, then SIGKILL after 5 s) and the watchdog."""
        self._closing.set()
        watchdog = self._watchdog
        if watchdog is not None and watchdog is not threading.current_thread():
            watchdog.join(5)
        self._watchdog = None
        self._stop_process("shutdown")

    def _stop_process(self, why: str) -> None:
        with self._lock:
            proc, self._proc = self._proc, None
            inner, self._inner = self._inner, None
            if inner is not None:
                inner.stop()
            if proc is not None:
                stop_group(proc)  # SIGTERM, SIGKILL after 5 s: the server and its process group
                self._note(f"stopped ({why}), exit code {proc.returncode}")
                log.info("backend %r: llama-server stopped (%s)", self.name, why)
            if self._log is not None:
                self._log.close()
                self._log = None

    def _note(self, text: str) -> None:
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        line = f"==== lookout {stamp}: {redact(text)} ====\n".encode()
        if self._log is not None:
            self._log.write(line)
            self._log.flush()
            return
        with contextlib.suppress(OSError), open(self.config.log_file, "ab") as out:
            out.write(line)

    def _watch_idle(self) -> None:
        period = min(max(self.config.idle_unload_s / 4, 0.05), 5.0)
        while not self._closing.wait(period):
            with self._lock:
                idle = self._clock() - self._last_used
                busy = self._proc is None or self._in_flight > 0
                if not busy and idle >= self.config.idle_unload_s:
                    self._stop_process(f"idle for {idle:.0f} s")

    def _ensure_running(self) -> OpenAIBackend | str:
        """Return the client of a healthy server, starting it if needed, or why not."""
        with self._lock:
            if self._proc is not None and self._proc.poll() is None and self._inner is not None:
                return self._inner
            if self._proc is not None:  # it died under us: a crash
                code = self._proc.returncode
                self._crashes += 1
                delay = backoff_delay(
                    self._crashes - 1, RESTART_BACKOFF_INITIAL_S, RESTART_BACKOFF_MAX_S, jitter=0.0
                )
                self._next_start = self._clock() + delay
                self._note(f"llama-server exited with code {code}; restart in {delay:g} s")
                log.warning(
                    "backend %r: llama-server exited with code %s; restart in %g s",
                    self.name, code, delay,
                )  # fmt: skip
                self._proc = None
                if self._inner is not None:
                    self._inner.stop()
                    self._inner = None
            wait = self._next_start - self._clock()
            if wait > 0:
                return f"llama-server crashed; restarting in {wait:.1f} s"
            avail = self.availability()
            if not avail.available:
                return avail.reason
            return self._launch()

    def _launch(self) -> OpenAIBackend | str:
        """Start the server on a port of its own: a lost port race is tried again elsewhere."""
        cfg = self.config
        lost = ""
        for _ in range(1 if cfg.port else PORT_TRIES):
            port = cfg.port or self._pick_port(cfg.host)
            got = self._launch_on(port)
            if not isinstance(got, PortLost):
                return got
            lost = f"port {port}: {got.reason}"
            self._note(f"lost the race for {lost}")
            log.warning("backend %r: llama-server lost the race for %s", self.name, lost)
        self._next_start = self._clock() + RESTART_BACKOFF_INITIAL_S
        return f"llama-server found no port of its own ({lost})"

    def _launch_on(self, port: int) -> OpenAIBackend | str | PortLost:
        cfg = self.config
        binary = resolve_binary(cfg.binary)
        assert binary is not None
        key = RunKey.create()
        cmd = [*command_line(cfg, binary, port), "--api-key-file", str(key.path)]
        if self._log is None:
            cfg.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(cfg.log_file, "ab")  # noqa: SIM115 - kept open while it runs
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        shown = " ".join(masked_args(cmd))
        header = f"\n==== lookout session {stamp} backend {self.name}: {shown} ====\n"
        self._log.write(redact(header).encode())
        self._log.flush()
        offset = self._log.tell()
        try:
            proc = SPAWNER.popen(cmd, self._log)
        except OSError as exc:
            key.remove()
            self._next_start = self._clock() + RESTART_BACKOFF_INITIAL_S
            return f"cannot start llama-server: {exc}"
        self._proc = proc
        self._port = port
        self.starts += 1
        root = f"http://{cfg.host}:{port}"
        try:
            trouble = self._wait_ready(proc, root, key.value, offset)
        finally:
            key.remove()  # read at start; no copy of the key stays on disk
        if trouble is not None:
            return trouble
        self._crashes = 0
        self._inner = OpenAIBackend(self.name, self._inner_config(root, key.value))
        self._inner.start()
        self._note(f"healthy on port {port}, pid {proc.pid}")
        log.info("backend %r: llama-server up on port %d (pid %d)", self.name, port, proc.pid)
        return self._inner

    def _wait_ready(
        self, proc: subprocess.Popen[bytes], root: str, key: str, offset: int
    ) -> str | PortLost | None:
        """Wait for ``/health`` and check the server is this run's; None when it is."""
        cfg = self.config
        health = HttpClient(root, connect_timeout_s=1.0, read_timeout_s=5.0, pool_size=1)
        deadline = time.monotonic() + cfg.startup_timeout_s
        try:
            while True:
                if proc.poll() is not None:
                    self._stop_process("exited while starting")
                    if bind_failed(cfg.log_file, offset):
                        return PortLost("it was taken before llama-server could bind it")
                    return f"llama-server exited with code {proc.returncode} while starting"
                if healthy(health):
                    foreign = identify(root, key)
                    if foreign is None:
                        return None
                    self._stop_process("another server answers on its port")
                    return PortLost(f"another server answers there: {foreign}")
                if time.monotonic() >= deadline or self._closing.is_set():
                    self._stop_process("not healthy in time")
                    self._next_start = self._clock() + RESTART_BACKOFF_INITIAL_S
                    return f"llama-server not healthy within {cfg.startup_timeout_s:g} s"
                time.sleep(0.05)
        finally:
            health.close()

    def _inner_config(self, root: str, key: str) -> OpenAIBackendConfig:
        cfg = self.config
        return OpenAIBackendConfig(
            base_url=f"{root}/v1",
            max_concurrency=cfg.max_concurrency,
            read_timeout_s=cfg.read_timeout_s,
            request_timeout_s=cfg.request_timeout_s,
            max_tokens=cfg.max_tokens,
            temperature=cfg.temperature,
            extra_body=cfg.extra_body,
            response_format=cfg.response_format,
            connect_timeout_s=2.0,
            retries=1,
            backoff_initial_s=0.2,
            backoff_max_s=2.0,
            api_key=SecretStr(key),
        )

    # ------------------------------------------------------------ looks

    def _begin(self) -> OpenAIBackend | str:
        with self._lock:
            self._last_used = self._clock()
            got = self._ensure_running()
            if not isinstance(got, str):
                self._in_flight += 1
            return got

    def _end(self) -> None:
        with self._lock:
            self._in_flight -= 1
            self._last_used = self._clock()

    def judge(self, request: LookRequest) -> Verdict:
        """Start the server if needed, fit the images, and judge through the openai code.

        The frame and the images of the latest ``history_images`` earlier turns
        are shrunk into ``image_width`` x ``image_height`` (each JPEG once, see
        :func:`~operators.backends.image_fit.fit_request`); older turns go as text.
        """
        t0 = time.monotonic()
        cfg = self.config
        request = fit_request(
            request,
            cfg.image_width,
            cfg.image_height,
            cfg.jpeg_quality,
            cfg.history_images,
            self._shrunk,
        )
        got = self._begin()
        if isinstance(got, str):
            return Verdict.failed(AnswerKind.UNAVAILABLE, f"{self.name}: {got}").with_latency(
                time.monotonic() - t0
            )
        try:
            return got.judge(request).with_latency(time.monotonic() - t0)
        finally:
            self._end()

    def describe(self, jpeg: bytes, prompt: str) -> str:
        """Describe an image (starts the server if needed).

        Raises:
            BackendError: the server cannot be started or gave no answer.
        """
        got = self._begin()
        if isinstance(got, str):
            raise BackendError(f"{self.name}: {got}")
        try:
            return got.describe(jpeg, prompt)
        finally:
            self._end()
