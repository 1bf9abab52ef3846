"""The report folder of a replay: ``report.json``, timeline PNGs, judged frames, ``index.html``.

Layout of ``DIR``::

    report.json                  every figure, look and alert of every variant
    index.html                   the pictures, the figures and the judged frames
    timeline-WATCH.png           one timeline per variant (one next-look scale for all)
    frames/WATCH-alert-N.jpg     the frame each alert judged
    frames/WATCH-look-N.jpg      the frame each look judged (met or not)

Example:
    >>> entries = [ReportEntry(run, evaluate(run, intervals), intervals)]  # doctest: +SKIP
    >>> write_report("out/", entries, clip="porch.mp4", labels="LABELS.csv")  # doctest: +SKIP
    PosixPath('out/index.html')
"""

from __future__ import annotations

import html
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from pipeline.app.replay.compare import comparison_rows
from pipeline.app.replay.engine import ReplayRun
from pipeline.app.replay.labels import Interval
from pipeline.app.replay.metrics import Figures, frame_time
from pipeline.app.replay.timeline import HEIGHT, WIDTH, save_timeline
from pipeline.core.redact import redact

REPORT_JSON = "report.json"
REPORT_HTML = "index.html"
FRAMES_DIR = "frames"


@dataclass(frozen=True)
class ReportEntry:
    """One variant in a report: what ran, its figures, and the labels it was judged on."""

    run: ReplayRun
    figures: Figures
    intervals: Sequence[Interval] | None = None


def timeline_name(watch: str) -> str:
    """File name of a variant's timeline PNG."""
    return f"timeline-{watch}.png"


def alert_frame_name(watch: str, index: int) -> str:
    """Path, relative to the report folder, of the frame judged by alert ``index`` (1-based)."""
    return f"{FRAMES_DIR}/{watch}-alert-{index}.jpg"


def look_frame_name(watch: str, index: int) -> str:
    """Path, relative to the report folder, of the frame judged by look ``index`` (1-based)."""
    return f"{FRAMES_DIR}/{watch}-look-{index}.jpg"


def _wake_reason(wakes: Sequence[tuple[float, str]], t: float) -> str | None:
    """The reason of the latest wake at or before clip time ``t``."""
    reason = None
    for wt, why in wakes:
        if wt > t + 1e-9:
            break
        reason = why or None
    return reason


def run_details(run: ReplayRun) -> dict[str, Any]:
    """Looks, alerts, zone hits and wakes of a run in clip seconds (JSON-able, no JPEG bytes)."""
    looks = []
    wake_reasons = list(run.wake_reasons)
    for i, lk in enumerate(run.looks, start=1):
        v = lk.verdict
        t = run.clip_time(lk.time)
        looks.append(
            {
                "time": t,
                "frame_time": frame_time(run, lk),
                "trigger": lk.trigger,
                "wake_reason": _wake_reason(wake_reasons, t) if lk.trigger == "wake" else None,
                "answer": v.kind.value,
                "condition_met": v.condition_met,
                "next_run_in": v.next_run_in,
                "latency_s": round(float(v.latency_s), 6),
                "reasoning": redact(v.reasoning or ""),
                "error": redact(v.error) if v.error else None,
                "frame_seq": lk.frame.get("seq") if lk.frame else None,
                "frame": look_frame_name(run.watch.name, i) if lk.jpeg else None,
            }
        )
    alerts = []
    for i, a in enumerate(run.alerts, start=1):
        alerts.append(
            {
                "time": run.clip_time(a.time),
                "message": redact(a.message),
                "reasoning": redact(a.reasoning),
                "look_count": a.look_count,
                "frame": alert_frame_name(run.watch.name, i) if a.jpeg else None,
                "frame_seq": a.frame.get("seq") if a.frame else None,
            }
        )
    return {
        "clip": str(run.clip),
        "start_epoch": run.start_epoch,
        "size": [run.width, run.height],
        "fps": run.fps,
        "packets": run.packets,
        "frames_decoded": run.decoded,
        "backend_note": redact(run.backend_note) if run.backend_note else None,
        "looks": looks,
        "alerts": alerts,
        "zone_hits": run.zone_hits,
        "wakes": run.wakes,
        "wake_reasons": [[t, why] for t, why in wake_reasons],
        "dropped_wakes": [[t, why] for t, why in run.dropped_wakes],
    }


def report_data(
    entries: Sequence[ReportEntry], *, clip: str | Path, labels: str | Path | None = None
) -> dict[str, Any]:
    """The content of ``report.json``."""
    return {
        "clip": str(clip),
        "labels": str(labels) if labels is not None else None,
        "variants": [
            {
                "figures": e.figures.to_dict(),
                "timeline": timeline_name(e.run.watch.name),
                **run_details(e.run),
            }
            for e in entries
        ],
        "comparison": [
            {"figure": name, "values": values}
            for name, values in comparison_rows([e.figures for e in entries])
        ]
        if len(entries) > 1
        else None,
    }


def write_report(
    directory: str | Path,
    entries: Sequence[ReportEntry],
    *,
    clip: str | Path,
    labels: str | Path | None = None,
    width: int = WIDTH,
    height: int = HEIGHT,
) -> Path:
    """Write the whole report folder; return the path of ``index.html``.

    Raises:
        ValueError: no entries, or two variants with the same watch name.
    """
    if not entries:
        raise ValueError("A report needs at least one replay.")
    names = [e.run.watch.name for e in entries]
    if len(set(names)) != len(names):
        raise ValueError(f"Each variant needs its own watch name, got {', '.join(names)}.")
    out = Path(directory)
    (out / FRAMES_DIR).mkdir(parents=True, exist_ok=True)
    next_max = max(
        (float(lk.verdict.next_run_in) for e in entries for lk in e.run.looks), default=10.0
    )
    for e in entries:
        save_timeline(
            out / timeline_name(e.run.watch.name), e.run, e.intervals, width=width, height=height,
            next_max_s=next_max,
        )  # fmt: skip
        for i, a in enumerate(e.run.alerts, start=1):
            if a.jpeg:
                (out / alert_frame_name(e.run.watch.name, i)).write_bytes(a.jpeg)
        for i, lk in enumerate(e.run.looks, start=1):
            if lk.jpeg:
                (out / look_frame_name(e.run.watch.name, i)).write_bytes(lk.jpeg)
    data = report_data(entries, clip=clip, labels=labels)
    (out / REPORT_JSON).write_bytes(
        orjson.dumps(data, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS)
    )
    page = out / REPORT_HTML
    page.write_text(render_html(data, width=width, height=height), encoding="utf-8")
    return page


_CSS = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1280px; }
h1 { font-size: 20px; } h2 { font-size: 17px; margin-top: 32px; }
table { border-collapse: collapse; margin: 8px 0; }
td, th { border: 1px solid #ddd; padding: 3px 8px; text-align: left; vertical-align: top; }
th { background: #f4f4f4; }
img.timeline { max-width: 100%; border: 1px solid #ddd; }
.alerts { display: flex; flex-wrap: wrap; gap: 16px; }
figure { margin: 0; max-width: 420px; } figure img { max-width: 100%; border: 1px solid #ccc; }
img.look { width: 160px; border: 1px solid #ccc; }
figcaption { font-size: 13px; } .muted { color: #777; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _fmt(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list):
        if not value:
            return "none"
        return ", ".join(_fmt(v) for v in value)
    if isinstance(value, dict):
        if "start" in value and "end" in value:
            return f"{value['start']:g}-{value['end']:g} s"
        return ", ".join(f"{k}: {_fmt(v)}" for k, v in value.items())
    return str(value)


def _looks_table(looks: list[dict[str, Any]]) -> list[str]:
    """Every look: when, why (trigger and the wake's reason), the frame it judged, the answer."""
    parts = [f"<details open><summary>{len(looks)} looks</summary><table>"]
    parts.append(
        "<tr><th>time</th><th>frame at</th><th>trigger</th><th>frame</th><th>answer</th>"
        "<th>next</th><th>latency</th><th>reasoning</th></tr>"
    )
    for i, lk in enumerate(looks, start=1):
        why = lk["reasoning"] or lk["error"] or ""
        trigger = lk["trigger"] + (f": {lk['wake_reason']}" if lk.get("wake_reason") else "")
        img = (
            f'<img class="look" src="{_e(lk["frame"])}" alt="frame judged by look {i}">'
            if lk.get("frame")
            else '<span class="muted">no frame</span>'
        )
        parts.append(
            f"<tr><td>{lk['time']:g} s</td><td>{lk['frame_time']:g} s</td><td>{_e(trigger)}</td>"
            f"<td>{img}</td><td>{_e(lk['answer'])}</td><td>{lk['next_run_in']:g} s</td>"
            f"<td>{lk['latency_s']:.3f} s</td><td>{_e(why)}</td></tr>"
        )
    parts.append("</table></details>")
    return parts


def _dropped_table(dropped: list[list[Any]]) -> list[str]:
    """Dropped wakes, grouped by reason, with the first few times of each."""
    if not dropped:
        return []
    by_reason: dict[str, list[float]] = {}
    for t, why in dropped:
        by_reason.setdefault(str(why), []).append(float(t))
    parts = [f"<details><summary>{len(dropped)} wakes dropped</summary><table>"]
    parts.append("<tr><th>reason</th><th>count</th><th>first at</th></tr>")
    for why, times in sorted(by_reason.items(), key=lambda kv: -len(kv[1])):
        first = ", ".join(f"{t:g} s" for t in times[:8]) + (" ..." if len(times) > 8 else "")
        parts.append(f"<tr><td>{_e(why)}</td><td>{len(times)}</td><td>{_e(first)}</td></tr>")
    parts.append("</table></details>")
    return parts


def render_html(data: dict[str, Any], *, width: int = WIDTH, height: int = HEIGHT) -> str:
    """The report page from :func:`report_data`'s content (every text escaped)."""
    parts = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>Replay of {_e(Path(data['clip']).name)}</title>",
        f"<style>{_CSS}</style></head><body>",
        f"<h1>Replay of {_e(Path(data['clip']).name)}</h1>",
        f'<p class="muted">clip {_e(data["clip"])}'
        + (f", labels {_e(data['labels'])}" if data["labels"] else ", no labels")
        + "</p>",
    ]
    if data.get("comparison"):
        parts.append("<h2>Comparison</h2><table><tr><th>figure</th>")
        parts += [f"<th>{_e(v['figures']['watch'])}</th>" for v in data["variants"]]
        parts.append("</tr>")
        for row in data["comparison"]:
            cells = "".join(f"<td>{_e(v)}</td>" for v in row["values"])
            parts.append(f"<tr><th>{_e(row['figure'])}</th>{cells}</tr>")
        parts.append("</table>")
    for v in data["variants"]:
        fig = v["figures"]
        parts.append(f"<h2>{_e(fig['watch'])}</h2>")
        parts.append(
            f'<img class="timeline" src="{_e(v["timeline"])}" width="{width}" '
            f'height="{height}" alt="timeline of {_e(fig["watch"])}">'
        )
        parts.append("<table>")
        for key, value in fig.items():
            if key == "extra" and not value:
                continue
            parts.append(f"<tr><th>{_e(key.replace('_', ' '))}</th><td>{_e(_fmt(value))}</td></tr>")
        parts.append("</table>")
        parts.append("<h3>Alerts</h3>")
        if not v["alerts"]:
            parts.append('<p class="muted">No alert.</p>')
        parts.append('<div class="alerts">')
        for i, a in enumerate(v["alerts"], start=1):
            img = (
                f'<img src="{_e(a["frame"])}" alt="frame judged by alert {i}">'
                if a["frame"]
                else '<p class="muted">no frame</p>'
            )
            parts.append(
                f"<figure>{img}<figcaption><b>{a['time']:g} s</b>: {_e(a['message'])}"
                f'<br><span class="muted">{_e(a["reasoning"])}</span></figcaption></figure>'
            )
        parts.append("</div>")
        parts += _looks_table(v["looks"])
        parts += _dropped_table(v.get("dropped_wakes") or [])
    parts.append("</body></html>")
    return "\n".join(parts) + "\n"
