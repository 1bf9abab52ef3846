"""The one MQTT connection of a process, shared by sinks, detection sources and control.

A thin, thread-safe owner of one paho-mqtt 2.x client (``CallbackAPIVersion.VERSION2``)
running its network loop in a background thread:

- ``start()`` connects in the background and keeps reconnecting with backoff;
  the retained topic ``<prefix>/available`` says ``online`` after each connect
  and ``offline`` through the last will (or ``stop()``).
- ``publish()`` never blocks. QoS 1/2 messages wait in a bounded queue while
  the broker is away (paho's own outgoing queue, sized by ``queue_size``) and
  are sent again after a reconnect; a message that does not fit is dropped,
  counted and logged. Delivery is tracked through ``on_publish``, per
  connection (:meth:`MqttConnection.stats`) and, for a caller that passes an
  :class:`MqttTally`, per caller (one tally per sink).
- MQTT 5 properties both ways: ``publish(..., response_topic=, correlation_data=,
  user_properties=, content_type=)``, and :meth:`MqttConnection.subscribe_messages`
  hands each message over as an :class:`MqttMessage` (retain flag, response
  topic, correlation data, user properties). ``subscribe()`` keeps the plain
  ``(topic, payload)`` callback that detection sources use.
- Subscriptions survive reconnects: every connect sends the full list, and a
  ``subscribe()`` while connected sends its SUBSCRIBE at once. Both happen
  under one lock, so a subscription made while a connect is being handled is
  never left out until the next reconnect.
- The latest retained payload of each topic is remembered and published again
  after a reconnect, so retained state comes back after a broker lost it (an
  empty retained payload, which deletes the topic on the broker, is forgotten).
- ``disconnected_since`` says since when (epoch seconds) a started connection
  has been without a broker, for ``/healthz``.

Example:
    >>> conn = MqttConnection(MqttConfig(host="127.0.0.1"))  # doctest: +SKIP
    >>> conn.start()  # doctest: +SKIP
    >>> conn.subscribe_messages("lookout/watches/list", lambda m: print(m.response_topic))
    ... # doctest: +SKIP
    >>> conn.publish("client/replies", b"{}", correlation_data=b"c1")  # doctest: +SKIP
    >>> conn.stop(timeout=5)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import socket
import ssl
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion, MQTTErrorCode
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties
from paho.mqtt.reasoncodes import ReasonCode

from pipeline.core.config import MqttConfig, MqttTlsConfig
from pipeline.core.redact import redact, register_secret

log = logging.getLogger(__name__)

MessageCallback = Callable[[str, bytes], None]
"""A subscriber: called with (topic, payload) on the MQTT network thread; keep it quick."""


@dataclass(frozen=True, slots=True)
class MqttMessage:
    """One received message, with its MQTT 5 properties (empty under MQTT 3.1.1).

    Example:
        >>> m = MqttMessage("lookout/watches/list", b"", response_topic="me/replies")
        >>> m.response_topic, m.correlation_data, m.retain
        ('me/replies', None, False)

    Attributes:
        topic: the topic it was published on.
        payload: its bytes.
        qos: the QoS it was delivered with.
        retain: whether the broker delivered it as a retained message.
        response_topic: MQTT 5 response topic (where a request wants its reply).
        correlation_data: MQTT 5 correlation data (to echo in the reply).
        user_properties: MQTT 5 user properties, in order, as (key, value).
        content_type: MQTT 5 content type.
    """

    topic: str
    payload: bytes
    qos: int = 0
    retain: bool = False
    response_topic: str | None = None
    correlation_data: bytes | None = None
    user_properties: tuple[tuple[str, str], ...] = ()
    content_type: str | None = None

    @classmethod
    def from_paho(cls, message: mqtt.MQTTMessage) -> MqttMessage:
        """Copy a paho message (its properties, when it has any) into a plain value."""
        props = getattr(message, "properties", None)
        response = getattr(props, "ResponseTopic", None)
        correlation = getattr(props, "CorrelationData", None)
        content_type = getattr(props, "ContentType", None)
        user = getattr(props, "UserProperty", None) or ()
        return cls(
            topic=message.topic,
            payload=bytes(message.payload),
            qos=int(message.qos),
            retain=bool(message.retain),
            response_topic=str(response) if response else None,
            correlation_data=bytes(correlation) if correlation is not None else None,
            user_properties=tuple((str(k), str(v)) for k, v in user),
            content_type=str(content_type) if content_type else None,
        )


MessageHandler = Callable[[MqttMessage], None]
"""A subscriber that wants the whole :class:`MqttMessage` (see ``subscribe_messages``)."""


@dataclass(frozen=True, slots=True)
class TallyStats:
    """Counters of one :class:`MqttTally` (one user of the connection, such as a sink).

    Attributes:
        accepted: messages handed to the client (queued or sent).
        sent: messages the broker acknowledged (QoS 1/2) or that were written (QoS 0).
        queued: accepted messages still waiting for their acknowledgement.
        dropped: messages lost: the queue was full, QoS 0 while disconnected, or
            still unacknowledged when the connection stopped.
        rejected: messages the broker refused (MQTT 5 negative PUBACK).
    """

    accepted: int
    sent: int
    queued: int
    dropped: int
    rejected: int


class MqttTally:
    """Thread-safe delivery counters of one publisher; pass it to ``publish(..., tally=)``.

    Example:
        >>> tally = MqttTally()
        >>> tally.stats()
        TallyStats(accepted=0, sent=0, queued=0, dropped=0, rejected=0)
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = dict.fromkeys(("accepted", "sent", "rejected", "refused", "lost"), 0)

    def _count(self, outcome: str) -> None:
        """Count one outcome: accepted, sent, rejected, refused (not queued) or lost."""
        with self._lock:
            self._counts[outcome] += 1

    def stats(self) -> TallyStats:
        """A snapshot of the counters (``queued`` = accepted and not yet settled)."""
        with self._lock:
            c = dict(self._counts)
        settled = c["sent"] + c["rejected"] + c["lost"]
        return TallyStats(
            accepted=c["accepted"],
            sent=c["sent"],
            queued=max(0, c["accepted"] - settled),
            dropped=c["refused"] + c["lost"],
            rejected=c["rejected"],
        )


class MqttError(RuntimeError):
    """The MQTT connection cannot work as configured (bad TLS files, refused credentials...)."""


class MqttTlsError(MqttError):
    """TLS failed (unknown CA, wrong host, missing client certificate); no plain fallback."""


@dataclass(frozen=True, slots=True)
class MqttStats:
    """Counters of one connection.

    Attributes:
        accepted: messages handed to the client (queued or sent).
        sent: messages the broker acknowledged (QoS 1/2) or that were written (QoS 0).
        queued: messages waiting for an acknowledgement right now.
        dropped: messages lost because the queue was full or QoS 0 while disconnected.
        rejected: messages the broker refused (MQTT 5 negative PUBACK).
        connects: successful connections so far.
        connected: whether the client is connected now.
    """

    accepted: int
    sent: int
    queued: int
    dropped: int
    rejected: int
    connects: int
    connected: bool


def build_ssl_context(tls: MqttTlsConfig) -> ssl.SSLContext:
    """Build an SSL context for ``tls``: verifies the broker, optional client certificate.

    Example:
        >>> ctx = build_ssl_context(MqttTlsConfig())
        >>> ctx.verify_mode == ssl.CERT_REQUIRED
        True

    Raises:
        MqttTlsError: a file is missing or unreadable, or ``key_file`` comes without
            ``cert_file`` (the message starts with the ``mqtt.tls.*`` key).
    """
    for key, path in (
        ("ca_file", tls.ca_file),
        ("cert_file", tls.cert_file),
        ("key_file", tls.key_file),
    ):
        if path is not None and not path.is_file():
            raise MqttTlsError(f"mqtt.tls.{key}: file {str(path)!r} does not exist")
    if tls.key_file is not None and tls.cert_file is None:
        raise MqttTlsError(
            "mqtt.tls.key_file: is set without mqtt.tls.cert_file "
            "(the client certificate it belongs to)"
        )
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise MqttTlsError(
            f"mqtt.tls.ca_file: cannot load CA certificates from {str(tls.ca_file)!r} "
            f"({_reason(exc)})"
        ) from None
    if tls.cert_file is not None:
        try:
            ctx.load_cert_chain(
                str(tls.cert_file), str(tls.key_file) if tls.key_file is not None else None
            )
        except (ssl.SSLError, OSError) as exc:
            raise MqttTlsError(
                "mqtt.tls.cert_file: cannot load the client certificate with its key "
                f"(mqtt.tls.key_file) ({_reason(exc)})"
            ) from None
    if tls.insecure:
        ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _reason(exc: OSError) -> str:
    if isinstance(exc, ssl.SSLError) and exc.reason:
        return str(exc.reason).replace("_", " ").lower()
    return redact(exc.strerror or str(exc))


def check_tls(
    host: str, port: int, ctx: ssl.SSLContext, timeout: float = 5.0, *, client_cert: bool = False
) -> None:
    """Do one TLS handshake with the broker to surface certificate problems at once.

    Returns quietly when the broker is unreachable (the client keeps retrying);
    raises when TLS itself fails, so a wrong CA or a missing client certificate
    stops the start instead of looping silently.

    Args:
        host: the broker.
        port: its TLS port.
        ctx: from :func:`build_ssl_context`.
        timeout: seconds for the connection and the handshake.
        client_cert: whether ``ctx`` carries a client certificate (for the message).

    Raises:
        MqttTlsError: the handshake failed or the broker refused the client; the
            message starts with the ``mqtt.tls.*`` key to look at.
    """
    broker = f"{host}:{port}"
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        log.warning("MQTT broker %s unreachable (%s); retrying in the background", broker, exc)
        return
    try:
        try:
            tls_sock = ctx.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raise MqttTlsError(
                f"mqtt.tls.ca_file: the certificate of the MQTT broker {broker} is not "
                f"trusted ({exc.verify_message}); set the CA that signed it"
            ) from None
        except ssl.SSLError as exc:
            raise MqttTlsError(_refused(broker, exc, client_cert)) from None
        except OSError as exc:
            raise MqttTlsError(
                f"mqtt.tls: the MQTT broker {broker} ended the connection during the TLS "
                f"handshake ({_reason(exc)}); is mqtt.port {port} a TLS listener?"
            ) from None
        with tls_sock:
            # TLS 1.3 reports a refused client certificate only on the first read.
            tls_sock.settimeout(0.3)
            try:
                tls_sock.recv(1)
            except TimeoutError:
                pass
            except ssl.SSLError as exc:
                raise MqttTlsError(_refused(broker, exc, client_cert)) from None
            except OSError as exc:
                log.warning("MQTT broker %s closed the TLS check (%s)", broker, exc)
    finally:
        raw.close()


def _refused(broker: str, exc: ssl.SSLError, client_cert: bool) -> str:
    if client_cert:
        return (
            f"mqtt.tls.cert_file: the MQTT broker {broker} refused the client certificate "
            f"({_reason(exc)}); check mqtt.tls.cert_file and mqtt.tls.key_file"
        )
    return (
        f"mqtt.tls.cert_file: TLS to the MQTT broker {broker} failed ({_reason(exc)}); "
        "it may want a client certificate (mqtt.tls.cert_file and mqtt.tls.key_file)"
    )


def default_client_id() -> str:
    """Return ``lookout-<host>-<pid>``, the default client id."""
    return f"lookout-{socket.gethostname()}-{os.getpid()}"


@dataclass(frozen=True, slots=True)
class _Subscriber:
    callback: Callable[..., None]
    qos: int
    full: bool
    """Whether ``callback`` takes an :class:`MqttMessage` (else topic and payload)."""


class MqttConnection:
    """One paho-mqtt client for the whole process (see the module docstring).

    Args:
        config: the ``[mqtt]`` table.
        client_id: overrides ``config.client_id``.

    Example:
        >>> conn = MqttConnection(MqttConfig(topic_prefix="home"))
        >>> conn.topic("watches", "porch", "alert")
        'home/watches/porch/alert'
    """

    def __init__(self, config: MqttConfig, *, client_id: str | None = None) -> None:
        self.config = config
        self.client_id = client_id or config.client_id or default_client_id()
        self.availability_topic = self.topic("available")
        self._ssl_context = build_ssl_context(config.tls) if config.tls is not None else None
        self._v5 = config.protocol == "5"
        self._client = mqtt.Client(
            callback_api_version=CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=mqtt.MQTTv5 if self._v5 else mqtt.MQTTv311,
            clean_session=None if self._v5 else True,
        )
        self._client.max_queued_messages_set(config.queue_size)
        self._client.reconnect_delay_set(
            min_delay=config.reconnect_min_s, max_delay=config.reconnect_max_s
        )
        if config.username is not None:
            password = config.resolved_password()
            register_secret(password)
            self._client.username_pw_set(config.username, password)
        if self._ssl_context is not None:
            self._client.tls_set_context(self._ssl_context)
        self._client.will_set(self.availability_topic, b"offline", qos=1, retain=True)
        self._client.on_connect = self._on_connect
        self._client.on_disconnect = self._on_disconnect
        self._client.on_publish = self._on_publish
        self._client.on_message = self._on_message
        self._client.on_connect_fail = self._on_connect_fail

        # _lock: publish bookkeeping and counters. _sub_lock: the subscription list and
        # whether SUBSCRIBE can go out now (_live); on_connect sends the whole list and
        # sets _live under it, so a concurrent subscribe() is either in that list or
        # sends its own SUBSCRIBE. Neither lock is held while calling user code.
        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._connected = threading.Event()
        self._pending: dict[int, MqttTally | None] = {}
        self._acked_early: dict[int, bool] = {}
        self._retained: dict[str, tuple[bytes, int, int, Properties | None]] = {}
        self._sub_lock = threading.Lock()
        self._live = False
        self._subscriptions: dict[str, list[_Subscriber]] = {}
        self._wildcards: set[str] = set()
        self._accepted = 0
        self._sent = 0
        self._dropped = 0
        self._rejected = 0
        self._connects = 0
        self._state = "new"
        self._down_since: float | None = None
        self.last_error: str | None = None
        self._last_drop_log = 0.0

    # -- topics ----------------------------------------------------------------

    def topic(self, *parts: str) -> str:
        """``<prefix>/<part>/<part>...``; parts must not contain ``/``, ``#`` or ``+``.

        Raises:
            ValueError: a part is empty or holds a separator or wildcard.
        """
        for part in parts:
            if not part or any(c in part for c in "/#+"):
                raise ValueError(f"Topic part {part!r} must be non-empty without '/', '#' or '+'.")
        return "/".join((self.config.topic_prefix, *parts))

    # -- lifecycle -------------------------------------------------------------

    @property
    def connected(self) -> bool:
        """Whether the client is connected to the broker now."""
        return self._connected.is_set()

    @property
    def disconnected_since(self) -> float | None:
        """Epoch seconds since when the started connection has had no broker, else ``None``.

        Counts from ``start()`` until the first connect, and from each lost
        connection until the next connect. ``None`` while connected, before
        ``start()`` and after ``stop()`` (an intended disconnect is no outage).

        Example:
            >>> MqttConnection(MqttConfig()).disconnected_since is None
            True
        """
        return self._down_since

    def start(self, wait_s: float | None = None) -> None:
        """Connect in the background and start the network thread.

        Args:
            wait_s: when given, block until connected or raise after that many seconds.

        Raises:
            MqttTlsError: TLS cannot work (checked with one handshake first).
            MqttError: ``wait_s`` passed without a connection (the message says why),
                or the connection was stopped.
        """
        with self._lock:
            if self._state == "stopped":
                raise MqttError("This MQTT connection was stopped; create a new one.")
            if self._state == "started":
                return
            self._state = "started"
            self._down_since = time.time()
        if self._ssl_context is not None:
            try:
                check_tls(
                    self.config.host,
                    self.config.port,
                    self._ssl_context,
                    client_cert=self.config.tls is not None
                    and self.config.tls.cert_file is not None,
                )
            except MqttTlsError as exc:
                self.last_error = str(exc)
                with self._lock:
                    self._state = "stopped"
                    self._down_since = None
                raise
        self._client.connect_async(self.config.host, self.config.port, self.config.keepalive)
        self._client.loop_start()
        if wait_s is not None:
            self.wait_connected(wait_s)

    def wait_connected(self, timeout: float) -> None:
        """Block until connected.

        Raises:
            MqttError: not connected within ``timeout`` seconds (with the latest error).
        """
        if not self._connected.wait(timeout):
            why = self.last_error or "no answer"
            raise MqttError(
                f"Not connected to MQTT broker {self.config.host}:{self.config.port} "
                f"within {timeout:g} s: {why}"
            )

    def stop(self, timeout: float = 5.0) -> bool:
        """Publish ``offline``, wait up to ``timeout`` s for the queue to drain, disconnect.

        Returns:
            Whether every queued message was acknowledged before the disconnect.
            Messages still queued are lost (and counted as dropped, on their tally too).
        """
        with self._lock:
            if self._state != "started":
                self._state = "stopped"
                return True
            self._state = "stopping"
        if self.connected:
            self.publish(self.availability_topic, b"offline", qos=1, retain=True)
        flushed = self.flush(timeout)
        self._client.disconnect()
        self._client.loop_stop()
        with self._lock:
            self._state = "stopped"
            self._down_since = None
            lost = list(self._pending.values())
            self._pending.clear()
            self._dropped += len(lost)
        for tally in lost:
            if tally is not None:
                tally._count("lost")
        if lost:
            log.warning("MQTT stopped with %d unacknowledged message(s); they are lost", len(lost))
        return flushed

    def flush(self, timeout: float) -> bool:
        """Wait until no message waits for an acknowledgement; return whether that happened."""
        deadline = time.monotonic() + timeout
        with self._flushed:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0 or not self.connected:
                    return not self._pending
                self._flushed.wait(min(left, 0.1))
            return True

    def __enter__(self) -> MqttConnection:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- publish / subscribe -----------------------------------------------------

    def publish(
        self,
        topic: str,
        payload: bytes,
        qos: int | None = None,
        retain: bool = False,
        *,
        response_topic: str | None = None,
        correlation_data: bytes | None = None,
        user_properties: tuple[tuple[str, str], ...] = (),
        content_type: str | None = None,
        tally: MqttTally | None = None,
    ) -> bool:
        """Queue ``payload`` for ``topic``; never blocks.

        Example:
            >>> conn.publish("me/replies", b'{"ok": true}', qos=1,
            ...              correlation_data=b"c1")  # doctest: +SKIP
            True

        Args:
            topic: full topic (see :meth:`topic`).
            payload: the bytes to send.
            qos: 0, 1 or 2; default ``config.qos``.
            retain: ask the broker to keep it as the topic's last value (an empty
                payload deletes the retained value).
            response_topic: MQTT 5 response topic.
            correlation_data: MQTT 5 correlation data.
            user_properties: MQTT 5 user properties, as (key, value) pairs.
            content_type: MQTT 5 content type.
            tally: counters of the caller (for example one sink), updated when the
                message is accepted, acknowledged, refused or lost.

        The MQTT 5 properties are left out under MQTT 3.1.1, which has none.

        Returns:
            ``True`` when sent or queued, ``False`` when dropped (counted and logged).

        Raises:
            MqttError: the connection was stopped.
            ValueError: ``qos`` is not 0, 1 or 2.
        """
        if self._state == "stopped":
            raise MqttError("This MQTT connection was stopped; create a new one.")
        q = self.config.qos if qos is None else qos
        if q not in (0, 1, 2):
            raise ValueError(f"The MQTT QoS must be 0, 1 or 2, got {q!r}.")
        props = self._properties(response_topic, correlation_data, user_properties, content_type)
        info = self._client.publish(topic, payload, qos=q, retain=retain, properties=props)
        ok = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and q > 0
        )
        early: bool | None = None
        with self._lock:
            if retain and payload:
                self._retained[topic] = (payload, q, info.mid, props)
            elif retain:
                self._retained.pop(topic, None)
            if not ok:
                self._dropped += 1
                dropped = self._dropped
            else:
                self._accepted += 1
                early = self._acked_early.pop(info.mid, None)
                if early is None:
                    self._pending[info.mid] = tally
        if tally is not None:
            tally._count("accepted" if ok else "refused")
            if early is not None:
                tally._count("sent" if early else "rejected")
        if not ok:
            self._log_drop(topic, info.rc, dropped)
        return ok

    def _properties(
        self,
        response_topic: str | None,
        correlation_data: bytes | None,
        user_properties: tuple[tuple[str, str], ...],
        content_type: str | None,
    ) -> Properties | None:
        if not self._v5 or not (
            response_topic or correlation_data is not None or user_properties or content_type
        ):
            return None
        props = Properties(PacketTypes.PUBLISH)  # type: ignore[no-untyped-call]
        if response_topic:
            props.ResponseTopic = response_topic
        if correlation_data is not None:
            props.CorrelationData = correlation_data
        if user_properties:
            props.UserProperty = list(user_properties)
        if content_type:
            props.ContentType = content_type
        return props

    def _log_drop(self, topic: str, rc: MQTTErrorCode, total: int) -> None:
        now = time.monotonic()
        if now - self._last_drop_log >= 5.0 or total == 1:
            self._last_drop_log = now
            why = "queue full" if rc == MQTTErrorCode.MQTT_ERR_QUEUE_SIZE else mqtt.error_string(rc)
            log.error(
                "MQTT message on %s dropped (%s; queue_size=%d); %d dropped in all",
                topic,
                why,
                self.config.queue_size,
                total,
            )

    def subscribe(self, topic: str, callback: MessageCallback, qos: int = 1) -> None:
        """Call ``callback(topic, payload)`` for every message matching ``topic`` (wildcards ok).

        Example:
            >>> conn.subscribe("frigate/events", lambda t, p: print(t, len(p)))  # doctest: +SKIP

        The subscription is renewed after every reconnect; while connected the
        SUBSCRIBE goes out at once (each call sends one, so the broker sends
        the topic's retained message again). Callbacks run on the network
        thread; their errors are logged.
        """
        self._add_subscriber(topic, _Subscriber(callback, qos, full=False))

    def subscribe_messages(self, topic: str, handler: MessageHandler, qos: int = 1) -> None:
        """Like :meth:`subscribe`, but ``handler`` gets an :class:`MqttMessage`.

        Use it for the retain flag or MQTT 5 properties (response topic,
        correlation data, user properties) of each message.

        Example:
            >>> conn.subscribe_messages(
            ...     "lookout/watches/list", lambda m: print(m.response_topic, m.retain)
            ... )  # doctest: +SKIP
        """
        self._add_subscriber(topic, _Subscriber(handler, qos, full=True))

    def _add_subscriber(self, topic: str, sub: _Subscriber) -> None:
        if not topic:
            raise ValueError("The MQTT topic must not be empty.")
        if sub.qos not in (0, 1, 2):
            raise ValueError(f"The MQTT QoS must be 0, 1 or 2, got {sub.qos!r}.")
        with self._sub_lock:
            subs = self._subscriptions.setdefault(topic, [])
            subs.append(sub)
            if "+" in topic or "#" in topic:
                self._wildcards.add(topic)
            if self._live:
                self._client.subscribe(topic, max(s.qos for s in subs))

    def unsubscribe(
        self, topic: str, callback: MessageCallback | MessageHandler | None = None
    ) -> None:
        """Remove ``callback`` (or every callback) from ``topic``; the last one unsubscribes."""
        with self._sub_lock:
            subs = [
                s
                for s in self._subscriptions.get(topic, [])
                if callback is not None and s.callback is not callback
            ]
            if subs:
                self._subscriptions[topic] = subs
            else:
                self._subscriptions.pop(topic, None)
                self._wildcards.discard(topic)
                if self._live:
                    self._client.unsubscribe(topic)

    def stats(self) -> MqttStats:
        """Return a snapshot of the counters."""
        with self._lock:
            return MqttStats(
                accepted=self._accepted,
                sent=self._sent,
                queued=len(self._pending),
                dropped=self._dropped,
                rejected=self._rejected,
                connects=self._connects,
                connected=self.connected,
            )

    # -- paho callbacks (network thread) ------------------------------------------

    def _on_connect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        if reason_code.is_failure:
            self.last_error = f"broker refused the connection: {reason_code}"
            log.error("MQTT %s:%s: %s", self.config.host, self.config.port, self.last_error)
            return
        with self._lock:
            self._connects += 1
            reconnect = self._connects > 1
            retained = [
                (t, p, q, props)
                for t, (p, q, mid, props) in self._retained.items()
                if mid not in self._pending and t != self.availability_topic
            ]
        with self._sub_lock:
            for topic, subs in self._subscriptions.items():
                client.subscribe(topic, max(s.qos for s in subs))
            self._live = True
        self.last_error = None
        log.info(
            "MQTT connected to %s:%s as %s", self.config.host, self.config.port, self.client_id
        )
        if self._state == "started":
            self.publish(self.availability_topic, b"online", qos=1, retain=True)
        self._down_since = None
        self._connected.set()
        if reconnect:
            for topic, payload, qos, props in retained:
                self._republish(topic, payload, qos, props)

    def _republish(self, topic: str, payload: bytes, qos: int, props: Properties | None) -> None:
        info = self._client.publish(topic, payload, qos=qos, retain=True, properties=props)
        if info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS:
            with self._lock:
                self._accepted += 1
                early = self._acked_early.pop(info.mid, None)
                if early is None:
                    self._pending[info.mid] = None
                if topic in self._retained:
                    self._retained[topic] = (payload, qos, info.mid, props)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        with self._sub_lock:
            self._live = False
        was = self._connected.is_set()
        self._connected.clear()
        with self._flushed:
            self._flushed.notify_all()
        if self._state == "started":
            if self._down_since is None:
                self._down_since = time.time()
            if was:
                self.last_error = f"connection lost: {reason_code}"
                log.warning(
                    "MQTT disconnected from %s:%s (%s); reconnecting",
                    self.config.host,
                    self.config.port,
                    reason_code,
                )

    def _on_connect_fail(self, client: mqtt.Client, userdata: Any) -> None:
        self.last_error = "cannot connect (broker unreachable or TLS failed)"
        log.debug("MQTT connect to %s:%s failed", self.config.host, self.config.port)

    def _on_publish(
        self,
        client: mqtt.Client,
        userdata: Any,
        mid: int,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        ok = not reason_code.is_failure
        tally: MqttTally | None = None
        with self._flushed:
            if mid in self._pending:
                tally = self._pending.pop(mid)
            else:
                self._acked_early[mid] = ok
            if ok:
                self._sent += 1
            else:
                self._rejected += 1
            if not self._pending:
                self._flushed.notify_all()
        if tally is not None:
            tally._count("sent" if ok else "rejected")
        if not ok:
            log.error("MQTT broker refused message %d: %s", mid, reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        with self._sub_lock:
            # A received topic has no wildcards: exact subscriptions by lookup, the rest by match.
            targets = list(self._subscriptions.get(topic, ()))
            for sub in self._wildcards:
                if mqtt.topic_matches_sub(sub, topic):
                    targets.extend(self._subscriptions[sub])
        if not targets:
            return
        payload = bytes(message.payload)
        full = MqttMessage.from_paho(message) if any(s.full for s in targets) else None
        for s in targets:
            try:
                if full is not None and s.full:
                    s.callback(full)
                else:
                    s.callback(topic, payload)
            except Exception as exc:
                log.error("MQTT subscriber for %s failed: %s", topic, redact(repr(exc)))
