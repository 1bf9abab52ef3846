"""Placement of camera groups on nodes, and the config an actor runs (pure, no Ray)."""

import pytest

from pipeline.app.cluster.placement import (
    Group,
    NodeInfo,
    PlacementError,
    actors_for,
    group_config,
    node_capacity,
    node_load,
    pick_node,
    plan_groups,
    spread_cameras,
)
from pipeline.core.config_loader import load_config_text

NODES = [NodeInfo("a", cpus=2, capacity=16), NodeInfo("b", cpus=1, capacity=8),
         NodeInfo("c", cpus=1, capacity=8)]  # fmt: skip


def test_cameras_spread_in_proportion_to_capacity() -> None:
    load = spread_cameras([f"cam{i:02}" for i in range(32)], NODES)
    assert {n: len(c) for n, c in load.items()} == {"a": 16, "b": 8, "c": 8}
    assert sorted(c for cams in load.values() for c in cams) == [f"cam{i:02}" for i in range(32)]


def test_one_actor_per_cpu_unless_a_group_size_is_set() -> None:
    groups = plan_groups([f"cam{i}" for i in range(8)], NODES)
    per_node = {n: [len(g.cameras) for g in groups if g.node_id == n] for n in "abc"}
    assert per_node == {"a": [2, 2], "b": [2], "c": [2]}
    assert len({g.group_id for g in groups}) == len(groups)
    fixed = plan_groups([f"cam{i}" for i in range(8)], NODES, per_actor=1)
    assert len(fixed) == 8 and all(len(g.cameras) == 1 for g in fixed)
    assert actors_for(0, 4, None) == 0 and actors_for(1, 0.5, None) == 1


def test_a_node_without_capacity_hosts_nothing_and_too_little_capacity_is_refused() -> None:
    nodes = [NodeInfo("head", cpus=4, capacity=0, head=True), NodeInfo("w", cpus=1, capacity=2)]
    assert {g.node_id for g in plan_groups(["x", "y"], nodes)} == {"w"}
    with pytest.raises(PlacementError, match="3 cameras but the cluster's capacity is 2"):
        plan_groups(["x", "y", "z"], nodes)
    with pytest.raises(PlacementError, match="no live Ray node"):
        plan_groups(["x"], [NodeInfo("dead", alive=False)])


def test_capacity_from_cpus_or_the_nodes_own_resource() -> None:
    assert node_capacity({"CPU": 2.0}, 8.0) == 16
    assert node_capacity({"CPU": 2.0, "lookout_cameras": 3.0}, 8.0) == 3
    assert node_capacity({}, 8.0) == 0


def test_a_lost_group_moves_to_the_least_filled_node_left() -> None:
    groups = [
        Group("g1", ("a1", "a2"), "a"),
        Group("g2", ("b1",), "b"),
        Group("g3", ("c1", "c2"), "c"),
    ]
    load = node_load(g for g in groups if g.group_id != "g2")
    assert pick_node(1, NODES, load, exclude={"b"}).node_id == "a"  # 3/16 beats 3/8
    # Past every node's capacity, the cameras still go somewhere (over capacity).
    tiny = [NodeInfo("x", capacity=1), NodeInfo("y", capacity=1)]
    assert pick_node(5, tiny, {"x": 1, "y": 0}).node_id == "y"
    with pytest.raises(PlacementError):
        pick_node(1, NODES, load, exclude={"a", "b", "c"})


CONFIG = """
[mqtt]
client_id = "lk"
[cameras.front]
url = "a.mp4"
[cameras.gate]
url = "b.mp4"
[cameras.gate.detect]
type = "mqtt"
topic = "det/gate"
[sinks.alerts]
type = "mqtt"
[[watches]]
name = "pkg"
camera = "front"
condition = "a package"
sinks = ["alerts"]
[[watches]]
name = "van"
camera = "gate"
condition = "a van"
[metrics]
enabled = true
"""


def test_group_config_holds_its_cameras_and_watches_and_no_sinks() -> None:
    cfg = load_config_text(CONFIG)
    front = group_config(cfg, "g1", ["front"])
    assert list(front.cameras) == ["front"] and [w.name for w in front.watches] == ["pkg"]
    assert front.sinks == {} and front.watches[0].sinks is None
    assert front.mqtt is None  # no MQTT detections here
    assert not (front.metrics.enabled or front.activity.enabled or front.control.enabled)
    gate = group_config(cfg, "g2", ["gate"])
    assert gate.mqtt is not None and gate.mqtt.client_id == "lk-g2"  # its own MQTT client
    assert group_config(cfg, "g2", ["gate"], skip={"van"}).watches == []
