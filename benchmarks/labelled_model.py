"""The scripted vision model of the look-policy benchmark: it answers from a clip's labels.

Fixed before any wake-policy tuning (issue 14) and the same for every policy
compared: given a clip's labels and the clip time of the frame a look sent, it
answers as DESIGN.md tells a vision model to::

    the frame shows ...                 condition_met  next_run_in
    an ``event`` (the condition holds)  true           5
    a ``forming`` span                  false          2
    a ``relevant`` span                 false          5
    nothing of the above                false          60

An ``event`` wins over the other kinds, then ``forming``, then ``relevant``.
The reasoning is the label's note (or says the scene holds nothing relevant);
the notification message is the event's note, empty when not met.

Labels (``benchmarks/footage/*.labels.csv``, see its README): a header
``start,end,kind,note``, then one span a line. ``start``/``end`` are clip
seconds (``12.5``) or ``MM:SS(.f)``; a span covers the frames with
``start <= t < end``. ``kind`` is ``event``, ``forming`` or ``relevant``.
Events never overlap each other; other spans may overlap anything.

Use it in-process (exact frame times)::

    >>> labels = parse_labels("start,end,kind\\n24,26,forming\\n26,33,event\\n")
    >>> answer_at(labels, 26.0).condition_met, answer_at(labels, 25.9).next_run_in
    (True, 2)
    >>> answer_at(labels, 40.0).next_run_in
    60

or over HTTP, behind the tests' scripted OpenAI-compatible server
(``tests/support/model_server.py``)::

    python -m benchmarks.labelled_model serve benchmarks/footage/parcels.labels.csv --port 0

which prints ``READY <port>`` and answers each ``/v1/chat/completions`` from
the "Frame captured at HH:MM:SS." text of the request's last user turn: that
clock is the frame's time on the replay's virtual clock (local time of epoch
``--start-epoch`` + clip seconds; a replay starts at epoch 0 for a clip without
``creation_time``, as every clip here). The clock has whole seconds, so the
server sees ``floor(t)``: exact for the composited clips, whose label times
are whole seconds, and at most 1 s early on the real clips' fractional
boundaries. Also ``answer LABELS T...`` (print answers) and ``events LABELS``
(the events as ``start,end,note`` for ``python -m pipeline replay --labels``).
"""

from __future__ import annotations

import argparse
import csv
import io
import itertools
import json
import re
import signal
import sys
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import FrameType
from typing import Any

from pipeline.app.replay.labels import parse_time

KINDS = ("event", "forming", "relevant")
NEXT_RUN_IN = {"met": 5, "forming": 2, "relevant": 5, "empty": 60}
"""Seconds the model asks to wait, per state of the frame (DESIGN.md's guidance)."""
EMPTY_REASONING = "Nothing relevant to the condition is visible."

_CLOCK = re.compile(r"Frame captured at (\d{1,2}):(\d{2}):(\d{2})")


@dataclass(frozen=True, slots=True, order=True)
class Label:
    """One labelled span of clip time, ``start <= t < end`` (seconds)."""

    start: float
    end: float
    kind: str
    note: str = ""

    def covers(self, t: float) -> bool:
        """Whether the frame at clip time ``t`` is inside the span."""
        return self.start <= t < self.end


@dataclass(frozen=True, slots=True)
class Answer:
    """What the scripted model says about one frame."""

    condition_met: bool
    next_run_in: int
    reasoning: str
    notification_message: str
    state: str
    """``met``, ``forming``, ``relevant`` or ``empty``."""

    def to_dict(self) -> dict[str, Any]:
        """The answer's JSON object, as a vision model sends it (without ``state``)."""
        return {
            "condition_met": self.condition_met,
            "next_run_in": self.next_run_in,
            "reasoning": self.reasoning,
            "notification_message": self.notification_message,
        }

    def to_json(self) -> str:
        """The answer as the JSON text of a model's reply."""
        return json.dumps(self.to_dict())


def parse_labels(text: str, source: str = "labels") -> list[Label]:
    """Parse a labels CSV (header ``start,end,kind,note``) into spans sorted by time.

    Raises:
        ValueError: one sentence naming ``source`` and the line at fault.
    """
    rows = [
        (n, [c.strip() for c in row])
        for n, row in enumerate(csv.reader(io.StringIO(text)), start=1)
        if row and any(c.strip() for c in row) and not row[0].strip().startswith("#")
    ]
    if not rows:
        return []
    n, header = rows.pop(0)
    names = [h.lower() for h in header]
    if names[:3] != ["start", "end", "kind"]:
        raise ValueError(f"{source} line {n}: the header must be start,end,kind[,note]")
    labels: list[Label] = []
    for n, cells in rows:
        try:
            if len(cells) < 3:
                raise ValueError("a start, an end and a kind are needed")
            start, end = parse_time(cells[0]), parse_time(cells[1])
            kind = cells[2].lower()
            if kind not in KINDS:
                raise ValueError(f"kind must be one of {', '.join(KINDS)}, got {cells[2]!r}")
            if end <= start:
                raise ValueError(f"a span must end after it starts, got {start:g}-{end:g}")
        except ValueError as exc:
            raise ValueError(f"{source} line {n}: {exc}") from None
        labels.append(Label(start, end, kind, ",".join(cells[3:]).strip()))
    labels.sort()
    found = events(labels)
    for a, b in itertools.pairwise(found):
        if b.start < a.end:
            raise ValueError(
                f"{source}: events {a.start:g}-{a.end:g} s and {b.start:g}-{b.end:g} s overlap"
            )
    return labels


def load_labels(path: str | Path) -> list[Label]:
    """Read and parse a labels CSV file.

    Raises:
        ValueError: missing, unreadable or malformed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"cannot read labels {p}: {exc.strerror or exc}") from None
    return parse_labels(text, source=str(p))


def events(labels: Iterable[Label]) -> list[Label]:
    """The ``event`` spans: when the condition truly holds."""
    return sorted(lb for lb in labels if lb.kind == "event")


def answer_at(labels: Sequence[Label], t: float) -> Answer:
    """Answer for the frame at clip time ``t`` (seconds), as a vision model would."""
    on = {kind: next((lb for lb in labels if lb.kind == kind and lb.covers(t)), None)
          for kind in KINDS}  # fmt: skip
    if (ev := on["event"]) is not None:
        message = ev.note or "The condition is met."
        return Answer(True, NEXT_RUN_IN["met"], message, message, "met")
    if (lb := on["forming"]) is not None:
        reasoning = lb.note or "The condition seems about to be met."
        return Answer(False, NEXT_RUN_IN["forming"], reasoning, "", "forming")
    if (lb := on["relevant"]) is not None:
        reasoning = lb.note or "Something relevant is visible; the condition is not met."
        return Answer(False, NEXT_RUN_IN["relevant"], reasoning, "", "relevant")
    return Answer(False, NEXT_RUN_IN["empty"], EMPTY_REASONING, "", "empty")


# -- over HTTP: the frame time from the request -----------------------------


def _user_texts(request_json: Any) -> list[str]:
    messages = request_json.get("messages") if isinstance(request_json, dict) else None
    texts: list[str] = []
    for message in messages if isinstance(messages, list) else []:
        if not isinstance(message, dict) or message.get("role") != "user":
            continue
        content = message.get("content")
        if isinstance(content, str):
            texts.append(content)
        elif isinstance(content, list):
            texts.append(" ".join(str(p.get("text", "")) for p in content
                                  if isinstance(p, dict) and p.get("type") == "text"))  # fmt: skip
    return texts


def frame_time(request_json: Any, start_epoch: float = 0.0) -> float | None:
    """Clip seconds of the frame a chat request sends, from its last user turn's clock.

    The clock ("Frame captured at HH:MM:SS.") is the local time of the frame's
    epoch; clip time 0 is ``start_epoch``. Returns ``None`` without a clock.
    Times are taken modulo a day (a clip shorter than 24 h).
    """
    texts = _user_texts(request_json)
    match = _CLOCK.search(texts[-1]) if texts else None
    if match is None:
        return None
    h, m, s = (int(g) for g in match.groups())
    start = datetime.fromtimestamp(start_epoch)
    start_s = start.hour * 3600 + start.minute * 60 + start.second + start.microsecond / 1e6
    return round((h * 3600 + m * 60 + s - start_s) % 86400, 6)


def responder(labels: Sequence[Label], start_epoch: float = 0.0) -> Callable[[Any], Any]:
    """A ``responder`` for ``tests.support.model_server.ScriptedModelServer``.

    Each chat request is answered with :func:`answer_at` at the request's frame
    time; a request without a "Frame captured at" clock gets a 400.
    """
    from tests.support.model_server import Reply, Status  # only the HTTP path needs it

    def respond(request_json: Any) -> Any:
        t = frame_time(request_json, start_epoch)
        if t is None:
            message = "labelled model: no 'Frame captured at HH:MM:SS' in the last user turn"
            return Status(400, {"error": {"message": message, "type": "invalid_request_error"}})
        return Reply(answer_at(labels, t).to_json())

    return respond


def serve(labels: Sequence[Label], port: int = 0, start_epoch: float = 0.0) -> int:
    """Serve the labelled model over HTTP until SIGTERM/SIGINT; print ``READY <port>``."""
    from tests.support.model_server import ScriptedModelServer

    stop = threading.Event()

    def on_signal(_signum: int, _frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    with ScriptedModelServer(responder=responder(labels, start_epoch), port=port,
                             model_id="labelled-model") as server:  # fmt: skip
        print(f"READY {server.port}", flush=True)
        while not stop.wait(0.2):
            pass
    return 0


def events_csv(labels: Iterable[Label]) -> str:
    """The events as ``start,end,note`` lines, the format ``pipeline replay --labels`` reads."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(["start", "end", "note"])
    for ev in events(labels):
        w.writerow([f"{ev.start:g}", f"{ev.end:g}", ev.note])
    return out.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Run ``answer LABELS T...``, ``events LABELS`` or ``serve LABELS [--port N]``."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.labelled_model",
        description="The look-policy benchmark's scripted model.",
    )
    sub = p.add_subparsers(dest="command", required=True)
    a = sub.add_parser("answer", help="print the answer (JSON) for each clip time")
    a.add_argument("labels", type=Path)
    a.add_argument("times", nargs="+", help="clip seconds or MM:SS(.f)")
    e = sub.add_parser(
        "events", help="print the events as start,end,note (pipeline replay --labels)"
    )
    e.add_argument("labels", type=Path)
    s = sub.add_parser("serve", help="answer /v1/chat/completions over HTTP on 127.0.0.1")
    s.add_argument("labels", type=Path)
    s.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    s.add_argument("--start-epoch", type=float, default=0.0,
                   help="epoch seconds of clip time 0 on the replay's clock")  # fmt: skip
    args = p.parse_args(argv)
    try:
        labels = load_labels(args.labels)
        if args.command == "answer":
            for text in args.times:
                t = parse_time(text)
                print(json.dumps({"t": t, **answer_at(labels, t).to_dict()}))
            return 0
        if args.command == "events":
            sys.stdout.write(events_csv(labels))
            return 0
    except ValueError as exc:
        print(f"labelled_model: {exc}", file=sys.stderr)
        return 2
    return serve(labels, args.port, args.start_epoch)


if __name__ == "__main__":
    sys.exit(main())
