"""Watches at run time over MQTT: set, cancel, list; persistent ones kept in a state file.

Off unless ``[control] enabled = true``: anyone who can publish to the broker
can then start watches and, with run-time webhooks, make Lookout send HTTP
requests (to globally routable addresses only, unless
``control.allow_webhook_networks`` allows more).

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

Every request is bounded (:mod:`pipeline.app.control.limits`): the body is at
most 4 MiB, a watch's strings and lists have limits (``condition`` 2000
characters, names 64, ``labels``/``zones``/``sinks`` 32 items of 64, webhook
URL 2048...), and a refusal states the limit it enforces
(``watch.condition: at most 2000 characters, got 1048576``).

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
address is not globally routable (private, loopback, link-local, carrier-grade
NAT...; :func:`pipeline.net.ssrf.check_url`) unless
``control.allow_webhook_networks`` holds it. Each run of the watch gets
a new :class:`~sinks.webhook.WebhookSink` on ``control.webhook_outbox``, closed
(after a short flush) when the run ends or is cancelled. The secret never
appears in replies, logs or listings (``watches/list`` shows only the URL's
endpoint label); a persistent watch keeps it in the state file.

Example (mosquitto clients)::

    mosquitto_pub -t lookout/watches/set -m '{"name": "gate", "camera": "front",
        "condition": "the gate is open", "persistent": true}'
    mosquitto_sub -t lookout/watches/reply
"""

from pipeline.app.control.limits import bound_problems, check_bounds
from pipeline.app.control.request import (
    CONTROL_KEYS,
    RuntimeWatchRequest,
    RuntimeWebhook,
    SinkMaker,
    validate_watch,
    webhook_sink_name,
)
from pipeline.app.control.store import WatchStore, state_file_path
from pipeline.app.control.topics import (
    MAX_BODY_BYTES,
    Request,
    RequestRefused,
    parse_body,
    parse_topic,
    reply_topic_for,
)
from pipeline.app.control.worker import (
    ENDED,
    MAX_QUEUED,
    ControlStats,
    WatchControl,
    WatchHost,
)

__all__ = [
    "CONTROL_KEYS",
    "ENDED",
    "MAX_BODY_BYTES",
    "MAX_QUEUED",
    "ControlStats",
    "Request",
    "RequestRefused",
    "RuntimeWatchRequest",
    "RuntimeWebhook",
    "SinkMaker",
    "WatchControl",
    "WatchHost",
    "WatchStore",
    "bound_problems",
    "check_bounds",
    "parse_body",
    "parse_topic",
    "reply_topic_for",
    "state_file_path",
    "validate_watch",
    "webhook_sink_name",
]
