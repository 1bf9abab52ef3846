"""A scripted OpenAI-compatible vision-model server over real HTTP, for tests.

Each ``POST /v1/chat/completions`` takes the next step from a queue; when the
queue is empty, a ``responder(request_json)`` callable (if any) decides, and
then the ``default`` step. Steps::

    Reply(content, delay=0)          # 200 chat.completion with that message content
    Status(code, body=None, headers={}, delay=0)   # e.g. 429 + Retry-After, 503
    Drop()                           # close the connection without answering
    Hang(seconds)                    # answer only after `seconds` (past a client timeout)
    Dribble(content, interval_s=1, stall_after=None)  # headers, then one body byte a second

Example::

    steps = [Status(429, headers={"Retry-After": "1"}), Reply('{"condition_met": true}')]
    with ScriptedModelServer(steps) as srv:
        client = OpenAI(base_url=srv.base_url, api_key="x")
        ...
        assert [r.path for r in srv.chat_requests()] == ["/v1/chat/completions"] * 2
        assert srv.max_concurrency == 1

Also runnable on its own::

    python -m tests.support.model_server --port 0 --script script.json

where ``script.json`` is ``{"model": "m", "vision": true, "default": STEP,
"steps": [STEP, ...]}`` and a STEP is ``{"reply": "...", "delay": 0}``,
``{"status": 429, "body": ..., "headers": {...}, "delay": 0}``,
``{"drop": true}`` or ``{"hang": 5}``. It prints ``READY <port>`` when serving.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import signal
import socket
import struct
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any, Self
from urllib.parse import urlsplit

from tests.support.ports import LOOPBACK

DEFAULT_CONTENT = json.dumps({"condition_met": False, "next_run_in": 5, "reasoning": "nothing yet"})


@dataclass(frozen=True)
class Reply:
    """Answer 200 with a chat.completion whose first choice has ``content``.

    ``content=None`` gives ``"content": null`` (some servers do that).
    """

    content: str | None
    delay: float = 0.0
    finish_reason: str = "stop"


@dataclass(frozen=True)
class Status:
    """Answer with HTTP ``code``.

    ``body``: ``None`` gives an OpenAI-style error JSON; a str/bytes is sent as is;
    a mapping or list is sent as JSON.
    """

    code: int
    body: str | bytes | Mapping[str, Any] | list[Any] | None = None
    headers: Mapping[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass(frozen=True)
class Drop:
    """Close the connection without sending a response (after ``delay`` seconds).

    ``reset=True`` closes with a TCP RST instead of a FIN.
    """

    delay: float = 0.0
    reset: bool = False


@dataclass(frozen=True)
class Hang:
    """Wait ``seconds`` (meant to exceed the client's timeout), then answer with ``then``.

    ``then=None`` answers with the server's default step.
    """

    seconds: float
    then: Reply | Status | Drop | Dribble | None = None


@dataclass(frozen=True)
class Dribble:
    """Send a 200 chat.completion's headers at once, then its body one byte every ``interval_s``.

    ``stall_after``: after that many body bytes send nothing more (the connection
    stays open until the client gives up or the server stops). Every read of the
    client gets a byte within ``interval_s``, so only a total deadline ends it.
    """

    content: str | None = DEFAULT_CONTENT
    interval_s: float = 1.0
    stall_after: int | None = None


Step = Reply | Status | Drop | Hang | Dribble
Responder = Callable[[Any], Step | None]
"""Gets the parsed JSON body of a chat request; returns a step, or ``None`` for the default."""


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received (any endpoint)."""

    index: int
    method: str
    path: str
    query: str
    headers: dict[str, str]
    """Header names in lower case."""
    body: bytes
    json: Any
    """The parsed JSON body, or ``None`` when there was none or it was not JSON."""
    time: float
    """``time.monotonic()`` at arrival."""

    @property
    def messages(self) -> list[dict[str, Any]]:
        """The chat ``messages`` of the body (``[]`` if none)."""
        if isinstance(self.json, dict) and isinstance(self.json.get("messages"), list):
            return list(self.json["messages"])
        return []

    def image_urls(self) -> list[str]:
        """Every ``image_url.url`` in the messages (data URLs for inline frames)."""
        urls: list[str] = []
        for message in self.messages:
            content = message.get("content")
            if isinstance(content, list):
                for part in content:
                    if isinstance(part, dict) and part.get("type") == "image_url":
                        image = part.get("image_url")
                        url = image.get("url") if isinstance(image, dict) else image
                        if isinstance(url, str):
                            urls.append(url)
        return urls


def step_from_json(obj: Mapping[str, Any]) -> Step:
    """Build a step from its JSON form (see the module docstring)."""
    delay = float(obj.get("delay", 0.0))
    if "reply" in obj:
        return Reply(obj["reply"], delay=delay)
    if "status" in obj:
        return Status(
            int(obj["status"]), body=obj.get("body"), headers=obj.get("headers", {}), delay=delay
        )
    if obj.get("drop"):
        return Drop(delay=delay, reset=bool(obj.get("reset", False)))
    if "dribble" in obj:
        return Dribble(obj["dribble"], float(obj.get("interval_s", 1.0)), obj.get("stall_after"))
    if "hang" in obj:
        then = obj.get("then")
        then_step = step_from_json(then) if then is not None else None
        if isinstance(then_step, Hang):
            raise ValueError("a hang step cannot be followed by another hang")
        return Hang(float(obj["hang"]), then=then_step)
    raise ValueError(f"unknown step {dict(obj)!r}: want reply, status, drop, hang or dribble")


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    scripted: ScriptedModelServer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "ScriptedModelServer/1.0"
    timeout = 30  # idle keep-alive connections end after this many seconds
    server: _Server
    before_send: Callable[[], None] | None = None

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet; requests are recorded instead."""

    def setup(self) -> None:
        super().setup()
        self.server.scripted._track(self.connection, add=True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.scripted._track(self.connection, add=False)

    def do_GET(self) -> None:
        self.server.scripted._handle(self)

    def do_POST(self) -> None:
        self.server.scripted._handle(self)

    def do_DELETE(self) -> None:
        self.server.scripted._handle(self)


class ScriptedModelServer:
    """An OpenAI-compatible chat server on 127.0.0.1 that answers from a script.

    Endpoints: ``GET /v1/models`` (and ``/models``), ``GET /health`` (and
    ``/v1/health``), llama.cpp's ``GET /props``, ``POST /v1/chat/completions``
    (and ``/chat/completions``). Anything else is a 404 with an error JSON.

    Attributes:
        host: always ``"127.0.0.1"``.
        port: the port (chosen on the first start; kept for ``restart()``).
        model_id: the model id reported by ``/v1/models``.
        vision: whether ``/props`` and the model metadata say it accepts images.
        healthy: ``/health`` answers 200 when true, 503 ("loading model") when false.
        api_key: when set, every request needs ``Authorization: Bearer <api_key>``.
        more_api_keys: more keys that are accepted too (llama-server takes several).
        public_paths: paths answered without a key (llama-server: ``/health``).
    """

    host: str = LOOPBACK

    def __init__(
        self,
        steps: Iterable[Step] = (),
        *,
        default: Step | None = None,
        responder: Responder | None = None,
        model_id: str = "scripted-vlm",
        vision: bool = True,
        api_key: str | None = None,
        port: int = 0,
    ) -> None:
        """Prepare (but do not start) a server.

        Args:
            steps: answers for the first chat requests, in order.
            default: the answer once ``steps`` (and ``responder``) give none; a
                ``Reply`` of ``{"condition_met": false, "next_run_in": 5, ...}`` if ``None``.
            responder: called with the request JSON when the queue is empty.
            model_id: the id ``/v1/models`` lists.
            vision: advertise image input.
            api_key: require this bearer token.
            port: fixed port; 0 picks a free one on the first start.
        """
        self.model_id = model_id
        self.vision = vision
        self.api_key = api_key
        self.more_api_keys: list[str] = []
        self.public_paths: set[str] = set()
        self.healthy = True
        self.port = port
        self.default: Step = default if default is not None else Reply(DEFAULT_CONTENT)
        self.responder = responder
        self._lock = threading.Lock()
        self._steps: deque[Step] = deque(steps)
        self._requests: list[RecordedRequest] = []
        self._new_request = threading.Condition(self._lock)
        self._counter = itertools.count()
        self._completion_ids = itertools.count(1)
        self._in_flight = 0
        self._max_concurrency = 0
        self._connections: set[socket.socket] = set()
        self._stopping = threading.Event()
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    # -- script --------------------------------------------------------------

    def push(self, *steps: Step) -> None:
        """Append steps to the queue."""
        with self._lock:
            self._steps.extend(steps)

    def clear_steps(self) -> None:
        """Drop the steps not used yet."""
        with self._lock:
            self._steps.clear()

    @property
    def pending_steps(self) -> int:
        """How many queued steps are still unused."""
        with self._lock:
            return len(self._steps)

    # -- observations --------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        """A copy of every recorded request, in arrival order."""
        with self._lock:
            return list(self._requests)

    def chat_requests(self) -> list[RecordedRequest]:
        """The recorded ``POST .../chat/completions`` requests, in arrival order."""
        return [r for r in self.requests if r.method == "POST" and r.path.endswith("/completions")]

    @property
    def in_flight(self) -> int:
        """Chat requests being answered right now."""
        with self._lock:
            return self._in_flight

    @property
    def max_concurrency(self) -> int:
        """The most chat requests ever in flight at once."""
        with self._lock:
            return self._max_concurrency

    def wait_for_chat_requests(self, count: int, timeout: float = 10.0) -> list[RecordedRequest]:
        """Wait until at least ``count`` chat requests arrived; return them.

        Raises:
            TimeoutError: fewer arrived within ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout

        def chats() -> list[RecordedRequest]:
            return [
                r for r in self._requests if r.method == "POST" and r.path.endswith("/completions")
            ]

        with self._new_request:
            while len(chats()) < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(
                        f"{len(chats())} chat request(s) arrived within {timeout} s, wanted {count}"
                    )
                self._new_request.wait(remaining)
            return chats()

    def reset(self) -> None:
        """Forget recorded requests and the concurrency maximum (steps stay)."""
        with self._lock:
            self._requests.clear()
            self._max_concurrency = self._in_flight

    # -- URLs ----------------------------------------------------------------

    @property
    def root_url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        if not self.port:
            raise RuntimeError("the server has not been started yet, so it has no port")
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT/v1``, what OpenAI clients take as base URL."""
        return f"{self.root_url}/v1"

    # -- lifecycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server is accepting requests."""
        return self._httpd is not None

    def start(self) -> Self:
        """Bind 127.0.0.1 (same port as before on a restart) and serve in a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("the model server is already running")
        self._stopping.clear()
        httpd = _Server((self.host, self.port), _Handler)
        httpd.scripted = self
        self.port = httpd.server_address[1]
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"model-server-{self.port}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop serving, cut open connections (hanging requests end unanswered), and wait."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.server_close()
        with self._lock:
            connections = list(self._connections)
        for conn in connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if not self._connections:
                    break
            time.sleep(0.01)

    def restart(self) -> Self:
        """Stop, then start again on the same port."""
        self.stop()
        return self.start()

    def close(self) -> None:
        """Same as ``stop()``."""
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"ScriptedModelServer({self.host}:{self.port}, model={self.model_id!r}, {state})"

    # -- request handling ------------------------------------------------------

    def _track(self, conn: socket.socket, *, add: bool) -> None:
        with self._lock:
            if add:
                self._connections.add(conn)
            else:
                self._connections.discard(conn)

    def _sleep(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; return False if the server is stopping."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    def _record(self, h: _Handler, body: bytes) -> RecordedRequest:
        parts = urlsplit(h.path)
        parsed: Any = None
        if body:
            try:
                parsed = json.loads(body)
            except ValueError:
                parsed = None
        with self._lock:
            rec = RecordedRequest(
                index=next(self._counter),
                method=h.command,
                path=parts.path,
                query=parts.query,
                headers={k.lower(): v for k, v in h.headers.items()},
                body=body,
                json=parsed,
                time=time.monotonic(),
            )
            self._requests.append(rec)
            self._new_request.notify_all()
        return rec

    def _handle(self, h: _Handler) -> None:
        length = int(h.headers.get("Content-Length") or 0)
        body = h.rfile.read(length) if length > 0 else b""
        rec = self._record(h, body)
        path = rec.path.rstrip("/")
        keys = [k for k in (self.api_key, *self.more_api_keys) if k]
        allowed = {f"Bearer {k}" for k in keys}
        if keys and path not in self.public_paths and h.headers.get("Authorization") not in allowed:
            self._send_json(h, 401, _error("invalid api key", "authentication_error", 401))
            return
        if h.command == "GET" and path in ("/v1/models", "/models"):
            self._send_json(h, 200, self._models())
        elif h.command == "GET" and path in ("/health", "/v1/health"):
            if self.healthy:
                self._send_json(h, 200, {"status": "ok"})
            else:
                self._send_json(h, 503, _error("Loading model", "unavailable_error", 503))
        elif h.command == "GET" and path == "/props":
            self._send_json(h, 200, self._props())
        elif h.command == "POST" and path in ("/v1/chat/completions", "/chat/completions"):
            self._chat(h, rec)
        else:
            self._send_json(h, 404, _error(f"no route {h.command} {rec.path}", "not_found", 404))

    def _models(self) -> dict[str, Any]:
        caps = ["completion", "vision"] if self.vision else ["completion"]
        return {
            "object": "list",
            "data": [
                {
                    "id": self.model_id,
                    "object": "model",
                    "created": 0,
                    "owned_by": "scripted",
                    "capabilities": caps,
                    "meta": {"vision": self.vision, "modalities": {"vision": self.vision}},
                }
            ],
        }

    def _props(self) -> dict[str, Any]:
        return {
            "model_path": f"/models/{self.model_id}.gguf",
            "modalities": {"vision": self.vision, "audio": False},
            "total_slots": 4,
            "default_generation_settings": {"n_ctx": 4096},
        }

    def _next_step(self, request_json: Any) -> Step:
        with self._lock:
            if self._steps:
                return self._steps.popleft()
        if self.responder is not None:
            step = self.responder(request_json)
            if step is not None:
                return step
        return self.default

    def _chat(self, h: _Handler, rec: RecordedRequest) -> None:
        with self._lock:
            self._in_flight += 1
            self._max_concurrency = max(self._max_concurrency, self._in_flight)
        released = False

        def release() -> None:
            # Called just before the first response byte goes out (or at the end):
            # a client that sends its next request only after reading this answer
            # must never be counted as concurrent with it.
            nonlocal released
            with self._lock:
                if not released:
                    released = True
                    self._in_flight -= 1

        h.before_send = release
        try:
            try:
                step = self._next_step(rec.json)
            except Exception as exc:  # a broken responder must not kill the handler thread
                self._send_json(h, 500, _error(f"responder failed: {exc!r}", "server_error", 500))
                return
            if isinstance(step, Hang):
                if not self._sleep(step.seconds):
                    h.close_connection = True
                    return
                inner = step.then if step.then is not None else self.default
                step = inner if not isinstance(inner, Hang) else Drop()
            self._answer(h, rec, step)
        finally:
            h.before_send = None
            release()

    def _answer(
        self, h: _Handler, rec: RecordedRequest, step: Reply | Status | Drop | Dribble
    ) -> None:
        if isinstance(step, Dribble):
            self._dribble(h, step)
            return
        if not self._sleep(step.delay):
            h.close_connection = True
            return
        if isinstance(step, Drop):
            h.close_connection = True
            if step.reset:
                h.connection.setsockopt(
                    socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                )
            return
        if isinstance(step, Status):
            headers = dict(step.headers)
            body = step.body
            if body is None:
                body = _error(f"scripted status {step.code}", "scripted", step.code)
            if isinstance(body, str):
                body = body.encode()
            if isinstance(body, bytes):
                headers.setdefault("Content-Type", "text/plain; charset=utf-8")
                payload = body
            else:
                headers.setdefault("Content-Type", "application/json")
                payload = json.dumps(body).encode()
            self._send(h, step.code, payload, headers)
            return
        request = rec.json if isinstance(rec.json, dict) else {}
        model = request.get("model") or self.model_id
        completion_id = f"chatcmpl-scripted-{next(self._completion_ids)}"
        if request.get("stream"):
            self._stream(h, completion_id, str(model), step)
            return
        prompt_tokens = max(1, len(rec.body) // 4)
        completion_tokens = max(1, len(step.content or "") // 4)
        self._send_json(
            h,
            200,
            {
                "id": completion_id,
                "object": "chat.completion",
                "created": int(time.time()),
                "model": model,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": step.content},
                        "finish_reason": step.finish_reason,
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion_tokens,
                    "total_tokens": prompt_tokens + completion_tokens,
                },
            },
        )

    def _dribble(self, h: _Handler, step: Dribble) -> None:
        payload = json.dumps(
            {
                "id": f"chatcmpl-scripted-{next(self._completion_ids)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": self.model_id,
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": step.content},
                        "finish_reason": "stop",
                    }
                ],
            }
        ).encode()
        if h.before_send is not None:
            h.before_send()
        h.close_connection = True
        try:
            h.send_response(200)
            h.send_header("Content-Type", "application/json")
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.flush()
            for i in range(len(payload)):
                if step.stall_after is not None and i >= step.stall_after:
                    self._stopping.wait()
                    return
                h.wfile.write(payload[i : i + 1])
                h.wfile.flush()
                if not self._sleep(step.interval_s):
                    return
        except OSError:  # the client gave up
            return

    def _stream(self, h: _Handler, completion_id: str, model: str, step: Reply) -> None:
        def chunk(delta: dict[str, Any], finish: str | None) -> bytes:
            obj = {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return b"data: " + json.dumps(obj).encode() + b"\n\n"

        payload = (
            chunk({"role": "assistant", "content": step.content or ""}, None)
            + chunk({}, step.finish_reason)
            + b"data: [DONE]\n\n"
        )
        self._send(h, 200, payload, {"Content-Type": "text/event-stream"})

    def _send_json(self, h: _Handler, code: int, obj: Any) -> None:
        self._send(h, code, json.dumps(obj).encode(), {"Content-Type": "application/json"})

    @staticmethod
    def _send(h: _Handler, code: int, payload: bytes, headers: Mapping[str, str]) -> None:
        if h.before_send is not None:
            h.before_send()
        try:
            h.send_response(code)
            for name, value in headers.items():
                h.send_header(name, value)
            h.send_header("Content-Length", str(len(payload)))
            h.end_headers()
            h.wfile.write(payload)
            h.wfile.flush()
        except OSError:  # the client gave up (timeout) or the server is stopping
            h.close_connection = True


def _error(message: str, kind: str, code: int) -> dict[str, Any]:
    return {"error": {"message": message, "type": kind, "code": code}}


def load_script(path: Path) -> dict[str, Any]:
    """Read a JSON script file into ``ScriptedModelServer`` keyword arguments."""
    raw = json.loads(path.read_text())
    if not isinstance(raw, dict):
        raise ValueError(f"{path}: the script must be a JSON object")
    kwargs: dict[str, Any] = {
        "steps": [step_from_json(s) for s in raw.get("steps", [])],
        "model_id": raw.get("model", "scripted-vlm"),
        "vision": bool(raw.get("vision", True)),
        "api_key": raw.get("api_key"),
    }
    if raw.get("default") is not None:
        kwargs["default"] = step_from_json(raw["default"])
    return kwargs


def main(argv: list[str] | None = None) -> int:
    """Serve a script file until SIGTERM/SIGINT; print ``READY <port>`` when up."""
    parser = argparse.ArgumentParser(
        description="Scripted OpenAI-compatible model server on 127.0.0.1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--script", type=Path, help="JSON script (steps, default, model, vision)")
    args = parser.parse_args(argv)
    kwargs = load_script(args.script) if args.script is not None else {}
    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ScriptedModelServer(port=args.port, **kwargs) as server:
        print(f"READY {server.port}", flush=True)
        while not stop.wait(0.2):
            pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
