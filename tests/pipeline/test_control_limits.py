"""Bounds of run-time watch requests: every string and list field, the body, the refusal text.

The over-the-broker test (a 1 MB condition) is in ``test_control.py``, next to the
other requests over a real broker.
"""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from pipeline.app.control import RequestRefused, parse_body, validate_watch
from pipeline.app.control.limits import bound_problems, check_bounds, echo_keys
from pipeline.core.config_loader import load_config_text

CFG = """
[cameras.front]
url = "clip.mp4"
[cameras.front.zones.porch]
points = [[0, 0], [1, 0], [1, 1]]
[backends.vlm]
type = "none"
[sinks.log]
type = "jsonl"
path = "out.jsonl"
"""
BASE = {"name": "g", "camera": "front", "condition": "a cat"}
URL = "https://hooks.example.com/"


def _s(n: int) -> str:
    return "x" * n


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": _s(65)}, "watch.name: at most 64 characters, got 65"),
        ({"camera": _s(65)}, "watch.camera: at most 64 characters, got 65"),
        ({"condition": _s(2001)}, "watch.condition: at most 2000 characters, got 2001"),
        ({"backend": _s(65)}, "watch.backend: at most 64 characters, got 65"),
        ({"mode": _s(65)}, "watch.mode: at most 64 characters, got 65"),
        ({"quiet_period_s": "1" * 65}, "watch.quiet_period_s: at most 64 characters, got 65"),
        ({"labels": ["cat"] * 33}, "watch.labels: at most 32 items, got 33"),
        ({"labels": ["cat", _s(65)]}, "watch.labels[1]: at most 64 characters, got 65"),
        ({"zones": ["porch"] * 33}, "watch.zones: at most 32 items, got 33"),
        ({"zones": [_s(65)]}, "watch.zones[0]: at most 64 characters, got 65"),
        ({"sinks": ["log"] * 33}, "watch.sinks: at most 32 items, got 33"),
        ({"sinks": [_s(65)]}, "watch.sinks[0]: at most 64 characters, got 65"),
        ({"labels": _s(65)}, "watch.labels: at most 64 characters, got 65"),
        ({"webhook": URL + _s(2023)}, "watch.webhook.url: at most 2048 characters, got 2049"),
        (
            {"webhook": {"url": URL + _s(2023)}},
            "watch.webhook.url: at most 2048 characters, got 2049",
        ),
        (
            {"webhook": {"url": URL, "secret": "whsec_" + _s(1019)}},
            "watch.webhook.secret: at most 1024 characters, got 1025",
        ),
        (
            {"webhook": {"url": URL, "attach_image": _s(17)}},
            "watch.webhook.attach_image: at most 16 characters, got 17",
        ),
        (
            {"webhook": {"url": URL, **{f"k{i}": 1 for i in range(8)}}},
            "watch.webhook: at most 8 keys, got 9",
        ),
        (
            {"webhook": {"url": URL, _s(65): 1}},
            "watch.webhook: key names are at most 64 characters, got 65",
        ),
        ({"reply_to": _s(257)}, "reply_to: at most 256 characters, got 257"),
        (
            {"correlation_id": _s(255)},
            "correlation_id: at most 256 characters as JSON, got 257",
        ),
        ({f"k{i}": 1 for i in range(62)}, "the body has at most 64 keys, got 65"),
        ({_s(65): 1}, "watch: key names are at most 64 characters, got 65"),
    ],
)
def test_every_field_is_bounded_and_the_refusal_states_the_limit(
    fields: dict[str, Any], problem: str
) -> None:
    cfg = load_config_text(CFG)
    with pytest.raises(RequestRefused) as err:
        validate_watch(cfg, {**BASE, **fields})
    assert err.value.problems == [problem]
    assert err.value.message == "request too large"


@pytest.mark.parametrize(
    "fields",
    [
        {"name": _s(64)},
        {"condition": _s(2000)},
        {"labels": ["cat"] * 32},
        {"zones": ["porch"] * 32},
        {"sinks": ["log"] * 32},
        {"webhook": URL + _s(2022)},
        {"reply_to": _s(256), "correlation_id": _s(254)},
    ],
)
def test_a_field_at_its_bound_is_accepted(fields: dict[str, Any]) -> None:
    assert bound_problems({**BASE, **fields}) == []


def test_fields_at_their_bounds_make_a_valid_watch() -> None:
    cfg = load_config_text(CFG)
    body = {**BASE, "name": "n" * 64, "condition": "c" * 2000, "zones": ["porch"] * 32}
    watch = validate_watch(cfg, {**body, "labels": ["cat"] * 32, "sinks": ["log"] * 32})
    assert len(watch.condition) == 2000 and len(watch.labels) == 32


def test_every_broken_bound_is_listed_once() -> None:
    body = {**BASE, "condition": _s(1_048_576), "labels": ["l"] * 40, "camera": _s(100)}
    assert bound_problems(body) == [
        "watch.camera: at most 64 characters, got 100",
        "watch.condition: at most 2000 characters, got 1048576",
        "watch.labels: at most 32 items, got 40",
    ]


def test_a_cancel_topic_name_is_bounded() -> None:
    check_bounds({}, "g" * 64)
    with pytest.raises(RequestRefused) as err:
        check_bounds({}, "g" * 65)
    assert err.value.problems == ["watch name: at most 64 characters, got 65"]


def test_the_body_is_bounded_before_it_is_parsed() -> None:
    payload = orjson.dumps({**BASE, "condition": _s(4 * 1024 * 1024)})
    with pytest.raises(RequestRefused, match=r"at most 4194304 bytes, got 419\d{4}"):
        parse_body(payload)
    assert parse_body(orjson.dumps({**BASE, "condition": _s(1_048_576)}))["name"] == "g"


def test_a_refusal_echoes_only_bounded_request_keys() -> None:
    assert echo_keys({"correlation_id": 7, "reply_to": "r", "condition": "c"}) == {
        "correlation_id": 7,
        "reply_to": "r",
    }
    assert echo_keys({"correlation_id": [_s(300)], "reply_to": _s(300)}) == {}
