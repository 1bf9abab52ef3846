"""What an OpenAI-compatible server says about itself: its models and whether they take images.

``GET /v1/models`` lists the models (some servers add capabilities per model);
llama.cpp's ``GET /props`` tells whether its model has a vision projector.

Example:
    >>> ProbeResult(True, ("m",), "m", True).summary()
    'reachable, model m takes images'
    >>> ProbeResult(False, detail="connection refused").summary()
    'unreachable: connection refused'
    >>> ProbeResult(True, authorized=False).summary()
    'reachable, but unauthorized: check the API key'
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from pipeline.net.http import HttpClient, HttpResponse, TransportError

UNAUTHORIZED = "unauthorized: check the API key"
"""What a 401 or 403 from the model server means for people (log, state, listing)."""


@dataclass(frozen=True, slots=True)
class ProbeResult:
    """What a probe of the server found.

    Attributes:
        reachable: ``/v1/models`` answered 200.
        models: model ids the server lists.
        model: the model this backend uses.
        vision: whether the model takes images (``None``: the server does not say).
        detail: one line for people (why unreachable, or what was found).
        latency_s: seconds the probe took.
        authorized: False when the server refused the API key (401/403 from
            ``/v1/models``, or from llama.cpp's ``/props`` where ``/v1/models`` is public).
    """

    reachable: bool
    models: tuple[str, ...] = ()
    model: str = ""
    vision: bool | None = None
    detail: str = ""
    latency_s: float = 0.0
    authorized: bool = True

    @property
    def usable(self) -> bool:
        """Reachable, the key accepted, and the model not known to be blind."""
        return self.reachable and self.authorized and self.vision is not False

    def summary(self) -> str:
        """``reachable, model X takes images`` or why not."""
        if not self.reachable:
            return f"unreachable: {self.detail}"
        if not self.authorized:
            return f"reachable, but {UNAUTHORIZED}"
        if self.vision is False:
            return f"reachable, but model {self.model or '?'} cannot take images"
        images = "takes images" if self.vision else "image support not reported"
        return f"reachable, model {self.model or '?'} {images}"


def probe_server(client: HttpClient, model: str, timeout_s: float) -> ProbeResult:
    """Ask the server for its models (and llama.cpp ``/props``); never raises.

    Args:
        client: the backend's client (base URL ending in ``/v1``).
        model: the configured model (empty: the first one listed).
        timeout_s: connect and read timeout of each request (twice that in all).
    """
    t0 = time.monotonic()
    try:
        resp = _get(client, "/models", timeout_s)
    except (TransportError, RuntimeError) as exc:
        return ProbeResult(False, detail=str(exc), latency_s=time.monotonic() - t0)
    if resp.status in (401, 403):
        detail = f"{UNAUTHORIZED} (GET /models answered {resp.status})"
        return ProbeResult(True, detail=detail, authorized=False, latency_s=time.monotonic() - t0)
    if resp.status != 200:
        detail = f"GET /models answered {resp.status}: {resp.error_text()}"
        return ProbeResult(False, detail=detail, latency_s=time.monotonic() - t0)
    models, caps = parse_models(resp)
    chosen = model or (models[0] if models else "")
    props_status, props = _props(client, timeout_s)
    vision = caps.get(chosen)
    if vision is None and props is not None:
        vision = vision_from_props(props)
    authorized = props_status not in (401, 403)
    detail = f"{len(models)} model(s) listed"
    if not authorized:
        detail = f"{UNAUTHORIZED} (GET /props answered {props_status})"
    return ProbeResult(
        True,
        tuple(models),
        chosen,
        vision,
        detail=detail,
        latency_s=time.monotonic() - t0,
        authorized=authorized,
    )


def _get(client: HttpClient, path: str, timeout_s: float, *, root: bool = False) -> HttpResponse:
    return client.request(
        "GET",
        path,
        root=root,
        connect_timeout_s=timeout_s,
        read_timeout_s=timeout_s,
        request_timeout_s=2 * timeout_s,
    )


def _props(client: HttpClient, timeout_s: float) -> tuple[int | None, dict[str, Any] | None]:
    """llama.cpp's ``/props``: (status or None, the object when it answered 200 with one)."""
    try:
        resp = _get(client, "/props", timeout_s, root=True)
        if resp.status != 200:
            return resp.status, None
        data = resp.json()
    except (TransportError, RuntimeError, ValueError):
        return None, None
    return 200, data if isinstance(data, dict) else None


def parse_models(resp: HttpResponse) -> tuple[list[str], dict[str, bool]]:
    """Model ids from ``/v1/models``, and per-model vision when capabilities are listed.

    Example:
        >>> parse_models(HttpResponse(200, {}, b'{"data": [{"id": "m", "type": "vlm"}]}'))
        (['m'], {'m': True})
    """
    try:
        data = resp.json()
    except ValueError:
        return [], {}
    ids: list[str] = []
    caps: dict[str, bool] = {}
    if not isinstance(data, dict):
        return ids, caps
    for key in ("data", "models"):
        items = data.get(key)
        for item in items if isinstance(items, list) else []:
            if not isinstance(item, dict):
                continue
            mid = item.get("id") or item.get("model") or item.get("name")
            if not isinstance(mid, str):
                continue
            if mid not in ids:
                ids.append(mid)
            found = vision_from_capabilities(item)
            if found is not None:
                caps[mid] = found
    return ids, caps


def vision_from_capabilities(item: dict[str, Any]) -> bool | None:
    """Whether a ``/v1/models`` entry says its model takes images (``None``: it does not say)."""
    for key in ("capabilities", "modalities", "input_modalities"):
        value = item.get(key)
        if isinstance(value, list):
            words = " ".join(str(v).lower() for v in value)
            return any(w in words for w in ("vision", "image", "multimodal"))
        if isinstance(value, dict):
            if "vision" in value:
                return bool(value["vision"])
            if "image" in value:
                return bool(value["image"])
    meta = item.get("meta")
    if isinstance(meta, dict):
        return vision_from_capabilities(meta)
    if item.get("type") == "vlm":
        return True
    return None


def vision_from_props(props: dict[str, Any]) -> bool | None:
    """Whether llama.cpp's ``/props`` says its model takes images (``None``: it does not say)."""
    modalities = props.get("modalities")
    if isinstance(modalities, dict) and "vision" in modalities:
        return bool(modalities["vision"])
    if "multimodal" in props:
        return bool(props["multimodal"])
    return None
