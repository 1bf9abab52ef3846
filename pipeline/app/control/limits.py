"""Bounds of a control request: its size, and every string and list it carries.

A run-time request comes from anyone who can publish to the broker, so nothing
in it is trusted to be small: the body, every string field of a watch
(condition, name, labels, zones, URLs...) and every list have a limit, and a
refusal states it (``watch.condition: at most 2000 characters, got 1048576``). The body as a
whole is bounded before parsing (:data:`pipeline.app.control.topics.MAX_BODY_BYTES`).
The checks run on the MQTT network thread before a request is queued, and again
in :func:`pipeline.app.control.request.validate_watch` (state file, direct
callers), before pydantic sees the body.

Example:
    >>> bound_problems({"name": "g", "camera": "front", "condition": "x" * 2001})
    ['watch.condition: at most 2000 characters, got 2001']
    >>> bound_problems({"labels": ["cat"] * 40})
    ['watch.labels: at most 32 items, got 40']
"""

from __future__ import annotations

from typing import Any

import orjson

from pipeline.app.control.topics import RequestRefused

MAX_KEYS = 64
"""Most keys in a request body (a watch has about 25 fields)."""
MAX_KEY_CHARS = 64
"""Longest key name in a body (unknown keys are named in the refusal)."""
NAME_CHARS = 64
"""Longest watch name, also in a ``watches/<name>/cancel`` topic."""
STRING_CHARS: dict[str, int] = {
    "name": NAME_CHARS,
    "camera": 64,
    "condition": 2000,
    "backend": 64,
}
"""Longest string per watch field; any other string value gets :data:`OTHER_CHARS`."""
OTHER_CHARS = 64
"""Longest string value of any other key (``mode``, numbers sent as strings...)."""
LIST_LIMITS: dict[str, tuple[int, int]] = {
    "labels": (32, 64),
    "zones": (32, 64),
    "sinks": (32, 64),
}
"""Per list field: (most items, longest item in characters)."""
WEBHOOK_CHARS: dict[str, int] = {"url": 2048, "secret": 1024, "attach_image": 16}
"""Longest string per key of a ``webhook`` table (a plain-string webhook is its ``url``)."""
MAX_WEBHOOK_KEYS = 8
"""Most keys in a ``webhook`` table."""
REPLY_TO_CHARS = 256
"""Longest ``reply_to`` topic."""
CORRELATION_ID_CHARS = 256
"""Longest ``correlation_id``, measured as JSON (it is echoed in the reply)."""


def _too_long(path: str, value: object, limit: int) -> list[str]:
    if isinstance(value, str) and len(value) > limit:
        return [f"{path}: at most {limit} characters, got {len(value)}"]
    return []


def _list_problems(path: str, value: object, items: int, chars: int) -> list[str]:
    if not isinstance(value, list):
        return _too_long(path, value, OTHER_CHARS)
    if len(value) > items:
        return [f"{path}: at most {items} items, got {len(value)}"]
    return [p for i, v in enumerate(value) for p in _too_long(f"{path}[{i}]", v, chars)]


def _webhook_problems(value: object) -> list[str]:
    if isinstance(value, str):
        return _too_long("watch.webhook.url", value, WEBHOOK_CHARS["url"])
    if not isinstance(value, dict):
        return []
    if len(value) > MAX_WEBHOOK_KEYS:
        return [f"watch.webhook: at most {MAX_WEBHOOK_KEYS} keys, got {len(value)}"]
    problems = _key_problems("watch.webhook", value)
    for key, v in value.items():
        if isinstance(key, str) and len(key) <= MAX_KEY_CHARS:
            limit = WEBHOOK_CHARS.get(key, OTHER_CHARS)
            problems += _too_long(f"watch.webhook.{key}", v, limit)
    return problems


def _key_problems(path: str, table: dict[Any, Any]) -> list[str]:
    longest = max((len(k) for k in table if isinstance(k, str)), default=0)
    if longest > MAX_KEY_CHARS:
        return [f"{path}: key names are at most {MAX_KEY_CHARS} characters, got {longest}"]
    return []


def _correlation_problems(body: dict[str, Any]) -> list[str]:
    if "correlation_id" not in body:
        return []
    size = len(orjson.dumps(body["correlation_id"]))
    if size > CORRELATION_ID_CHARS:
        return [f"correlation_id: at most {CORRELATION_ID_CHARS} characters as JSON, got {size}"]
    return []


def bound_problems(body: dict[str, Any]) -> list[str]:
    """Every bound a request body breaks, one line each (empty when it keeps them all).

    Example:
        >>> bound_problems({"webhook": "https://h.example/" + "a" * 3000})
        ['watch.webhook.url: at most 2048 characters, got 3018']
    """
    if len(body) > MAX_KEYS:
        return [f"the body has at most {MAX_KEYS} keys, got {len(body)}"]
    problems = _key_problems("watch", body) + _correlation_problems(body)
    for key, value in body.items():
        if not isinstance(key, str) or len(key) > MAX_KEY_CHARS or key == "correlation_id":
            continue
        if key == "reply_to":
            problems += _too_long("reply_to", value, REPLY_TO_CHARS)
        elif key == "webhook":
            problems += _webhook_problems(value)
        elif key in LIST_LIMITS:
            problems += _list_problems(f"watch.{key}", value, *LIST_LIMITS[key])
        else:
            problems += _too_long(f"watch.{key}", value, STRING_CHARS.get(key, OTHER_CHARS))
    return problems


def check_bounds(body: dict[str, Any], name: str | None = None) -> None:
    """Refuse a request that breaks a bound: a body field, or the watch name of its topic.

    Example:
        >>> check_bounds({"condition": "a cat"}, "gate")
        >>> check_bounds({}, "g" * 100)
        Traceback (most recent call last):
        ...
        pipeline.app.control.topics.RequestRefused: request too large

    Raises:
        RequestRefused: ``"request too large"``, with one problem per broken bound.
    """
    problems = bound_problems(body)
    if name is not None and len(name) > NAME_CHARS:
        problems.insert(0, f"watch name: at most {NAME_CHARS} characters, got {len(name)}")
    if problems:
        raise RequestRefused("request too large", problems)


def echo_keys(body: dict[str, Any]) -> dict[str, Any]:
    """The request keys a refusal may echo: ``reply_to`` and ``correlation_id`` within bounds.

    Example:
        >>> echo_keys({"correlation_id": "x" * 300, "reply_to": "lk/watches/reply", "a": 1})
        {'reply_to': 'lk/watches/reply'}
    """
    out = {}
    reply_to = body.get("reply_to")
    if reply_to is not None and not _too_long("reply_to", reply_to, REPLY_TO_CHARS):
        out["reply_to"] = reply_to
    if "correlation_id" in body and not _correlation_problems(body):
        out["correlation_id"] = body["correlation_id"]
    return out
