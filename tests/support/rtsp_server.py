#!/usr/bin/python3
"""A looping live RTSP server for tests, built on GStreamer's RTSP server.

Run it with Debian's own interpreter (``/usr/bin/python3``, where ``gi`` is
installed), not a virtual environment's::

    /usr/bin/python3 tests/support/rtsp_server.py --port 0 \
        --mount cam1=front.mp4 --mount cam2=back.mp4 --user u --password p

Each mount decodes its video file in real time, forever (seeking back to the
start at the end), and every client of that mount shares one H.264 encoder
(``x264enc tune=zerolatency``; ``--key-int-max`` sets the GOP). Clients that
join late see the live position, not the start of the file, like a camera.
Any file GStreamer's ``decodebin`` can read works (mp4/H.264, avi/MPEG-4, ...).

The server listens on 127.0.0.1 only; RTP over UDP (when a client asks for
it) is bound to 127.0.0.1 as well. When it is serving, it prints one line
``READY <port>`` on stdout; everything else goes to stderr. With
``--exit-on-stdin-eof`` it exits when its stdin closes (its parent died).
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from pathlib import Path
from typing import Any

ROLE = "viewer"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(
        description="Serve video files as looping live RTSP streams on 127.0.0.1.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("file", nargs="?", type=Path, help="video file served at --name")
    parser.add_argument("--name", default="stream", help="mount name for the positional file")
    parser.add_argument(
        "--mount",
        action="append",
        default=[],
        metavar="NAME=PATH",
        help="serve PATH at rtsp://127.0.0.1:PORT/NAME (repeatable)",
    )
    parser.add_argument("--port", type=int, default=0, help="TCP port; 0 picks a free one")
    parser.add_argument("--user", help="require RTSP basic auth with this user name")
    parser.add_argument("--password", help="password for --user")
    parser.add_argument("--key-int-max", type=int, default=10, help="x264 keyframe interval")
    parser.add_argument("--bitrate", type=int, default=800, help="x264 bitrate in kbit/s")
    parser.add_argument("--tcp-only", action="store_true", help="refuse RTP over UDP")
    parser.add_argument(
        "--exit-on-stdin-eof", action="store_true", help="exit when stdin is closed"
    )
    args = parser.parse_args(argv)
    mounts: dict[str, Path] = {}
    if args.file is not None:
        mounts[args.name] = args.file
    for spec in args.mount:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            parser.error(f"--mount wants NAME=PATH, got {spec!r}")
        mounts[name.strip("/")] = Path(path)
    if not mounts:
        parser.error("give a file or at least one --mount NAME=PATH")
    for name, path in mounts.items():
        if not path.is_file():
            parser.error(f"mount {name!r}: no such file: {path}")
    if (args.user is None) != (args.password is None):
        parser.error("--user and --password go together")
    args.mounts = mounts
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT (or stdin EOF); return the exit code."""
    args = parse_args(argv)

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    Gst.init(None)
    loop = GLib.MainLoop()
    exit_code = [0]

    def fail(message: str) -> None:
        print(f"rtsp_server: {message}", file=sys.stderr, flush=True)
        exit_code[0] = 1
        loop.quit()

    class LoopingSource:
        """Decode one file in real time forever and fan raw frames out to appsrcs."""

        def __init__(self, name: str, path: Path) -> None:
            self.name = name
            self.lock = threading.Lock()
            self.targets: list[Any] = []
            self.caps: Any = None
            self.first_sample = threading.Event()
            location = str(path.resolve()).replace("\\", "\\\\").replace('"', '\\"')
            self.pipeline = Gst.parse_launch(
                f'filesrc location="{location}" ! decodebin ! videoconvert '
                "! video/x-raw,format=I420 "
                "! appsink name=sink emit-signals=true sync=true max-buffers=2 drop=false"
            )
            sink = self.pipeline.get_by_name("sink")
            sink.connect("new-sample", self.on_sample)
            bus = self.pipeline.get_bus()
            bus.add_signal_watch()
            bus.connect("message", self.on_message)

        def start(self) -> None:
            if self.pipeline.set_state(Gst.State.PLAYING) == Gst.StateChangeReturn.FAILURE:
                fail(f"mount {self.name!r}: cannot play its file")

        def stop(self) -> None:
            self.pipeline.set_state(Gst.State.NULL)
            self.pipeline.get_bus().remove_signal_watch()

        def on_message(self, _bus: Any, message: Any) -> None:
            if message.type == Gst.MessageType.EOS:
                flags = Gst.SeekFlags.FLUSH | Gst.SeekFlags.KEY_UNIT
                if not self.pipeline.seek_simple(Gst.Format.TIME, flags, 0):
                    fail(f"mount {self.name!r}: cannot seek back to the start")
            elif message.type == Gst.MessageType.ERROR:
                err, debug = message.parse_error()
                fail(f"mount {self.name!r}: {err.message} ({debug})")

        def on_sample(self, sink: Any) -> Any:
            sample = sink.emit("pull-sample")
            if sample is None:
                return Gst.FlowReturn.OK
            buffer = sample.get_buffer()
            with self.lock:
                if self.caps is None:
                    self.caps = sample.get_caps()
                targets = list(self.targets)
            self.first_sample.set()
            for appsrc in targets:
                out = buffer.copy()
                # appsrc's do-timestamp stamps the clock's running time: a live stream.
                out.pts = Gst.CLOCK_TIME_NONE
                out.dts = Gst.CLOCK_TIME_NONE
                appsrc.emit("push-buffer", out)
            return Gst.FlowReturn.OK

        def attach(self, media: Any) -> None:
            appsrc = media.get_element().get_by_name_recurse_up("src")
            with self.lock:
                appsrc.set_property("caps", self.caps)
                self.targets.append(appsrc)

            def detach(_media: Any) -> None:
                with self.lock:
                    if appsrc in self.targets:
                        self.targets.remove(appsrc)

            media.connect("unprepared", detach)

    sources = {name: LoopingSource(name, path) for name, path in args.mounts.items()}
    for source in sources.values():
        source.start()

    # Wait (bounded) for each source's first frame, so the caps are known.
    def wait_first_samples() -> bool:
        pending = [s for s in sources.values() if not s.first_sample.is_set()]
        if pending and exit_code[0] == 0:
            return True  # poll again
        loop.quit()
        return False

    def startup_timeout() -> bool:
        pending = [s.name for s in sources.values() if not s.first_sample.is_set()]
        if pending:
            fail(f"no decoded frame from mount(s) {pending} within 20 s")
        return False

    GLib.timeout_add(20, wait_first_samples)
    timeout_id = GLib.timeout_add_seconds(20, startup_timeout)
    loop.run()
    GLib.source_remove(timeout_id)
    if exit_code[0] != 0:
        for source in sources.values():
            source.stop()
        return exit_code[0]

    server = GstRtspServer.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.user is not None:
        auth = GstRtspServer.RTSPAuth()
        token = GstRtspServer.RTSPToken()
        token.set_string("media.factory.role", ROLE)
        auth.add_basic(GstRtspServer.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
    pool = GstRtspServer.RTSPAddressPool()
    pool.add_range("127.0.0.1", "127.0.0.1", 20000, 29999, 0)

    mount_points = server.get_mount_points()
    # One slice per frame: with sliced threads (zerolatency's default) rtph264pay's
    # config-interval=-1 puts SPS/PPS between the slices of an IDR frame, and FFmpeg
    # then decodes garbage. config-interval=-1 itself is needed for late joiners.
    launch = (
        "( appsrc name=src is-live=true do-timestamp=true format=time "
        "max-buffers=8 leaky-type=downstream "
        "! videoconvert "
        "! x264enc tune=zerolatency speed-preset=ultrafast threads=1 sliced-threads=false "
        f"key-int-max={args.key_int_max} "
        f"bitrate={args.bitrate} "
        "! video/x-h264,profile=constrained-baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )
    for name, source in sources.items():
        factory = GstRtspServer.RTSPMediaFactory()
        factory.set_launch(launch)
        factory.set_shared(True)
        factory.set_address_pool(pool)
        if args.tcp_only:
            factory.set_protocols(GstRtsp.RTSPLowerTrans.TCP)
        if args.user is not None:
            factory.add_role_from_structure(
                Gst.Structure.new_from_string(
                    f"{ROLE}, media.factory.access=(boolean)true, "
                    "media.factory.construct=(boolean)true"
                )
            )
        factory.connect("media-configure", lambda _f, media, s=source: s.attach(media))
        mount_points.add_factory(f"/{name}", factory)

    if server.attach(None) == 0:
        print(f"rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True)
        for source in sources.values():
            source.stop()
        return 1

    # Remove client sessions that timed out, as gst-rtsp-server's examples do.
    def cleanup_sessions() -> bool:
        server.get_session_pool().cleanup()
        return True

    GLib.timeout_add_seconds(2, cleanup_sessions)

    for signum in (signal.SIGTERM, signal.SIGINT):
        GLib.unix_signal_add(GLib.PRIORITY_DEFAULT, signum, lambda: (loop.quit(), False)[1])

    if args.exit_on_stdin_eof:

        def on_stdin(_fd: int, _condition: Any) -> bool:
            try:
                data = os.read(0, 4096)
            except OSError:
                data = b""
            if not data:
                loop.quit()
                return False
            return True

        GLib.io_add_watch(0, GLib.PRIORITY_DEFAULT, GLib.IO_IN | GLib.IO_HUP, on_stdin)

    print(f"READY {server.get_bound_port()}", flush=True)
    # Nothing else goes to stdout: point fd 1 at stderr so a closed pipe cannot hurt us.
    os.dup2(2, 1)
    loop.run()
    for source in sources.values():
        source.stop()
    return exit_code[0]


if __name__ == "__main__":
    sys.exit(main())
