"""``LABELS.csv``: the intervals of a clip when a watch's condition truly holds.

One interval per line, ``start,end[,note]``, in clip seconds (``12.5``),
``MM:SS(.f)`` or ``HH:MM:SS(.f)``. An optional header line names the columns
(``start,end,note``, and optionally ``kind``); blank lines and lines starting
with ``#`` are skipped. Intervals are returned sorted.

The ``kind`` of an interval says what the picture shows then (the guidance
the model's ``next_run_in`` follows): ``event`` (the default: the condition
holds, an alert is due), ``forming`` (it is about to hold) or ``relevant``
(something relevant is visible, the condition does not hold). Events must not
overlap each other; the other kinds may overlap anything. Only ``event``
intervals are counted by the figures (time to alert, misses, false alerts);
the other kinds tell a scripted model what to answer.

Example:
    >>> parse_labels("start,end,note\\n4,8,first visit\\n0:13,0:16\\n")
    ... # doctest: +NORMALIZE_WHITESPACE
    [Interval(start=4.0, end=8.0, note='first visit', kind='event'),
     Interval(start=13.0, end=16.0, note='', kind='event')]
    >>> [iv.kind for iv in parse_labels("start,end,kind\\n1,2,forming\\n2,5,event\\n")]
    ['forming', 'event']
"""

from __future__ import annotations

import csv
import io
import itertools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True, slots=True, order=True)
class Interval:
    """A span of clip time ``[start, end]`` in seconds when the condition holds.

    Example:
        >>> Interval(4, 8).contains(8.0), Interval(4, 8).contains(8.5, tolerance=1)
        (True, True)
    """

    start: float
    end: float
    note: str = ""
    kind: str = "event"

    def __post_init__(self) -> None:
        object.__setattr__(self, "start", float(self.start))
        object.__setattr__(self, "end", float(self.end))
        if self.kind not in KINDS:
            raise ValueError(
                f"An interval's kind must be one of {', '.join(KINDS)}, got {self.kind!r}."
            )
        if self.start < 0:
            raise ValueError(f"An interval cannot start before 0 s, got {self.start}.")
        if self.end <= self.start:
            raise ValueError(f"An interval must end after it starts, got {self.start}-{self.end}.")

    def contains(self, t: float, tolerance: float = 0.0) -> bool:
        """Whether clip time ``t`` is inside, counting ``tolerance`` seconds after the end."""
        return self.start <= t <= self.end + tolerance

    @property
    def length(self) -> float:
        """Seconds the interval lasts."""
        return self.end - self.start

    def to_dict(self) -> dict[str, float | str]:
        """A JSON-able dict."""
        return {"start": self.start, "end": self.end, "note": self.note, "kind": self.kind}


KINDS = ("event", "forming", "relevant")
"""Kinds of labelled intervals: the condition holds / is about to / something relevant shows."""


def events(intervals: Sequence[Interval]) -> list[Interval]:
    """The intervals when the condition holds (kind ``event``): what the figures count.

    Example:
        >>> events([Interval(1, 2, kind="forming"), Interval(2, 5)])
        [Interval(start=2.0, end=5.0, note='', kind='event')]
    """
    return [iv for iv in intervals if iv.kind == "event"]


def kind_at(intervals: Sequence[Interval], t: float) -> str | None:
    """The kind of the interval holding clip time ``t`` (``[start, end)``), ``None`` outside all.

    Example:
        >>> ivs = [Interval(1, 2, kind="forming"), Interval(2, 5)]
        >>> kind_at(ivs, 0.5), kind_at(ivs, 1.5), kind_at(ivs, 2.0), kind_at(ivs, 5.0)
        (None, 'forming', 'event', None)
    """
    for iv in intervals:
        if iv.start <= t < iv.end:
            return iv.kind
    return None


def parse_time(text: str) -> float:
    """Return seconds from ``12.5``, ``MM:SS(.f)`` or ``HH:MM:SS(.f)``.

    Example:
        >>> parse_time("75"), parse_time("1:15"), parse_time("01:01:15.5")
        (75.0, 75.0, 3675.5)

    Raises:
        ValueError: not a time.
    """
    parts = text.strip().split(":")
    if not 1 <= len(parts) <= 3 or any(p.strip() == "" for p in parts):
        raise ValueError(f"{text.strip()!r} is not a time (seconds, MM:SS or HH:MM:SS).")
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise ValueError(f"{text.strip()!r} is not a time (seconds, MM:SS or HH:MM:SS).") from None
    if any(v < 0 for v in values) or any(v >= 60 for v in values[1:]):
        raise ValueError(f"{text.strip()!r} is not a time (seconds, MM:SS or HH:MM:SS).")
    seconds = 0.0
    for v in values:
        seconds = seconds * 60 + v
    return seconds


def _is_header(row: list[str]) -> bool:
    try:
        parse_time(row[0])
    except ValueError:
        return True
    return False


def parse_labels(text: str, source: str = "LABELS.csv") -> list[Interval]:
    """Parse the text of a labels file into sorted, non-overlapping intervals.

    Raises:
        ValueError: one plain sentence naming ``source`` and the line at fault.
    """
    rows: list[tuple[int, list[str]]] = []
    for lineno, row in enumerate(csv.reader(io.StringIO(text)), start=1):
        cells = [c.strip() for c in row]
        if not cells or all(c == "" for c in cells) or cells[0].startswith("#"):
            continue
        rows.append((lineno, cells))
    columns = {"start": 0, "end": 1, "note": 2}
    if rows and _is_header(rows[0][1]):
        lineno, header = rows.pop(0)
        names = [h.lower() for h in header]
        if "start" not in names or "end" not in names:
            raise ValueError(
                f"{source} line {lineno}: a header needs 'start' and 'end' columns, "
                f"got {', '.join(header)}."
            )
        columns = {
            name: names.index(name) for name in ("start", "end", "note", "kind") if name in names
        }
    out: list[tuple[Interval, int]] = []
    for lineno, cells in rows:
        try:
            start = parse_time(_cell(cells, columns["start"]))
            end = parse_time(_cell(cells, columns["end"]))
            note_col, kind_col = columns.get("note"), columns.get("kind")
            note = cells[note_col] if note_col is not None and note_col < len(cells) else ""
            kind = cells[kind_col] if kind_col is not None and kind_col < len(cells) else ""
            out.append((Interval(start, end, note, kind.lower() or "event"), lineno))
        except ValueError as exc:
            raise ValueError(f"{source} line {lineno}: {exc}") from None
    out.sort()
    # Events never overlap; the other kinds (forming, relevant) may overlap anything.
    for (prev, prev_line), (cur, line) in itertools.pairwise(
        [(iv, n) for iv, n in out if iv.kind == "event"]
    ):
        if cur.start < prev.end:
            raise ValueError(
                f"{source} line {line}: interval {cur.start:g}-{cur.end:g} s overlaps "
                f"{prev.start:g}-{prev.end:g} s on line {prev_line}."
            )
    return [iv for iv, _ in out]


def _cell(cells: list[str], index: int) -> str:
    if index >= len(cells) or cells[index] == "":
        raise ValueError("a start and an end are needed.")
    return cells[index]


def load_labels(path: str | Path) -> list[Interval]:
    """Read and parse a labels file.

    Raises:
        ValueError: the file is missing, unreadable or malformed.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise ValueError(f"Cannot read labels file {p}: {exc.strerror or exc}.") from None
    return parse_labels(text, source=str(p))
