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


class Runner:
    """The GLib main loop and its exit code; :meth:`fail` stops the loop with an error."""

    def __init__(self, glib: Any) -> None:
        self.loop = glib.MainLoop()
        self.exit_code = 0

    def fail(self, message: str) -> None:
        """Print why on stderr and stop the loop with exit code 1."""
        print(f"rtsp_server: {message}", file=sys.stderr, flush=True)
        self.exit_code = 1
        self.loop.quit()


class LoopingSource:
    """Decode one file in real time forever and fan raw frames out to appsrcs."""

    def __init__(self, gst: Any, runner: Runner, name: str, path: Path) -> None:
        self.gst = gst
        self.runner = runner
        self.name = name
        self.lock = threading.Lock()
        self.targets: list[Any] = []
        self.caps: Any = None
        self.first_sample = threading.Event()
        location = str(path.resolve()).replace("\\", "\\\\").replace('"', '\\"')
        self.pipeline = gst.parse_launch(
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
        """Start decoding."""
        if self.pipeline.set_state(self.gst.State.PLAYING) == self.gst.StateChangeReturn.FAILURE:
            self.runner.fail(f"mount {self.name!r}: cannot play its file")

    def stop(self) -> None:
        """Stop decoding."""
        self.pipeline.set_state(self.gst.State.NULL)
        self.pipeline.get_bus().remove_signal_watch()

    def on_message(self, _bus: Any, message: Any) -> None:
        """Loop at the end of the file; fail on an error."""
        gst = self.gst
        if message.type == gst.MessageType.EOS:
            flags = gst.SeekFlags.FLUSH | gst.SeekFlags.KEY_UNIT
            if not self.pipeline.seek_simple(gst.Format.TIME, flags, 0):
                self.runner.fail(f"mount {self.name!r}: cannot seek back to the start")
        elif message.type == gst.MessageType.ERROR:
            err, debug = message.parse_error()
            self.runner.fail(f"mount {self.name!r}: {err.message} ({debug})")

    def on_sample(self, sink: Any) -> Any:
        """Hand a decoded frame to every client's appsrc."""
        gst = self.gst
        sample = sink.emit("pull-sample")
        if sample is None:
            return gst.FlowReturn.OK
        buffer = sample.get_buffer()
        with self.lock:
            if self.caps is None:
                self.caps = sample.get_caps()
            targets = list(self.targets)
        self.first_sample.set()
        for appsrc in targets:
            out = buffer.copy()
            # appsrc's do-timestamp stamps the clock's running time: a live stream.
            out.pts = gst.CLOCK_TIME_NONE
            out.dts = gst.CLOCK_TIME_NONE
            appsrc.emit("push-buffer", out)
        return gst.FlowReturn.OK

    def attach(self, media: Any) -> None:
        """Feed a new client's media from this source until it is unprepared."""
        appsrc = media.get_element().get_by_name_recurse_up("src")
        with self.lock:
            appsrc.set_property("caps", self.caps)
            self.targets.append(appsrc)

        def detach(_media: Any) -> None:
            with self.lock:
                if appsrc in self.targets:
                    self.targets.remove(appsrc)

        media.connect("unprepared", detach)


def wait_first_samples(glib: Any, runner: Runner, sources: dict[str, LoopingSource]) -> bool:
    """Run the loop until every source has decoded a frame (its caps are known), 20 s at most."""

    def poll() -> bool:
        pending = [s for s in sources.values() if not s.first_sample.is_set()]
        if pending and runner.exit_code == 0:
            return True  # poll again
        runner.loop.quit()
        return False

    def startup_timeout() -> bool:
        pending = [s.name for s in sources.values() if not s.first_sample.is_set()]
        if pending:
            runner.fail(f"no decoded frame from mount(s) {pending} within 20 s")
        return False

    glib.timeout_add(20, poll)
    timeout_id = glib.timeout_add_seconds(20, startup_timeout)
    runner.loop.run()
    glib.source_remove(timeout_id)
    return runner.exit_code == 0


def launch_line(args: argparse.Namespace) -> str:
    """The encoding pipeline each shared media runs (appsrc -> x264 -> RTP)."""
    # One slice per frame: with sliced threads (zerolatency's default) rtph264pay's
    # config-interval=-1 puts SPS/PPS between the slices of an IDR frame, and FFmpeg
    # then decodes garbage. config-interval=-1 itself is needed for late joiners.
    return (
        "( appsrc name=src is-live=true do-timestamp=true format=time "
        "max-buffers=8 leaky-type=downstream "
        "! videoconvert "
        "! x264enc tune=zerolatency speed-preset=ultrafast threads=1 sliced-threads=false "
        f"key-int-max={args.key_int_max} "
        f"bitrate={args.bitrate} "
        "! video/x-h264,profile=constrained-baseline "
        "! rtph264pay name=pay0 pt=96 config-interval=-1 )"
    )


def build_server(
    args: argparse.Namespace, sources: dict[str, LoopingSource], gi_modules: tuple[Any, ...]
) -> Any:
    """An RTSP server on 127.0.0.1 with one shared media factory per mount."""
    gst, gst_rtsp, gst_rtsp_server = gi_modules
    server = gst_rtsp_server.RTSPServer()
    server.set_address("127.0.0.1")
    server.set_service(str(args.port))
    if args.user is not None:
        auth = gst_rtsp_server.RTSPAuth()
        token = gst_rtsp_server.RTSPToken()
        token.set_string("media.factory.role", ROLE)
        auth.add_basic(gst_rtsp_server.RTSPAuth.make_basic(args.user, args.password), token)
        server.set_auth(auth)
    pool = gst_rtsp_server.RTSPAddressPool()
    pool.add_range("127.0.0.1", "127.0.0.1", 20000, 29999, 0)
    mount_points = server.get_mount_points()
    for name, source in sources.items():
        factory = gst_rtsp_server.RTSPMediaFactory()
        factory.set_launch(launch_line(args))
        factory.set_shared(True)
        factory.set_address_pool(pool)
        if args.tcp_only:
            factory.set_protocols(gst_rtsp.RTSPLowerTrans.TCP)
        if args.user is not None:
            factory.add_role_from_structure(
                gst.Structure.new_from_string(
                    f"{ROLE}, media.factory.access=(boolean)true, "
                    "media.factory.construct=(boolean)true"
                )
            )
        factory.connect("media-configure", lambda _f, media, s=source: s.attach(media))
        mount_points.add_factory(f"/{name}", factory)
    return server


def watch_signals_and_stdin(glib: Any, runner: Runner, exit_on_stdin_eof: bool) -> None:
    """Stop the loop on SIGTERM/SIGINT, and at stdin EOF when asked to."""
    for signum in (signal.SIGTERM, signal.SIGINT):
        glib.unix_signal_add(glib.PRIORITY_DEFAULT, signum, lambda: (runner.loop.quit(), False)[1])
    if not exit_on_stdin_eof:
        return

    def on_stdin(_fd: int, _condition: Any) -> bool:
        try:
            data = os.read(0, 4096)
        except OSError:
            data = b""
        if not data:
            runner.loop.quit()
            return False
        return True

    glib.io_add_watch(0, glib.PRIORITY_DEFAULT, glib.IO_IN | glib.IO_HUP, on_stdin)


def main(argv: list[str] | None = None) -> int:
    """Run the server until SIGTERM/SIGINT (or stdin EOF); return the exit code."""
    args = parse_args(argv)

    import gi

    gi.require_version("Gst", "1.0")
    gi.require_version("GstRtsp", "1.0")
    gi.require_version("GstRtspServer", "1.0")
    from gi.repository import GLib, Gst, GstRtsp, GstRtspServer

    Gst.init(None)
    runner = Runner(GLib)
    sources = {name: LoopingSource(Gst, runner, name, path) for name, path in args.mounts.items()}
    for source in sources.values():
        source.start()
    try:
        if not wait_first_samples(GLib, runner, sources):
            return runner.exit_code
        server = build_server(args, sources, (Gst, GstRtsp, GstRtspServer))
        if server.attach(None) == 0:
            print(
                f"rtsp_server: cannot listen on 127.0.0.1:{args.port}", file=sys.stderr, flush=True
            )
            return 1

        # Remove client sessions that timed out, as gst-rtsp-server's examples do.
        def cleanup_sessions() -> bool:
            server.get_session_pool().cleanup()
            return True

        GLib.timeout_add_seconds(2, cleanup_sessions)
        watch_signals_and_stdin(GLib, runner, args.exit_on_stdin_eof)
        print(f"READY {server.get_bound_port()}", flush=True)
        # Nothing else goes to stdout: point fd 1 at stderr so a closed pipe cannot hurt us.
        os.dup2(2, 1)
        runner.loop.run()
        return runner.exit_code
    finally:
        for source in sources.values():
            source.stop()


if __name__ == "__main__":
    sys.exit(main())
