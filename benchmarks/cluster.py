"""Lookout on a 3-node loopback Ray cluster against one process, in the same run.

    .venv/bin/python -m benchmarks.cluster [--quick] [--runs R] [--cameras N] [--decoding K]
                                           [--streams S] [--ray-defaults]

Three rows, each measured in one process (``python -m pipeline run``) and on a
Ray cluster of three loopback nodes of one CPU each (``python -m pipeline run
--ray ADDRESS``: the driver, the hub, which hosts the head's cameras, and a
camera actor on each other node) with the same config:

- ``snapshot``: ``--cameras`` (200) cheap cameras: Frigate-style snapshots
  (``frigate://``: one small JPEG fetched per look, nothing decoded) from one
  loopback HTTP server;
- ``decoding``: ``--decoding`` (10) cameras that decode: ``demo/walkway.mp4``
  (768x576, 10 fps H.264) played as live in a loop, each with the motion
  detector (5 fps, it decodes every frame);
- ``stream``: ``--streams`` (200) cheap cameras that stream: a synthetic
  low-rate clip (320x240, 2 fps H.264, keyframe every 2 s; made once and
  cached, :mod:`benchmarks.cluster_streams`) played as live in a loop, with
  ``decode = "on_demand"`` and no detector: each camera reads its stream all
  the time and decodes only the keyframe a look takes.

One watch per camera on a scripted model server that always answers "not
met, next look in ``--period`` s". Over a window after every camera has
looked once, it measures looks per second, looks on time (within 1 s of
due) and CPU seconds per camera per minute of *every* process it started:
one process; on the cluster, Lookout's own (driver, camera actors, hub) and
Ray's (raylets, control store, log and autoscaler monitors,
dashboard and runtime-env agents), reported apart and together. It also
measures the CPU and memory of an idle Ray actor process with Lookout
imported, and, on the snapshot cluster, the time from killing a worker node
(its raylet and workers, SIGKILL) until every camera it hosted has looked
again elsewhere. Each row runs ``--runs`` times (3); the figures are medians,
each run's ratio taken within the run.

The cluster runs as Lookout recommends (README, "Running on a cluster"):
Ray's timers lengthened and its own observability off
(:data:`~pipeline.app.cluster.ray_settings.RAY_SETTINGS`) and no log monitor
on the nodes (``ray start --include-log-monitor=False``); ``--ray-defaults``
measures it with Ray's defaults instead.

On this machine all three "nodes" share the same cores, so the cluster
cannot be faster than one process; the figures say what distribution costs.
The cluster's cost is mostly fixed (per process), so ``--quick``, with a third
of the cameras, shows ratios far above the full run's: it checks that
everything runs and recovers; the 1.3x goal is judged on the full run.

Last printed line: one JSON object.
"""

from __future__ import annotations

import argparse
import io
import itertools
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
from PIL import Image

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")

import ray
from ray.cluster_utils import Cluster

from benchmarks.cluster_procs import Sample, cpu_seconds, descendants, owner, usage
from benchmarks.cluster_streams import cached_stream_clip, stream_cameras
from pipeline.app.cluster.ray_settings import RAY_SETTINGS, apply_ray_settings
from tests.support.http_receiver import HttpReceiver
from tests.support.http_receiver import Reply as HttpReply
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.ports import free_port

ROOT = Path(__file__).resolve().parents[1]
ON_TIME_S = 1.0
CAMERA = re.compile(r"activity at (\w+)")
WALKWAY = ROOT / "demo" / "walkway.mp4"


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


def _watch(camera: str) -> str:
    return (
        f'[[watches]]\nname = "w{camera}"\ncamera = "{camera}"\n'
        f'condition = "activity at {camera}"\nbackend = "vlm"\nmax_duration_minutes = 0\n'
    )


def _common(model_url: str) -> str:
    return (
        "[activity]\nenabled = false\n[reload]\nwatch_file = false\n"
        '[sinks.null]\ntype = "jsonl"\npath = "/dev/null"\n'
        f'[backends.vlm]\ntype = "openai"\nbase_url = "{model_url}"\nmodel = "m"\n'
        "max_concurrency = 64\n"
    )


def config(cameras: int, snap_port: int, model_url: str) -> str:
    """Snapshot cameras ``cam000``... with one watch each."""
    parts = [_common(model_url)]
    for i in range(cameras):
        cam = f"cam{i:03}"
        parts.append(f'[cameras.{cam}]\nurl = "frigate://127.0.0.1:{snap_port}/{cam}"\n')
        parts.append(_watch(cam))
    return "".join(parts)


def decoding_config(cameras: int, model_url: str) -> str:
    """Cameras ``vid00``... playing the walkway clip as live, with motion detection."""
    parts = [_common(model_url)]
    for i in range(cameras):
        cam = f"vid{i:02}"
        parts.append(f'[cameras.{cam}]\nurl = "{WALKWAY}"\nloop = true\n'
                     f'[cameras.{cam}.detect]\ntype = "motion"\n')  # fmt: skip
        parts.append(_watch(cam))
    return "".join(parts)


def stream_config(cameras: int, clip: Path, model_url: str) -> str:
    """Cameras ``str000``... playing ``clip`` as live, decoded on demand, no detector."""
    cams = stream_cameras(cameras, clip)
    return _common(model_url) + "".join(text + _watch(cam) for cam, text in cams.items())


def wait_for(predicate: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.2)


def measure(model: Model, root: int, args: argparse.Namespace, n: int) -> dict[str, Any]:
    """Looks and the CPU of every process under ``root`` over a window after every first look."""
    wait_for(lambda: len(model.cameras_seen()) >= n, 180,
             f"every camera's first look (seen: {len(model.cameras_seen())} of {n})")  # fmt: skip
    time.sleep(args.period)
    before, t0 = Sample.take(descendants(root)), time.monotonic()
    time.sleep(args.window)
    after, t1 = Sample.take(descendants(root)), time.monotonic()
    by_kind = usage(before, after, t1 - t0)
    share, looks, p95 = model.on_time(t0, t1, args.period)
    out: dict[str, Any] = {
        "on_time": round(share, 4),
        "looks_per_s": round(looks / (t1 - t0), 2),
        "late_p95_s": round(p95, 2),
        "by_process": by_kind,
    }
    for who in ("lookout", "ray"):
        mine = [v for k, v in by_kind.items() if owner(k) == who]
        cores = sum(v["cpu"] for v in mine)
        out[f"{who}_cpu_s_per_camera_min"] = round(cores * 60 / n, 4)
        out[f"{who}_rss_mb_per_camera"] = round(sum(v["rss_mb"] for v in mine) / n, 2)
    out["all_cpu_s_per_camera_min"] = round(
        out["lookout_cpu_s_per_camera_min"] + out["ray_cpu_s_per_camera_min"], 4
    )
    cores = out["all_cpu_s_per_camera_min"] * n / 60
    out["cpu_ms_per_look"] = round(cores / max(1e-9, looks / (t1 - t0)) * 1000, 2)
    return out


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def run_pipeline(cfg: Path, *extra: str) -> subprocess.Popen[bytes]:
    log = cfg.with_suffix(".log").open("wb")
    return subprocess.Popen([sys.executable, "-m", "pipeline", "run", *extra, "-c", str(cfg)],
                            cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)  # fmt: skip


def tell_log(cfg: Path) -> None:
    """Print the end of a run's log (the benchmark failed)."""
    lines = cfg.with_suffix(".log").read_text(errors="replace").splitlines()
    print(f"--- end of {cfg.with_suffix('.log').name}:", *lines[-40:], sep="\n", file=sys.stderr)


def single_process(
    text: str, tmp: Path, model: Model, args: argparse.Namespace, n: int
) -> dict[str, Any]:
    cfg = tmp / "single.toml"
    cfg.write_text(text)
    proc = run_pipeline(cfg)
    try:
        return measure(model, os.getpid(), args, n)  # only it runs under us now
    except SystemExit:
        tell_log(cfg)
        raise
    finally:
        stop(proc)


def camera_nodes(metrics_port: int) -> dict[str, str]:
    text = urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=30).read()
    pattern = r'lookout_cluster_camera_info\{camera="([^"]+)",group="[^"]+",node="([^"]+)"\}'
    return dict(re.findall(pattern, text.decode()))


def idle_actor(seconds: float) -> dict[str, float]:
    """Memory and CPU (cores) of an actor process with Lookout imported and nothing to do."""

    @ray.remote(num_cpus=0)
    class Idle:
        def __init__(self) -> None:
            import pipeline.app.cluster.host  # noqa: F401  (what a camera actor loads)

        def pid(self) -> int:
            return os.getpid()

    actor = Idle.remote()  # type: ignore[attr-defined]
    pid = ray.get(actor.pid.remote(), timeout=120)
    time.sleep(2)
    cpu0 = cpu_seconds(pid)
    time.sleep(seconds)
    out = {"cpu": round((cpu_seconds(pid) - cpu0) / seconds, 4),
           "rss_mb": round(Sample.take([pid]).rss[pid] / 2**20, 1)}  # fmt: skip
    ray.kill(actor)
    return out


def kill_a_node(cluster: Cluster, workers: list[Any], port: int, model: Model) -> dict[str, Any]:
    where = camera_nodes(port)
    victim = next(w for w in workers if w.node_id[:8] in set(where.values()))
    moved = sorted(c for c, n in where.items() if n == victim.node_id[:8])
    killed = time.monotonic()
    cluster.remove_node(victim, allow_graceful=False)
    wait_for(lambda: set(moved) <= model.cameras_seen(after=killed), 180, "moved cameras' looks")
    with model.lock:
        firsts = [min(t for t in model.looks[c] if t > killed) for c in moved]
    return {"recovery_s": round(max(firsts) - killed, 1), "moved_cameras": len(moved)}


def on_cluster(
    text: str, tmp: Path, model: Model, args: argparse.Namespace, n: int, kill: bool
) -> dict[str, Any]:
    node: dict[str, Any] = {"num_cpus": 1}
    if not args.ray_defaults:
        apply_ray_settings()  # inherited by every Ray process and the driver
        node["include_log_monitor"] = False
    cluster = Cluster(initialize_head=True, head_node_args=node | {"include_dashboard": False})
    proc: subprocess.Popen[bytes] | None = None
    try:
        workers = [cluster.add_node(**node) for _ in range(2)]
        cluster.wait_for_nodes()
        port = free_port()
        cfg = tmp / "cluster.toml"
        cfg.write_text(text + f"[metrics]\nenabled = true\nport = {port}\n"
                       "[cluster]\ncameras_per_cpu = 1000\n")  # fmt: skip
        proc = run_pipeline(cfg, "--ray", cluster.address)
        try:
            figures = measure(model, os.getpid(), args, n)
        except SystemExit:
            tell_log(cfg)
            raise
        if kill:
            ray.init(address=cluster.address, logging_level="WARNING")
            figures["idle_actor"] = idle_actor(args.idle_window)
            figures |= kill_a_node(cluster, workers, port, model)
        return figures
    finally:
        if proc is not None:
            stop(proc)
        if ray.is_initialized():
            ray.shutdown()
        cluster.shutdown()


def one_run(args: argparse.Namespace, snap_port: int) -> dict[str, Any]:
    """Every row, each in one process then on a cluster."""
    out: dict[str, Any] = {}
    rows = [("snapshot", args.cameras), ("decoding", args.decoding), ("stream", args.streams)]
    for row, n in rows:
        if n <= 0:
            continue
        out[row] = {}
        for where in ("single", "cluster"):
            model = Model(args.period)
            with tempfile.TemporaryDirectory() as folder, \
                    ScriptedModelServer([], responder=model) as server:  # fmt: skip
                text = (config(n, snap_port, server.base_url) if row == "snapshot"
                        else decoding_config(n, server.base_url) if row == "decoding"
                        else stream_config(n, Path(args.clip), server.base_url))  # fmt: skip
                if where == "single":
                    out[row][where] = single_process(text, Path(folder), model, args, n)
                else:
                    kill = row == "snapshot"
                    out[row][where] = on_cluster(text, Path(folder), model, args, n, kill)
        single, clustered = out[row]["single"], out[row]["cluster"]
        for who in ("lookout", "all"):
            out[row][f"{who}_ratio"] = round(
                clustered[f"{who}_cpu_s_per_camera_min"]
                / max(1e-9, single["all_cpu_s_per_camera_min"]), 3
            )  # fmt: skip
    return out


def median_of(runs: list[Any]) -> Any:
    """Medians of the numbers of several runs' results, key by key."""
    first = runs[0]
    if isinstance(first, dict):
        return {k: median_of([r[k] for r in runs if k in r]) for k in first}
    if isinstance(first, int | float):
        return round(statistics.median(runs), 4)
    return first


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="60 + 4 + 60 cameras, 15 s, one run")
    parser.add_argument("--cameras", type=int, default=None, help="snapshot cameras (200)")
    parser.add_argument("--decoding", type=int, default=None, help="decoding cameras (10)")
    parser.add_argument("--streams", type=int, default=None, help="low-rate stream cameras (200)")
    parser.add_argument("--window", type=float, default=None, help="seconds measured (30)")
    parser.add_argument("--runs", type=int, default=None, help="runs; medians reported (3)")
    parser.add_argument("--period", type=float, default=5.0, help="seconds between looks")
    parser.add_argument("--ray-defaults", action="store_true",
                        help="Ray's default settings and a log monitor on every node")  # fmt: skip
    args = parser.parse_args()
    if args.ray_defaults:
        for key in RAY_SETTINGS:
            os.environ.pop(key, None)
    q = args.quick
    args.cameras = args.cameras if args.cameras is not None else (60 if q else 200)
    args.decoding = args.decoding if args.decoding is not None else (4 if q else 10)
    args.streams = args.streams if args.streams is not None else (60 if q else 200)
    args.clip = str(cached_stream_clip()) if args.streams > 0 else None
    args.window = args.window or (15.0 if q else 30.0)
    args.runs = args.runs or (1 if q else 3)
    args.idle_window = 10.0 if q else 20.0
    jpeg = snapshot_jpeg()
    snaps = HttpReceiver(respond=lambda _r: HttpReply(200, {"Content-Type": "image/jpeg"}, jpeg))
    snaps.start()
    try:
        runs = [one_run(args, snaps.port) for _ in range(args.runs)]
    finally:
        snaps.stop()
    report(args, runs)


def report(args: argparse.Namespace, runs: list[dict[str, Any]]) -> None:
    med = median_of(runs)
    ray_settings = "Ray's defaults" if args.ray_defaults else "Lookout's Ray settings"
    print(f"{args.window:g} s measured per row, a look every {args.period:g} s; "
          f"median of {len(runs)} run(s); {ray_settings}")  # fmt: skip
    whats = {"snapshot": "snapshots", "decoding": "walkway.mp4 as live, motion detector",
             "stream": "320x240 2 fps H.264 as live, on demand, no detector"}  # fmt: skip
    for row, n in (("snapshot", args.cameras), ("decoding", args.decoding),
                   ("stream", args.streams)):  # fmt: skip
        if row not in med:
            continue
        s, c = med[row]["single"], med[row]["cluster"]
        what = whats[row]
        print(f"\n{row}: {n} cameras ({what}), one watch each")
        print(f"{'':40}{'one process':>12}{'3-node cluster':>16}")
        for key, label in (
            ("looks_per_s", "looks per second"),
            ("on_time", "looks on time (share)"),
            ("late_p95_s", "lateness p95 (s)"),
            ("lookout_cpu_s_per_camera_min", "CPU s per camera-minute, Lookout"),
            ("ray_cpu_s_per_camera_min", "  + Ray's own processes"),
            ("all_cpu_s_per_camera_min", "  = all"),
            ("cpu_ms_per_look", "CPU ms per look (all)"),
            ("lookout_rss_mb_per_camera", "memory MB per camera, Lookout"),
            ("ray_rss_mb_per_camera", "  + Ray's own processes"),
        ):
            print(f"{label:40}{s[key]:>12}{c[key]:>16}")
        print(f"cluster CPU per camera: {med[row]['lookout_ratio']}x one process for Lookout's "
              f"processes, {med[row]['all_ratio']}x with Ray's own (goal <= 1.3x)")  # fmt: skip
        shares = ", ".join(f"{k} {v['cpu']:.3f}" for k, v in c["by_process"].items() if v["cpu"])
        print(f"cluster CPU by process (cores): {shares}")
    snap = med.get("snapshot", {}).get("cluster", {})
    if "idle_actor" in snap:
        idle = snap["idle_actor"]
        print(f"\nan idle actor process with Lookout imported: {idle['rss_mb']} MB, "
              f"{idle['cpu']:.4f} cores")  # fmt: skip
        print(f"node killed: its {snap['moved_cameras']:g} cameras looked again on other "
              f"nodes after {snap['recovery_s']} s (goal < 30 s)")  # fmt: skip
    print(orjson.dumps({"args": vars(args), "median": med, "runs": runs}).decode())


if __name__ == "__main__":
    main()
