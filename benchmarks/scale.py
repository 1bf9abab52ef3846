"""How many 720p30 RTSP cameras one ``python -m pipeline`` process sustains, with looks on time.

Run: ``.venv/bin/python -m benchmarks.scale [--quick] [--cameras 10,20,40]``

Setup (all on loopback): a GStreamer RTSP server serving a 720p30 H.264 clip
(GOP 30 frames) as one live mount; N cameras, each its own RTSP session (own
TCP connection, demuxer and decoder in Lookout, ``decode = "on_demand"``); two
watches per camera, each looking every 5 s through the scripted model server
(an OpenAI-compatible HTTP server answering ``next_run_in: 5`` at once); a JSONL
sink. The server encodes the stream once for all sessions, so its CPU does not
grow with N (it still shares the 2 cores).

Per N, after a warm-up: the interval between consecutive looks of every watch
(arrival times at the model server), CPU seconds per second of the Lookout
process, and its resident memory. A look is on time when it comes at most 1 s
after its schedule (interval <= 5 s + 1 s). The largest N where every look was
on time is reported. Reference measured in the same run: one raw PyAV client
decoding every frame of the same stream (the cost of a camera without demand
decoding); ratios are Lookout CPU per camera over that reference. RSS per camera
is (RSS at N - RSS with zero cameras) / N.

The last line is one JSON object.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import av

from tests.support.clips import make_clip
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.ports import free_port
from tests.support.rtsp import AV_OPTIONS, RtspServer

ROOT = Path(__file__).resolve().parents[1]
LOOK_EVERY_S = 5
ON_TIME_S = 1.0
TARGETS = {"cameras": 40, "rss_mb_per_camera": 80.0}
CLK_TCK = os.sysconf("SC_CLK_TCK")


class LookClock:
    """Scripted-model responder that records when each watch looked."""

    def __init__(self) -> None:
        self.times: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    def __call__(self, request: Any) -> Reply:
        system = str(request["messages"][0]["content"])
        start = system.find("watch-")
        key = system[start : system.find(" ", start)] if start >= 0 else "?"
        with self.lock:
            self.times[key].append(time.monotonic())
        return Reply(
            f'{{"condition_met": false, "next_run_in": {LOOK_EVERY_S}, "reasoning": "Nothing."}}'
        )

    def reset(self) -> None:
        with self.lock:
            self.times.clear()

    def intervals(self, since: float) -> list[float]:
        with self.lock:
            out = []
            for ts in self.times.values():
                ts = [t for t in ts if t >= since]
                out += [b - a for a, b in itertools.pairwise(ts)]
            return out

    def watches_seen(self, since: float) -> int:
        with self.lock:
            return sum(1 for ts in self.times.values() if any(t >= since for t in ts))


def config(n: int, url: str, model: ScriptedModelServer, out: Path, metrics_port: int) -> str:
    parts = [
        f"""
[backends.vlm]
type = "openai"
base_url = "{model.base_url}"
retries = 0
max_concurrency = 16
read_timeout_s = 30

[sinks.log]
type = "jsonl"
path = "{out}"
states = false

[reload]
watch_file = false

[metrics]
enabled = true
port = {metrics_port}
"""
    ]
    for i in range(n):
        parts.append(
            f"""
[cameras.cam{i}]
url = "{url}"
decode = "on_demand"
open_timeout_s = 10
read_timeout_s = 10
"""
        )
        for j in range(2):
            parts.append(
                f"""
[[watches]]
name = "w{i}_{j}"
camera = "cam{i}"
condition = "watch-{i}-{j} sees a parcel on the porch"
backend = "vlm"
max_duration_minutes = 0
"""
            )
    if n == 0:
        parts.append('\n[cameras.idle]\nurl = "/dev/null"\n')
    return "".join(parts)


def proc_cpu_s(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def proc_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run_n(
    n: int, url: str, model: ScriptedModelServer, clock: LookClock, window_s: float, tmp: Path
) -> dict[str, Any]:
    cfg = tmp / f"scale-{n}.toml"
    cfg.write_text(config(n, url, model, tmp / f"out-{n}.jsonl", free_port()))
    log = (tmp / f"scale-{n}.log").open("wb")
    clock.reset()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "-c", str(cfg), "--log-level", "WARNING"],
        cwd=ROOT,
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "PYTHONFAULTHANDLER": "1"},
    )
    try:
        # Warm-up: every watch has looked at least once, plus one look period.
        deadline = time.monotonic() + 60
        t0 = time.monotonic()
        while n and clock.watches_seen(t0) < 2 * n and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(LOOK_EVERY_S + 1 if n else 3)
        start, cpu0 = time.monotonic(), proc_cpu_s(proc.pid)
        rss = []
        while time.monotonic() - start < window_s:
            time.sleep(1)
            rss.append(proc_rss_mb(proc.pid))
        cpu = (proc_cpu_s(proc.pid) - cpu0) / (time.monotonic() - start)
        intervals = clock.intervals(start)
    finally:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(10)
        log.close()
    late = [i for i in intervals if i > LOOK_EVERY_S + ON_TIME_S]
    expected = 2 * n * int(window_s // (LOOK_EVERY_S + 0.5))
    return {
        "cameras": n,
        "looks": len(intervals),
        "looks_expected_at_least": max(0, expected - 2 * n),
        "late_looks": len(late),
        "interval_median_s": round(statistics.median(intervals), 3) if intervals else None,
        "interval_max_s": round(max(intervals), 3) if intervals else None,
        "cpu_cores": round(cpu, 3),
        "rss_mb": round(statistics.median(rss), 1),
        "exit_code": proc.returncode,
    }


def raw_decode_reference(url: str, seconds: float) -> float:
    """CPU seconds per second for one client decoding every frame (this process, one thread)."""
    with av.open(url, options=AV_OPTIONS, timeout=(10, 10)) as c:
        stream = c.streams.video[0]
        start = time.monotonic()
        t0 = time.thread_time()
        for _ in c.decode(stream):
            if time.monotonic() - start > seconds:
                break
        return (time.thread_time() - t0) / (time.monotonic() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer N and shorter windows")
    parser.add_argument("--cameras", help="comma-separated N values to try, in order")
    args = parser.parse_args()
    ns = [4, 10, 20] if args.quick else [10, 20, 30, 40, 50]
    if args.cameras:
        ns = [int(x) for x in args.cameras.split(",")]
    window = 15.0 if args.quick else 30.0
    parser_dir = os.environ.get("LOOKOUT_SCALE_DIR")
    with tempfile.TemporaryDirectory(prefix="lookout-scale-") as d:
        tmp = Path(parser_dir or d)
        tmp.mkdir(parents=True, exist_ok=True)
        clip = make_clip(
            tmp / "720p.mp4", seconds=10, fps=30, width=1280, height=720, gop=30, preset="ultrafast"
        )
        rtsp = RtspServer(
            {"cam": clip.path}, key_int_max=30, bitrate_kbps=2000, workdir=tmp / "rtsp"
        )
        clock = LookClock()
        model = ScriptedModelServer(responder=clock)
        with rtsp, model:
            url = rtsp.url("cam")
            reference = statistics.median(raw_decode_reference(url, 5) for _ in range(3))
            print(f"reference: raw PyAV decoding every frame: {reference:.3f} cores per camera")
            base = run_n(0, url, model, clock, 5, tmp)
            print(f"N=0: rss {base['rss_mb']} MB, cpu {base['cpu_cores']} cores")
            results = []
            for n in ns:
                model.reset()
                r = run_n(n, url, model, clock, window, tmp)
                r["cpu_per_camera"] = round((r["cpu_cores"] - base["cpu_cores"]) / n, 4)
                r["cpu_ratio_vs_raw_decode"] = round(r["cpu_per_camera"] / reference, 3)
                r["rss_mb_per_camera"] = round((r["rss_mb"] - base["rss_mb"]) / n, 1)
                r["on_time"] = r["late_looks"] == 0 and r["looks"] >= r["looks_expected_at_least"]
                results.append(r)
                print(
                    f"N={n}: looks {r['looks']} (late {r['late_looks']}), interval median "
                    f"{r['interval_median_s']} s max {r['interval_max_s']} s, cpu "
                    f"{r['cpu_cores']} cores ({r['cpu_per_camera']}/camera, "
                    f"{r['cpu_ratio_vs_raw_decode']}x raw decode), rss {r['rss_mb']} MB "
                    f"({r['rss_mb_per_camera']} MB/camera), on time: {r['on_time']}"
                )
                if not r["on_time"]:
                    break
    sustained = [r for r in results if r["on_time"]]
    best = max(sustained, key=lambda r: r["cameras"]) if sustained else None
    summary = {
        "benchmark": "scale",
        "quick": args.quick,
        "stream": "720p30 H.264, GOP 30, 2 Mbit/s, one shared live RTSP mount",
        "watches_per_camera": 2,
        "look_every_s": LOOK_EVERY_S,
        "reference_raw_decode_cores_per_camera": round(reference, 4),
        "baseline_rss_mb": base["rss_mb"],
        "runs": results,
        "largest_n_on_time": best["cameras"] if best else 0,
        "largest_n_tried": results[-1]["cameras"] if results else 0,
        "cpu_per_camera_at_largest": best["cpu_per_camera"] if best else None,
        "rss_mb_per_camera_at_largest": best["rss_mb_per_camera"] if best else None,
        "targets": TARGETS,
    }
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
