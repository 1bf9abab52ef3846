from __future__ import annotations

import base64

from operators.backends.base import ChatTurn
from operators.backends.prompt import ANSWER_SCHEMA, build_messages, build_system_prompt
from tests.support.look_requests import jpeg_bytes, look


def test_system_prompt_states_condition_focus_and_json_keys() -> None:
    prompt = build_system_prompt("a car is in the driveway", ["car"], ["driveway"])
    assert "Condition: a car is in the driveway" in prompt
    assert "object types: car." in prompt and "zones: driveway." in prompt
    for key in ("condition_met", "next_run_in", "reasoning", "notification_message"):
        assert key in prompt
    assert "60-300" in prompt and "3-10" in prompt and "1-5" in prompt
    assert "(1 to 300)" in prompt


def test_system_prompt_without_focus_has_no_focus_lines() -> None:
    assert "Focus on" not in build_system_prompt("the gate is open")


def test_messages_carry_history_and_current_frame() -> None:
    old_jpeg = jpeg_bytes(color=(1, 2, 3))
    history = (
        ChatTurn("Frame captured at 12:00:00.", old_jpeg, '{"condition_met": false}'),
        ChatTurn("Frame captured at 12:00:02.", None, '{"condition_met": false, "x": 1}'),
    )
    current = jpeg_bytes()
    msgs = build_messages(look(jpeg=current, history=history), "SYS")
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert msgs[0]["content"] == "SYS"
    first = msgs[1]["content"]
    assert first[0] == {"type": "text", "text": "Frame captured at 12:00:00."}
    url = first[1]["image_url"]["url"]
    assert base64.b64decode(url.split(",", 1)[1]) == old_jpeg
    assert msgs[3]["content"] == "Frame captured at 12:00:02."  # text only
    assert msgs[4]["content"] == '{"condition_met": false, "x": 1}'
    last = msgs[5]["content"]
    assert last[0]["text"] == "Frame captured at 12:00:05."
    assert base64.b64decode(last[1]["image_url"]["url"].split(",", 1)[1]) == current


def test_answer_schema_requires_every_key() -> None:
    assert set(ANSWER_SCHEMA["required"]) == set(ANSWER_SCHEMA["properties"])
