"""The ``replay`` subcommand of ``python -m pipeline``.

``python -m pipeline replay CLIP --watch NAME [-c pipeline.toml] [--labels LABELS.csv]
[--speed max|1x] [--model-latency measured|none|S] [--report DIR] [--compare NAME2 ...]
[--until S] [--tolerance S] [--json] [--no-speed-ref]``

Each variant's speed is also given against a plain PyAV decode of the same
clip, timed once before the replays (``--no-speed-ref`` skips it).

Prints the figures (a table, one column per variant, or JSON with ``--json``)
on stdout and a progress bar on stderr; writes the report folder with
``--report``. Exit status: 0 done, 2 invalid config, 1 any other problem
(unknown watch, unreadable clip or labels).

This module only imports the standard library at import time, so building the
CLI's parser stays cheap; the replay machinery loads when the command runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from pipeline.core.config import LookoutConfig

EXIT_OK = 0
EXIT_ERROR = 1


def add_replay_parser(
    sub: Any, common: argparse.ArgumentParser, formatter: type[argparse.HelpFormatter]
) -> argparse.ArgumentParser:
    """Add ``replay`` to the CLI's subparsers and return its parser."""
    p: argparse.ArgumentParser = sub.add_parser(
        "replay",
        parents=[common],
        formatter_class=formatter,
        help="replay a watch over a video file on virtual time; time-to-alert, looks, precision",
        description=(
            "Run a watch over a video file as if it were its camera, on virtual time "
            "(a 10-minute clip with a fast backend takes seconds), and evaluate it against "
            "labelled intervals."
        ),
    )
    p.add_argument("clip", type=Path, help="video file played as the watch's camera")
    p.add_argument("--watch", required=True, metavar="NAME", help="watch name from the config")
    p.add_argument(
        "--labels",
        type=Path,
        metavar="CSV",
        help="LABELS.csv: start,end[,note] per line (seconds or MM:SS) when the condition holds",
    )
    p.add_argument(
        "--speed", default="max", metavar="SPEED", help="max, or a multiple of real time: 1x, 2x"
    )
    p.add_argument(
        "--model-latency",
        default="measured",
        metavar="MODE",
        help="the model's answer time on the virtual clock: measured (each answer's own "
        "latency), none (answers arrive at once) or seconds per look",
    )
    p.add_argument(
        "--report",
        type=Path,
        metavar="DIR",
        help="write report.json, timeline PNGs, judged frames and index.html here",
    )
    p.add_argument(
        "--compare",
        nargs="+",
        default=None,
        metavar="NAME",
        help="more watch variants replayed over the same clip, figures side by side",
    )
    p.add_argument("--until", type=float, metavar="S", help="replay only the first S seconds")
    p.add_argument(
        "--tolerance",
        type=float,
        default=0.0,
        metavar="S",
        help="seconds after an interval's end an alert still counts as true",
    )
    p.add_argument("--json", action="store_true", help="print the figures as one JSON object")
    p.add_argument(
        "--no-speed-ref",
        action="store_true",
        help="skip the plain PyAV decode of the clip that the replay's speed is compared to",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
    return p


def run_replay(config: LookoutConfig, args: argparse.Namespace) -> int:
    """Run the ``replay`` command with parsed ``args``; return the exit status."""
    import orjson

    from pipeline.app.replay.compare import format_table
    from pipeline.app.replay.engine import (
        ReplayRun,
        find_watch,
        parse_model_latency,
        parse_speed,
        replay_watch,
    )
    from pipeline.app.replay.labels import load_labels
    from pipeline.app.replay.metrics import evaluate
    from pipeline.app.replay.progress import ProgressBar
    from pipeline.app.replay.report import ReportEntry, write_report
    from pipeline.app.replay.speed import raw_decode_seconds
    from pipeline.core.redact import redact

    try:
        names = list(dict.fromkeys([args.watch, *(args.compare or [])]))
        watches = [find_watch(config, n) for n in names]
        parse_speed(args.speed)
        parse_model_latency(args.model_latency)
        if args.tolerance < 0:
            raise ValueError(f"--tolerance must not be negative, got {args.tolerance}.")
        if args.until is not None and args.until <= 0:
            raise ValueError(f"--until must be positive, got {args.until}.")
        if not args.clip.is_file():
            raise ValueError(f"Clip {args.clip} is not a file.")
        intervals = load_labels(args.labels) if args.labels is not None else None
        raw_s = None if args.no_speed_ref else raw_decode_seconds(args.clip, args.until)
        entries = []
        for watch in watches:
            bar = None if args.no_progress else ProgressBar(None, label=watch.name)

            def progress(done: float, run: ReplayRun, bar: ProgressBar | None = bar) -> None:
                if bar is None:
                    return
                bar.total_s = run.duration_s or bar.total_s
                status = f"looks {len(run.looks)}  alerts {len(run.alerts)}"
                bar.update(done, f"{status}  model {run.model_time_s:.1f} s")

            try:
                run = replay_watch(
                    config, watch, args.clip, speed=args.speed, until_s=args.until,
                    progress=progress, model_latency=args.model_latency,
                )  # fmt: skip
            finally:
                if bar is not None:
                    bar.close()
            fig = evaluate(run, intervals, args.tolerance, raw_decode_s=raw_s)
            entries.append(ReportEntry(run, fig, intervals))
    except ValueError as exc:
        print(f"replay: {redact(str(exc))}", file=sys.stderr)
        return EXIT_ERROR
    figures = [e.figures for e in entries]
    page = None
    if args.report is not None:
        page = write_report(args.report, entries, clip=args.clip, labels=args.labels)
    if args.json:
        out = {"variants": [f.to_dict() for f in figures], "report": str(page) if page else None}
        print(orjson.dumps(out).decode())
    else:
        print(format_table(figures))
        if page is not None:
            print(f"report: {page}")
    return EXIT_OK
