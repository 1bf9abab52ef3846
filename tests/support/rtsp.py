"""Run ``rtsp_server.py`` (GStreamer, system Python) as a subprocess, for tests.

Example::

    with RtspServer({"porch": clip.path}, user="al", password="pw") as server:
        url = server.url("porch", "al", "pw")
        with av.open(url, options={"rtsp_transport": "tcp", "timeout": "3000000"}) as c:
            ...
        server.kill()     # the camera dies
        server.restart()  # and comes back on the same port
        server.pause()    # the camera hangs: connections stay open, nothing is sent
        server.resume()
"""

from __future__ import annotations

import functools
import os
import selectors
import shutil
import signal
import subprocess
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path
from types import TracebackType
from typing import IO, Self
from urllib.parse import quote

from tests.support._proc import INSTALL_HINT, kill_process, stop_process, tail
from tests.support.ports import LOOPBACK, wait_for_port_closed

StrPath = str | os.PathLike[str]

SYSTEM_PYTHON = "/usr/bin/python3"
SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")

#: PyAV options that bound every blocking call on an RTSP URL (3 s) and use TCP.
AV_OPTIONS: dict[str, str] = {"rtsp_transport": "tcp", "timeout": "3000000"}


@functools.cache
def check_system_python(python: str = SYSTEM_PYTHON) -> None:
    """Fail with a clear message unless ``python`` can import GstRtspServer.

    Raises:
        FileNotFoundError: the interpreter is missing.
        RuntimeError: ``gi``, the RTSP server typelib or a GStreamer element is missing.

    A successful check is cached for the rest of the process.
    """
    if not Path(python).is_file():
        raise FileNotFoundError(f"{python} does not exist; {INSTALL_HINT}")
    probe = (
        "import gi; gi.require_version('Gst', '1.0'); "
        "gi.require_version('GstRtspServer', '1.0'); "
        "from gi.repository import Gst, GstRtspServer; Gst.init(None); "
        "import sys; missing = [e for e in ('x264enc', 'rtph264pay', 'decodebin', 'appsrc', "
        "'appsink', 'videoconvert', 'qtdemux', 'avdec_h264') "
        "if Gst.ElementFactory.find(e) is None]; "
        "sys.exit('missing GStreamer elements: ' + ', '.join(missing) if missing else 0)"
    )
    done = subprocess.run([python, "-c", probe], capture_output=True, timeout=30, check=False)
    if done.returncode != 0:
        raise RuntimeError(
            f"{python} cannot run the GStreamer RTSP server ({INSTALL_HINT}):\n"
            f"{done.stderr.decode(errors='replace').strip()}"
        )


class RtspServer:
    """A looping live RTSP server on ``127.0.0.1`` serving one or more files.

    Each mount serves its file as a live stream that loops forever; all clients of
    a mount share one encoder (H.264, ``key_int_max`` frames per GOP). The port is
    chosen by the server on the first ``start()`` and kept for ``restart()``.

    Attributes:
        host: always ``"127.0.0.1"``.
        port: the RTSP port (``None`` until the first start unless given).
        mounts: mount name -> file.
        user: required user name, or ``None`` for no authentication.
        password: the password for ``user``.
        log_path: the server's stderr (appended across restarts).
    """

    host: str = LOOPBACK

    def __init__(
        self,
        mounts: Mapping[str, StrPath] | StrPath,
        *,
        user: str | None = None,
        password: str | None = None,
        port: int | None = None,
        key_int_max: int = 10,
        bitrate_kbps: int = 800,
        tcp_only: bool = False,
        workdir: Path | str | None = None,
        start_timeout: float = 30.0,
        python: str = SYSTEM_PYTHON,
    ) -> None:
        """Prepare (but do not start) a server.

        Args:
            mounts: mount name -> video file (a ``Clip`` works), or one file served as ``"stream"``.
            user: require RTSP basic authentication with this user name.
            password: the password for ``user``.
            port: fixed port; a free one is picked by the server when ``None``.
            key_int_max: keyframe interval of the served H.264, in frames.
            bitrate_kbps: H.264 bitrate.
            tcp_only: refuse clients that ask for RTP over UDP.
            workdir: folder for the log; temporary (removed on ``close()``) when ``None``.
            start_timeout: seconds ``start()`` waits for ``READY``.
            python: the interpreter that has ``gi`` (Debian's ``/usr/bin/python3``).
        """
        if isinstance(mounts, str | os.PathLike):
            mounts = {"stream": mounts}
        if not mounts:
            raise ValueError("give at least one mount")
        if (user is None) != (password is None):
            raise ValueError("user and password go together")
        self.mounts = {name.strip("/"): Path(path) for name, path in mounts.items()}
        for name, path in self.mounts.items():
            if not path.is_file():
                raise FileNotFoundError(f"mount {name!r}: no such file: {path}")
        self.user = user
        self.password = password
        self.port = port
        self.key_int_max = key_int_max
        self.bitrate_kbps = bitrate_kbps
        self.tcp_only = tcp_only
        self.start_timeout = start_timeout
        self.python = python
        self._owns_workdir = workdir is None
        self.workdir = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="rtsp-"))
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / "rtsp_server.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._paused = False
        self._log: IO[bytes] | None = None
        self._closed = False
        check_system_python(python)

    # -- URLs ----------------------------------------------------------------

    def url(
        self, mount: str | None = None, user: str | None = None, password: str | None = None
    ) -> str:
        """Return ``rtsp://[user:password@]127.0.0.1:PORT/MOUNT`` (credentials URL-quoted).

        ``mount`` defaults to the only (or first) mount. No credentials are added
        unless ``user`` is given; use ``auth_url()`` for the server's own.
        """
        if self.port is None:
            raise RuntimeError("the server has not been started yet, so it has no port")
        name = next(iter(self.mounts)) if mount is None else mount.strip("/")
        cred = ""
        if user is not None:
            cred = quote(user, safe="")
            if password is not None:
                cred += ":" + quote(password, safe="")
            cred += "@"
        return f"rtsp://{cred}{self.host}:{self.port}/{name}"

    def auth_url(self, mount: str | None = None) -> str:
        """Return ``url(mount)`` with the server's own credentials (if any)."""
        return self.url(mount, self.user, self.password)

    # -- lifecycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the server process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The server's process id while started."""
        return self._proc.pid if self._proc is not None else None

    def _command(self) -> list[str]:
        cmd = [
            self.python,
            str(SERVER_SCRIPT),
            "--port",
            str(self.port or 0),
            "--key-int-max",
            str(self.key_int_max),
            "--bitrate",
            str(self.bitrate_kbps),
            "--exit-on-stdin-eof",
        ]
        for name, path in self.mounts.items():
            cmd += ["--mount", f"{name}={path.resolve()}"]
        if self.user is not None and self.password is not None:
            cmd += ["--user", self.user, "--password", self.password]
        if self.tcp_only:
            cmd.append("--tcp-only")
        return cmd

    def start(self) -> Self:
        """Start the server and wait until it prints ``READY <port>``.

        Raises:
            RuntimeError: already running, closed, exited early, or not ready in time
                (the message carries the end of its log).
        """
        if self._closed:
            raise RuntimeError("this RtspServer was closed; create a new one")
        if self.running:
            raise RuntimeError(f"the RTSP server is already running on port {self.port}")
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"=== start {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode())
        self._log.flush()
        env = dict(os.environ)
        # A virtual environment's variables must not leak into Debian's interpreter.
        for var in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV"):
            env.pop(var, None)
        proc = subprocess.Popen(
            self._command(),
            stdin=subprocess.PIPE,  # closed by us (or our death) => the server exits
            stdout=subprocess.PIPE,
            stderr=self._log,
            env=env,
            cwd=self.workdir,
        )
        self._proc = proc
        try:
            self.port = self._wait_ready(proc)
        except BaseException:
            self._end(kill=True, timeout=5.0)
            raise
        return self

    def _wait_ready(self, proc: subprocess.Popen[bytes]) -> int:
        assert proc.stdout is not None
        deadline = time.monotonic() + self.start_timeout
        buf = b""
        with selectors.DefaultSelector() as sel:
            sel.register(proc.stdout, selectors.EVENT_READ)
            while b"\n" not in buf:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise RuntimeError(
                        f"the RTSP server was not ready within {self.start_timeout} s; "
                        f"log:\n{tail(self.log_path)}"
                    )
                if not sel.select(timeout=min(remaining, 0.5)):
                    continue
                chunk = os.read(proc.stdout.fileno(), 4096)
                if not chunk:
                    proc.wait(timeout=5)
                    raise RuntimeError(
                        f"the RTSP server exited with code {proc.returncode} while starting; "
                        f"log:\n{tail(self.log_path)}"
                    )
                buf += chunk
        line = buf.split(b"\n", 1)[0].decode(errors="replace").strip()
        word, _, port = line.partition(" ")
        if word != "READY" or not port.isdigit():
            raise RuntimeError(f"unexpected first line from the RTSP server: {line!r}")
        return int(port)

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the server and wait; return its exit code."""
        return self._end(kill=False, timeout=timeout)

    def kill(self, timeout: float = 5.0) -> int | None:
        """SIGKILL the server (clients see the connection drop); return its exit code."""
        return self._end(kill=True, timeout=timeout)

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open and nothing more is sent.

        What a hung camera looks like to a client: no error, no data. Data already
        in the sockets' buffers still arrives. ``resume()``, ``stop()``, ``kill()``
        and ``close()`` all thaw it.

        Raises:
            RuntimeError: the server is not running.
        """
        if self._proc is None or not self.running:
            raise RuntimeError("the RTSP server is not running, so it cannot be paused")
        os.kill(self._proc.pid, signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT); does nothing when it is not paused."""
        if self._proc is not None and self._paused:
            os.kill(self._proc.pid, signal.SIGCONT)
        self._paused = False

    def restart(self, *, kill: bool = False) -> Self:
        """Stop (or kill) the server if running, then start it again on the same port."""
        self._end(kill=kill, timeout=5.0)
        return self.start()

    def _end(self, *, kill: bool, timeout: float) -> int | None:
        self.resume()  # a frozen process would not handle SIGTERM
        proc, self._proc = self._proc, None
        code: int | None = None
        if proc is not None:
            try:
                code = kill_process(proc, timeout) if kill else stop_process(proc, timeout)
            finally:
                for stream in (proc.stdin, proc.stdout):
                    if stream is not None:
                        stream.close()
            if self.port is not None:
                wait_for_port_closed(self.host, self.port, timeout)
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the server and remove the temporary folder if this object made it."""
        try:
            self.stop()
        finally:
            self._closed = True
            if self._owns_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def log_text(self) -> str:
        """Return everything the server has written to stderr so far."""
        return tail(self.log_path, max_chars=1_000_000)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "running" if self.running else "stopped"
        return f"RtspServer({self.host}:{self.port}, mounts={list(self.mounts)}, {state})"
