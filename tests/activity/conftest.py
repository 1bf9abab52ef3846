"""A running Lookout with the web page: the demo clip as camera, the scripted model server."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.app.process import App
from pipeline.core.config_loader import load_config
from tests.support.model_server import ScriptedModelServer
from tests.support.web_app import write_config


@pytest.fixture
def app_factory(tmp_path: Path) -> Iterator[Callable[..., App]]:
    started: list[App] = []

    def factory(model: ScriptedModelServer, **kw: Any) -> App:
        path = write_config(tmp_path, model.base_url, **kw)
        app = App(load_config(path), path)
        started.append(app)
        app.start()
        return app

    yield factory
    for app in started:
        app.stop()
