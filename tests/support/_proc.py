"""Small helpers shared by the service wrappers: binaries, stopping, log tails."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

INSTALL_HINT = "run `sudo bash scripts/install-system-deps` (Debian/Ubuntu) to install it"


def find_binary(name: str, extra_dirs: tuple[str, ...] = ("/usr/sbin", "/usr/local/sbin")) -> str:
    """Return the path of executable ``name``, also looking in sbin folders.

    Raises:
        FileNotFoundError: the binary is not installed; the message says how to install it.
    """
    found = shutil.which(name)
    if found:
        return found
    for folder in extra_dirs:
        candidate = Path(folder) / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    raise FileNotFoundError(f"`{name}` is not installed or not on PATH; {INSTALL_HINT}")


def stop_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """Terminate ``proc`` (SIGTERM), wait up to ``timeout`` s, then SIGKILL; return its code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
    return proc.returncode


def kill_process(proc: subprocess.Popen[bytes], timeout: float = 5.0) -> int:
    """SIGKILL ``proc`` and reap it; return its exit code."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=timeout)
    return proc.returncode


def tail(path: Path, max_chars: int = 4000) -> str:
    """Return the last ``max_chars`` characters of a text file ('' if it does not exist)."""
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return ""
    return text[-max_chars:]
