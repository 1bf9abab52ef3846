"""Fixtures of the camera-source tests: misbehaving TCP and HTTP servers, a fake Frigate, on loopback."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from tests.support.frigate_api import FrigateApi
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.silent_server import SilentServer


@pytest.fixture
def silent_server() -> Iterator[SilentServer]:
    """A TCP server that accepts and never answers (``.port``)."""
    server = SilentServer()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def html_port(receiver_factory: Callable[..., HttpReceiver]) -> int:
    """An HTTP server on loopback that answers every request with an HTML page."""
    page = b"<!doctype html><html><body>Camera login</body></html>" * 40
    return receiver_factory(default=Reply(headers={"Content-Type": "text/html"}, body=page)).port


@pytest.fixture
def frigate() -> Iterator[FrigateApi]:
    """A fake Frigate serving ``/api/porch/latest.jpg`` (``.port``, ``.status``, ``.requests``)."""
    with FrigateApi({"cameras": {"porch": {}}}) as server:
        yield server
