"""A real Mosquitto broker on a free loopback port, for tests.

Example::

    with Mosquitto(persistence=True) as broker:
        client.connect(broker.host, broker.port)
        broker.kill()      # SIGKILL: unsaved messages are lost
        broker.restart()   # same port, same persistence file
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import IO, Self

from tests.support._proc import find_binary, kill_process, stop_process, tail
from tests.support.ports import LOOPBACK, free_port, port_open, wait_for_port_closed


@dataclass(frozen=True)
class TlsListener:
    """Files for an extra TLS listener; they are passed to Mosquitto as given.

    Attributes:
        cafile: CA certificate (PEM) used to verify client certificates.
        certfile: server certificate (PEM).
        keyfile: server private key (PEM).
        require_certificate: ask clients for a certificate signed by ``cafile``.
        port: fixed TLS port; a free one is chosen when ``None``.
    """

    cafile: Path
    certfile: Path
    keyfile: Path
    require_certificate: bool = False
    port: int | None = None


class Mosquitto:
    """Run the ``mosquitto`` binary with a generated config in a private folder.

    The broker listens on ``127.0.0.1:<port>`` only. ``start()`` returns once the
    port accepts connections. ``stop()`` sends SIGTERM (Mosquitto then saves its
    persistence file), ``kill()`` sends SIGKILL (nothing is saved), ``restart()``
    starts again on the same port(s) with the same config and folder.

    Attributes:
        host: always ``"127.0.0.1"``.
        port: the plain MQTT port.
        tls_port: the TLS port, or ``None`` without ``tls``.
        workdir: the folder holding ``mosquitto.conf``, ``mosquitto.log``,
            ``passwd`` and the persistence file ``mosquitto.db``.
        log_path: where Mosquitto's stdout and stderr go (appended across restarts).
    """

    host: str = LOOPBACK

    def __init__(
        self,
        *,
        port: int | None = None,
        persistence: bool = False,
        autosave_interval: int = 1,
        users: Mapping[str, str] | None = None,
        allow_anonymous: bool | None = None,
        tls: TlsListener | None = None,
        extra_config: Sequence[str] = (),
        workdir: Path | str | None = None,
        start_timeout: float = 10.0,
    ) -> None:
        """Prepare (but do not start) a broker.

        Args:
            port: fixed plain port; a free loopback port when ``None``.
            persistence: keep retained messages, sessions and queued QoS>0
                messages in ``workdir/mosquitto.db`` across restarts.
            autosave_interval: seconds between persistence saves (with ``persistence``).
            users: username -> password, written with ``mosquitto_passwd -b``.
            allow_anonymous: defaults to ``True`` without ``users``, ``False`` with them.
            tls: an extra TLS listener (config lines only; bring your own files).
            extra_config: more ``mosquitto.conf`` lines, appended verbatim.
            workdir: folder for config, log and data; a temporary one (removed on
                ``close()``) when ``None``.
            start_timeout: seconds ``start()`` waits for the port.
        """
        self._binary = find_binary("mosquitto")
        self._owns_workdir = workdir is None
        self.workdir = (
            Path(workdir) if workdir is not None else Path(tempfile.mkdtemp(prefix="mosquitto-"))
        )
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port if port is not None else free_port()
        self.tls = tls
        self.tls_port: int | None = None
        if tls is not None:
            self.tls_port = tls.port if tls.port is not None else free_port()
        self.persistence = persistence
        self.autosave_interval = autosave_interval
        self.users = dict(users or {})
        self.allow_anonymous = (not self.users) if allow_anonymous is None else allow_anonymous
        self.extra_config = list(extra_config)
        self.start_timeout = start_timeout
        self.config_path = self.workdir / "mosquitto.conf"
        self.log_path = self.workdir / "mosquitto.log"
        self.password_path: Path | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._closed = False
        if self.users:
            self.password_path = self._write_password_file()
        self._write_config()

    # -- configuration -------------------------------------------------------

    def _write_password_file(self) -> Path:
        path = self.workdir / "passwd"
        path.unlink(missing_ok=True)
        tool = find_binary("mosquitto_passwd")
        for index, (user, password) in enumerate(self.users.items()):
            args = [tool, "-b", str(path), user, password]
            if index == 0:
                args.insert(1, "-c")
            done = subprocess.run(args, capture_output=True, timeout=10, check=False)
            if done.returncode != 0:
                raise RuntimeError(
                    f"mosquitto_passwd failed for user {user!r}: "
                    f"{done.stderr.decode(errors='replace').strip()}"
                )
        path.chmod(0o600)
        return path

    def _config_lines(self) -> list[str]:
        lines = [
            "# generated by tests/support/mosquitto.py",
            "per_listener_settings false",
            f"allow_anonymous {'true' if self.allow_anonymous else 'false'}",
            "log_dest stderr",
            "log_type error",
            "log_type warning",
            "log_type notice",
            "log_type information",
            "connection_messages true",
            "log_timestamp true",
            "log_timestamp_format %Y-%m-%dT%H:%M:%S",
        ]
        if os.geteuid() == 0:
            # Mosquitto drops root privileges to user "mosquitto" unless told otherwise;
            # that user cannot read our private temporary folder.
            lines.append("user root")
        if self.password_path is not None:
            lines.append(f"password_file {self.password_path}")
        if self.persistence:
            lines += [
                "persistence true",
                f"persistence_location {self.workdir}/",
                "persistence_file mosquitto.db",
                f"autosave_interval {self.autosave_interval}",
            ]
        else:
            lines.append("persistence false")
        lines.append(f"listener {self.port} {LOOPBACK}")
        if self.tls is not None:
            lines += [
                f"listener {self.tls_port} {LOOPBACK}",
                f"cafile {self.tls.cafile}",
                f"certfile {self.tls.certfile}",
                f"keyfile {self.tls.keyfile}",
                f"require_certificate {'true' if self.tls.require_certificate else 'false'}",
            ]
        lines += self.extra_config
        return lines

    def _write_config(self) -> None:
        self.config_path.write_text("\n".join(self._config_lines()) + "\n")

    # -- lifecycle -----------------------------------------------------------

    @property
    def running(self) -> bool:
        """Whether the broker process is alive."""
        return self._proc is not None and self._proc.poll() is None

    @property
    def pid(self) -> int | None:
        """The broker's process id while started."""
        return self._proc.pid if self._proc is not None else None

    def start(self) -> Self:
        """Start the broker and wait until its port(s) accept connections.

        Raises:
            RuntimeError: already running, closed, or the broker exited / did not
                listen in time (the message carries the end of its log).
        """
        if self._closed:
            raise RuntimeError("this Mosquitto was closed; create a new one")
        if self.running:
            raise RuntimeError(f"mosquitto is already running on port {self.port}")
        self._close_log()
        self._log = self.log_path.open("ab")
        self._log.write(f"=== start {time.strftime('%Y-%m-%dT%H:%M:%S')} ===\n".encode())
        self._log.flush()
        self._proc = subprocess.Popen(
            [self._binary, "-c", str(self.config_path)],
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
        )
        ports = [self.port] + ([self.tls_port] if self.tls_port is not None else [])
        deadline = time.monotonic() + self.start_timeout
        pending = list(ports)
        while pending:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                self._proc = None
                self._close_log()
                raise RuntimeError(
                    f"mosquitto exited with code {code} while starting; log:\n{tail(self.log_path)}"
                )
            pending = [p for p in pending if not port_open(self.host, p)]
            if not pending:
                break
            if time.monotonic() >= deadline:
                self.kill()
                raise RuntimeError(
                    f"mosquitto did not listen on {pending} within {self.start_timeout} s; "
                    f"log:\n{tail(self.log_path)}"
                )
            time.sleep(0.02)
        return self

    def stop(self, timeout: float = 5.0) -> int | None:
        """SIGTERM the broker and wait (persistence is saved); return its exit code."""
        return self._end(kill=False, timeout=timeout)

    def kill(self, timeout: float = 5.0) -> int | None:
        """SIGKILL the broker (nothing is saved since the last autosave); return its exit code."""
        return self._end(kill=True, timeout=timeout)

    def restart(self, *, kill: bool = False) -> Self:
        """Stop (or kill) the broker if running, then start it on the same port(s)."""
        self._end(kill=kill, timeout=5.0)
        return self.start()

    def _end(self, *, kill: bool, timeout: float) -> int | None:
        proc, self._proc = self._proc, None
        code: int | None = None
        if proc is not None:
            code = kill_process(proc, timeout) if kill else stop_process(proc, timeout)
            # Wait for the listening socket to go away so a restart can bind it again.
            for port in [self.port] + ([self.tls_port] if self.tls_port is not None else []):
                wait_for_port_closed(self.host, port, timeout)
        self._close_log()
        return code

    def _close_log(self) -> None:
        if self._log is not None:
            self._log.close()
            self._log = None

    def close(self) -> None:
        """Stop the broker and remove the temporary folder if this object made it."""
        try:
            self.stop()
        finally:
            self._closed = True
            if self._owns_workdir:
                shutil.rmtree(self.workdir, ignore_errors=True)

    def log_text(self) -> str:
        """Return everything Mosquitto has logged so far."""
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
        return f"Mosquitto({self.host}:{self.port}, {state}, workdir={str(self.workdir)!r})"
