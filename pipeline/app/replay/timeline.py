"""The timeline picture of a replay, drawn with Pillow.

One row per kind of event on a shared clip-time axis:

- **truth**: the labelled intervals (also shaded behind every row);
- **detections**: every detection (light ticks), those matching the watch's
  labels and zones (dark ticks), and wakes after the cooldown (triangles);
- **looks**: every look as a tick coloured by its answer (a dot above the
  tick marks a look that a wake started);
- **next look**: the ``next_run_in`` each look asked for, as a step line (the
  axis top can be shared by the variants of a comparison: ``next_max_s``);
- **alerts**: diamonds, with a thin red line through every row.

After the watch ended (``once`` mode after its alert, a time-out) the rest of
the clip is greyed out.

Example:
    >>> img = draw_timeline(run, intervals)  # doctest: +SKIP
    >>> img.size  # doctest: +SKIP
    (1200, 360)
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pipeline.app.replay.labels import Interval
from pipeline.app.replay.run import ReplayRun

WIDTH = 1200
HEIGHT = 360
"""Default picture size in pixels (the report's PNG is exactly this size)."""

Rgb = tuple[int, int, int]

BACKGROUND: Rgb = (255, 255, 255)
INK: Rgb = (40, 40, 40)
GRID: Rgb = (225, 225, 225)
TRUTH: Rgb = (44, 160, 44)
TRUTH_SHADE: Rgb = (222, 242, 222)
DETECTION: Rgb = (190, 190, 190)
ZONE_HIT: Rgb = (120, 120, 120)
WAKE: Rgb = (255, 127, 14)
ALERT: Rgb = (214, 39, 40)
ENDED: Rgb = (238, 238, 238)
NEXT_LINE: Rgb = (31, 119, 180)

ANSWER_COLOURS: dict[str, Rgb] = {
    "met": (214, 39, 40),
    "not_met": (31, 119, 180),
    "empty": (148, 103, 189),
    "unparseable": (148, 103, 189),
    "no_frame": (90, 90, 90),
    "unavailable": (90, 90, 90),
    "error": (0, 0, 0),
}
"""Colour of a look's tick by its answer kind."""

LEFT, RIGHT, TOP = 96, 16, 30
ROWS: tuple[tuple[str, int], ...] = (
    ("truth", 16),
    ("detections", 24),
    ("looks", 26),
    ("next look", 0),  # takes the height that is left
    ("alerts", 20),
)
ROW_GAP = 6
AXIS_H = 22
LEGEND_H = 22


def nice_step(span_s: float, max_ticks: int = 12) -> float:
    """A round tick step (1, 2, 5, 10, 15, 30 s, 1, 2, 5, 10... min) giving at most ``max_ticks``.

    Example:
        >>> nice_step(80), nice_step(600), nice_step(5)
        (10.0, 60.0, 0.5)
    """
    steps = (0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200)
    for step in steps:
        if span_s / step <= max_ticks:
            return float(step)
    return float(steps[-1] * max(1, round(span_s / steps[-1] / max_ticks)))


def tick_label(t: float) -> str:
    """``M:SS`` for whole seconds, ``M:SS.s`` otherwise.

    Example:
        >>> tick_label(75), tick_label(2.5)
        ('1:15', '0:02.5')
    """
    m, s = divmod(t, 60)
    return f"{int(m)}:{s:02.0f}" if float(s).is_integer() else f"{int(m)}:{s:04.1f}"


def _font(size: int) -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    try:
        return ImageFont.load_default(size=size)
    except (TypeError, OSError):  # Pillow without FreeType: the bitmap font
        return ImageFont.load_default()


@dataclass(frozen=True, slots=True)
class _Canvas:
    """A picture being drawn: its draw handle, fonts, the time axis and the rows."""

    d: ImageDraw.ImageDraw
    font: ImageFont.ImageFont | ImageFont.FreeTypeFont
    small: ImageFont.ImageFont | ImageFont.FreeTypeFont
    span: float
    x0: int
    x1: int
    width: int
    rows: dict[str, tuple[int, int]]

    @property
    def top(self) -> int:
        return min(ya for ya, _ in self.rows.values())

    @property
    def bottom(self) -> int:
        return max(yb for _, yb in self.rows.values())

    def x(self, t: float) -> int:
        """The x pixel of clip time ``t`` (clamped to the clip)."""
        return round(self.x0 + (self.x1 - self.x0) * min(max(t, 0.0), self.span) / self.span)


def _rows(panel_h: int) -> dict[str, tuple[int, int]]:
    rows: dict[str, tuple[int, int]] = {}
    y = TOP
    for name, h in ROWS:
        h = h or panel_h
        rows[name] = (y, y + h)
        y += h + ROW_GAP
    return rows


def _draw_frame(c: _Canvas, run: ReplayRun, ivs: Sequence[Interval]) -> None:
    """Title, shading (labelled intervals, the part after the end), grid, axis, row names."""
    d, x = c.d, c.x
    title = (
        f"{run.watch.name}  ({run.watch.mode}, backend {run.backend or '?'}, "
        f"detector {run.detector.split(' ')[0]})  {run.clip.name}"
    )
    d.text((c.x0, 8), title, fill=INK, font=c.font)
    for iv in ivs:
        d.rectangle((x(iv.start), c.top, max(x(iv.start), x(iv.end)), c.bottom), fill=TRUTH_SHADE)
    if run.ended_at is not None and run.ended_at < c.span:
        d.rectangle((x(run.ended_at), c.top, c.x1, c.bottom), fill=ENDED)
    step = nice_step(c.span)
    t = 0.0
    while t <= c.span + 1e-9:
        xt = x(t)
        d.line((xt, c.top, xt, c.bottom), fill=GRID)
        d.line((xt, c.bottom, xt, c.bottom + 4), fill=INK)
        label = tick_label(t)
        w = d.textlength(label, font=c.small)
        d.text((min(max(xt - w / 2, 0), c.width - w), c.bottom + 6), label, fill=INK, font=c.small)
        t += step
    d.line((c.x0, c.bottom, c.x1, c.bottom), fill=INK)
    for name, (ya, yb) in c.rows.items():
        d.text((8, (ya + yb) / 2 - 7), name, fill=INK, font=c.font)


def _draw_truth(c: _Canvas, ivs: Sequence[Interval]) -> None:
    ya, yb = c.rows["truth"]
    for iv in ivs:
        c.d.rectangle((c.x(iv.start), ya + 2, max(c.x(iv.start) + 1, c.x(iv.end)), yb - 2),
                      fill=TRUTH)  # fmt: skip


def _draw_detections(c: _Canvas, run: ReplayRun) -> None:
    """Every detection, the zone hits, and the wakes (triangles)."""
    ya, yb = c.rows["detections"]
    mid = (ya + yb) // 2
    for xd in sorted({c.x(m.time) for m in run.detections}):
        c.d.line((xd, mid - 3, xd, yb - 2), fill=DETECTION)
    for xh in sorted({c.x(th) for th in run.zone_hits}):
        c.d.line((xh, ya + 6, xh, yb - 2), fill=ZONE_HIT)
    for xw in sorted({c.x(tw) for tw in run.wakes}):
        c.d.polygon([(xw - 4, ya), (xw + 4, ya), (xw, ya + 6)], fill=WAKE)


def _draw_looks(c: _Canvas, run: ReplayRun) -> None:
    """Each look as a tick coloured by its answer; a dot above the ones a wake started."""
    ya, yb = c.rows["looks"]
    for lk in run.looks:
        xl = c.x(run.clip_time(lk.time))
        colour = ANSWER_COLOURS.get(lk.verdict.kind.value, INK)
        c.d.line((xl, ya + 7, xl, yb - 1), fill=colour, width=2)
        if lk.trigger == "wake":
            c.d.ellipse((xl - 2, ya + 1, xl + 2, ya + 5), fill=WAKE)


def next_axis_top(values: Sequence[float]) -> float:
    """The top of the next-look axis for these ``next_run_in`` values (at least 10 s, round).

    Example:
        >>> next_axis_top([5, 60]), next_axis_top([2]), next_axis_top([])
        (60.0, 10.0, 10.0)
    """
    top_s = max([*values, 10.0])
    return nice_step(top_s, max_ticks=1) if top_s > 10 else 10.0


def _draw_next(c: _Canvas, run: ReplayRun, next_max_s: float | None) -> None:
    """``next_run_in`` of each look as a step line."""
    d = c.d
    ya, yb = c.rows["next look"]
    d.rectangle((c.x0, ya, c.x1, yb), outline=GRID)
    points = [(run.clip_time(lk.time), float(lk.verdict.next_run_in)) for lk in run.looks]
    top_s = next_axis_top([v for _, v in points] if next_max_s is None else [next_max_s])

    def yv(v: float) -> int:
        return round(yb - 2 - (yb - ya - 4) * min(v, top_s) / top_s)

    d.text((c.x0 - 40, ya - 2), f"{top_s:g} s", fill=INK, font=c.small)
    d.text((c.x0 - 26, yb - 12), "0 s", fill=INK, font=c.small)
    end_x = c.x(run.replayed_s if run.ended_at is None else run.ended_at)
    for i, (tp, v) in enumerate(points):
        xa = c.x(tp)
        xb = c.x(points[i + 1][0]) if i + 1 < len(points) else max(end_x, xa)
        yy = yv(v)
        if i > 0:
            d.line((xa, yv(points[i - 1][1]), xa, yy), fill=NEXT_LINE, width=2)
        d.line((xa, yy, xb, yy), fill=NEXT_LINE, width=2)


def _draw_alerts(c: _Canvas, run: ReplayRun) -> None:
    ya, yb = c.rows["alerts"]
    cy = (ya + yb) // 2
    for a in run.alerts:
        xa = c.x(run.clip_time(a.time))
        c.d.line((xa, c.top, xa, yb), fill=ALERT)
        c.d.polygon([(xa, cy - 7), (xa + 6, cy), (xa, cy + 7), (xa - 6, cy)], fill=ALERT)


LEGEND: tuple[tuple[str, Rgb], ...] = (
    ("true interval", TRUTH),
    ("detection", DETECTION),
    ("in zone", ZONE_HIT),
    ("wake", WAKE),
    ("met", ANSWER_COLOURS["met"]),
    ("not met", ANSWER_COLOURS["not_met"]),
    ("bad answer", ANSWER_COLOURS["unparseable"]),
    ("no frame / unavailable", ANSWER_COLOURS["no_frame"]),
    ("alert", ALERT),
)


def _draw_legend(c: _Canvas, height: int) -> None:
    lx, ly = c.x0, height - LEGEND_H + 4
    for text, colour in LEGEND:
        c.d.rectangle((lx, ly + 3, lx + 10, ly + 13), fill=colour)
        c.d.text((lx + 14, ly + 1), text, fill=INK, font=c.small)
        lx += 14 + round(c.d.textlength(text, font=c.small)) + 16


def draw_timeline(
    run: ReplayRun,
    intervals: Sequence[Interval] | None = None,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    next_max_s: float | None = None,
) -> Image.Image:
    """Draw the timeline of ``run`` (with the labelled ``intervals``) as an RGB image.

    Args:
        run: the replay.
        intervals: the labelled true intervals.
        width: picture width in pixels.
        height: picture height in pixels.
        next_max_s: the largest ``next_run_in`` to make room for on the
            next-look axis (give the same to every variant of a comparison so
            their axes match); default: this run's largest.

    Raises:
        ValueError: a size too small to hold the rows.
    """
    fixed = sum(h for _, h in ROWS) + ROW_GAP * (len(ROWS) - 1)
    panel_h = height - TOP - fixed - AXIS_H - LEGEND_H - 8
    if width < 400 or panel_h < 30:
        raise ValueError(f"A timeline needs at least 400 x {height - panel_h + 30} pixels.")
    img = Image.new("RGB", (width, height), BACKGROUND)
    c = _Canvas(ImageDraw.Draw(img), _font(12), _font(10), max(run.duration_s, 1e-3), LEFT,
                width - RIGHT, width, _rows(panel_h))  # fmt: skip
    ivs = list(intervals or [])
    _draw_frame(c, run, ivs)
    _draw_truth(c, ivs)
    _draw_detections(c, run)
    _draw_looks(c, run)
    _draw_next(c, run, next_max_s)
    _draw_alerts(c, run)
    _draw_legend(c, height)
    return img


def save_timeline(
    path: str | Path,
    run: ReplayRun,
    intervals: Sequence[Interval] | None = None,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    next_max_s: float | None = None,
) -> Path:
    """Draw the timeline (as :func:`draw_timeline`), write it as a PNG; return the path."""
    p = Path(path)
    img = draw_timeline(run, intervals, width=width, height=height, next_max_s=next_max_s)
    img.save(p, format="PNG", optimize=True)
    return p
