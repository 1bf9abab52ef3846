"""The managed llama-server process: its own process group, gone with Lookout, on a proven port.

- **Process group**: the server runs in a session of its own (``setsid``), so a
  Ctrl-C meant for Lookout does not reach it half way, and stopping it signals
  the whole group (:func:`stop_group`).
- **Parent-death signal**: the child asks the kernel (``prctl(PR_SET_PDEATHSIG,
  SIGKILL)``, Linux) to be killed when its parent goes, so a Lookout killed
  with ``kill -9`` leaves no server behind. A short Python step does that and
  then execs llama-server (a ``preexec_fn`` in a process with threads may
  deadlock in the child). The signal follows the *thread* that forked the
  child, so every server is forked by one long-lived thread (:data:`SPAWNER`),
  never by a look thread that a pool may retire.
- **Port race**: a free port is picked before the server binds it, so another
  program may take it first. Each run gets a random API key (in a 0600 file,
  ``--api-key-file``, never on the command line): a ``/health`` that answers
  but a ``/props`` that does not demand this key is another server
  (:func:`identify`), and a server that cannot bind says so in its log
  (:func:`bind_failed`); either way the caller tries another port.

Example:
    >>> key = RunKey.create()
    >>> key.path.read_text().strip() == key.value, oct(key.path.stat().st_mode & 0o777)
    (True, '0o600')
    >>> key.remove()
"""

from __future__ import annotations

import contextlib
import os
import queue
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from pipeline.core.redact import register_secret
from pipeline.net.http import HttpClient, TransportError

BIND_ERRORS = ("couldn't bind", "address already in use", "failed to bind")
"""Words of llama-server's log when its port was taken."""

DIE_WITH_PARENT = """
import ctypes, os, signal, sys
ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
if os.getppid() != int(sys.argv[1]):
    sys.exit("lookout: the parent is gone; not starting llama-server")
try:
    os.execv(sys.argv[2], sys.argv[2:])
except OSError as exc:
    sys.exit(f"lookout: cannot start {sys.argv[2]}: {exc}")
"""
"""Run as ``python -c DIE_WITH_PARENT <parent pid> <program> <args...>``."""


def with_parent_death_signal(cmd: Sequence[str], parent: int) -> list[str]:
    """The command line that runs ``cmd`` killed with process ``parent`` (as is off Linux).

    Example:
        >>> with_parent_death_signal(["llama-server", "--port", "9"], 42)[-4:]
        ['42', 'llama-server', '--port', '9']
    """
    if not sys.platform.startswith("linux"):
        return list(cmd)
    return [sys.executable, "-I", "-S", "-c", DIE_WITH_PARENT, str(parent), *cmd]


_Job = tuple[Future[subprocess.Popen[bytes]], Sequence[str], IO[bytes]]


class Spawner:
    """One daemon thread that forks every managed server (see the module docstring)."""

    def __init__(self) -> None:
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def popen(self, cmd: Sequence[str], log: IO[bytes]) -> subprocess.Popen[bytes]:
        """Start ``cmd`` in its own process group with the parent-death signal.

        Raises:
            OSError: the program cannot be started.
        """
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="llama-spawner", daemon=True)
                self._thread.start()
        job: Future[subprocess.Popen[bytes]] = Future()
        self._jobs.put((job, cmd, log))
        return job.result()

    def _run(self) -> None:
        while True:
            job, cmd, log = self._jobs.get()
            try:
                proc = subprocess.Popen(
                    with_parent_death_signal(cmd, os.getpid()),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            except OSError as exc:
                job.set_exception(exc)
            else:
                job.set_result(proc)


SPAWNER = Spawner()
"""The process's one spawner thread."""


def stop_group(proc: subprocess.Popen[bytes], timeout_s: float = 5.0) -> None:
    """SIGTERM the server's process group, then SIGKILL it after ``timeout_s``."""
    for sig in (signal.SIGTERM, signal.SIGKILL):
        if proc.poll() is not None:
            break
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, sig)
        try:
            proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            continue
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)  # anything it left in its group
    if proc.poll() is None:
        proc.wait(timeout_s)


PORT_TRIES = 3
"""Ports tried when another program takes the picked one first."""


@dataclass(frozen=True, slots=True)
class PortLost:
    """The picked port turned out to be someone else's (bind failed, or a foreign server)."""

    reason: str


def healthy(health: HttpClient) -> bool:
    """Whether the server answers ``/health`` with 200 (loaded and ready)."""
    try:
        return health.request("GET", "/health").status == 200
    except TransportError:
        return False


def pick_port(host: str) -> int:
    """A port that was free a moment ago (another program may still take it first)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True, slots=True)
class RunKey:
    """A run's random API key, in a 0600 file of a private folder (``--api-key-file``)."""

    value: str
    path: Path

    @classmethod
    def create(cls) -> RunKey:
        """A fresh key (registered as a secret) written to a new private file."""
        value = secrets.token_urlsafe(24)
        register_secret(value)
        folder = Path(tempfile.mkdtemp(prefix="lookout-llama-"))  # 0700
        path = folder / "api-key"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(value + "\n")
        return cls(value, path)

    def remove(self) -> None:
        """Delete the file and its folder (the server read it at start)."""
        shutil.rmtree(self.path.parent, ignore_errors=True)


def identify(root_url: str, key: str, timeout_s: float = 2.0) -> str | None:
    """Return None when the server at ``root_url`` is ours (it knows ``key``), else why not.

    Ours answers ``/props`` with ``key`` and refuses it with another key; a
    server that accepts any key, or not ours, is someone else's.
    """
    client = HttpClient(root_url, connect_timeout_s=timeout_s, read_timeout_s=timeout_s,
                        request_timeout_s=2 * timeout_s, pool_size=1)  # fmt: skip
    try:
        ours = client.request("GET", "/props", headers={"Authorization": f"Bearer {key}"})
        other = client.request(
            "GET", "/props", headers={"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}
        )
    except TransportError as exc:
        return f"it did not answer /props ({exc})"
    finally:
        client.close()
    if ours.status != 200:
        return f"it does not know this run's API key (/props answered {ours.status})"
    if other.status not in (401, 403):
        return f"it takes any API key (/props answered {other.status} to a wrong one)"
    return None


def bind_failed(log_file: Path, offset: int) -> bool:
    """Whether the server's log since ``offset`` says its port was taken."""
    try:
        with open(log_file, "rb") as f:
            f.seek(offset)
            text = f.read(1 << 20).decode("utf-8", "replace").lower()
    except OSError:
        return False
    return any(words in text for words in BIND_ERRORS)
