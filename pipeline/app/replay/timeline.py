"""The timeline picture of a replay, drawn with Pillow.

One row per kind of event on a shared clip-time axis:

- **truth**: the labelled intervals (also shaded behind every row);
- **detections**: every detection (light ticks), those matching the watch's
  labels and zones (dark ticks), and wakes after the cooldown (triangles);
- **looks**: every look as a tick coloured by its answer (a dot above the
  tick marks a look that a wake started);
- **next look**: the ``next_run_in`` each look asked for, as a step line;
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
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pipeline.app.replay.engine import ReplayRun
from pipeline.app.replay.labels import Interval

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


def draw_timeline(
    run: ReplayRun,
    intervals: Sequence[Interval] | None = None,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Image.Image:
    """Draw the timeline of ``run`` (with the labelled ``intervals``) as an RGB image.

    Raises:
        ValueError: a size too small to hold the rows.
    """
    fixed = sum(h for _, h in ROWS) + ROW_GAP * (len(ROWS) - 1)
    panel_h = height - TOP - fixed - AXIS_H - LEGEND_H - 8
    if width < 400 or panel_h < 30:
        raise ValueError(f"A timeline needs at least 400 x {height - panel_h + 30} pixels.")
    img = Image.new("RGB", (width, height), BACKGROUND)
    d = ImageDraw.Draw(img)
    font, small = _font(12), _font(10)
    span = max(run.duration_s, 1e-3)
    x0, x1 = LEFT, width - RIGHT

    def x(t: float) -> int:
        return round(x0 + (x1 - x0) * min(max(t, 0.0), span) / span)

    # Row geometry.
    rows: dict[str, tuple[int, int]] = {}
    y = TOP
    for name, h in ROWS:
        h = h or panel_h
        rows[name] = (y, y + h)
        y += h + ROW_GAP
    top, bottom = TOP, y - ROW_GAP

    # Title.
    title = (
        f"{run.watch.name}  ({run.watch.mode}, backend {run.backend or '?'}, "
        f"detector {run.detector.split(' ')[0]})  {run.clip.name}"
    )
    d.text((x0, 8), title, fill=INK, font=font)

    # Shading: labelled intervals, then the part after the watch ended.
    ivs = list(intervals or [])
    for iv in ivs:
        d.rectangle((x(iv.start), top, max(x(iv.start), x(iv.end)), bottom), fill=TRUTH_SHADE)
    if run.ended_at is not None and run.ended_at < span:
        d.rectangle((x(run.ended_at), top, x1, bottom), fill=ENDED)

    # Grid and axis.
    step = nice_step(span)
    t = 0.0
    while t <= span + 1e-9:
        xt = x(t)
        d.line((xt, top, xt, bottom), fill=GRID)
        d.line((xt, bottom, xt, bottom + 4), fill=INK)
        label = tick_label(t)
        w = d.textlength(label, font=small)
        d.text((min(max(xt - w / 2, 0), width - w), bottom + 6), label, fill=INK, font=small)
        t += step
    d.line((x0, bottom, x1, bottom), fill=INK)

    # Row labels and baselines.
    for name, (ya, yb) in rows.items():
        d.text((8, (ya + yb) / 2 - 7), name, fill=INK, font=font)

    # Truth.
    ya, yb = rows["truth"]
    for iv in ivs:
        d.rectangle((x(iv.start), ya + 2, max(x(iv.start) + 1, x(iv.end)), yb - 2), fill=TRUTH)

    # Detections, zone hits, wakes.
    ya, yb = rows["detections"]
    mid = (ya + yb) // 2
    seen = {x(m.time) for m in run.detections}
    for xd in sorted(seen):
        d.line((xd, mid - 3, xd, yb - 2), fill=DETECTION)
    for xh in sorted({x(th) for th in run.zone_hits}):
        d.line((xh, ya + 6, xh, yb - 2), fill=ZONE_HIT)
    for xw in sorted({x(tw) for tw in run.wakes}):
        d.polygon([(xw - 4, ya), (xw + 4, ya), (xw, ya + 6)], fill=WAKE)

    # Looks.
    ya, yb = rows["looks"]
    for lk in run.looks:
        xl = x(run.clip_time(lk.time))
        colour = ANSWER_COLOURS.get(lk.verdict.kind.value, INK)
        d.line((xl, ya + 7, xl, yb - 1), fill=colour, width=2)
        if lk.trigger == "wake":
            d.ellipse((xl - 2, ya + 1, xl + 2, ya + 5), fill=WAKE)

    # next_run_in as a step line.
    ya, yb = rows["next look"]
    d.rectangle((x0, ya, x1, yb), outline=GRID)
    points = [(run.clip_time(lk.time), float(lk.verdict.next_run_in)) for lk in run.looks]
    top_s = max([v for _, v in points] + [10.0])
    top_s = nice_step(top_s, max_ticks=1) if top_s > 10 else 10.0

    def yv(v: float) -> int:
        return round(yb - 2 - (yb - ya - 4) * min(v, top_s) / top_s)

    d.text((x0 - 40, ya - 2), f"{top_s:g} s", fill=INK, font=small)
    d.text((x0 - 26, yb - 12), "0 s", fill=INK, font=small)
    end_x = x(run.replayed_s if run.ended_at is None else run.ended_at)
    for i, (tp, v) in enumerate(points):
        xa = x(tp)
        xb = x(points[i + 1][0]) if i + 1 < len(points) else max(end_x, xa)
        yy = yv(v)
        if i > 0:
            d.line((xa, yv(points[i - 1][1]), xa, yy), fill=NEXT_LINE, width=2)
        d.line((xa, yy, xb, yy), fill=NEXT_LINE, width=2)

    # Alerts.
    ya, yb = rows["alerts"]
    cy = (ya + yb) // 2
    for a in run.alerts:
        xa = x(run.clip_time(a.time))
        d.line((xa, top, xa, yb), fill=ALERT)
        d.polygon([(xa, cy - 7), (xa + 6, cy), (xa, cy + 7), (xa - 6, cy)], fill=ALERT)

    # Legend.
    legend: list[tuple[str, Rgb]] = [
        ("true interval", TRUTH),
        ("detection", DETECTION),
        ("in zone", ZONE_HIT),
        ("wake", WAKE),
        ("met", ANSWER_COLOURS["met"]),
        ("not met", ANSWER_COLOURS["not_met"]),
        ("bad answer", ANSWER_COLOURS["unparseable"]),
        ("no frame / unavailable", ANSWER_COLOURS["no_frame"]),
        ("alert", ALERT),
    ]
    lx, ly = x0, height - LEGEND_H + 4
    for text, colour in legend:
        d.rectangle((lx, ly + 3, lx + 10, ly + 13), fill=colour)
        d.text((lx + 14, ly + 1), text, fill=INK, font=small)
        lx += 14 + round(d.textlength(text, font=small)) + 16
    return img


def save_timeline(
    path: str | Path,
    run: ReplayRun,
    intervals: Sequence[Interval] | None = None,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Path:
    """Draw the timeline and write it as a PNG; return the path."""
    p = Path(path)
    draw_timeline(run, intervals, width=width, height=height).save(p, format="PNG", optimize=True)
    return p
