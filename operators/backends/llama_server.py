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
are masked in the log header, registered with :func:`~pipeline.core.redact.register_secret`,
and the API key is sent with every request.

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
import os
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import SecretStr

from operators.backends.base import Availability, BackendError, LookRequest
from operators.backends.image_fit import ShrinkCache, fit_request
from operators.backends.openai import OpenAIBackend
from pipeline.core.backoff import backoff_delay
from pipeline.core.config import LlamaServerBackendConfig, OpenAIBackendConfig
from pipeline.core.redact import MASK, redact, register_secret
from pipeline.core.verdict import AnswerKind, Verdict
from pipeline.net.http import HttpClient, TransportError

log = logging.getLogger("lookout.backends.llama_server")

RESTART_BACKOFF_INITIAL_S = 1.0
RESTART_BACKOFF_MAX_S = 60.0


SECRET_FLAGS = frozenset({"--api-key", "--hf-token", "-hft", "--api-key-file"})
"""llama-server options whose value is a secret (``--api-key-file``: the file's keys)."""


PARALLEL_FLAGS = frozenset({"--parallel", "-np"})
"""llama-server options that set the number of slots (else ``max_concurrency`` does)."""


def secret_args(args: Sequence[str]) -> list[str]:
    """Return the secret values in llama-server arguments (``--api-key K`` or ``--api-key=K``).

    ``--api-key`` may hold several keys separated by commas: each is returned
    too. For ``--api-key-file`` the keys in the file are returned (one a line).

    Example:
        >>> secret_args(["--no-webui", "--api-key", "k-123,k-456", "--hf-token=hf_abc"])
        ['k-123,k-456', 'k-123', 'k-456', 'hf_abc']
    """
    found: list[str] = []
    for i, arg in enumerate(args):
        flag, eq, inline = arg.partition("=")
        if flag not in SECRET_FLAGS:
            continue
        value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
        if not value:
            continue
        if flag == "--api-key-file":
            with contextlib.suppress(OSError, UnicodeDecodeError):
                found += [line.strip() for line in Path(value).read_text().splitlines()]
            continue
        found.append(value)
        if "," in value:
            found += [part.strip() for part in value.split(",")]
    return [v for v in found if v]


def masked_args(args: Sequence[str]) -> list[str]:
    """Return the arguments with every secret value (see :data:`SECRET_FLAGS`) as ``***``.

    Example:
        >>> masked_args(["--api-key", "k-123", "--hf-token=hf_abc", "--threads", "2"])
        ['--api-key', '***', '--hf-token=***', '--threads', '2']
    """
    out = list(args)
    for i, arg in enumerate(args):
        flag, eq, _ = arg.partition("=")
        if flag in SECRET_FLAGS and flag != "--api-key-file":
            if eq:
                out[i] = f"{flag}={MASK}"
            elif i + 1 < len(out):
                out[i + 1] = MASK
    return out


def api_key(args: Sequence[str]) -> str | None:
    """Return the first API key the server will demand (``--api-key`` or ``--api-key-file``).

    Example:
        >>> api_key(["--api-key", "k-123,k-456"]), api_key(["--threads", "2"])
        ('k-123', None)
    """
    for i, arg in enumerate(args):
        flag, eq, inline = arg.partition("=")
        value = inline if eq else (args[i + 1] if i + 1 < len(args) else "")
        if flag == "--api-key" and value:
            return value.split(",")[0].strip() or None
        if flag == "--api-key-file" and value:
            keys = secret_args([arg] if eq else [arg, value])
            return keys[0] if keys else None
    return None


def resolve_binary(binary: Path) -> str | None:
    """Find the executable: a path that exists, or a name on ``PATH``."""
    if binary.parent != Path(".") or binary.is_absolute():
        return str(binary) if binary.is_file() and os.access(binary, os.X_OK) else None
    return shutil.which(str(binary))


def command_line(config: LlamaServerBackendConfig, binary: str, port: int) -> list[str]:
    """Build the llama-server command line for a config.

    Example:
        >>> from pathlib import Path
        >>> cfg = LlamaServerBackendConfig(model=Path("m.gguf"), mmproj=Path("p.gguf"), threads=2)
        >>> command_line(cfg, "llama-server", 8081)[:5]
        ['llama-server', '--model', 'm.gguf', '--mmproj', 'p.gguf']
        >>> command_line(cfg, "llama-server", 8081)[-2:]  # one slot per request in flight
        ['--parallel', '1']
    """
    cmd = [binary, "--model", str(config.model)]
    if config.mmproj is not None:
        cmd += ["--mmproj", str(config.mmproj)]
    cmd += [
        "--host",
        config.host,
        "--port",
        str(port),
        "--ctx-size",
        str(config.ctx_size),
        "--n-gpu-layers",
        str(config.gpu_layers),
    ]
    if config.threads is not None:
        cmd += ["--threads", str(config.threads)]
    if not any(arg.partition("=")[0] in PARALLEL_FLAGS for arg in config.extra_args):
        cmd += ["--parallel", str(config.max_concurrency)]  # llama-server's default is 4 slots
    return cmd + list(config.extra_args)


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


class LlamaServerBackend:
    """A managed local llama-server, spoken to with the ``openai`` backend's code.

    Thread-safe; share one instance between the watches that use it.

    Args:
        name: the backend's name in ``pipeline.toml``.
        config: its ``[backends.NAME]`` table.
        clock: monotonic seconds (idle time, restart backoff).
    """

    type = "llama_server"

    def __init__(
        self,
        name: str,
        config: LlamaServerBackendConfig,
        *,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.name = name
        self.config = config
        for secret in secret_args(config.extra_args):
            register_secret(secret)
        self._api_key = api_key(config.extra_args)
        self._shrunk = ShrinkCache()
        self.needs_gpu = config.gpu_layers > 0
        self.takes_images = config.mmproj is not None
        self.ram_mb = self._estimate_ram_mb()
        self._clock = clock
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
                if proc.poll() is None:
                    proc.terminate()
                    try:
                        proc.wait(5)
                    except subprocess.TimeoutExpired:
                        proc.kill()
                        proc.wait(5)
                self._note(f"stopped ({why}), exit code {proc.returncode}")
                log.info("backend %r: llama-server stopped (%s)", self.name, why)
            if self._log is not None:
                self._log.close()
                self._log = None

    def _note(self, text: str) -> None:
        if self._log is not None:
            stamp = datetime.now(UTC).isoformat(timespec="seconds")
            self._log.write(f"==== lookout {stamp}: {redact(text)} ====\n".encode())
            self._log.flush()

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
        cfg = self.config
        binary = resolve_binary(cfg.binary)
        assert binary is not None
        port = cfg.port or _free_port(cfg.host)
        cmd = command_line(cfg, binary, port)
        if self._log is None:
            cfg.log_file.parent.mkdir(parents=True, exist_ok=True)
            self._log = open(cfg.log_file, "ab")  # noqa: SIM115 - kept open while it runs
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        shown = " ".join(masked_args(cmd))
        header = f"\n==== lookout session {stamp} backend {self.name}: {shown} ====\n"
        self._log.write(redact(header).encode())
        self._log.flush()
        try:
            proc = subprocess.Popen(
                cmd, stdout=self._log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL
            )
        except OSError as exc:
            self._next_start = self._clock() + RESTART_BACKOFF_INITIAL_S
            return f"cannot start llama-server: {exc}"
        self._proc = proc
        self._port = port
        self.starts += 1
        root = f"http://{cfg.host}:{port}"
        auth = {"Authorization": f"Bearer {self._api_key}"} if self._api_key else None
        health = HttpClient(root, auth, connect_timeout_s=1.0, read_timeout_s=5.0, pool_size=1)
        deadline = time.monotonic() + cfg.startup_timeout_s
        try:
            while True:
                if proc.poll() is not None:
                    return f"llama-server exited with code {proc.returncode} while starting"
                try:
                    if health.request("GET", "/health").status == 200:
                        break
                except TransportError:
                    pass
                if time.monotonic() >= deadline or self._closing.is_set():
                    self._stop_process("not healthy in time")
                    self._next_start = self._clock() + RESTART_BACKOFF_INITIAL_S
                    return f"llama-server not healthy within {cfg.startup_timeout_s:g} s"
                time.sleep(0.05)
        finally:
            health.close()
        self._crashes = 0
        inner_cfg = OpenAIBackendConfig(
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
            api_key=SecretStr(self._api_key) if self._api_key else None,
        )
        self._inner = OpenAIBackend(self.name, inner_cfg)
        self._inner.start()
        self._note(f"healthy on port {port}, pid {proc.pid}")
        log.info("backend %r: llama-server up on port %d (pid %d)", self.name, port, proc.pid)
        return self._inner

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
