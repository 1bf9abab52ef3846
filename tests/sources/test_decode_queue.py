"""Decodes that queue instead of crowding: a bounded number at once, served earliest due first."""

from __future__ import annotations

import doctest
import threading
from collections.abc import Callable
from contextlib import AbstractContextManager
from functools import partial

import av
import pytest

import sources.decode_queue
from sources.decode import GopDecoder, PacketInfo
from sources.decode_queue import DecodeQueue, shared_decode_queue
from tests.support.clips import Clip
from tests.support.waiting import wait_until

WAIT_S = 10.0


def test_waiting_decodes_get_the_slot_in_due_time_order() -> None:
    queue = DecodeQueue(workers=1)
    served: list[float] = []
    threads: list[threading.Thread] = []
    dues = [5.0, 1.0, 3.0, 2.0, 4.0, 1.0]

    def decode(due: float) -> None:
        with queue.slot(due):
            served.append(due)

    with queue.slot(0.0):  # every slot busy: the others queue
        for i, due in enumerate(dues):
            t = threading.Thread(target=decode, args=(due,))
            t.start()
            threads.append(t)
            wait_until(partial(_waiting, queue, i + 1), WAIT_S, f"{i + 1} waiting")
        assert served == []
    for t in threads:
        t.join(WAIT_S)
    assert served == sorted(dues)
    stats = queue.stats()
    assert (stats.decodes, stats.waited, stats.max_waiting) == (7, 6, 6)
    assert queue.running == 0 and queue.waiting == 0


def test_no_more_decodes_than_workers_run_at_once() -> None:
    queue = DecodeQueue(workers=2)
    release = threading.Event()
    lock = threading.Lock()
    inside = [0, 0]  # now, most

    def decode() -> None:
        with queue.slot():
            with lock:
                inside[0] += 1
                inside[1] = max(inside[1], inside[0])
            release.wait(WAIT_S)
            with lock:
                inside[0] -= 1

    threads = [threading.Thread(target=decode) for _ in range(6)]
    for t in threads:
        t.start()
    wait_until(lambda: queue.running == 2 and queue.waiting == 4, WAIT_S, "2 running, 4 waiting")
    release.set()
    for t in threads:
        t.join(WAIT_S)
    assert inside[1] == 2 and queue.stats().decodes == 6


def test_a_queue_needs_a_worker_and_the_shared_one_is_per_core() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        DecodeQueue(workers=0)
    shared = shared_decode_queue()
    assert shared is shared_decode_queue() and shared.workers >= 1
    assert doctest.testmod(sources.decode_queue).failed == 0


class _Recording:
    """A gate that records the due time of every decode it lets through."""

    def __init__(self) -> None:
        self.queue = DecodeQueue(workers=1)
        self.dues: list[float | None] = []

    def __call__(self, due: float | None) -> AbstractContextManager[None]:
        self.dues.append(due)
        return self.queue.slot(due)


def test_a_decoder_takes_a_slot_only_when_it_has_something_to_decode(
    clip_factory: Callable[..., Clip],
) -> None:
    clip = clip_factory(seconds=2.0, fps=10, gop=10)
    gate = _Recording()
    with av.open(str(clip.path)) as container:
        stream = container.streams.video[0]
        decoder = GopDecoder("yard", stream.codec_context, "on_demand", gate=gate)
        packets = [p for p in container.demux(stream) if p.size]
        for i, packet in enumerate(packets[:15]):
            decoder.push(packet, PacketInfo(i, i * 0.1, None, bool(packet.is_keyframe)))
        assert gate.dues == [] and decoder.behind == 5  # on_demand: nothing decoded yet
        key = decoder.newest_keyframe(since=0.95, due=7.0)  # the GOP that began at 1.0
        assert key is not None and gate.dues == [7.0]
        fresh = decoder.newest(due=8.0)
        assert fresh is not None and gate.dues == [7.0, 8.0] and decoder.behind == 0
        assert decoder.newest(due=9.0) is fresh  # nothing new: no slot taken
        assert gate.dues == [7.0, 8.0]
        decoder.close()

        every = GopDecoder("yard", stream.codec_context, "every_frame", gate=gate)
        every.push(packets[0], PacketInfo(0, 42.0, None, True))
        assert gate.dues[-1] == 42.0  # every_frame: due when the packet arrived
        every.close()


def _waiting(queue: DecodeQueue, n: int) -> bool:
    return queue.waiting == n
