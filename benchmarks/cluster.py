"""Lookout on a 3-node loopback Ray cluster against one process, in the same run.

    .venv/bin/python -m benchmarks.cluster [--quick] [--cameras N] [--window S]

Cheap cameras: Frigate-style snapshot cameras (``frigate://``: one small JPEG
fetched per look, no decode of a stream) from one loopback HTTP server, one
watch each on the scripted model server (always "not met, next look in
``--period`` s"). The same config runs

1. in one process (``python -m pipeline run``), and
2. on a Ray cluster of three loopback nodes, one CPU each
   (``python -m pipeline run --ray ADDRESS``: the driver, a hub and one camera
   actor per node by default),

and for each it prints, over a window after every camera has looked once:
looks on time (a look within 1 s of ``period`` after the previous answer),
looks per second, CPU seconds per camera per minute and resident memory per
camera (one process: the process; cluster: the driver, the camera actors,
the hub and the slots actor; Ray's own daemons apart). Then a worker node is
killed (its raylet and workers, SIGKILL) and the time until every camera it
hosted has looked again on another node is printed. Also: the memory of a Ray
actor process with Lookout imported and no camera, which is why cameras are
grouped rather than one actor each.

On this machine all three "nodes" share the same cores, so the cluster cannot
be faster than one process; the figures say what the distribution costs.

Last printed line: one JSON object.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson
from PIL import Image

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray
from ray.cluster_utils import Cluster

from tests.support.http_receiver import HttpReceiver
from tests.support.http_receiver import Reply as HttpReply
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
TICK = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ON_TIME_S = 1.0
CAMERA = re.compile(r"activity at (cam\d+)")


def snapshot_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (320, 240), (90, 120, 60)).save(buf, format="JPEG", quality=80)
    return buf.getvalue()


class Model:
    """Answers every look "not met, next in period s"; records look times per camera."""

    def __init__(self, period: float) -> None:
        self.answer = orjson.dumps(
            {"condition_met": False, "next_run_in": period, "reasoning": "Quiet."}
        ).decode()
        self.looks: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    def __call__(self, request: Any) -> Reply:
        found = CAMERA.search(str(request["messages"][0]["content"]))
        if found:
            with self.lock:
                self.looks[found.group(1)].append(time.monotonic())
        return Reply(self.answer)

    def cameras_seen(self, after: float = 0.0) -> set[str]:
        with self.lock:
            return {c for c, ts in self.looks.items() if any(t > after for t in ts)}

    def on_time(self, start: float, end: float, period: float) -> tuple[float, int, float]:
        """(share of looks on time, looks, p95 lateness s) of looks in [start, end]."""
        late: list[float] = []
        with self.lock:
            for ts in self.looks.values():
                for a, b in itertools.pairwise(ts):
                    if start <= b <= end:
                        late.append(max(0.0, b - a - period))
        if not late:
            return 0.0, 0, 0.0
        late.sort()
        share = sum(1 for x in late if x <= ON_TIME_S) / len(late)
        return share, len(late), late[int(0.95 * (len(late) - 1))]


def config(cameras: int, snap_port: int, model_url: str, extra: str = "") -> str:
    parts = [
        "[activity]\nenabled = false\n[reload]\nwatch_file = false\n",
        '[sinks.null]\ntype = "jsonl"\npath = "/dev/null"\n',
        f'[backends.vlm]\ntype = "openai"\nbase_url = "{model_url}"\nmodel = "m"\n'
        "max_concurrency = 64\n",
        extra,
    ]
    for i in range(cameras):
        cam = f"cam{i:03}"
        parts.append(f'[cameras.{cam}]\nurl = "frigate://127.0.0.1:{snap_port}/{cam}"\n')
        parts.append(
            f'[[watches]]\nname = "w{cam}"\ncamera = "{cam}"\ncondition = "activity at {cam}"\n'
            'backend = "vlm"\nmax_duration_minutes = 0\n'
        )
    return "".join(parts)


def proc_cpu(pid: int) -> float:
    """CPU seconds (user + system) of a process so far; 0 once it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / TICK


def proc_rss(pid: int) -> int:
    try:
        return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE
    except OSError:
        return 0


def pids_named(*prefixes: str) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if any(cmd.startswith(p) or f"/{p}" in cmd.split(" ")[0] for p in prefixes):
            out.append(int(entry.name))
    return out


def kind_of(pid: int) -> str:
    try:
        cmd = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[0].decode(errors="replace")
    except OSError:
        return "gone"
    return cmd.split(".")[0].removeprefix("ray::") if cmd.startswith("ray::") else "driver"


def wait_for(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def measure(model: Model, pids: Any, window: float, period: float, n: int) -> dict[str, float]:
    """CPU, memory and looks over ``window`` seconds once every camera has looked."""
    wait_for(lambda: len(model.cameras_seen()) >= n, 180, "every camera's first look")
    time.sleep(period)
    procs = pids()
    before = {p: proc_cpu(p) for p in procs}
    cpu0, t0 = sum(before.values()), time.monotonic()
    time.sleep(window)
    procs = pids()
    cpu1, t1 = sum(proc_cpu(p) for p in procs), time.monotonic()
    by_kind: dict[str, float] = defaultdict(float)
    for p in procs:
        by_kind[kind_of(p)] += (proc_cpu(p) - before.get(p, 0.0)) / (t1 - t0)
    rss = sum(proc_rss(p) for p in procs)
    share, looks, p95 = model.on_time(t0, t1, period)
    return {
        "processes": len(procs),
        "on_time": round(share, 4),
        "looks_per_s": round(looks / (t1 - t0), 2),
        "late_p95_s": round(p95, 2),
        "cpu_s_per_camera_min": round((cpu1 - cpu0) / (t1 - t0) * 60 / n, 4),
        "rss_mb_per_camera": round(rss / n / 2**20, 2),
        "rss_mb": round(rss / 2**20, 1),
        "cpu_share_by_process": {k: round(v, 4) for k, v in sorted(by_kind.items())},
    }


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def single_process(cfg: Path, model: Model, window: float, period: float, n: int) -> dict[str, Any]:
    log = cfg.with_suffix(".single.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "pipeline", "run", "-c", str(cfg)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip
    try:
        return measure(model, lambda: [proc.pid], window, period, n)
    finally:
        stop(proc)


def camera_nodes(metrics_port: int) -> dict[str, str]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).read()
    pattern = r'lookout_cluster_camera_info\{camera="([^"]+)",group="[^"]+",node="([^"]+)"\}'
    return dict(re.findall(pattern, text.decode()))


def actor_overhead_mb() -> float:
    """Resident memory of an actor process with Lookout imported and no camera."""

    @ray.remote(num_cpus=0)
    def probe() -> int:
        from pipeline.app.cluster.host import rss_bytes

        return rss_bytes()

    return round(ray.get(probe.remote(), timeout=120) / 2**20, 1)


def on_cluster(cfg_text: str, tmp: Path, model: Model, args: argparse.Namespace) -> dict[str, Any]:
    cluster = Cluster(
        initialize_head=True, head_node_args={"num_cpus": 1, "include_dashboard": False}
    )
    proc: subprocess.Popen[bytes] | None = None
    try:
        workers = [cluster.add_node(num_cpus=1) for _ in range(2)]
        cluster.wait_for_nodes()
        port = free_port()
        cfg = tmp / "cluster.toml"
        cfg.write_text(cfg_text + f"[metrics]\nenabled = true\nport = {port}\n"
                       "[cluster]\ncameras_per_cpu = 1000\n")  # fmt: skip
        log = (tmp / "cluster.log").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", "--ray", cluster.address, "-c", str(cfg)],
            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        driver = proc.pid

        def pids() -> list[int]:
            return [driver, *pids_named("ray::CameraHost", "ray::Hub", "ray::Slots")]

        daemons = pids_named("raylet", "gcs_server")
        d0 = sum(proc_cpu(p) for p in daemons)
        figures = measure(model, pids, args.window, args.period, args.cameras)
        figures["ray_daemons_cpu_s_per_camera_min"] = round(
            (sum(proc_cpu(p) for p in daemons) - d0) / max(1.0, args.window) * 60 / args.cameras, 4
        )  # includes the warm-up: an upper bound
        ray.init(address=cluster.address, logging_level="WARNING")
        figures["actor_overhead_mb"] = actor_overhead_mb()
        where = camera_nodes(port)
        victim = next(w for w in workers if w.node_id[:8] in set(where.values()))
        moved = sorted(c for c, n in where.items() if n == victim.node_id[:8])
        killed = time.monotonic()
        cluster.remove_node(victim, allow_graceful=False)
        wait_for(
            lambda: set(moved) <= model.cameras_seen(after=killed), 180, "moved cameras' looks"
        )
        with model.lock:
            firsts = [min(t for t in model.looks[c] if t > killed) for c in moved]
        figures["recovery_s"] = round(max(firsts) - killed, 1)
        figures["moved_cameras"] = len(moved)
        return figures
    finally:
        if proc is not None:
            stop(proc)
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 cameras, 15 s windows")
    parser.add_argument("--cameras", type=int, default=None, help="cameras (default 200)")
    parser.add_argument("--window", type=float, default=None, help="seconds measured (30)")
    parser.add_argument("--period", type=float, default=5.0, help="seconds between looks")
    args = parser.parse_args()
    args.cameras = args.cameras or (60 if args.quick else 200)
    args.window = args.window or (15.0 if args.quick else 30.0)
    jpeg = snapshot_jpeg()
    snaps = HttpReceiver(respond=lambda _r: HttpReply(200, {"Content-Type": "image/jpeg"}, jpeg))
    snaps.start()
    try:
        with tempfile.TemporaryDirectory() as folder:
            tmp = Path(folder)
            single_model = Model(args.period)
            with ScriptedModelServer([], responder=single_model) as server:
                text = config(args.cameras, snaps.port, server.base_url)
                (tmp / "single.toml").write_text(text)
                single = single_process(tmp / "single.toml", single_model, args.window,
                                        args.period, args.cameras)  # fmt: skip
            cluster_model = Model(args.period)
            with ScriptedModelServer([], responder=cluster_model) as server:
                text = config(args.cameras, snaps.port, server.base_url)
                clustered = on_cluster(text, tmp, cluster_model, args)
    finally:
        snaps.stop()
    report(args, single, clustered)


def report(args: argparse.Namespace, single: dict[str, Any], clustered: dict[str, Any]) -> None:
    ratio = clustered["cpu_s_per_camera_min"] / max(1e-9, single["cpu_s_per_camera_min"])
    print(f"{args.cameras} snapshot cameras, one watch each, a look every {args.period:g} s; "
          f"{args.window:g} s measured")  # fmt: skip
    print(f"{'':28}{'one process':>14}{'3-node cluster':>16}")
    for key, label in (
        ("on_time", "looks on time (share)"),
        ("looks_per_s", "looks per second"),
        ("late_p95_s", "lateness p95 (s)"),
        ("cpu_s_per_camera_min", "CPU s per camera-minute"),
        ("rss_mb_per_camera", "memory MB per camera"),
        ("processes", "processes measured"),
    ):
        print(f"{label:28}{single[key]:>14}{clustered[key]:>16}")
    print(f"cluster CPU per camera: {ratio:.2f}x one process (goal <= 1.3x); Ray's daemons add "
          f"{clustered['ray_daemons_cpu_s_per_camera_min']} CPU s per camera-minute")  # fmt: skip
    print(f"an actor process with Lookout and no camera: {clustered['actor_overhead_mb']} MB")
    print(f"node killed: its {clustered['moved_cameras']} cameras looked again on other nodes "
          f"after {clustered['recovery_s']} s (goal < 30 s)")  # fmt: skip
    print(orjson.dumps({"cameras": args.cameras, "single": single, "cluster": clustered,
                        "cpu_ratio": round(ratio, 3)}).decode())  # fmt: skip


if __name__ == "__main__":
    main()
