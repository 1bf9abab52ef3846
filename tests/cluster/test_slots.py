"""Slots of a backend across the cluster (the asyncio actor's class, run here in one loop)."""

import asyncio

from pipeline.app.cluster.slots import Slots


def test_no_more_than_the_limit_at_once_and_waiters_go_in_turn() -> None:
    async def scenario() -> list[str]:
        slots = Slots({"vlm": 2})
        order: list[str] = []

        async def look(lease: str) -> None:
            assert await slots.acquire("vlm", "g1-1", lease)
            order.append(f"+{lease}")
            assert slots.in_use["vlm"] <= 2
            await asyncio.sleep(0.01)
            order.append(f"-{lease}")
            await slots.release(lease)

        await asyncio.gather(*(look(str(i)) for i in range(5)))
        assert slots.stats()["vlm"] == {"limit": 2, "in_use": 0, "peak": 2, "waits": 3}
        return order

    order = asyncio.run(scenario())
    assert len(order) == 10


def test_a_lost_holders_slots_come_back_and_a_cancelled_wait_is_never_granted() -> None:
    async def scenario() -> None:
        slots = Slots({"vlm": 1})
        assert await slots.acquire("vlm", "g2-1", "a")
        waiter = asyncio.create_task(slots.acquire("vlm", "g1-1", "b"))
        await asyncio.sleep(0.01)
        assert not waiter.done()
        await slots.cancel("b")  # the caller gave up waiting
        assert await waiter is False
        assert await slots.release_holder("g2-1") == 1  # its node died
        assert slots.stats()["vlm"]["in_use"] == 0
        assert await slots.acquire("vlm", "g1-1", "c")
        await slots.cancel("c")  # granted, then its caller gave up: given back
        assert slots.in_use["vlm"] == 0
        assert await slots.acquire("other", "g1-1", "d")  # not limited
        await slots.set_limits({"vlm": 0})
        assert slots.stats()["vlm"]["limit"] == 0

    asyncio.run(scenario())
