"""What the page may change: start a watch, cancel one; and who may (the token).

A watch started here is validated exactly like a ``[[watches]]`` entry and a
``watches/set`` request (:func:`pipeline.app.control.request.validate_watch`:
the same models, bounds and references), then started as a run-time watch.
The page cannot replace a watch of the config file, bring a webhook (that is
the MQTT control's, with its address checks) or keep a watch across restarts,
and ``[control] max_watches`` bounds run-time watches here too.

Who may: the ``[web]`` token, sent as ``Authorization: Bearer <token>``, as a
``token`` form field, or as the session cookie the unlock form sets (an HMAC
of the token, ``HttpOnly``, ``SameSite=Strict``: another site cannot post with
it). Without a configured token nothing can be changed.

Example:
    >>> session_value("s3cret") == session_value("s3cret") != session_value("other")
    True
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

from pipeline.app.control.request import validate_watch
from pipeline.app.control.topics import RequestRefused
from pipeline.app.runner import Pipeline

ENDED = ("success", "failed", "cancelled")
COOKIE = "lookout_session"


def session_value(token: str) -> str:
    """The session cookie's value for ``token`` (never the token itself)."""
    return hmac.new(token.encode(), b"lookout-web-session", hashlib.sha256).hexdigest()


def authorized(token: str | None, *, bearer: str | None, form: str | None,
               cookie: str | None) -> bool:  # fmt: skip
    """Whether a request carries the token (header, form field) or a valid session cookie."""
    if not token:
        return False
    if bearer is not None and hmac.compare_digest(bearer.encode(), token.encode()):
        return True
    if form is not None and hmac.compare_digest(form.encode(), token.encode()):
        return True
    return cookie is not None and hmac.compare_digest(cookie, session_value(token))


def _split(value: Any) -> Any:
    """A comma-separated form field as a list (a list stays a list)."""
    if isinstance(value, str):
        return [part.strip() for part in value.split(",") if part.strip()]
    return value


def watch_body(fields: dict[str, Any]) -> dict[str, Any]:
    """The watch body of a form or JSON request: empty fields dropped, lists from commas."""
    body = {k: v for k, v in fields.items() if k != "token" and v not in ("", None)}
    for key in ("labels", "zones", "sinks"):
        if key in body:
            body[key] = _split(body[key])
    return body


def start_watch(pipeline: Pipeline, fields: dict[str, Any]) -> str:
    """Validate and start a watch; return its name.

    Raises:
        RequestRefused: every problem, with ``watch.<key>`` paths.
    """
    body = watch_body(fields)
    watch = validate_watch(pipeline.config, body)
    if watch.webhook is not None:
        raise RequestRefused(
            "invalid watch", ["watch.webhook: start watches with a webhook over MQTT control"]
        )
    if watch.persistent:
        raise RequestRefused(
            "invalid watch",
            ["watch.persistent: watches started here are not kept across restarts"],
        )
    listing = {w["name"]: w for w in pipeline.watch_list()}
    if watch.name in {w.name for w in pipeline.config.watches} or (
        listing.get(watch.name, {}).get("origin") == "config"
    ):
        raise RequestRefused(
            "invalid watch",
            [f"watch.name: '{watch.name}' is defined in the config file; choose another name"],
        )
    runtime = [w for w in listing.values() if w["origin"] == "runtime" and w["status"] not in ENDED]
    limit = pipeline.config.control.max_watches
    if watch.name not in {w["name"] for w in runtime} and len(runtime) >= limit:
        raise RequestRefused(
            f"too many run-time watches ({len(runtime)}); control.max_watches is {limit}"
        )
    pipeline.start_watch(watch, "runtime")
    return watch.name


def cancel_watch(pipeline: Pipeline, name: str) -> None:
    """Cancel a watch (and forget it).

    Raises:
        RequestRefused: no watch of that name.
    """
    known = {w["name"] for w in pipeline.watch_list()}
    if name not in known:
        raise RequestRefused(f"no watch named '{name[:64]}'")
    pipeline.cancel_watch(name, forget=True)
