"""The backend slots the hub leases out, called from threads as Ray's do: renewals, long polls, dead holders."""

from concurrent.futures import Future, ThreadPoolExecutor

from pipeline.app.cluster.lease_book import Grant, Report
from pipeline.app.cluster.slots import Slots

POOL = ThreadPoolExecutor(4, thread_name_prefix="hub-slots")
"""The hub's threads (its ``slots`` concurrency group) for renewals that wait."""


def _seen(grant: Grant, in_use: int = 0, wanted: int = 0) -> Report:
    return Report(in_use, wanted, grant.slots, grant.epoch, grant.seq)


def _waiting(slots: Slots, holder: str, report: Report) -> Future[dict[str, Grant]]:
    """A renewal that waits up to 30 s for its grant to change, on a thread of its own."""
    return POOL.submit(slots.renew, holder, {"vlm": report}, 30)


def _still_waits(future: Future[dict[str, Grant]]) -> bool:
    try:
        future.result(0.05)
    except TimeoutError:
        return True
    return False


def test_a_waiting_renewal_returns_once_the_holder_before_it_gives_its_slot_back() -> None:
    slots = Slots({"vlm": 1}, {"vlm": 30.0}, lease_s=10)
    a = slots.renew("a", {"vlm": Report(wanted=1)})["vlm"]
    assert a.slots == 1
    b = _waiting(slots, "b", Report(wanted=1))
    assert _still_waits(b)  # a holds the only slot
    a = slots.renew("a", {"vlm": _seen(a, in_use=1, wanted=1)})["vlm"]
    assert a.slots == 0  # b has waited: a is to give it back once its look ends
    assert _still_waits(b)  # a's look still runs
    slots.renew("a", {"vlm": _seen(a)})  # it ended
    assert b.result(5)["vlm"].slots == 1
    stats = slots.stats()["vlm"]
    assert stats["peak"] == 1 and stats["leased"] == 1 and stats["holders"] == 2


def test_a_dead_holders_slots_go_to_a_waiting_holder_at_once() -> None:
    slots = Slots({"vlm": 2}, {"vlm": 600.0}, lease_s=600)
    assert slots.renew("a", {"vlm": Report(wanted=2)})["vlm"].slots == 2
    b = _waiting(slots, "b", Report(wanted=2))
    assert _still_waits(b)
    assert slots.release_holder("a") == 2  # the driver: a's actor died
    assert b.result(5)["vlm"].slots == 2
    # A renewal of a dead actor still waiting here when it is released takes nothing.
    c = _waiting(slots, "c", Report(wanted=1))
    assert _still_waits(c)
    assert slots.release_holder("c") == 0
    assert c.result(5)["vlm"].slots == 0
    assert slots.stats()["vlm"]["holders"] == 1 and slots.stats()["vlm"]["reserved"] == 2


def test_a_backend_without_a_limit_and_a_reload_that_lowers_one() -> None:
    slots = Slots({"vlm": 4}, {"vlm": 1.0}, lease_s=10)
    grants = slots.renew("a", {"other": Report(wanted=3), "vlm": Report(wanted=3)})
    assert grants["other"].slots > 3 and grants["vlm"].slots == 3
    slots.set_limits({"vlm": 1}, {"vlm": 1.0}, 10)
    vlm = slots.renew("a", {"vlm": _seen(grants["vlm"], in_use=3, wanted=3)})["vlm"]
    assert vlm.slots == 1 and slots.stats()["vlm"]["reserved"] == 3  # shrinks as looks end
    slots.renew("a", {"vlm": _seen(vlm, in_use=1, wanted=1)})
    assert slots.stats()["vlm"]["reserved"] == 1


def test_a_hub_started_again_by_ray_grants_nothing_new_until_told_it_is_the_first() -> None:
    slots = Slots({"vlm": 2}, {"vlm": 30.0}, lease_s=10, fresh=False)  # as Ray restarts the hub
    kept = Report(1, 2, 1, "an-older-epoch", 7)  # a holder from before the crash
    assert slots.renew("a", {"vlm": kept})["vlm"].slots == 1
    assert slots.renew("b", {"vlm": Report(wanted=1)})["vlm"].slots == 0
    slots.begin()  # the driver's first call (never made after a restart)
    assert slots.renew("b", {"vlm": Report(wanted=1)})["vlm"].slots == 1
