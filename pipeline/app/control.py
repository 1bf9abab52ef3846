"""Watches at run time over MQTT: set, cancel, list; persistent ones kept in a state file.

Topics (``<prefix>`` is ``[mqtt].topic_prefix``)::

    <prefix>/watches/set            body: a watch as JSON, same fields as [[watches]]
    <prefix>/watches/<name>/cancel  body: empty, or {"correlation_id": ...}
    <prefix>/watches/list           body: empty, or {"correlation_id": ...}

Every request gets one JSON reply: ``{"ok": true, ...}`` or ``{"ok": false,
"error": "...", "problems": [...]}``. Where the reply goes: the MQTT 5 *response
topic* of the request (with its *correlation data* echoed) when there is one;
else the ``reply_to`` key of the body; else ``<prefix>/<control.reply_topic>``
(``<prefix>/watches/reply`` by default, for MQTT 3.1.1 clients). A
``correlation_id`` key in the body is echoed in the reply. Retained requests
are ignored (they would replay on every restart).

A ``reply_to`` must be the reply topic or a topic under it
(``<prefix>/watches/reply/<anything>``), and an MQTT 5 response topic must not
be one of Lookout's own topics (under ``<prefix>/`` but outside the reply
topic): a client cannot make Lookout publish on ``<prefix>/available`` or on a
watch's state topic. Such a request is refused (the refusal goes to the reply
topic). At most ``MAX_QUEUED`` requests wait for the worker; more are refused
at once with "too many control requests waiting".

A watch started with ``"persistent": true`` is written to the state file
(``control.state_file``, next to the config, mode 0600) and started again at
the next start; it leaves the file when it is cancelled or ends by itself.

A ``set`` body may bring its own webhook (:class:`RuntimeWatchRequest`):
``"webhook": "https://..."`` or ``{"url": ..., "secret": "whsec_...",
"attach_image": "none"}``. Its URL is resolved first and refused when an
address is private, loopback or link-local (:func:`pipeline.net.ssrf.check_url`)
unless ``control.allow_webhook_networks`` holds it. Each run of the watch gets
a new :class:`~sinks.webhook.WebhookSink` on ``control.webhook_outbox``, closed
(after a short flush) when the run ends or is cancelled. The secret never
appears in replies, logs or listings (``watches/list`` shows only the URL's
endpoint label); a persistent watch keeps it in the state file.

Example (mosquitto clients)::

    mosquitto_pub -t lookout/watches/set -m '{"name": "gate", "camera": "front",
        "condition": "the gate is open", "persistent": true}'
    mosquitto_sub -t lookout/watches/reply
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol
from urllib.parse import urlsplit

import orjson
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator

from pipeline.core.config import ControlConfig, LookoutConfig, Model, WatchConfig, WebhookSinkConfig
from pipeline.core.config_loader import (
    ConfigProblem,
    check_watch_references,
    problems_from_validation,
)
from pipeline.core.events import WatchState
from pipeline.core.redact import redact, register_secret
from pipeline.net.http_post import endpoint_label, register_url_secrets
from pipeline.net.mqtt_connection import MqttConnection, MqttMessage
from pipeline.net.ssrf import SsrfPolicy, UnsafeUrlError, check_url
from sinks.base import Sink
from sinks.signing import parse_secrets
from sinks.webhook import WebhookSink

log = logging.getLogger("lookout.control")

CONTROL_KEYS = ("reply_to", "correlation_id")
"""Body keys of a ``set`` request that are about the request, not the watch."""
MAX_QUEUED = 64
"""Requests that may wait for the worker; more are refused at once."""
ENDED = ("success", "failed", "cancelled")
"""Statuses of a watch that no longer runs (it does not count against ``max_watches``)."""


class RequestRefused(Exception):
    """A control request that cannot be done; ``problems`` says why, one line each."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or [message]


@dataclass(frozen=True, slots=True)
class Request:
    """One parsed control message.

    Attributes:
        action: ``set``, ``cancel`` or ``list``.
        name: the watch name of a ``cancel``.
        body: the JSON object of the message (empty when the message had none).
        reply_topic: where the reply goes.
        correlation_data: MQTT 5 correlation data to echo, if any.
    """

    action: str
    name: str | None
    body: dict[str, Any]
    reply_topic: str
    correlation_data: bytes | None = None


def parse_topic(topic: str, prefix: str) -> tuple[str, str | None] | None:
    """``(action, name)`` of a control topic, or ``None`` for any other topic.

    Example:
        >>> parse_topic("home/watches/set", "home"), parse_topic("home/watches/gate/cancel", "home")
        (('set', None), ('cancel', 'gate'))
    """
    head = f"{prefix}/watches/"
    if not topic.startswith(head):
        return None
    rest = topic[len(head) :].split("/")
    if rest in (["set"], ["list"]):
        return rest[0], None
    if len(rest) == 2 and rest[1] == "cancel" and rest[0]:
        return "cancel", rest[0]
    return None


def parse_body(payload: bytes) -> dict[str, Any]:
    """The JSON object of a request; an empty payload is ``{}``.

    Raises:
        RequestRefused: not JSON, or not a JSON object.
    """
    if not payload.strip():
        return {}
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError as exc:
        raise RequestRefused(f"the body is not valid JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise RequestRefused("the body must be a JSON object")
    return body


def reply_topic_for(
    body: dict[str, Any], response_topic: str | None, default: str, prefix: str | None = None
) -> str:
    """Where to reply: MQTT 5 response topic, else ``reply_to`` in the body, else ``default``.

    With ``prefix`` (Lookout's topic prefix), a ``reply_to`` must be ``default``
    or under it, and a response topic must not be under ``prefix/`` unless it is
    ``default`` or under it.

    Example:
        >>> reply_topic_for({"reply_to": "lk/watches/reply/me"}, None, "lk/watches/reply", "lk")
        'lk/watches/reply/me'

    Raises:
        RequestRefused: a reply topic that is not allowed (the caller replies on ``default``).
    """

    def in_reply_space(topic: str) -> bool:
        return topic == default or topic.startswith(default + "/")

    if response_topic:
        ours = prefix is not None and response_topic.startswith(prefix + "/")
        if ours and not in_reply_space(response_topic):
            raise RequestRefused(
                f"the response topic must not be one of Lookout's topics under '{prefix}/' "
                f"(use '{default}' or a topic under it)"
            )
        return response_topic
    reply_to = body.get("reply_to")
    if reply_to is None:
        return default
    if not isinstance(reply_to, str) or not reply_to or any(c in reply_to for c in "#+"):
        if prefix is None:
            return default
        raise RequestRefused("reply_to must be a topic name without wildcards")
    if prefix is not None and not in_reply_space(reply_to):
        raise RequestRefused(f"reply_to must be '{default}' or a topic under it")
    return reply_to


class RuntimeWebhook(Model):
    """The ``webhook`` of a run-time watch: its own signed webhook (Standard Webhooks)."""

    url: str = Field(description="Endpoint URL (http or https); checked against private networks.")
    secret: SecretStr | None = Field(
        None, description="whsec_ signing secret; never echoed (unsigned without one)."
    )
    attach_image: Literal["none", "base64", "multipart"] = Field(
        "none", description="Send the alert's JPEG: none, base64 in the JSON, or multipart."
    )

    @field_validator("url")
    @classmethod
    def _http_url(cls, v: str) -> str:
        try:
            parts = urlsplit(v)
            _ = parts.port
        except ValueError:
            raise ValueError("is not a valid URL") from None
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("must be an http:// or https:// URL with a host")
        return v

    @field_validator("secret")
    @classmethod
    def _secret(cls, v: SecretStr | None) -> SecretStr | None:
        if v is not None:
            parse_secrets(v.get_secret_value())  # its ValueError never echoes the secret
        return v


SinkMaker = Callable[["RuntimeWatchRequest"], list[Sink]]


class RuntimeWatchRequest(WatchConfig):
    """A watch started over MQTT: a ``[[watches]]`` entry plus an optional ``webhook``.

    The webhook is a plain URL or a :class:`RuntimeWebhook` table. Config-file
    watches never have one. :meth:`make_sinks` (called by
    :class:`pipeline.app.watches.Watches` for each run) builds it through the maker
    that :class:`WatchControl` binds with :meth:`bind`.

    Example:
        >>> w = RuntimeWatchRequest(name="g", camera="front", condition="a cat",
        ...                         webhook="https://hooks.example.com/abc/very-secret-token")
        >>> w.listing_extra()
        {'webhook': 'https://hooks.example.com/...'}
    """

    webhook: RuntimeWebhook | None = Field(
        None, description="The watch's own webhook: a URL, or {url, secret, attach_image}."
    )
    _maker: SinkMaker | None = PrivateAttr(None)

    @field_validator("webhook", mode="before")
    @classmethod
    def _plain_url(cls, v: Any) -> Any:
        return {"url": v} if isinstance(v, str) else v

    def bind(self, maker: SinkMaker) -> RuntimeWatchRequest:
        """Set what builds this watch's sinks; returns ``self``."""
        self._maker = maker
        return self

    def make_sinks(self) -> list[Sink]:
        """New sinks for one run (none without a webhook or a bound maker).

        Raises:
            pipeline.net.ssrf.UnsafeUrlError: the URL resolves to an address that is not allowed.
        """
        if self.webhook is None or self._maker is None:
            return []
        return self._maker(self)

    def listing_extra(self) -> dict[str, Any]:
        """``{"webhook": <endpoint label>}`` when the watch has one: no path, query or secret."""
        return {"webhook": endpoint_label(self.webhook.url)} if self.webhook else {}

    def stored_body(self) -> dict[str, Any]:
        """The body to keep in the state file (the webhook's secret in clear: the file is 0600)."""
        body = self.model_dump(mode="json", exclude_defaults=True)
        if self.webhook is not None and self.webhook.secret is not None:
            body["webhook"]["secret"] = self.webhook.secret.get_secret_value()
        return body


def webhook_sink_name(watch: str, url: str) -> str:
    """The outbox key of a run-time watch's webhook: the same for the same watch and URL.

    A restarted persistent watch takes up its pending events again; a watch
    given another URL never sends the old URL's events to the new one.

    Example:
        >>> webhook_sink_name("gate", "https://a.example/h")[:11]
        'watch-gate-'
    """
    return f"watch-{watch}-{hashlib.sha256(url.encode()).hexdigest()[:12]}"


def _register_body_secrets(body: dict[str, Any]) -> None:
    """Register the webhook secret and URL secrets of a raw body before anything may echo them."""
    hook = body.get("webhook")
    if isinstance(hook, str):
        hook = {"url": hook}
    if not isinstance(hook, dict):
        return
    secret, url = hook.get("secret"), hook.get("url")
    if isinstance(secret, str):
        register_secret(secret.strip())
    if isinstance(url, str):
        with contextlib.suppress(ValueError):
            register_url_secrets(url)


def validate_watch(cfg: LookoutConfig, body: dict[str, Any]) -> RuntimeWatchRequest:
    """Validate a ``set`` body the way ``[[watches]]`` entries are validated (plus ``webhook``).

    Example:
        >>> from pipeline.core.config_loader import load_config_text
        >>> cfg = load_config_text('[cameras.front]\\nurl = "a.mp4"\\n')
        >>> try:
        ...     validate_watch(cfg, {"name": "g", "camera": "back", "condition": "a cat"})
        ... except RequestRefused as err:
        ...     print(err.problems[0])
        watch.camera: unknown camera 'back'; known: front

    Raises:
        RequestRefused: one problem per line, with ``watch.<key>`` paths.
    """
    fields = {k: v for k, v in body.items() if k not in CONTROL_KEYS}
    _register_body_secrets(fields)
    try:
        watch = RuntimeWatchRequest(**fields)
    except ValidationError as err:
        problems = [
            ConfigProblem(f"watch.{p.path}" if p.path else "watch", p.message)
            for p in problems_from_validation(err)
        ]
        problems += _reference_problems(cfg, fields, {p.path for p in problems})
        raise RequestRefused("invalid watch", [str(p) for p in problems]) from None
    except TypeError:
        raise RequestRefused("the watch fields must have string keys") from None
    refs = check_watch_references(cfg, watch, "watch")
    if refs:
        raise RequestRefused("invalid watch", [str(p) for p in refs])
    return watch


def _reference_problems(
    cfg: LookoutConfig, fields: dict[str, Any], reported: set[str]
) -> list[ConfigProblem]:
    """Reference problems of a body that failed validation (so one reply lists them all)."""
    try:
        partial = RuntimeWatchRequest.model_construct(**fields)
        found = check_watch_references(cfg, partial, "watch")
    except Exception:  # wrong types: the validation problems already say so
        return []
    return [p for p in found if p.path not in reported and p.path.split("[")[0] not in reported]


class WatchStore:
    """Persistent run-time watches in a small JSON file (written atomically).

    Example:
        >>> store = WatchStore(Path("/tmp/lookout-watches.json"))  # doctest: +SKIP
        >>> store.put(watch); store.load()  # doctest: +SKIP
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> list[dict[str, Any]]:
        """The stored watch bodies (a missing file is empty; a broken one is logged and empty)."""
        with self._lock:
            return self._read()

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("control: cannot read %s (%s); starting without it", self.path, exc)
            return []
        watches = data.get("watches") if isinstance(data, dict) else None
        return [w for w in watches if isinstance(w, dict)] if isinstance(watches, list) else []

    def _write(self, watches: list[dict[str, Any]]) -> None:
        """Replace the file atomically; it is created 0600 (it may hold webhook secrets)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = orjson.dumps({"version": 1, "watches": watches}, option=orjson.OPT_INDENT_2)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # an old .tmp may have had other modes
            f.write(data)
        os.replace(tmp, self.path)

    def put(self, watch: WatchConfig) -> None:
        """Store (or replace) a watch by name (a webhook's secret included)."""
        if isinstance(watch, RuntimeWatchRequest):
            body = watch.stored_body()
        else:
            body = watch.model_dump(mode="json", exclude_defaults=True)
        with self._lock:
            watches = [w for w in self._read() if w.get("name") != watch.name]
            watches.append(body)
            self._write(watches)

    def remove(self, name: str) -> bool:
        """Forget a watch; returns whether it was stored."""
        with self._lock:
            watches = self._read()
            kept = [w for w in watches if w.get("name") != name]
            if len(kept) == len(watches):
                return False
            self._write(kept)
            return True


class WatchHost(Protocol):
    """What control needs from the runner (:class:`pipeline.app.runner.Pipeline` is one)."""

    config: LookoutConfig

    @property
    def stopping(self) -> bool:
        """Whether a shutdown began."""
        ...

    def start_watch(self, watch: WatchConfig, origin: Any = "config") -> Any:
        """Start (or replace) a watch."""
        ...

    def cancel_watch(self, name: str, wait_s: float = 5.0, *, forget: bool = False) -> bool:
        """Cancel a watch; ``forget``: it is gone for good (sinks drop what they keep of it)."""
        ...

    def watch_list(self) -> list[dict[str, Any]]:
        """Every known watch as a dict with at least ``name`` and ``origin``."""
        ...


@dataclass
class ControlStats:
    """Counters of control requests (for metrics)."""

    requests: dict[str, int] = field(default_factory=dict)
    refused: dict[str, int] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def count(self, action: str, ok: bool) -> None:
        """Count one request (from the MQTT thread or the worker)."""
        target = self.requests if ok else self.refused
        with self._lock:
            target[action] = target.get(action, 0) + 1


class WatchControl:
    """Serve ``watches/set``, ``watches/<name>/cancel`` and ``watches/list`` for a pipeline.

    Requests are handled one at a time on a worker thread (never on the MQTT
    network thread, since starting a watch may probe a backend).

    Args:
        host: the running pipeline.
        mqtt: the shared MQTT connection.
        config: the ``[control]`` table.
        state_path: the persistent-watch file (absolute, already next to the config).
        outbox_path: the outbox of run-time webhooks; by default ``config.webhook_outbox``,
            a relative one next to the host's ``config_path`` (else next to ``state_path``).
    """

    def __init__(
        self,
        host: WatchHost,
        mqtt: MqttConnection,
        config: ControlConfig,
        state_path: Path,
        outbox_path: Path | None = None,
    ) -> None:
        self.host = host
        self.mqtt = mqtt
        self.config = config
        self.store = WatchStore(state_path)
        if outbox_path is None:
            outbox_path = config.webhook_outbox
            if not outbox_path.is_absolute():
                config_path = getattr(host, "config_path", None)
                base = (
                    Path(config_path).resolve().parent
                    if config_path is not None
                    else state_path.parent
                )
                outbox_path = base / outbox_path
        self.outbox_path = outbox_path
        self.stats = ControlStats()
        self.prefix = mqtt.config.topic_prefix
        self.default_reply = f"{self.prefix}/{config.reply_topic}"
        self._queue: queue.Queue[Request | None] = queue.Queue(MAX_QUEUED)
        self._thread: threading.Thread | None = None
        self._topics = [
            f"{self.prefix}/watches/set",
            f"{self.prefix}/watches/list",
            f"{self.prefix}/watches/+/cancel",
        ]

    # ------------------------------------------------------------ lifecycle

    def restore(self) -> list[str]:
        """Start the persistent watches of the state file; return the names started."""
        started = []
        for body in self.store.load():
            name = str(body.get("name", "?"))
            try:
                watch = validate_watch(self.host.config, body)
                self.check_webhook(watch)
                self.host.start_watch(watch.bind(self.make_sinks), "runtime")
                started.append(watch.name)
            except RequestRefused as err:
                log.error(
                    "control: stored watch %s cannot start: %s", name, "; ".join(err.problems)
                )
            except Exception as exc:
                log.error("control: stored watch %s cannot start: %s", name, redact(str(exc)))
        if started:
            log.info("control: restored persistent watches: %s", ", ".join(started))
        return started

    def start(self) -> WatchControl:
        """Subscribe to the control topics and start the worker thread."""
        self._thread = threading.Thread(target=self._work, name="control", daemon=True)
        self._thread.start()
        for topic in self._topics:
            self.mqtt.subscribe_messages(topic, self._on_message)
        log.info("control: listening on %s/watches/{set,list,<name>/cancel}", self.prefix)
        return self

    def stop(self) -> None:
        """Unsubscribe and stop the worker (requests queued are dropped)."""
        for topic in self._topics:
            self.mqtt.unsubscribe(topic, self._on_message)
        while True:  # make room for the stop marker: queued requests are dropped
            try:
                self._queue.put_nowait(None)
                break
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    self._queue.get_nowait()
        if self._thread is not None:
            self._thread.join(10)

    def watch_ended(self, running: Any, state: WatchState) -> None:
        """A watch ended: a persistent run-time watch that succeeded or failed leaves the file.

        Cancelled runs stay: a user's cancel removes the entry itself, and a
        shutdown or a reload must not forget the watch.
        """
        if running.origin != "runtime" or not running.config.persistent:
            return
        if state.status.value not in ("success", "failed"):
            return
        if self.store.remove(running.config.name):
            log.info(
                "control: persistent watch %s ended (%s); removed from %s",
                running.config.name,
                state.status.value,
                self.store.path,
            )

    # ------------------------------------------------------------ requests

    def _on_message(self, message: MqttMessage) -> None:
        """Parse a request on the MQTT network thread and queue it for the worker."""
        topic = message.topic
        parsed = parse_topic(topic, self.prefix)
        if parsed is None:
            return
        if message.retain:
            log.warning("control: ignoring a retained request on %s", topic)
            return
        action, name = parsed
        response_topic, correlation = message.response_topic, message.correlation_data
        body: dict[str, Any] = {}
        try:
            body = parse_body(message.payload)
        except RequestRefused as err:
            try:
                reply_to = reply_topic_for({}, response_topic, self.default_reply, self.prefix)
            except RequestRefused:
                reply_to = self.default_reply
            self._refuse(Request(action, name, {}, reply_to, correlation), err)
            return
        try:
            reply_to = reply_topic_for(body, response_topic, self.default_reply, self.prefix)
        except RequestRefused as err:
            self._refuse(Request(action, name, body, self.default_reply, correlation), err)
            return
        request = Request(action, name, body, reply_to, correlation)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            self._refuse(
                request,
                RequestRefused(
                    f"too many control requests waiting ({MAX_QUEUED}); try again later"
                ),
            )

    def _refuse(self, request: Request, err: RequestRefused) -> None:
        """Reply to a request refused before it reached the worker (counted, logged)."""
        self.stats.count(request.action, False)
        log.warning("control: %s refused: %s", request.action, "; ".join(err.problems))
        reply: dict[str, Any] = {"action": request.action, "ok": False}
        reply.update({"error": err.message, "problems": err.problems})
        if request.name is not None:
            reply["watch"] = request.name
        if "correlation_id" in request.body:
            reply["correlation_id"] = request.body["correlation_id"]
        self._reply(request, reply)

    def _work(self) -> None:
        while True:
            request = self._queue.get()
            if request is None:
                return
            self._reply(request, self.handle(request))

    def handle(self, request: Request) -> dict[str, Any]:
        """Do one request; return the reply (never raises)."""
        try:
            if self.host.stopping:
                raise RequestRefused("Lookout is shutting down")
            if request.action == "set":
                reply = self._set(request.body)
            elif request.action == "cancel":
                reply = self._cancel(request.name or "")
            else:
                reply = {"ok": True, "watches": self.host.watch_list()}
            self.stats.count(request.action, True)
        except RequestRefused as err:
            self.stats.count(request.action, False)
            log.warning("control: %s refused: %s", request.action, "; ".join(err.problems))
            reply = {"ok": False, "error": err.message, "problems": err.problems}
        except Exception as exc:
            self.stats.count(request.action, False)
            text = redact(f"{type(exc).__name__}: {exc}")
            log.error("control: %s failed: %s", request.action, text)
            reply = {"ok": False, "error": text, "problems": [text]}
        reply = {"action": request.action, **reply}
        if request.name is not None:
            reply.setdefault("watch", request.name)
        if "correlation_id" in request.body:
            reply["correlation_id"] = request.body["correlation_id"]
        return reply

    def _set(self, body: dict[str, Any]) -> dict[str, Any]:
        watch = validate_watch(self.host.config, body)
        known = {w["name"]: w for w in self.host.watch_list()}
        existing = known.get(watch.name)
        config_names = {w.name for w in self.host.config.watches}
        if watch.name in config_names or (existing and existing.get("origin") == "config"):
            raise RequestRefused(
                f"watch '{watch.name}' is defined in the config file; choose another name"
            )
        runtime = [
            w for w in known.values() if w.get("origin") == "runtime" and w["status"] not in ENDED
        ]
        replacing = existing is not None and existing.get("status") not in ENDED
        if not replacing and len(runtime) >= self.config.max_watches:
            raise RequestRefused(
                f"too many run-time watches ({len(runtime)}); "
                f"control.max_watches is {self.config.max_watches}"
            )
        self.check_webhook(watch)
        running = self.host.start_watch(watch.bind(self.make_sinks), "runtime")
        if watch.persistent:
            self.store.put(watch)
        else:
            self.store.remove(watch.name)
        return {
            "ok": True,
            "watch": watch.name,
            "job_id": getattr(running, "job_id", None),
            "replaced": existing is not None,
            "persistent": watch.persistent,
            **watch.listing_extra(),
        }

    # ------------------------------------------------------------ run-time webhooks

    def check_webhook(self, watch: RuntimeWatchRequest) -> None:
        """Refuse a webhook URL that resolves to a private, loopback or link-local address.

        Raises:
            RequestRefused: ``watch.webhook.url: resolves to ...; allow it with ...``.
        """
        if watch.webhook is None:
            return
        try:
            self._check_url(watch.webhook.url)
        except UnsafeUrlError as err:
            text = redact(str(err))
            raise RequestRefused(
                "webhook URL not allowed", [f"watch.webhook.url: {text}"]
            ) from None

    def _check_url(self, url: str) -> list[str]:
        allowed = self.host.config.control.allow_webhook_networks
        return check_url(url, allowed, hint="allow it with control.allow_webhook_networks")

    def make_sinks(self, watch: RuntimeWatchRequest) -> list[Sink]:
        """The webhook sink of one run of ``watch`` (the URL is checked again: DNS may change).

        Raises:
            UnsafeUrlError: the URL now resolves to an address that is not allowed.
        """
        hook = watch.webhook
        if hook is None:
            return []
        self._check_url(hook.url)
        cfg = WebhookSinkConfig(
            url=hook.url,
            secret=hook.secret,
            attach_image=hook.attach_image,
            outbox=self.outbox_path,
        )
        policy = SsrfPolicy(
            tuple(self.host.config.control.allow_webhook_networks),
            hint="allow it with control.allow_webhook_networks",
        )
        return [WebhookSink(webhook_sink_name(watch.name, hook.url), cfg, ssrf=policy)]

    def _cancel(self, name: str) -> dict[str, Any]:
        known = {w["name"]: w for w in self.host.watch_list()}
        if name not in known:
            names = ", ".join(sorted(known)) or "none"
            raise RequestRefused(f"no watch named '{name}'; known: {names}")
        self.store.remove(name)
        self.host.cancel_watch(name, forget=True)
        return {"ok": True, "watch": name, "status": "cancelled"}

    def _reply(self, request: Request, reply: dict[str, Any]) -> None:
        """Publish ``reply`` on the request's reply topic, echoing its correlation data."""
        try:
            self.mqtt.publish(
                request.reply_topic,
                orjson.dumps(reply),
                qos=1,
                correlation_data=request.correlation_data,
            )
        except Exception as exc:
            log.error("control: cannot reply on %s: %s", request.reply_topic, redact(str(exc)))
