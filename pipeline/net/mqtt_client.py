"""The paho client of the MQTT connection, configured: options, credentials, TLS, properties.

TLS fails closed and says which ``mqtt.tls.*`` key to look at; there is no
plain fallback. :func:`check_tls` does one handshake up front so that a wrong
CA or a refused client certificate stops the start instead of looping.

Example:
    >>> from pipeline.core.config import MqttTlsConfig
    >>> build_ssl_context(MqttTlsConfig()).verify_mode == ssl.CERT_REQUIRED
    True
"""

from __future__ import annotations

import logging
import socket
import ssl

import paho.mqtt.client as mqtt
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from pipeline.core.config import MqttConfig, MqttTlsConfig
from pipeline.core.redact import redact, register_secret
from pipeline.net.mqtt_types import MqttTlsError

log = logging.getLogger("pipeline.net.mqtt_connection")


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


def make_client(
    config: MqttConfig, client_id: str, will_topic: str, ssl_context: ssl.SSLContext | None
) -> mqtt.Client:
    """A paho 2.x client for ``config``: protocol, queue, backoff, credentials, TLS, last will.

    Example:
        >>> make_client(MqttConfig(), "lookout-test", "lookout/available", None).protocol.name
        'MQTTv311'
    """
    v5 = config.protocol == "5"
    client = mqtt.Client(
        callback_api_version=CallbackAPIVersion.VERSION2,
        client_id=client_id,
        protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
        clean_session=None if v5 else True,
    )
    client.max_queued_messages_set(config.queue_size)
    client.reconnect_delay_set(min_delay=config.reconnect_min_s, max_delay=config.reconnect_max_s)
    if config.username is not None:
        password = config.resolved_password()
        register_secret(password)
        client.username_pw_set(config.username, password)
    if ssl_context is not None:
        client.tls_set_context(ssl_context)
    client.will_set(will_topic, b"offline", qos=1, retain=True)
    return client


def publish_properties(
    v5: bool,
    response_topic: str | None,
    correlation_data: bytes | None,
    user_properties: tuple[tuple[str, str], ...],
    content_type: str | None,
) -> Properties | None:
    """MQTT 5 PUBLISH properties, or ``None`` under 3.1.1 or when there are none.

    Example:
        >>> publish_properties(False, "me/replies", None, (), None) is None
        True
    """
    if not v5 or not (
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
