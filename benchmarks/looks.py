"""Looks and time to alert of three wake policies on labelled real footage, and the floor.

Run: ``.venv/bin/python -m benchmarks.looks [--quick] [--clips NAME,...]``

Every clip described by a ``*.toml`` next to it in ``benchmarks/footage/``
(clip, labels, the watch's condition and zones; see that folder's README; a
clip with ``cached = true`` is made once into ``~/.cache/lookout/footage/``,
:mod:`benchmarks.footage_cache`) is replayed on virtual time (``python -m
pipeline replay``'s engine: the real watch, the real motion detector, the
clip decoded on demand) with the scripted model of
:mod:`benchmarks.labelled_model`: it answers from the labels
at the clip time of the frame it is sent (met / forming / relevant / empty,
``next_run_in`` 5 / 2 / 5 / 60 as DESIGN.md's guidance says), the same for
every policy. Answers arrive at once (no model latency), so the figures are
the policy's alone. The policies:

- ``polling``: a look every 5 s, whatever the model says, no detector;
- ``baseline``: behaviour A of DESIGN.md: the model's ``next_run_in``, woken
  by every detection matching the watch's labels and zones (at once with
  zones, not before the wait's start + 10 s without);
- ``lookout``: Lookout's default (``wake = "news"``): the model's
  ``next_run_in``, woken when the zones hold news (see the README, "When a
  watch looks");
- ``oracle`` (not replayed): the fewest looks any policy could make under the
  same rule with no miss and every alert at an event's first frame
  (:mod:`benchmarks.look_oracle`): the floor, so ``polling / oracle`` is the
  most any policy could save on a clip.

Baseline and Lookout share the watch (condition, zones, the motion detector at
5 fps with ``label = "motion"``, ``mode = "repeat"`` with the shipped
config's ``quiet_period_s = 20``; ``--quiet S`` changes it). Replays take
frames as live watches do: Lookout's timer looks take the newest keyframe
(``timer_max_age_s``, 2 s), while polling and the baseline judge the frame of
the moment they look (``timer_max_age_s = 0``). Per clip and
policy it prints looks, mean time to alert over the clip's events (a missed
event counts as its whole length), misses and false alerts; the last line is
one JSON object with every figure (also each look's clip time), per clip
``looks_oracle``, ``lookout_over_oracle`` and ``polling_over_oracle``, and the
ratios over all clips (``looks_polling_over_lookout``,
``looks_baseline_over_lookout``, ``looks_lookout_over_oracle``...).
``--quick`` replays the first ``QUICK_S`` seconds of each clip (a few seconds
on two cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.footage_cache import cache_dir, ensure_clip
from benchmarks.labelled_model import Label, answer_at, events, load_labels
from benchmarks.look_oracle import Floor, oracle_looks
from operators.answer_parser import parse_answer
from operators.backends.base import Availability, LookRequest
from pipeline.app.replay.engine import ReplayRun, replay_watch
from pipeline.core.config_loader import load_config_text
from pipeline.core.verdict import Verdict

FOOTAGE = Path(__file__).resolve().parent / "footage"
POLICIES = ("polling", "baseline", "lookout")
ROWS = (*POLICIES, "oracle")
"""The table's rows per clip: the policies, then the floor (:mod:`benchmarks.look_oracle`)."""
POLL_S = 5
QUIET_S = 20
DETECT_FPS = 5
QUICK_S = 60.0
GOALS = {"looks_polling_over_lookout": 5.0, "looks_baseline_over_lookout": 2.0}


@dataclass(frozen=True)
class Clip:
    """One labelled clip and the watch that looks at it."""

    name: str
    path: Path
    labels: list[Label]
    condition: str
    zones: dict[str, list[list[float]]]
    duration_s: float
    fps: float = 10.0
    cached: bool = False

    @staticmethod
    def load(toml_path: Path) -> Clip:
        """Read a clip's description (``NAME.toml``: clip, labels, [watch]).

        A clip with ``cached = true`` is not in the repository: its path is in
        the footage cache (:mod:`benchmarks.footage_cache`), made by :meth:`ready`.
        """
        data = tomllib.loads(toml_path.read_text(encoding="utf-8"))
        watch = data.get("watch", {})
        zones = {name: z["points"] for name, z in watch.get("zones", {}).items()}
        cached = bool(data.get("cached", False))
        return Clip(
            name=toml_path.stem,
            path=(cache_dir() if cached else toml_path.parent) / data["clip"],
            labels=load_labels(toml_path.parent / data["labels"]),
            condition=watch["condition"],
            zones=zones,
            duration_s=float(data.get("duration_s", 0.0)),
            fps=float(data.get("fps", 10.0)),
            cached=cached,
        )

    def ready(self) -> Path:
        """The clip's file, made first when it is a cached clip not made yet."""
        return ensure_clip(self.path.stem) if self.cached else self.path


def discover(folder: Path = FOOTAGE) -> list[Clip]:
    """Every clip described in ``folder`` (``*.toml``), by name."""
    return [Clip.load(p) for p in sorted(folder.glob("*.toml"))]


class LabelledBackend:
    """The scripted model as a backend: answers from the labels at the judged frame's clip time.

    The answer goes through the same parser as a real model's text. With
    ``poll_s`` every answer asks for the next look after exactly that long
    (fixed polling).
    """

    type = "scripted"
    needs_gpu = False
    ram_mb = 0
    takes_images = True

    def __init__(self, labels: Sequence[Label], *, start_epoch: float = 0.0,
                 poll_s: float | None = None) -> None:  # fmt: skip
        self.name = "labelled"
        self.labels = list(labels)
        self.start_epoch = start_epoch
        self.poll_s = poll_s
        self.judged: list[float] = []

    def availability(self) -> Availability:
        return Availability(True)

    def start(self) -> None:
        pass

    def stop(self) -> None:
        pass

    def judge(self, request: LookRequest) -> Verdict:
        assert request.frame is not None
        t = round(request.frame.wall_time - self.start_epoch, 6)
        self.judged.append(t)
        answer = answer_at(self.labels, t).to_dict()
        if self.poll_s is not None:
            answer["next_run_in"] = self.poll_s
        return parse_answer(json.dumps(answer))

    def describe(self, jpeg: bytes, prompt: str) -> str:
        return ""


def config_text(
    clip: Clip,
    policy: str,
    quiet_s: float = QUIET_S,
    detect_extra: Sequence[str] = (),
    camera_extra: Sequence[str] = (),
) -> str:
    """The ``pipeline.toml`` of one clip and one policy (camera ``cam``, watch ``watch``).

    ``detect_extra`` and ``camera_extra``: more ``key = value`` lines for the
    detector table (``--detect``) and the camera table (``--camera``).
    """
    zones = "".join(
        f"[cameras.cam.zones.{name}]\npoints = {json.dumps(points)}\n"
        for name, points in clip.zones.items()
    )
    detect = "" if policy == "polling" else (
        f'[cameras.cam.detect]\ntype = "motion"\nfps = {DETECT_FPS}\nlabel = "motion"\n'
        + "".join(f"{line}\n" for line in detect_extra)
    )  # fmt: skip
    wake = {"polling": "detections", "baseline": "detections", "lookout": "news"}[policy]
    quiet = 0 if policy == "polling" else quiet_s
    labels = "[]" if policy == "polling" else '["motion"]'
    # The references judge the frame of the moment they look (timer_max_age_s = 0);
    # Lookout's default timer looks take the newest keyframe (at most 2 s old).
    max_age = "" if policy == "lookout" else "timer_max_age_s = 0\n"
    max_age += "".join(f"{line}\n" for line in camera_extra)
    return f"""
[cameras.cam]
url = "{clip.path}"
{max_age}{zones}{detect}
[backends.none]
type = "none"

[[watches]]
name = "watch"
camera = "cam"
condition = {json.dumps(clip.condition)}
labels = {labels}
zones = {json.dumps(list(clip.zones))}
backend = "none"
mode = "repeat"
quiet_period_s = {quiet}
max_duration_minutes = 0
wake = "{wake}"
"""


@dataclass
class Row:
    """One policy on one clip."""

    clip: str
    policy: str
    looks: int
    looks_by_trigger: dict[str, int]
    mean_tta_s: float | None
    tta_s: list[float | None]
    misses: int
    false_alerts: int
    alerts: list[float]
    replayed_s: float
    wall_s: float
    look_times: list[float] = field(default_factory=list)


def time_to_alert(clip: Clip, alerts: Sequence[float]) -> list[float | None]:
    """Seconds from each event's start to its first alert inside it, ``None`` when missed."""
    out: list[float | None] = []
    for ev in events(clip.labels):
        inside = [t for t in alerts if ev.start <= t <= ev.end]
        out.append(round(min(inside) - ev.start, 6) if inside else None)
    return out


def run(
    clip: Clip,
    policy: str,
    until_s: float | None = None,
    quiet_s: float = QUIET_S,
    detect_extra: Sequence[str] = (),
    camera_extra: Sequence[str] = (),
) -> Row:
    """Replay ``clip`` with ``policy``; return its row."""
    cfg = load_config_text(config_text(clip, policy, quiet_s, detect_extra, camera_extra))
    backend = LabelledBackend(clip.labels, poll_s=POLL_S if policy == "polling" else None)
    path = clip.ready()
    t0 = time.perf_counter()
    rep: ReplayRun = replay_watch(cfg, "watch", path, backend=backend, until_s=until_s,
                                  start_epoch=0.0, model_latency="none")  # fmt: skip
    wall = time.perf_counter() - t0
    if rep.error:
        raise RuntimeError(f"{clip.name}/{policy}: {rep.error}")
    by_trigger: dict[str, int] = {}
    for lk in rep.looks:
        by_trigger[lk.trigger] = by_trigger.get(lk.trigger, 0) + 1
    times = [rep.clip_time(lk.time) for lk in rep.looks]
    return scored(clip, policy, times, [rep.clip_time(a.time) for a in rep.alerts], until_s,
                  looks_by_trigger=by_trigger, replayed_s=round(rep.replayed_s, 3),
                  wall_s=round(wall, 3))  # fmt: skip


def scored(clip: Clip, policy: str, looks: Sequence[float], alerts: Sequence[float],
           until_s: float | None, **more: Any) -> Row:  # fmt: skip
    """The row of ``policy``'s looks and alerts (clip seconds) on ``clip``, scored on its events."""
    evs = [ev for ev in events(clip.labels) if until_s is None or ev.end <= until_s]
    tta = [t for ev, t in zip(events(clip.labels), time_to_alert(clip, alerts), strict=True)
           if ev in evs]  # fmt: skip
    lengths = [ev.end - ev.start for ev in evs]
    charged = [t if t is not None else length for t, length in zip(tta, lengths, strict=True)]
    false = [t for t in alerts if not any(ev.start <= t <= ev.end for ev in events(clip.labels))]
    return Row(
        clip=clip.name,
        policy=policy,
        looks=len(looks),
        looks_by_trigger=more.pop("looks_by_trigger", {}),
        mean_tta_s=round(sum(charged) / len(charged), 3) if charged else None,
        tta_s=tta,
        misses=sum(1 for t in tta if t is None),
        false_alerts=len(false),
        alerts=list(alerts),
        replayed_s=more.pop("replayed_s", 0.0),
        wall_s=more.pop("wall_s", 0.0),
        look_times=list(looks),
    )


def oracle(clip: Clip, first_s: float, until_s: float | None = None,
           quiet_s: float = QUIET_S) -> Row:  # fmt: skip
    """The floor on ``clip``: the fewest looks with no miss (:mod:`benchmarks.look_oracle`).

    ``first_s``: clip time of the watches' first look (their first decoded frame).
    """
    duration = clip.duration_s if until_s is None else min(clip.duration_s, until_s)
    floor: Floor = oracle_looks(clip.labels, duration_s=duration, fps=clip.fps, quiet_s=quiet_s,
                                first_s=first_s)  # fmt: skip
    return scored(clip, "oracle", floor.times, floor.alerts, until_s, replayed_s=duration)


def _fmt(value: float | None, unit: str = "") -> str:
    return "-" if value is None else f"{value:.2f}{unit}"


def _ratio(a: int, b: int) -> float:
    return round(a / max(1, b), 2)


def print_table(rows: Sequence[Row]) -> None:
    """The per clip and policy table, then how close Lookout is to the floor on each clip."""
    print(f"{'clip':<10} {'policy':<9} {'looks':>5} {'mean TTA':>9} {'misses':>6} "
          f"{'false':>5}  time to alert per event")  # fmt: skip
    for r in rows:
        per = ", ".join("missed" if t is None else f"{t:.1f}" for t in r.tta_s) or "no event"
        print(f"{r.clip:<10} {r.policy:<9} {r.looks:>5} {_fmt(r.mean_tta_s, ' s'):>9} "
              f"{r.misses:>6} {r.false_alerts:>5}  {per}")  # fmt: skip
    looks = {(r.clip, r.policy): r.looks for r in rows}
    for clip in dict.fromkeys(r.clip for r in rows):
        floor = looks.get((clip, "oracle"))
        if floor is None or (clip, "lookout") not in looks:
            continue
        mine, poll = looks[clip, "lookout"], looks.get((clip, "polling"), 0)
        print(f"{clip}: Lookout {mine} looks = {_ratio(mine, floor):.2f}x the floor ({floor}); "
              f"polling / floor = {_ratio(poll, floor):.2f}x, the most any policy saves "
              "on this clip")  # fmt: skip


def _clip_figures(rows: Sequence[Row]) -> dict[str, dict[str, Any]]:
    clips: dict[str, dict[str, Any]] = {}
    for r in rows:
        clips.setdefault(r.clip, {})[r.policy] = {
            "looks": r.looks, "looks_by_trigger": r.looks_by_trigger,
            "mean_time_to_alert_s": r.mean_tta_s, "time_to_alert_s": r.tta_s,
            "misses": r.misses, "false_alerts": r.false_alerts, "alerts": r.alerts,
            "look_times": r.look_times, "replayed_s": r.replayed_s, "wall_s": r.wall_s,
        }  # fmt: skip
    for per in clips.values():
        if "oracle" in per and "lookout" in per:
            floor = per["oracle"]["looks"]
            per["looks_oracle"] = floor
            per["lookout_over_oracle"] = _ratio(per["lookout"]["looks"], floor)
            per["polling_over_oracle"] = _ratio(per.get("polling", {}).get("looks", 0), floor)
    return clips


def summary(rows: Sequence[Row], quick: bool, quiet_s: float = QUIET_S) -> dict[str, Any]:
    """The JSON figures: per clip and policy, totals and ratios, and whether the goals hold.

    Per clip also ``looks_oracle`` (the floor), ``lookout_over_oracle`` and
    ``polling_over_oracle`` (the most any policy could save there); the same
    over all clips in ``ratios``.
    """
    clips = _clip_figures(rows)
    totals = dict.fromkeys(ROWS, 0)
    for r in rows:
        totals[r.policy] += r.looks
    lookout = max(1, totals["lookout"])
    ratios = {
        "looks_polling_over_lookout": round(totals["polling"] / lookout, 2),
        "looks_baseline_over_lookout": round(totals["baseline"] / lookout, 2),
        "looks_lookout_over_oracle": _ratio(totals["lookout"], totals["oracle"]),
        "looks_polling_over_oracle": _ratio(totals["polling"], totals["oracle"]),
        "looks_baseline_over_oracle": _ratio(totals["baseline"], totals["oracle"]),
    }
    tta_ok = {}
    for name, per in clips.items():
        mine, poll = per["lookout"]["mean_time_to_alert_s"], per["polling"]["mean_time_to_alert_s"]
        tta_ok[name] = mine is None or (poll is not None and mine <= poll + 1e-9)
    missed = sum(per["lookout"]["misses"] for per in clips.values())
    goals = {name: ratios[name] >= target for name, target in GOALS.items()}
    goals["time_to_alert_no_worse_than_polling"] = all(tta_ok.values())
    goals["no_missed_event"] = missed == 0
    return {
        "benchmark": "looks",
        "quick": quick,
        "poll_s": POLL_S,
        "quiet_period_s": quiet_s,
        "detector": f"motion at {DETECT_FPS} fps",
        "looks": totals,
        "ratios": ratios,
        "time_to_alert_no_worse": tta_ok,
        "lookout_misses": missed,
        "goals": GOALS,
        "meets_goals": goals,
        "clips": clips,
    }


def clip_rows(
    clip: Clip,
    until_s: float | None,
    quiet_s: float,
    detect_extra: Sequence[str] = (),
    camera_extra: Sequence[str] = (),
) -> list[Row]:
    """Every policy on ``clip``, then the oracle (first look where the watches looked first)."""
    rows = [run(clip, policy, until_s, quiet_s, detect_extra, camera_extra) for policy in POLICIES]
    first = min((r.look_times[0] for r in rows if r.look_times), default=0.0)
    return [*rows, oracle(clip, first, until_s, quiet_s)]


def main(argv: list[str] | None = None) -> int:
    """Run every policy on every clip; print the table and the JSON line."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help=f"replay only the first {QUICK_S:g} s of each clip")  # fmt: skip
    parser.add_argument("--clips", default="", help="comma-separated clip names (default: all)")
    parser.add_argument("--footage", type=Path, default=FOOTAGE, help="folder of *.toml clips")
    parser.add_argument("--until", type=float, help="replay only the first S seconds")
    parser.add_argument("--quiet", type=float, default=QUIET_S,
                        help="quiet_period_s of the baseline and Lookout watches")  # fmt: skip
    parser.add_argument("--detect", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the motion detector of the baseline and Lookout "
                        "(TOML value, e.g. keyframes=false); repeatable")  # fmt: skip
    parser.add_argument("--camera", action="append", default=[], metavar="KEY=VALUE",
                        help="a setting of the camera of every policy (TOML value, e.g. "
                        "keep_current_share=0.15); repeatable")  # fmt: skip
    args = parser.parse_args(argv)
    clips = discover(args.footage)
    wanted = [c.strip() for c in args.clips.split(",") if c.strip()]
    if wanted:
        unknown = sorted(set(wanted) - {c.name for c in clips})
        if unknown:
            parser.error(f"unknown clip(s) {', '.join(unknown)}; known: "
                         f"{', '.join(c.name for c in clips)}")  # fmt: skip
        clips = [c for c in clips if c.name in wanted]
    if not clips:
        parser.error(f"no clip described in {args.footage}")
    until = args.until if args.until is not None else (QUICK_S if args.quick else None)
    rows = [
        row
        for clip in clips
        for row in clip_rows(clip, until, args.quiet, args.detect, args.camera)
    ]
    print_table(rows)
    figures = summary(rows, args.quick, args.quiet)
    figures["detector_settings"] = args.detect
    figures["camera_settings"] = args.camera
    print(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
