"""Control topics and request bodies: which topic means what, where the reply goes.

Pure functions of the topic, the body and the MQTT 5 properties; the worker
(:mod:`pipeline.app.control.worker`) calls them on the MQTT network thread.

Example:
    >>> parse_topic("lookout/watches/gate/cancel", "lookout")
    ('cancel', 'gate')
    >>> reply_topic_for({}, None, "lookout/watches/reply", "lookout")
    'lookout/watches/reply'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

MAX_BODY_BYTES = 4 * 1024 * 1024
"""Largest request body in bytes, refused before it is parsed (the fields have their own
bounds, :mod:`pipeline.app.control.limits`; this one only bounds the parsing)."""


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

    Example:
        >>> parse_body(b'{"name": "gate"}')
        {'name': 'gate'}

    Raises:
        RequestRefused: larger than :data:`MAX_BODY_BYTES`, not JSON, or not a JSON object.
    """
    if len(payload) > MAX_BODY_BYTES:
        raise RequestRefused(
            f"the body is too large: at most {MAX_BODY_BYTES} bytes, got {len(payload)}"
        )
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
