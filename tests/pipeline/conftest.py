"""Fixtures of the pipeline tests: whole apps started from a config file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pipeline.app.process import App
from pipeline.core.config_loader import load_config


@pytest.fixture
def app_factory() -> Iterator[Any]:
    """Start apps from a config path (connected to MQTT); all are stopped afterwards."""
    apps: list[App] = []

    def start(path: Path) -> App:
        app = App(load_config(path), path)
        apps.append(app)
        app.start()
        assert app.pipeline.mqtt is not None
        app.pipeline.mqtt.wait_connected(10)
        return app

    try:
        yield start
    finally:
        for app in apps:
            app.stop()
