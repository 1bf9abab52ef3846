"""Decode that follows demand: keep the packets of the current GOP, decode only when asked."""

from __future__ import annotations

import logging
import threading
import time
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from typing import Any, Literal

from pipeline.core.frame import Frame
from pipeline.core.logs import log_unexpected
from sources.decode_queue import DecodeGate

DecodeStrategy = Literal["every_frame", "on_demand", "keyframes"]
STRATEGIES: tuple[DecodeStrategy, ...] = ("every_frame", "on_demand", "keyframes")

log = logging.getLogger("lookout.sources.decode")


@dataclass(frozen=True, slots=True)
class PacketInfo:
    """What the demuxer knew about one video packet when it arrived.

    Attributes:
        seq: per-camera sequence number of the packet (and of the frame it becomes).
        wall_time: epoch seconds when the packet was read.
        stream_time: presentation time in seconds, ``None`` without ``pts``.
        keyframe: whether the packet starts a GOP.
        size: payload size in bytes.
    """

    seq: int
    wall_time: float
    stream_time: float | None
    keyframe: bool
    size: int = 0


class GopDecoder:
    """One camera's decoder, driven by demand instead of by the stream's frame rate.

    The demuxing thread calls :meth:`push` for every video packet; whoever wants a
    picture calls :meth:`newest`. What ``push`` and ``newest`` cost depends on the
    strategy:

    - ``every_frame``: ``push`` decodes each packet at once; ``newest`` is free.
    - ``on_demand``: ``push`` only keeps the packets since the last keyframe;
      ``newest`` decodes forward from where the decoder already is in the GOP up
      to the newest packet and returns that frame. Looking once every 5 s at a
      stream with a 2 s GOP decodes about one GOP per look, not 150 frames.
    - ``keyframes``: ``push`` keeps only the newest keyframe; ``newest`` decodes
      that one packet (never the ones in between). The frame can be up to one
      GOP old.

    Packets before the first keyframe are dropped (they cannot be decoded).
    ``push`` and ``newest`` may be called from different threads. With a
    ``gate`` (a :class:`~sources.decode_queue.DecodeQueue`'s ``slot``), every
    decode holds a slot of the queue, asked for with the picture's due time
    (the ``due`` of :meth:`newest`; a packet's arrival for ``every_frame``);
    a call that finds nothing to decode never queues.

    Example::

        decoder = GopDecoder("porch", container.streams.video[0].codec_context, "on_demand")
        for packet in container.demux(video=0):
            decoder.push(packet, PacketInfo(seq, time.time(), None, packet.is_keyframe))
        frame = decoder.newest()  # decodes the current GOP forward, once

    Args:
        camera: camera name put on every frame.
        codec_context: the stream's ``av`` decoder context.
        strategy: ``every_frame``, ``on_demand`` or ``keyframes``.
        max_gop_bytes: drop a GOP that grows past this (a stream without keyframes);
            decoding resumes at the next keyframe.
        gate: ``due -> context`` held around each decode (default: none).

    Raises:
        ValueError: unknown strategy or a non-positive byte cap.
    """

    def __init__(
        self,
        camera: str,
        codec_context: Any,
        strategy: DecodeStrategy,
        *,
        max_gop_bytes: int = 256 * 1024 * 1024,
        gate: DecodeGate | None = None,
    ) -> None:
        if strategy not in STRATEGIES:
            raise ValueError(
                f"Unknown decode strategy {strategy!r}; expected one of {', '.join(STRATEGIES)}."
            )
        if max_gop_bytes <= 0:
            raise ValueError("The GOP byte cap must be positive.")
        self.camera = camera
        self.strategy: DecodeStrategy = strategy
        self._codec = codec_context
        self._max_gop_bytes = max_gop_bytes
        self._gate = gate
        self._packets_lock = threading.Lock()
        self._decode_lock = threading.Lock()
        self._gop: list[tuple[Any, PacketInfo]] = []
        self._gop_bytes = 0
        self._generation = 0
        self._fed_generation = -1
        self._fed = 0
        self._newest: Frame | None = None
        self._newest_generation = -1  # the GOP the newest picture belongs to
        self._closed = False
        self.decoded = 0
        """Frames decoded so far (for benchmarks and metrics)."""
        self.decode_seconds = 0.0
        """Monotonic wall time (``perf_counter``) spent decoding: one timer pair per decode."""
        self.last_frame_time: float | None = None
        """``PacketInfo.wall_time`` of the newest decoded picture, ``None`` before one."""
        self.errors = 0
        """Packets the decoder rejected."""
        self._reported = 0
        self._reported_seconds = 0.0
        self._take_lock = threading.Lock()

    @property
    def has_picture(self) -> bool:
        """Whether a keyframe has arrived, so that :meth:`newest` has something to decode.

        Not a promise of a picture: an H.264 decoder with B-frames gives its
        first picture a few packets after the keyframe, and :meth:`newest`
        returns ``None`` until then. ``CameraSource.latest`` waits for the
        picture itself.
        """
        with self._packets_lock:
            return bool(self._gop) or self._newest is not None

    @property
    def newest_seq(self) -> int | None:
        """Sequence number of the newest decodable packet, ``None`` before a keyframe."""
        with self._packets_lock:
            if self._gop:
                return self._gop[-1][1].seq
        return None

    def push(self, packet: Any, info: PacketInfo) -> None:
        """Take one video packet from the demuxer (decodes it only for ``every_frame``)."""
        with self._packets_lock:
            if self._closed:
                return
            if info.keyframe:
                self._gop = []
                self._gop_bytes = 0
                self._generation += 1
            elif not self._gop:
                return  # no keyframe yet: undecodable
            if self.strategy == "keyframes" and not info.keyframe:
                return
            self._gop.append((packet, info))
            self._gop_bytes += info.size
            if self._gop_bytes > self._max_gop_bytes:
                log.warning("camera %s: GOP over %d bytes dropped", self.camera, self._gop_bytes)
                self._gop = []
                self._gop_bytes = 0
                self._generation += 1
        if self.strategy == "every_frame":
            self.newest(due=info.wall_time)

    @property
    def behind(self) -> int:
        """Packets of the current GOP that have arrived but are not decoded yet."""
        with self._packets_lock:
            if self._generation != self._fed_generation:
                return len(self._gop)
            return len(self._gop) - self._fed

    def newest(self, due: float | None = None) -> Frame | None:
        """Decode what the strategy requires and return the newest frame, or ``None``.

        With ``on_demand``: decodes forward from where the decoder is in the
        current GOP to its newest packet (the freshest picture).

        Args:
            due: when the picture was wanted: its place in the decode queue
                (``None``: now).
        """
        with self._decode_lock:
            return self._decode_forward(due)

    def newest_keyframe(self, since: float, due: float | None = None) -> Frame | None:
        """The current GOP's keyframe picture if it arrived at ``since`` or later (one decode).

        A timer look that accepts a picture up to one GOP old asks for this
        instead of :meth:`newest`: it costs the decode of one packet, not of the
        GOP so far. When a picture of the same GOP is already decoded (a newer
        one), it is returned for free. A decoder that holds pictures back
        (B-frames) is drained for the keyframe and the next :meth:`newest`
        starts the GOP again.

        Example::

            frame = decoder.newest_keyframe(since=time.time() - 2.0)  # None: too old

        Args:
            since: the oldest acceptable arrival time (``PacketInfo.wall_time``).
            due: when the picture was wanted (its place in the decode queue).

        Returns:
            The picture, or ``None`` when the newest keyframe arrived before
            ``since``, none has arrived, or the decoder is closed.
        """
        with self._decode_lock:
            with self._packets_lock:
                if self._closed or not self._gop or self._gop[0][1].wall_time < since:
                    return None
                generation = self._generation
                if self._newest_generation == generation:
                    return self._newest
                started = self._fed_generation == generation and self._fed > 0
                key = self._gop[0]
            if started:  # inside this GOP already, no picture yet: go on forward
                frame = self._decode_forward(due)
                return frame if self._newest_generation == generation else None
            return self._decode_keyframe(key, generation, due)

    def _slot(self, due: float | None) -> AbstractContextManager[None]:
        """The gate's slot for a decode due at ``due`` (no gate: nothing to wait for)."""
        return nullcontext() if self._gate is None else self._gate(due)

    def _decode_forward(self, due: float | None = None) -> Frame | None:
        """Decode the current GOP from where the decoder is; the decode lock is held."""
        with self._packets_lock:
            if self._closed:
                return None
            start = 0 if self._generation != self._fed_generation else self._fed
            todo = self._gop[start:]
            generation = self._generation
        if not todo:
            return self._newest
        fed = start + len(todo)
        if self.strategy == "keyframes":
            todo = todo[-1:]
        with self._slot(due):
            started = time.perf_counter()
            try:
                frame = self._decode(todo)
            finally:
                self.decode_seconds += time.perf_counter() - started
        return self._keep(frame, generation, fed)

    def _decode_keyframe(
        self, key: tuple[Any, PacketInfo], generation: int, due: float | None
    ) -> Frame | None:
        """Decode one keyframe packet alone; the decode lock is held."""
        packet, info = key
        with self._slot(due):
            return self._decode_keyframe_now(packet, info, generation)

    def _decode_keyframe_now(self, packet: Any, info: PacketInfo, generation: int) -> Frame | None:
        started = time.perf_counter()
        try:
            if self._fed_generation != -1:
                self._codec.flush_buffers()  # pictures of an older GOP are not wanted
            out = self._send(packet)
            fed = 1  # the decoder can go on from the keyframe
            if not out:
                out = self._send(None)  # a decoder that holds pictures back: drain it
                self._codec.flush_buffers()
                fed = 0  # drained: the next forward decode starts the GOP again
        finally:
            self.decode_seconds += time.perf_counter() - started
        self.decoded += len(out)
        frame = _frame(self.camera, out[-1], info) if out else None
        return self._keep(frame, generation, fed)

    def _keep(self, frame: Frame | None, generation: int, fed: int) -> Frame | None:
        """Note how far the decoder is in GOP ``generation`` and keep ``frame`` as the newest."""
        if frame is not None:
            self.last_frame_time = frame.wall_time
        with self._packets_lock:
            self._fed_generation = generation if fed else -1
            self._fed = fed
            if frame is not None and not self._closed:
                self._newest = frame
                self._newest_generation = generation
            return self._newest

    def _decode(self, todo: list[tuple[Any, PacketInfo]]) -> Frame | None:
        by_pts = {p.pts: info for p, info in todo if p.pts is not None}
        last: tuple[Any, PacketInfo] | None = None
        for packet, info in todo:
            out = self._send(packet)
            if self.strategy == "keyframes" and not out:
                out = self._send(None)  # drain a decoder that holds frames back
                self._codec.flush_buffers()
            for vf in out:
                self.decoded += 1
                last = (vf, by_pts.get(vf.pts, info))
        if self.strategy == "keyframes":
            self._codec.flush_buffers()
        if last is None:
            return None
        return _frame(self.camera, *last)

    def _send(self, packet: Any) -> list[Any]:
        try:
            return list(self._codec.decode(packet))
        except Exception as exc:  # corrupt data: skip the packet, keep the camera
            self.errors += 1
            log_unexpected(log, f"camera {self.camera}: decode error", exc, expected=(Exception,))
            return []

    def take_decoded(self) -> int:
        """Frames decoded since the previous call (for counters that sum many decoders)."""
        return self.take_totals()[0]

    def take_totals(self) -> tuple[int, float]:
        """Frames decoded and decode seconds since the previous call (of either ``take_*``).

        Never waits for a decode in progress (the counters are read as they
        stand), so a metrics scrape cannot stall behind a long GOP decode.

        Example::

            frames, seconds = decoder.take_totals()
        """
        with self._take_lock:
            decoded, seconds = self.decoded, self.decode_seconds
            frames, self._reported = decoded - self._reported, decoded
            spent, self._reported_seconds = seconds - self._reported_seconds, seconds
            return frames, spent

    def close(self) -> None:
        """Drop the packets and the decoder; later calls return ``None``."""
        with self._decode_lock, self._packets_lock:
            self._closed = True
            self._gop = []
            self._newest = None
            self._codec = None


def _frame(camera: str, vf: Any, info: PacketInfo) -> Frame:
    """The frame of decoder picture ``vf`` whose packet is ``info``."""
    return Frame(
        camera=camera,
        seq=info.seq,
        wall_time=info.wall_time,
        stream_time=info.stream_time,
        width=vf.width,
        height=vf.height,
        keyframe=bool(vf.key_frame) or info.keyframe,
        video=vf,
    )
