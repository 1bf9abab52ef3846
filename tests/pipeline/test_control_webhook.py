"""Run-time watches with their own webhook: SSRF refusal, allow list, signed delivery, close."""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pipeline.app.control import RequestRefused, RuntimeWatchRequest, WatchStore, validate_watch
from pipeline.core.config_loader import load_config_text
from sinks.signing import parse_secret, verify
from tests.support.clips import Clip
from tests.support.control_app import control_responder, write_control_config
from tests.support.http_receiver import HttpReceiver
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.mqtt_requester import Requester
from tests.support.waiting import wait_until

SECRET = "whsec_" + "c2VjcmV0LWtleS1mb3ItdGVzdHMtMTIzNDU2Nzg5MA=="
CFG = '[cameras.front]\nurl = "clip.mp4"\n'


@pytest.fixture
def receiver(receiver_factory: Callable[..., HttpReceiver]) -> HttpReceiver:
    """A real HTTP server on 127.0.0.1 that answers 200 and records each request."""
    return receiver_factory(path="/hooks/a-long-private-token-1234")


# ---------------------------------------------------------------- validation and the state file


def test_webhook_field_accepts_a_url_or_a_table_and_never_echoes_the_secret() -> None:
    cfg = load_config_text(CFG)
    base = {"name": "g", "camera": "front", "condition": "a cat"}
    plain = validate_watch(cfg, {**base, "webhook": "https://hooks.example.com/x"})
    assert plain.webhook is not None and plain.webhook.secret is None
    full = validate_watch(
        cfg, {**base, "webhook": {"url": "https://hooks.example.com/x", "secret": SECRET}}
    )
    assert full.webhook is not None and SECRET not in repr(full)
    assert full.listing_extra() == {"webhook": "https://hooks.example.com/..."}
    bad = "whsec_!!not-base64-but-a-secret"
    with pytest.raises(RequestRefused) as err:
        validate_watch(cfg, {**base, "webhook": {"url": "ftp://x", "secret": bad}})
    text = " ".join(err.value.problems)
    assert "watch.webhook.url" in text and "watch.webhook.secret" in text, text
    assert bad not in text and "not-base64" not in text


def test_state_file_keeps_the_secret_and_is_private(tmp_path: Path) -> None:
    cfg = load_config_text(CFG)
    body = {"name": "g", "camera": "front", "condition": "a cat", "persistent": True}
    watch = validate_watch(
        cfg, {**body, "webhook": {"url": "https://h.example/x", "secret": SECRET}}
    )
    store = WatchStore(tmp_path / "w.json")
    store.put(watch)
    assert os.stat(store.path).st_mode & 0o777 == 0o600
    again = validate_watch(cfg, store.load()[0])
    assert isinstance(again, RuntimeWatchRequest) and again.webhook is not None
    assert again.webhook.secret is not None and again.webhook.secret.get_secret_value() == SECRET


# ---------------------------------------------------------------- over a real broker and receiver


def test_runtime_webhook_refused_by_default_then_allowed_signed_and_closed(
    tmp_path: Path,
    mosquitto: Mosquitto,
    model_server_factory: Any,
    h264_clip: Clip,
    app_factory: Any,
    receiver: HttpReceiver,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    model = model_server_factory(responder=control_responder)
    path = write_control_config(tmp_path, h264_clip, mosquitto, model, "3.1.1")
    base_text = path.read_text()
    recorder = MqttRecorder.under(mosquitto, "ctl")
    requester = Requester(mosquitto, "ctl/watches/reply", v5=False)
    hook = {"url": receiver.url, "secret": SECRET}
    gate = {
        "name": "gate",
        "camera": "front",
        "condition": "the gate is open",
        "backend": "vlm",
        "webhook": hook,
    }
    try:
        # Default config: a webhook to 127.0.0.1 is refused, with the reason on the reply topic.
        app = app_factory(path)
        requester.wait_ready("ctl")
        refused = requester.request("ctl/watches/set", gate)
        assert refused["ok"] is False, refused
        assert any(
            p.startswith("watch.webhook.url:")
            and "127.0.0.1, a loopback address" in p
            and "control.allow_webhook_networks" in p
            for p in refused["problems"]
        ), refused
        assert "gate" not in {w["name"] for w in app.pipeline.watch_list()}
        app.stop()

        # Allowed: the alert arrives at the receiver, signed with the watch's secret.
        path.write_text(base_text + 'allow_webhook_networks = ["127.0.0.0/8"]\n')  # in [control]
        app = app_factory(path)
        requester.wait_ready("ctl")
        reply = requester.request("ctl/watches/set", {**gate, "persistent": True})
        assert reply["ok"] is True, reply
        delivered = wait_until(receiver.all, 30, "the webhook POST")[0]
        headers, body = delivered.headers, delivered.body
        event = json.loads(body)
        assert event["type"] == "alert.created" and event["data"]["message"] == "Gate open"
        assert event["data"]["watch"] == "gate" and event["data"]["job_id"] == reply["job_id"]
        key = parse_secret(SECRET)
        ts = int(headers["webhook-timestamp"])
        assert verify([key], headers["webhook-id"], ts, body, headers["webhook-signature"])
        assert not verify(
            [b"x" * 16], headers["webhook-id"], ts, body, headers["webhook-signature"]
        )

        # A slow watch with a webhook: listed with its endpoint label only; cancel closes its sink.
        slow = {**gate, "name": "slow", "condition": "a fox", "persistent": True}
        assert requester.request("ctl/watches/set", slow)["ok"] is True
        listed = {w["name"]: w for w in requester.request("ctl/watches/list", None)["watches"]}
        port = receiver.url.split(":")[2].split("/")[0]
        assert listed["slow"]["webhook"] == f"http://127.0.0.1:{port}/..."
        own = app.pipeline.watches["slow"].own_sinks
        assert own is not None
        sinks = list(own.sinks.values())
        assert sinks and not any(s.closed for s in sinks)
        cancelled = requester.request("ctl/watches/slow/cancel", None)
        assert cancelled["ok"] is True, cancelled
        wait_until(lambda: all(s.closed for s in sinks), 15, "the run-time webhook sink to close")
        assert "slow" not in app.pipeline.watches

        # The state file holds the secret (0600); nothing that left the process does.
        state_file = tmp_path / "lookout-watches.json"
        assert os.stat(state_file).st_mode & 0o777 == 0o600
        published = recorder.wait_for(lambda ms: True, 1)
        mqtt_text = b" ".join(p for t, p, _r in published if t != "ctl/watches/set")
        assert b"watch.webhook.url" in mqtt_text  # the refusal was seen: the check can fail
        assert SECRET.encode() not in mqtt_text
        assert b"a-long-private-token" not in mqtt_text
        assert SECRET not in caplog.text and "a-long-private-token" not in caplog.text
    finally:
        with contextlib.suppress(Exception):
            requester.close()
        recorder.close()
