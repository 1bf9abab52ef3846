"""The same pipeline.toml on a 3-node Ray cluster on loopback, with real services.

One cluster for the module (Ray's ``cluster_utils.Cluster``: a head and two
worker nodes, each its own raylet and processes), Mosquitto, the scripted
model server, a webhook receiver and six file cameras (demo/walkway.mp4 played
as live). The tests run in order and share the running app: cameras spread
over the nodes and alerts reach MQTT and the webhook; a backend's
max_concurrency holds across the cluster; control and reload reach the actor
of the watch's camera; a killed node's cameras come back elsewhere within
30 s with the same job ids and their looks go on, and every alert the head
recorded before the kill arrives (a duplicate carries the same event id);
then a graceful stop.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
import pytest

os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # keep Ray on 127.0.0.1

import ray
from ray.cluster_utils import Cluster

from pipeline.app.cluster.app import ClusterApp
from pipeline.app.cluster.hub_host import HubGroup
from pipeline.app.cluster.ray_settings import RAY_SETTINGS
from pipeline.core.config_loader import load_config
from tests.support.http_receiver import HttpReceiver
from tests.support.model_server import Reply, ScriptedModelServer
from tests.support.mosquitto import Mosquitto
from tests.support.mqtt_recorder import MqttRecorder
from tests.support.mqtt_requester import Requester
from tests.support.waiting import wait_until

ROOT = Path(__file__).resolve().parents[2]
CAMERAS = [f"c{i}" for i in range(6)]
MET = (
    '{"condition_met": true, "next_run_in": 1, "reasoning": "People.",'
    ' "notification_message": "people"}'
)


def condition(camera: str) -> str:
    return f"people walking on {camera}"


class Model:
    """Says met on every look (0.15 s each); counts looks per condition with their times."""

    def __init__(self) -> None:
        self.looks: dict[str, list[float]] = defaultdict(list)
        self.lock = threading.Lock()

    def __call__(self, request: Any) -> Reply:
        system = str(request["messages"][0]["content"])
        with self.lock:
            for camera in [*CAMERAS, "c9"]:
                if condition(camera) in system:
                    self.looks[camera].append(time.monotonic())
        return Reply(MET, delay=0.15)

    def looks_after(self, camera: str, t: float) -> int:
        with self.lock:
            return sum(1 for x in self.looks[camera] if x > t)


def config_text(broker: Mosquitto, model: str, hook: str, tmp: Path, extra: str = "") -> str:
    cams = "".join(
        f'[cameras.{c}]\nurl = "{ROOT / "demo" / "walkway.mp4"}"\nloop = true\n' for c in CAMERAS
    )
    watches = "".join(
        f'[[watches]]\nname = "w{c}"\ncamera = "{c}"\ncondition = "{condition(c)}"\n'
        'backend = "vlm"\nmode = "repeat"\nquiet_period_s = 2\nmax_duration_minutes = 0\n'
        for c in CAMERAS
    )
    return f"""
[mqtt]
host = "127.0.0.1"
port = {broker.port}
[control]
enabled = true
state_file = "{tmp / "watches.json"}"
[metrics]
enabled = true
port = 0
[reload]
watch_file = false
[activity]
enabled = false
[cluster]
lost_after_s = 5
health_interval_s = 0.5
flush_interval_s = 0.1
[shutdown]
grace_s = 2
flush_s = 2
[backends.vlm]
type = "openai"
base_url = "{model}"
model = "m"
max_concurrency = 1
[sinks.mqtt]
type = "mqtt"
[sinks.hook]
type = "webhook"
url = "{hook}"
outbox = "{tmp / "outbox.sqlite3"}"
backoff_initial_s = 0.2
backoff_max_s = 0.5
{cams}{watches}{extra}"""


@dataclass
class Live:
    cluster: Cluster
    app: ClusterApp
    broker: Mosquitto
    model: Model
    server: ScriptedModelServer
    hook: HttpReceiver
    recorder: MqttRecorder
    path: Path
    tmp: Path

    def alerts(self) -> list[dict[str, Any]]:
        return [
            orjson.loads(p)
            for t, p, _ in self.recorder.wait_for(lambda m: True, 0.1)
            if t.endswith("/alert")
        ]

    def hook_ids(self) -> list[str]:
        return [orjson.loads(r.body)["data"]["event_id"] for r in self.hook.ok()]

    def state(self, watch: str) -> dict[str, Any]:
        raw = self.recorder.last(f"lookout/watches/{watch}/state")
        return orjson.loads(raw) if raw else {}

    def actor_watches(self, camera: str) -> dict[str, str]:
        rt = self.app.runtime
        hosted = next(h for h in rt.hosts.values() if camera in h.group.cameras)
        return dict(ray.get(hosted.actor.ping.remote(), timeout=30).watches)


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    tmp = tmp_path_factory.mktemp("cluster")
    model = Model()
    with (
        Mosquitto() as broker,
        ScriptedModelServer([], responder=model) as server,
        HttpReceiver() as hook,
        pytest.MonkeyPatch.context() as env,
    ):
        # As the README recommends for `ray start`: recovery must hold with them.
        for key, value in RAY_SETTINGS.items():
            env.setenv(key, value)
        node = {"num_cpus": 1, "include_log_monitor": False}
        cluster = Cluster(initialize_head=True, head_node_args=node | {"include_dashboard": False})
        app: ClusterApp | None = None
        recorder = MqttRecorder.under(broker, "lookout")
        try:
            for _ in range(2):
                cluster.add_node(**node)
            cluster.wait_for_nodes()
            ray.init(address=cluster.address, logging_level="WARNING")
            path = tmp / "pipeline.toml"
            path.write_text(config_text(broker, server.base_url, hook.url, tmp))
            app = ClusterApp(load_config(path), path, cluster.address)
            app.start()
            yield Live(cluster, app, broker, model, server, hook, recorder, path, tmp)
        finally:
            if app is not None:
                app.stop()
            recorder.close()
            ray.shutdown()
            cluster.shutdown()


def test_cameras_spread_over_the_nodes_and_alerts_reach_mqtt_and_the_webhook(live: Live) -> None:
    rt = live.app.runtime
    nodes = {h.group.node_id for h in rt.hosts.values()}
    assert len(nodes) == 3 and nodes == {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    placed = sorted(c for h in rt.hosts.values() for c in h.group.cameras)
    assert placed == CAMERAS  # each camera on exactly one actor
    for camera in CAMERAS:
        wait_until(lambda c=camera: live.actor_watches(c).get(f"w{c}") == "running", 30, camera)
    wait_until(lambda: {a["watch"] for a in live.alerts()} >= {f"w{c}" for c in CAMERAS}, 30,
               lambda: f"alerts of every watch on MQTT; got {live.alerts()[-3:]}")  # fmt: skip
    wait_until(lambda: set(live.hook_ids()) & {a["event_id"] for a in live.alerts()}, 30,
               "the same alerts on the webhook")  # fmt: skip
    listing = {w["name"]: w for w in rt.watch_list()}
    assert {listing[f"w{c}"]["node"] for c in CAMERAS} == nodes
    # The head's first group runs in the hub's own process; every other group in an actor.
    wait_until(lambda: all(h.stats for h in rt.hosts.values()), 20, "every group's answer")
    hub_pid = ray.get(rt.hub.pid.remote(), timeout=10)
    in_hub = [h for h in rt.hosts.values() if h.stats and h.stats.pid == hub_pid]
    assert [h.group.node_id for h in in_hub] == [rt.node_id]
    assert len({h.stats.pid for h in rt.hosts.values() if h.stats}) == len(rt.hosts)
    # Metrics: per node and cluster-wide; health.
    assert live.app.metrics is not None
    url = f"http://127.0.0.1:{live.app.metrics.port}"

    def scrape() -> str:
        return urllib.request.urlopen(f"{url}/metrics", timeout=20).read().decode()

    # Actors' memory shows once the supervisor has heard from each of them.
    text = wait_until(lambda: (t := scrape()).count("lookout_cluster_actor_memory_bytes{") == 3 and t,
                      20, "memory of the three actors in /metrics")  # fmt: skip
    for camera in CAMERAS:
        assert f'lookout_cluster_camera_info{{camera="{camera}"' in text
    assert 'lookout_cluster_nodes{state="alive"} 3' in text
    assert "lookout_cluster_actor_memory_bytes{" in text
    assert 'lookout_watch_alerts_total{node="' in text  # the single-process families, per node
    assert 'lookout_sink_delivered_total{node="' in text and 'group="hub"' in text
    health = orjson.loads(urllib.request.urlopen(f"{url}/healthz", timeout=20).read())
    assert health["status"] == "ok", health


def test_a_backends_max_concurrency_holds_across_the_cluster(live: Live) -> None:
    # Three actors look at once at a model server that allows one request at a time.
    wait_until(lambda: len(live.server.chat_requests()) >= 20, 30, "twenty looks")
    assert live.server.max_concurrency == 1
    slots = ray.get(live.app.runtime.hub.slots_stats.remote(), timeout=10)
    assert slots["vlm"]["limit"] == 1 and slots["vlm"]["peak"] == 1 and slots["vlm"]["waits"] > 0


def test_control_and_reload_reach_the_actor_of_the_watchs_camera(live: Live) -> None:
    requester = Requester(live.broker, "lookout/watches/reply", v5=False)
    try:
        requester.wait_ready("lookout")
        reply = requester.request(
            "lookout/watches/set",
            {"name": "extra", "camera": "c4", "condition": condition("c4") + " too",
             "backend": "vlm", "mode": "repeat", "quiet_period_s": 2},
        )  # fmt: skip
        assert reply["ok"] is True and reply["job_id"], reply
        wait_until(lambda: "extra" in live.actor_watches("c4"), 20, "the run-time watch on c4")
        others = [c for c in CAMERAS if not set(live.actor_watches(c)) & {"wc4"}]
        assert all("extra" not in live.actor_watches(c) for c in others)
        listed = requester.request("lookout/watches/list", None)
        assert {w["name"] for w in listed["watches"]} >= {"extra", "wc0"}
        # Reload: a new camera and a watch on it, one config watch removed.
        text = config_text(live.broker, live.server.base_url, live.hook.url, live.tmp)
        text = text.replace('[[watches]]\nname = "wc5"', '[[watches]]\nname = "gone"')
        text += (
            f'[cameras.c9]\nurl = "{ROOT / "demo" / "walkway.mp4"}"\nloop = true\n'
            f'[[watches]]\nname = "new9"\ncamera = "c9"\ncondition = "{condition("c9")}"\n'
            'backend = "vlm"\nmode = "repeat"\nquiet_period_s = 2\n'
        )
        live.path.write_text(text)
        assert live.app.reload("test") is True
        wait_until(lambda: live.actor_watches("c9").get("new9") == "running", 30, "new9 on c9")
        wait_until(lambda: live.model.looks_after("c9", 0) > 0, 30, "a look on the new camera")
        assert "wc5" not in live.actor_watches("c5") and "gone" in live.actor_watches("c5")
        assert "extra" in live.actor_watches("c4")  # the run-time watch kept running
        cancel = requester.request("lookout/watches/extra/cancel", {})
        assert cancel["ok"] is True
        wait_until(lambda: "extra" not in live.actor_watches("c4"), 20, "extra cancelled")
    finally:
        requester.close()


def test_a_killed_nodes_cameras_come_back_elsewhere_and_no_alert_is_lost(live: Live) -> None:
    rt = live.app.runtime
    victim = next(
        n for n in live.cluster.worker_nodes
        if any(h.group.node_id == n.node_id and h.group.cameras for h in rt.hosts.values())
    )  # fmt: skip
    moved = [h.group.group_id for h in rt.hosts.values() if h.group.node_id == victim.node_id]
    cameras = [c for g in moved for c in rt.hosts[g].group.cameras]
    watches = {w["name"]: w for w in rt.watch_list() if w["camera"] in cameras}
    jobs = {name: w["job_id"] for name, w in watches.items() if w["status"] == "running"}
    assert jobs, watches
    live.hook.stop()  # alerts from now on wait in the head's outbox
    wait_until(lambda: len(ray.get(rt.hub.alert_ids.remote())) > len(live.hook_ids()) + 2, 20,
               "alerts waiting for the webhook")  # fmt: skip
    decided = ray.get(rt.hub.alert_ids.remote(), timeout=10)
    killed_at = time.monotonic()
    live.cluster.remove_node(victim, allow_graceful=False)

    def back() -> bool:
        hosts = [rt.hosts[g] for g in moved]
        return all(
            h.actor is not None
            and h.group.node_id != victim.node_id
            and h.stats is not None
            and h.stats.started
            and h.lost_at is None
            for h in hosts
        )

    wait_until(back, 30, "the lost groups running on other nodes")
    resumed = time.monotonic()
    for camera in cameras:
        wait_until(lambda c=camera: live.model.looks_after(c, resumed) > 0, 30 - (resumed - killed_at) + 5,
                   f"looks on {camera} after the move")  # fmt: skip
    assert resumed - killed_at < 30
    for name, job in jobs.items():
        wait_until(lambda n=name: live.state(n).get("restarts", 0) >= 1, 10, f"{name} restarted")
        state = live.state(name)
        assert state["id"] == job and state["status"] == "running", state
    # Every alert the head recorded before the kill arrives, on MQTT and on the webhook.
    live.hook.start()
    wait_until(lambda: set(decided) <= {a["event_id"] for a in live.alerts()}, 30, "MQTT alerts")
    wait_until(lambda: set(decided) <= set(live.hook_ids()), 30, "webhook alerts")
    by_id: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for alert in live.alerts():
        by_id[alert["event_id"]].append(alert)
    for copies in by_id.values():  # a duplicate is the same alert, with the same event id
        assert all(c == copies[0] for c in copies[1:])


def test_a_crashed_hub_comes_back_and_the_group_it_hosted_runs_again(live: Live) -> None:
    rt = live.app.runtime
    hosted = next(h for h in rt.hosts.values() if isinstance(h.actor, HubGroup))
    cameras = list(hosted.group.cameras)
    jobs = {w["name"]: w["job_id"] for w in rt.watch_list() if w["camera"] in cameras}
    restarts = {name: live.state(name).get("restarts", 0) for name in jobs}
    old_pid = ray.get(rt.hub.pid.remote(), timeout=10)
    os.kill(old_pid, signal.SIGKILL)
    killed_at = time.monotonic()

    def back() -> bool:
        h = rt.hosts[hosted.group.group_id]
        return bool(h.actor is not None and h.lost_at is None and h.stats
                    and h.stats.started and h.stats.pid != old_pid)  # fmt: skip

    wait_until(back, 60, "the hub's group running again")
    assert ray.get(rt.hub.pid.remote(), timeout=30) != old_pid  # Ray started the hub again
    for camera in cameras:
        wait_until(lambda c=camera: live.model.looks_after(c, killed_at) > 0, 30,
                   f"looks on {camera} after the hub's crash")  # fmt: skip
    for name, job in jobs.items():
        wait_until(lambda n=name: live.state(n).get("restarts", 0) > restarts[n], 20,
                   f"{name} says it restarted")  # fmt: skip
        assert live.state(name)["id"] == job


def test_graceful_stop_ends_every_actor_and_says_offline(live: Live) -> None:
    rt = live.app.runtime
    actors = [h.actor for h in rt.hosts.values() if h.actor is not None]
    began = time.monotonic()
    live.app.stop()
    assert time.monotonic() - began < 2 + 2 + 15
    assert live.recorder.wait_topic("lookout/available", 10, b"offline")
    for actor in actors:
        with pytest.raises(ray.exceptions.RayActorError):
            ray.get(actor.ping.remote(), timeout=10)
