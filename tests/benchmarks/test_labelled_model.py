"""The look-policy benchmark's scripted model: the rule, the labels parser, the HTTP path."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from benchmarks.labelled_model import (
    EMPTY_REASONING,
    Label,
    answer_at,
    events,
    events_csv,
    frame_time,
    main,
    parse_labels,
    responder,
)
from tests.support.model_server import ScriptedModelServer

LABELS = parse_labels(
    """start,end,kind,note
# a comment line
24,26,forming,A woman carries a parcel toward the zone.
26,33,event,A parcel is in the drop zone.
30,40,relevant,A parcel is on the grass outside the zone.
85,1:31,event,"Another parcel, white."
118.5,126,relevant,
"""
)


def test_parse_sorts_and_keeps_notes() -> None:
    assert [(lb.start, lb.end, lb.kind) for lb in LABELS] == [
        (24.0, 26.0, "forming"),
        (26.0, 33.0, "event"),
        (30.0, 40.0, "relevant"),
        (85.0, 91.0, "event"),
        (118.5, 126.0, "relevant"),
    ]
    assert LABELS[3].note == "Another parcel, white." and LABELS[4].note == ""
    assert events(LABELS) == [LABELS[1], LABELS[3]]


@pytest.mark.parametrize(
    ("t", "met", "next_run_in", "state"),
    [
        (0.0, False, 60, "empty"),
        (23.9, False, 60, "empty"),
        (24.0, False, 2, "forming"),  # spans are start <= t < end
        (25.9, False, 2, "forming"),
        (26.0, True, 5, "met"),
        (31.0, True, 5, "met"),  # an event wins over an overlapping relevant span
        (32.9, True, 5, "met"),
        (33.0, False, 5, "relevant"),
        (39.9, False, 5, "relevant"),
        (40.0, False, 60, "empty"),
        (90.9, True, 5, "met"),
        (91.0, False, 60, "empty"),
        (120.0, False, 5, "relevant"),
    ],
)
def test_rule(t: float, met: bool, next_run_in: int, state: str) -> None:
    a = answer_at(LABELS, t)
    assert (a.condition_met, a.next_run_in, a.state) == (met, next_run_in, state)
    assert (a.notification_message != "") == met
    assert a.reasoning
    obj = json.loads(a.to_json())
    assert set(obj) == {"condition_met", "next_run_in", "reasoning", "notification_message"}
    assert 1 <= obj["next_run_in"] <= 300


def test_answer_text_comes_from_the_note() -> None:
    met = answer_at(LABELS, 27.0)
    assert met.reasoning == met.notification_message == "A parcel is in the drop zone."
    assert answer_at(LABELS, 25.0).reasoning == "A woman carries a parcel toward the zone."
    assert answer_at(LABELS, 50.0).reasoning == EMPTY_REASONING
    assert answer_at(LABELS, 120.0).reasoning  # an empty note still gives a reasoning
    assert answer_at([], 5.0).next_run_in == 60


def test_forming_wins_over_relevant() -> None:
    labels = [Label(0, 10, "relevant", "r"), Label(4, 6, "forming", "f")]
    assert [answer_at(labels, t).next_run_in for t in (3.0, 5.0, 7.0)] == [5, 2, 5]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("start,end,note\n1,2,x\n", "header must be start,end,kind"),
        ("start,end,kind\n1,2,met\n", "line 2: kind must be one of event, forming, relevant"),
        ("start,end,kind\n5,2,event\n", "line 2: a span must end after it starts"),
        ("start,end,kind\n1,x,event\n", "line 2: 'x' is not a time"),
        ("start,end,kind\n1,2\n", "line 2: a start, an end and a kind are needed"),
        ("start,end,kind\n1,5,event\n4,8,event\n", "events 1-5 s and 4-8 s overlap"),
    ],
)
def test_bad_labels_say_where(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_labels(text, source="x.csv")


def test_events_csv_is_what_replay_labels_read() -> None:
    assert events_csv(LABELS) == (
        'start,end,note\n26,33,A parcel is in the drop zone.\n85,91,"Another parcel, white."\n'
    )


def _clock(epoch: float) -> str:
    """The watch's user turn: the frame's local time (DESIGN.md: "Frame captured at HH:MM:SS.")."""
    return f"Frame captured at {datetime.fromtimestamp(epoch).strftime('%H:%M:%S')}."


def _request(*user_texts: str) -> dict[str, Any]:
    """A chat request as the openai backend sends it: system prompt, history, the newest frame."""
    messages: list[dict[str, Any]] = [{"role": "system", "content": "Condition: ..."}]
    for text in user_texts:
        messages.append(
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": text},
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                ],
            }
        )
        messages.append({"role": "assistant", "content": '{"condition_met": false}'})
    messages.pop()  # the newest user turn has no answer yet
    return {"model": "m", "messages": messages}


@pytest.mark.parametrize("start_epoch", [0.0, 1_700_000_000.0, 1_700_086_390.0])
def test_frame_time_reads_the_newest_clock(start_epoch: float) -> None:
    for t in (0.0, 26.0, 26.9, 179.5):
        req = _request(_clock(start_epoch + 3), _clock(start_epoch + t))
        # The clock has whole seconds: the server sees floor(t) on a whole-second start.
        assert frame_time(req, start_epoch) == float(int(t))
    assert frame_time({"messages": [{"role": "user", "content": _clock(42.0)}]}) == 42.0
    assert frame_time(_request("no clock here")) is None
    assert frame_time({"messages": "x"}) is None and frame_time(None) is None


def _post(url: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url + "/chat/completions",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def test_scripted_server_answers_from_the_labels() -> None:
    start = 1_700_000_000.0
    with ScriptedModelServer(responder=responder(LABELS, start)) as srv:
        got = []
        for t in (10.0, 25.0, 26.0, 32.9, 33.0, 120.0):
            status, body = _post(srv.base_url, _request(_clock(start + t)))
            assert status == 200
            got.append(json.loads(body["choices"][0]["message"]["content"]))
        status, body = _post(srv.base_url, _request("no clock"))
    assert [(a["condition_met"], a["next_run_in"]) for a in got] == [
        (False, 60), (False, 2), (True, 5), (True, 5), (False, 5), (False, 5)
    ]  # fmt: skip
    assert got[2]["notification_message"] == "A parcel is in the drop zone."
    assert status == 400 and "Frame captured at" in json.dumps(body)


def test_command_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    csv_path = tmp_path / "x.labels.csv"
    csv_path.write_text("start,end,kind,note\n26,33,event,parcel\n", encoding="utf-8")
    assert main(["answer", str(csv_path), "25", "0:27"]) == 0
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [(x["t"], x["condition_met"], x["next_run_in"]) for x in lines] == [
        (25.0, False, 60), (27.0, True, 5)
    ]  # fmt: skip
    assert main(["events", str(csv_path)]) == 0
    assert capsys.readouterr().out == "start,end,note\n26,33,parcel\n"
    assert main(["events", str(tmp_path / "missing.csv")]) == 2
    assert "cannot read labels" in capsys.readouterr().err
