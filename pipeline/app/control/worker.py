"""The control worker: subscribe to the control topics, queue requests, do them one at a time.

:class:`WatchControl` parses each request on the MQTT network thread (topics,
body, reply topic; refusals answered at once), queues it (at most
:data:`MAX_QUEUED`) and does it on its own thread: ``set`` validates the body,
checks the webhook URL, starts the watch and keeps it in the state file when
persistent; ``cancel`` stops it and forgets it; ``list`` lists every watch.

Example:
    >>> control = WatchControl(pipeline, mqtt, config.control, state_path)  # doctest: +SKIP
    >>> control.restore(); control.start()  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import orjson

from pipeline.app.control.limits import NAME_CHARS, check_bounds, echo_keys
from pipeline.app.control.request import RuntimeWatchRequest, validate_watch, webhook_sink_name
from pipeline.app.control.store import WatchStore
from pipeline.app.control.topics import (
    Request,
    RequestRefused,
    parse_body,
    parse_topic,
    reply_topic_for,
)
from pipeline.core.config import ControlConfig, LookoutConfig, WatchConfig, WebhookSinkConfig
from pipeline.core.events import WatchState
from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact
from pipeline.net.mqtt_connection import MqttConnection, MqttMessage
from pipeline.net.ssrf import SsrfPolicy, UnsafeUrlError, check_url
from sinks.base import Sink
from sinks.webhook import WebhookSink

log = logging.getLogger("lookout.control")

MAX_QUEUED = 64
"""Requests that may wait for the worker; more are refused at once."""
ENDED = ("success", "failed", "cancelled")
"""Statuses of a watch that no longer runs (it does not count against ``max_watches``)."""


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
                log_unexpected(log, f"control: stored watch {name} cannot start", exc)
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
            check_bounds(body, name)
        except RequestRefused as err:
            echoed = echo_keys(body)  # nothing unbounded goes back in the refusal
            try:
                reply_to = reply_topic_for(echoed, response_topic, self.default_reply, self.prefix)
            except RequestRefused:
                reply_to = self.default_reply
            shown = name if name is not None and len(name) <= NAME_CHARS else None
            self._refuse(Request(action, shown, echoed, reply_to, correlation), err)
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
            log_unexpected(log, f"control: {request.action} failed", exc)
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
        """Refuse a webhook URL that resolves to an address that is not globally routable.

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
            log_unexpected(log, f"control: cannot reply on {request.reply_topic}", exc)
