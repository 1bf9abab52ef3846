"""Pure parts of the replay: labels, metrics, speed, progress bar, comparison table, timeline."""

from __future__ import annotations

import doctest
import importlib
import io

import pytest

from pipeline.app.replay.compare import format_table
from pipeline.app.replay.engine import parse_speed
from pipeline.app.replay.labels import Interval, parse_labels, parse_time
from pipeline.app.replay.metrics import (
    Figures,
    false_alerts,
    look_agreement,
    looks_per_minute,
    missed_intervals,
    precision_recall,
    time_to_first_alert,
)
from pipeline.app.replay.progress import ProgressBar, format_clock, render_bar
from pipeline.app.replay.timeline import nice_step, tick_label


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("0", 0.0), ("12.5", 12.5), ("1:15", 75.0), ("01:02:03.5", 3723.5), (" 0:04 ", 4.0)],
)
def test_parse_time(text: str, seconds: float) -> None:
    assert parse_time(text) == seconds


@pytest.mark.parametrize("text", ["", "abc", "1:60", "-3", "1::2", "1:2:3:4"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="is not a time"):
        parse_time(text)


def test_parse_labels_with_and_without_header() -> None:
    text = "# my clip\nstart,end,note\n\n13,16,second\n0:04,0:08,first\n"
    assert parse_labels(text) == [Interval(4, 8, "first"), Interval(13, 16, "second")]
    assert parse_labels("1,2\n3,4.5\n") == [Interval(1, 2), Interval(3, 4.5)]
    assert parse_labels("note,end,start\nx,9,7\n") == [Interval(7, 9, "x")]
    assert parse_labels("") == []


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("begin,stop\n1,2\n", "LABELS.csv line 1: a header needs 'start' and 'end' columns"),
        ("1,2\n5,4\n", "LABELS.csv line 2: An interval must end after it starts, got 5.0-4.0."),
        ("1\n", "LABELS.csv line 1: a start and an end are needed."),
        ("1,x\n", "LABELS.csv line 1: 'x' is not a time"),
        ("1,5\n4,8\n", "LABELS.csv line 2: interval 4-8 s overlaps 1-5 s on line 1."),
    ],
)
def test_parse_labels_errors_name_the_line(text: str, message: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_labels(text)
    assert str(err.value).startswith(message)


IVS = [Interval(4, 8), Interval(13, 16), Interval(30, 40)]


@pytest.mark.parametrize(
    ("alerts", "tolerance", "ttfa", "false", "missed"),
    [
        ([], 0.0, [None, None, None], [], IVS),
        ([5.0, 14.0, 31.5], 0.0, [1.0, 1.0, 1.5], [], []),
        ([2.0, 4.0, 4.5, 9.0], 0.0, [0.0, None, None], [2.0, 9.0], IVS[1:]),
        ([2.0, 4.0, 4.5, 9.0], 1.0, [0.0, None, None], [2.0], IVS[1:]),
        ([8.0, 16.0], 0.0, [4.0, 3.0, None], [], IVS[2:]),
    ],
)
def test_alert_figures(
    alerts: list[float],
    tolerance: float,
    ttfa: list[float | None],
    false: list[float],
    missed: list[Interval],
) -> None:
    assert time_to_first_alert(IVS, alerts, tolerance) == ttfa
    assert false_alerts(IVS, alerts, tolerance) == false
    assert missed_intervals(IVS, alerts, tolerance) == missed


def test_precision_recall_and_the_end_of_the_watch() -> None:
    assert precision_recall(IVS, [5.0, 6.0, 14.0, 20.0]) == (0.75, 2 / 3)
    # The watch ended at 10 s: only the first interval was reached.
    assert precision_recall(IVS, [5.0], until=10.0) == (1.0, 1.0)
    assert missed_intervals(IVS, [], until=10.0) == IVS[:1]
    assert precision_recall([], []) == (None, None)


def test_looks_per_minute_and_agreement() -> None:
    assert looks_per_minute(6, 20.0) == 18.0
    assert looks_per_minute(1, 0.0) == 0.0
    looks = [(0.0, False), (5.0, True), (6.0, False), (9.0, True), (10.0, None)]
    assert look_agreement(IVS, looks) == 0.5
    assert look_agreement(IVS, [(1.0, None)]) is None


@pytest.mark.parametrize(
    ("speed", "factor"), [("max", None), (None, None), ("1x", 1.0), ("0.5X", 0.5), (3, 3.0)]
)
def test_parse_speed(speed: str | float | None, factor: float | None) -> None:
    assert parse_speed(speed) == factor


@pytest.mark.parametrize("speed", ["fast", "0x", "-1x", ""])
def test_parse_speed_rejects(speed: str) -> None:
    with pytest.raises(ValueError, match="Speed must be"):
        parse_speed(speed)


def test_progress_bar_on_a_pipe_writes_one_line_per_tenth() -> None:
    out = io.StringIO()
    bar = ProgressBar(100.0, label="w", stream=out, tty=False)
    for t in range(0, 101, 5):
        bar.update(float(t), f"looks {t // 5}")
    bar.close()
    lines = out.getvalue().splitlines()
    assert len(lines) == 11
    assert lines[0] == "w    0%  0:00 / 1:40  looks 0"
    assert lines[-1] == "w  100%  1:40 / 1:40  looks 20"


def test_progress_bar_on_a_terminal_redraws_in_place() -> None:
    out = io.StringIO()
    bar = ProgressBar(60.0, stream=out, tty=True)
    bar.update(60.0, "done")
    bar.close()
    bar.close()
    text = out.getvalue()
    assert text.startswith("\r[" + "#" * 28 + "]  100%  1:00 / 1:00")
    assert text.endswith("done\n") and text.count("\n") == 1
    assert format_clock(3725) == "1:02:05" and render_bar(0, None, 4) == "[----]"


def _figures(watch: str, **kw: object) -> Figures:
    base: dict[str, object] = dict(
        watch=watch, mode="repeat", backend="det (detections)", detector="motion",
        duration_s=20.0, replayed_s=20.0, ended_at_s=None, status="running", looks=6,
        looks_per_minute=18.0, looks_by_trigger={}, answers={}, model_time_s=0.0,
        detections=1, zone_hits=1, wakes=1, alerts=2, alert_times=[5.0, 14.0],
    )  # fmt: skip
    base.update(kw)
    return Figures(**base)  # type: ignore[arg-type]


def test_comparison_table_has_one_column_per_variant() -> None:
    a = _figures("a", time_to_first_alert_s=[1.0, None], precision=1.0, recall=0.5)
    b = _figures("bee", looks=3, alerts=1, alert_times=[5.0])
    lines = format_table([a, b]).splitlines()
    assert lines[0].split() == ["figure", "a", "bee"]
    rows = {line[:20].strip(): line[20:].split("  ") for line in lines[1:]}
    assert "looks" in rows and "recall" in rows
    assert "time to first alert  1 s, missed" in format_table([a])
    assert "precision            100%" in format_table([a])
    assert "recall               -" in format_table([b])


@pytest.mark.parametrize(
    ("span", "step"), [(5, 0.5), (10, 1.0), (80, 10.0), (600, 60.0), (3600, 300.0)]
)
def test_nice_step(span: float, step: float) -> None:
    assert nice_step(span) == step
    assert span / step <= 12


def test_tick_label() -> None:
    assert [tick_label(t) for t in (0, 75, 2.5, 600)] == ["0:00", "1:15", "0:02.5", "10:00"]


@pytest.mark.parametrize("name", ["labels", "metrics", "progress", "timeline", "engine", "compare"])
def test_docstring_examples_run(name: str) -> None:
    module = importlib.import_module(f"pipeline.app.replay.{name}")
    assert doctest.testmod(module, optionflags=doctest.ELLIPSIS).failed == 0
