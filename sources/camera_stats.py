"""What a camera source has done so far: a small frozen snapshot for metrics."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class CameraStats:
    """Counters and times of one camera source, read from the source itself.

    Counters cover the source's whole life (every connection), so they only grow
    and suit Prometheus counters. Times are epoch seconds from the source's clock,
    taken when the data arrived (not when a look used it).

    Example::

        s = camera.stats()
        age = time.time() - (s.last_packet_time or s.last_frame_time or time.time())
        print(s.frames_decoded, f"{s.decode_seconds:.2f} s", s.reconnects, age)

    Attributes:
        frames_decoded: pictures the decoder produced (``CameraSource``: follows the
            decode strategy; ``FrigateSnapshotSource``: JPEGs fetched and decoded).
        decode_seconds: monotonic wall time (``time.perf_counter``) spent inside
            decoder calls, summed over all threads that decoded (one timer pair per
            decode call, not per packet). It includes time the decoding thread
            waited for the CPU, so on a busy machine it is an upper bound of CPU time.
        packets: video packets read from the stream (``FrigateSnapshotSource``:
            JPEGs fetched).
        last_packet_time: arrival time of the newest video packet, ``None`` before one.
        last_frame_time: arrival time of the packet of the newest decoded picture,
            ``None`` before one. With ``on_demand`` or ``keyframes`` decoding it only
            moves when someone asks for a frame; ``last_packet_time`` shows whether
            video still flows.
        connected: whether pictures flow now (the camera is online).
        reconnects: reconnect attempts (failed requests for Frigate snapshots).
    """

    frames_decoded: int = 0
    decode_seconds: float = 0.0
    packets: int = 0
    last_packet_time: float | None = None
    last_frame_time: float | None = None
    connected: bool = False
    reconnects: int = 0

    @property
    def last_video_time(self) -> float | None:
        """The newest of ``last_packet_time`` and ``last_frame_time`` (``None`` before any).

        Example:
            >>> CameraStats(last_packet_time=12.0, last_frame_time=10.0).last_video_time
            12.0
        """
        times = [t for t in (self.last_packet_time, self.last_frame_time) if t is not None]
        return max(times) if times else None
