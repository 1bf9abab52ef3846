"""The one MQTT connection of a process, shared by sinks, detection sources and control.

A thin, thread-safe owner of one paho-mqtt 2.x client (``CallbackAPIVersion.VERSION2``)
running its network loop in a background thread:

- ``start()`` connects in the background and keeps reconnecting with backoff;
  the retained topic ``<prefix>/available`` says ``online`` after each connect
  and ``offline`` through the last will (or ``stop()``).
- ``publish()`` never blocks. QoS 1/2 messages wait in a bounded queue while
  the broker is away (paho's own outgoing queue, sized by ``queue_size``) and
  are sent again after a reconnect; a message that does not fit is dropped,
  counted and logged. Delivery is tracked through ``on_publish``.
- ``subscribe()`` registrations survive reconnects (re-subscribed on connect).
- The latest retained payload of each topic is remembered and published again
  after a reconnect, so retained state comes back after a broker lost it.

Example:
    >>> conn = MqttConnection(MqttConfig(host="127.0.0.1"))  # doctest: +SKIP
    >>> conn.start()  # doctest: +SKIP
    >>> conn.publish(conn.topic("watches", "porch", "alert"), b"{}")  # doctest: +SKIP
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
from paho.mqtt.reasoncodes import ReasonCode

from pipeline.config import MqttConfig, MqttTlsConfig
from pipeline.redact import redact, register_secret

log = logging.getLogger(__name__)

MessageCallback = Callable[[str, bytes], None]
"""A subscriber: called with (topic, payload) on the MQTT network thread; keep it quick."""


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
        MqttTlsError: a file is missing or unreadable (the message names the key).
    """
    for key, path in (
        ("ca_file", tls.ca_file),
        ("cert_file", tls.cert_file),
        ("key_file", tls.key_file),
    ):
        if path is not None and not path.is_file():
            raise MqttTlsError(f"mqtt.tls.{key}: file {str(path)!r} does not exist")
    if tls.key_file is not None and tls.cert_file is None:
        raise MqttTlsError("mqtt.tls.key_file is set but mqtt.tls.cert_file is not")
    try:
        ctx = ssl.create_default_context(
            ssl.Purpose.SERVER_AUTH, cafile=str(tls.ca_file) if tls.ca_file else None
        )
    except (ssl.SSLError, OSError) as exc:
        raise MqttTlsError(f"mqtt.tls.ca_file: cannot load CA certificates ({exc})") from None
    if tls.cert_file is not None:
        try:
            ctx.load_cert_chain(
                str(tls.cert_file), str(tls.key_file) if tls.key_file is not None else None
            )
        except (ssl.SSLError, OSError) as exc:
            raise MqttTlsError(
                f"mqtt.tls.cert_file/key_file: cannot load the client certificate ({exc})"
            ) from None
    if tls.insecure:
        ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def check_tls(host: str, port: int, ctx: ssl.SSLContext, timeout: float = 5.0) -> None:
    """Do one TLS handshake with the broker to surface certificate problems at once.

    Returns quietly when the broker is unreachable (the client keeps retrying);
    raises when TLS itself fails, so a wrong CA or a missing client certificate
    stops the start instead of looping silently.

    Raises:
        MqttTlsError: the handshake failed or the broker rejected the client certificate.
    """
    try:
        raw = socket.create_connection((host, port), timeout=timeout)
    except OSError as exc:
        log.warning(
            "MQTT broker %s:%s unreachable (%s); retrying in the background", host, port, exc
        )
        return
    try:
        try:
            tls_sock = ctx.wrap_socket(raw, server_hostname=host)
        except ssl.SSLCertVerificationError as exc:
            raise MqttTlsError(
                f"TLS to MQTT broker {host}:{port} failed: the broker's certificate is not "
                f"trusted ({exc.verify_message}); check mqtt.tls.ca_file"
            ) from None
        except ssl.SSLError as exc:
            raise MqttTlsError(
                f"TLS to MQTT broker {host}:{port} failed ({exc.reason or exc}); "
                "check mqtt.tls.cert_file and mqtt.tls.key_file"
            ) from None
        except OSError as exc:
            raise MqttTlsError(
                f"TLS to MQTT broker {host}:{port} failed: the connection ended during the "
                f"handshake ({exc}); is {port} a TLS listener?"
            ) from None
        with tls_sock:
            # TLS 1.3 reports a refused client certificate only on the first read.
            tls_sock.settimeout(0.3)
            try:
                tls_sock.recv(1)
            except TimeoutError:
                pass
            except ssl.SSLError as exc:
                raise MqttTlsError(
                    f"TLS to MQTT broker {host}:{port}: the broker refused the client "
                    f"({exc.reason or exc}); check mqtt.tls.cert_file and mqtt.tls.key_file"
                ) from None
            except OSError as exc:
                log.warning("MQTT broker %s:%s closed the TLS check (%s)", host, port, exc)
    finally:
        raw.close()


def default_client_id() -> str:
    """Return ``lookout-<host>-<pid>``, the default client id."""
    return f"lookout-{socket.gethostname()}-{os.getpid()}"


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

        self._lock = threading.Lock()
        self._flushed = threading.Condition(self._lock)
        self._connected = threading.Event()
        self._pending: set[int] = set()
        self._acked_early: set[int] = set()
        self._retained: dict[str, tuple[bytes, int, int]] = {}
        self._subscriptions: dict[str, list[tuple[MessageCallback, int]]] = {}
        self._accepted = 0
        self._sent = 0
        self._dropped = 0
        self._rejected = 0
        self._connects = 0
        self._state = "new"
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
        if self._ssl_context is not None:
            try:
                check_tls(self.config.host, self.config.port, self._ssl_context)
            except MqttTlsError as exc:
                self.last_error = str(exc)
                with self._lock:
                    self._state = "stopped"
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
            Messages still queued are lost (and counted as dropped).
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
            left = len(self._pending)
            self._dropped += left
        if left:
            log.warning("MQTT stopped with %d unacknowledged message(s); they are lost", left)
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
        self, topic: str, payload: bytes, qos: int | None = None, retain: bool = False
    ) -> bool:
        """Queue ``payload`` for ``topic``; never blocks.

        Args:
            topic: full topic (see :meth:`topic`).
            payload: the bytes to send.
            qos: 0, 1 or 2; default ``config.qos``.
            retain: ask the broker to keep it as the topic's last value.

        Returns:
            ``True`` when sent or queued, ``False`` when dropped (counted and logged).

        Raises:
            MqttError: the connection was stopped.
        """
        if self._state == "stopped":
            raise MqttError("This MQTT connection was stopped; create a new one.")
        q = self.config.qos if qos is None else qos
        info = self._client.publish(topic, payload, qos=q, retain=retain)
        ok = info.rc == MQTTErrorCode.MQTT_ERR_SUCCESS or (
            info.rc == MQTTErrorCode.MQTT_ERR_NO_CONN and q > 0
        )
        with self._lock:
            if retain:
                self._retained[topic] = (payload, q, info.mid)
            if not ok:
                self._dropped += 1
                dropped = self._dropped
            else:
                self._accepted += 1
                if info.mid in self._acked_early:
                    self._acked_early.discard(info.mid)
                else:
                    self._pending.add(info.mid)
        if not ok:
            self._log_drop(topic, info.rc, dropped)
        return ok

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

        The subscription is renewed after every reconnect. Callback errors are logged.
        """
        with self._lock:
            self._subscriptions.setdefault(topic, []).append((callback, qos))
        if self.connected:
            self._client.subscribe(topic, qos)

    def unsubscribe(self, topic: str, callback: MessageCallback | None = None) -> None:
        """Remove ``callback`` (or every callback) from ``topic``."""
        with self._lock:
            subs = self._subscriptions.get(topic, [])
            subs = [s for s in subs if callback is not None and s[0] is not callback]
            if subs:
                self._subscriptions[topic] = subs
            else:
                self._subscriptions.pop(topic, None)
        if not subs and self.connected:
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
            subs = [(t, max(q for _, q in cbs)) for t, cbs in self._subscriptions.items() if cbs]
            retained = [
                (t, p, q)
                for t, (p, q, mid) in self._retained.items()
                if mid not in self._pending and t != self.availability_topic
            ]
        self.last_error = None
        log.info(
            "MQTT connected to %s:%s as %s", self.config.host, self.config.port, self.client_id
        )
        if self._state == "started":
            self.publish(self.availability_topic, b"online", qos=1, retain=True)
        for topic, qos in subs:
            client.subscribe(topic, qos)
        self._connected.set()
        if reconnect:
            for topic, payload, qos in retained:
                self.publish(topic, payload, qos=qos, retain=True)

    def _on_disconnect(
        self,
        client: mqtt.Client,
        userdata: Any,
        flags: Any,
        reason_code: ReasonCode,
        properties: Any,
    ) -> None:
        was = self._connected.is_set()
        self._connected.clear()
        with self._flushed:
            self._flushed.notify_all()
        if self._state == "started" and was:
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
        with self._flushed:
            if mid in self._pending:
                self._pending.discard(mid)
            else:
                self._acked_early.add(mid)
            if reason_code.is_failure:
                self._rejected += 1
            else:
                self._sent += 1
            if not self._pending:
                self._flushed.notify_all()
        if reason_code.is_failure:
            log.error("MQTT broker refused message %d: %s", mid, reason_code)

    def _on_message(self, client: mqtt.Client, userdata: Any, message: mqtt.MQTTMessage) -> None:
        topic = message.topic
        with self._lock:
            targets = [
                cb
                for sub, cbs in self._subscriptions.items()
                if mqtt.topic_matches_sub(sub, topic)
                for cb, _ in cbs
            ]
        for cb in targets:
            try:
                cb(topic, bytes(message.payload))
            except Exception as exc:
                log.error("MQTT subscriber for %s failed: %s", topic, redact(repr(exc)))
