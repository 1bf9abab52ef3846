"""Which camera group the hub's own process hosts (pure: no cluster started)."""

from pipeline.app.cluster.hub_host import hub_takes
from pipeline.app.cluster.placement import Group


def test_the_hub_hosts_the_heads_first_group_only_and_only_when_on() -> None:
    first, second = Group("g1", ("a",), "head"), Group("g2", ("b",), "head")
    elsewhere = Group("g3", ("c",), "node2")
    assert hub_takes(first, "head", True, [])
    assert not hub_takes(second, "head", True, ["g1"])  # one group per hub: the others get actors
    assert not hub_takes(elsewhere, "head", True, [])  # the hub lives on the head only
    assert not hub_takes(first, "head", False, [])  # [cluster] hub_hosts_cameras = false
    # The group it hosted, started again (lost, then placed on the head again), goes back.
    assert hub_takes(first, "head", True, ["g1"])
