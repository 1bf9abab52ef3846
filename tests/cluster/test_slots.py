"""The slots actor's class, run here in one asyncio loop: renewals, long polls, dead holders."""

import asyncio

from pipeline.app.cluster.lease_book import Grant, Report
from pipeline.app.cluster.slots import Slots


def _seen(grant: Grant, in_use: int = 0, wanted: int = 0) -> Report:
    return Report(in_use, wanted, grant.slots, grant.epoch, grant.seq)


def test_a_waiting_renewal_returns_once_the_holder_before_it_gives_its_slot_back() -> None:
    async def scenario() -> None:
        slots = Slots({"vlm": 1}, {"vlm": 30.0}, lease_s=10)
        a = (await slots.renew("a", {"vlm": Report(wanted=1)}))["vlm"]
        assert a.slots == 1
        b = asyncio.create_task(slots.renew("b", {"vlm": Report(wanted=1)}, wait_s=30))
        await asyncio.sleep(0.05)
        assert not b.done()  # a holds the only slot
        a = (await slots.renew("a", {"vlm": _seen(a, in_use=1, wanted=1)}))["vlm"]
        assert a.slots == 0  # b has waited: a is to give it back once its look ends
        await asyncio.sleep(0.05)
        assert not b.done()  # a's look still runs
        await slots.renew("a", {"vlm": _seen(a)})  # it ended
        assert (await asyncio.wait_for(b, 5))["vlm"].slots == 1
        stats = slots.stats()["vlm"]
        assert stats["peak"] == 1 and stats["leased"] == 1 and stats["holders"] == 2

    asyncio.run(scenario())


def test_a_dead_holders_slots_go_to_a_waiting_holder_at_once() -> None:
    async def scenario() -> None:
        slots = Slots({"vlm": 2}, {"vlm": 600.0}, lease_s=600)
        assert (await slots.renew("a", {"vlm": Report(wanted=2)}))["vlm"].slots == 2
        b = asyncio.create_task(slots.renew("b", {"vlm": Report(wanted=2)}, wait_s=30))
        await asyncio.sleep(0.05)
        assert not b.done()
        assert await slots.release_holder("a") == 2  # the driver: a's actor died
        assert (await asyncio.wait_for(b, 5))["vlm"].slots == 2
        # A renewal of a dead actor still waiting here when it is released takes nothing.
        c = asyncio.create_task(slots.renew("c", {"vlm": Report(wanted=1)}, wait_s=30))
        await asyncio.sleep(0.05)
        assert await slots.release_holder("c") == 0
        assert (await asyncio.wait_for(c, 5))["vlm"].slots == 0
        assert slots.stats()["vlm"]["holders"] == 1 and slots.stats()["vlm"]["reserved"] == 2

    asyncio.run(scenario())


def test_a_backend_without_a_limit_and_a_reload_that_lowers_one() -> None:
    async def scenario() -> None:
        slots = Slots({"vlm": 4}, {"vlm": 1.0}, lease_s=10)
        grants = await slots.renew("a", {"other": Report(wanted=3), "vlm": Report(wanted=3)})
        assert grants["other"].slots > 3 and grants["vlm"].slots == 3
        await slots.set_limits({"vlm": 1}, {"vlm": 1.0}, 10)
        vlm = (await slots.renew("a", {"vlm": _seen(grants["vlm"], in_use=3, wanted=3)}))["vlm"]
        assert vlm.slots == 1 and slots.stats()["vlm"]["reserved"] == 3  # shrinks as looks end
        await slots.renew("a", {"vlm": _seen(vlm, in_use=1, wanted=1)})
        assert slots.stats()["vlm"]["reserved"] == 1

    asyncio.run(scenario())


def test_a_slots_actor_started_again_by_ray_grants_nothing_new_until_told_it_is_the_first() -> None:
    async def scenario() -> None:
        slots = Slots({"vlm": 2}, {"vlm": 30.0}, lease_s=10, fresh=False)  # as Ray restarts it
        kept = Report(1, 2, 1, "an-older-epoch", 7)  # a holder from before the crash
        assert (await slots.renew("a", {"vlm": kept}))["vlm"].slots == 1
        assert (await slots.renew("b", {"vlm": Report(wanted=1)}))["vlm"].slots == 0
        slots.begin()  # the driver's first call (never made after a restart)
        assert (await slots.renew("b", {"vlm": Report(wanted=1)}))["vlm"].slots == 1

    asyncio.run(scenario())
