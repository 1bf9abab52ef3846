"""Figures of several watch variants side by side (a text table and rows for HTML).

Example:
    >>> print(format_table([figures_a, figures_b]))  # doctest: +SKIP
    figure                  porch_vlm     porch_det
    backend                 vlm (openai)  det (detections)
    looks                   24            31
    ...
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.app.replay.metrics import Figures


def _num(value: float | None, unit: str = "", digits: int = 2) -> str:
    if value is None:
        return "-"
    text = f"{value:.{digits}f}".rstrip("0").rstrip(".") if digits else f"{value:.0f}"
    return text + unit


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


MAX_TIMES = 6
"""Times shown in one cell of the table; more are summed up as "(+N more)"."""


def _times(values: Sequence[float | None] | None, unit: str = " s") -> str:
    if values is None:
        return "-"
    if not values:
        return "none"
    shown = ", ".join("missed" if v is None else _num(v, unit, 1) for v in values[:MAX_TIMES])
    more = len(values) - MAX_TIMES
    return shown + (f" (+{more} more)" if more > 0 else "")


def _counts(counts: dict[str, int] | None) -> str:
    if not counts:
        return "none"
    items = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return ", ".join(f"{k} {v}" for k, v in items)


def _budget(budget: dict[str, object] | None) -> str:
    if not budget:
        return "unlimited"
    ran_out = budget.get("ran_out_at") or []
    assert isinstance(ran_out, list)
    when = _times(ran_out) if ran_out else "never"
    return f"{budget.get('per_hour')}/h, burst {budget.get('burst')}: ran out {when}"


ROWS: tuple[tuple[str, Callable[[Figures], str]], ...] = (
    ("backend", lambda f: f.backend),
    ("detector", lambda f: f.detector.split(" ")[0]),
    ("mode", lambda f: f.mode),
    ("status", lambda f: f.status),
    ("looks", lambda f: str(f.looks)),
    ("looks woken", lambda f: str(f.looks_woken)),
    ("woken by", lambda f: _counts(f.wake_reasons)),
    ("wakes dropped", lambda f: _counts(f.wakes_dropped)),
    ("budget", lambda f: _budget(f.budget)),
    ("looks per minute", lambda f: _num(f.looks_per_minute)),
    ("model time", lambda f: _num(f.model_time_s, " s", 3)),
    ("alerts", lambda f: str(f.alerts)),
    ("alert times", lambda f: _times(f.alert_times)),
    ("time to first alert", lambda f: _times(f.time_to_first_alert_s)),
    ("mean time to alert", lambda f: _num(f.mean_time_to_alert_s, " s")),
    ("mean of alerted", lambda f: _num(f.mean_time_to_first_alert_s, " s")),
    ("false alerts", lambda f: "-" if f.false_alerts is None else str(len(f.false_alerts))),
    (
        "missed intervals",
        lambda f: "-" if f.missed_intervals is None else str(len(f.missed_intervals)),
    ),
    ("precision", lambda f: _share(f.precision)),
    ("recall", lambda f: _share(f.recall)),
    ("look agreement", lambda f: _share(f.look_agreement)),
    ("replay time", lambda f: _num(f.wall_s, " s")),
    ("speed", lambda f: _num(f.speed, "x", 1)),
    ("speed vs raw decode", lambda f: _num(f.speed_vs_raw_decode, "x", 1)),
)
"""Each row of the comparison: its name and how to show it for one variant."""


def comparison_rows(figures: Sequence[Figures]) -> list[tuple[str, list[str]]]:
    """Return ``(figure name, [value per variant])`` rows.

    Example:
        >>> comparison_rows([figures_a])[0]  # doctest: +SKIP
        ('backend', ['vlm (openai)'])
    """
    return [(name, [show(f) for f in figures]) for name, show in ROWS]


def format_table(figures: Sequence[Figures]) -> str:
    """Return the comparison as an aligned text table, one column per variant."""
    header = ("figure", [f.watch for f in figures])
    rows = [header, *comparison_rows(figures)]
    widths = [max(len(r[0]) for r in rows)]
    for i in range(len(figures)):
        widths.append(max(len(r[1][i]) for r in rows))
    lines = []
    for name, values in rows:
        cells = [name.ljust(widths[0])] + [
            v.ljust(w) for v, w in zip(values, widths[1:], strict=True)
        ]
        lines.append("  ".join(cells).rstrip())
    return "\n".join(lines)
