"""Labelled clips that are made at benchmark time instead of committed.

A clip described with ``cached = true`` in its ``benchmarks/footage/NAME.toml``
(the labels and the TOML are committed; the video is not) is made by
``scripts/make-footage --only NAME --out DIR`` from the committed
``tests/footage/vtest.mp4`` and kept in ``~/.cache/lookout/footage/KEY/``
(``$XDG_CACHE_HOME`` is honoured). ``KEY`` is a hash of the script, the source
clip and the PyAV version: change any of them and the clip is made again
(about a minute on two cores); otherwise it is reused.

Example:
    >>> cache_dir().parent.name
    'footage'
    >>> clip = ensure_clip("busypath")  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

import av

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "make-footage"
SOURCE = ROOT / "tests" / "footage" / "vtest.mp4"
MAKE_TIMEOUT_S = 900.0
"""Longest a clip may take to make (it takes about a minute on two cores)."""


def cache_root() -> Path:
    """``~/.cache/lookout/footage`` (or under ``$XDG_CACHE_HOME``)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lookout" / "footage"


def cache_key(script: Path = SCRIPT, source: Path = SOURCE) -> str:
    """16 hex digits naming what the cached clips are made from (script, source, PyAV)."""
    h = hashlib.sha256()
    for path in (script, source):
        h.update(hashlib.sha256(path.read_bytes()).digest())
    h.update(f"av {av.__version__}".encode())
    return h.hexdigest()[:16]


def cache_dir() -> Path:
    """The folder of the clips made from the current script and source."""
    return cache_root() / cache_key()


def ensure_clip(name: str, *, quiet: bool = False) -> Path:
    """The cached clip ``NAME.mp4``, made first when it is not there yet.

    Raises:
        RuntimeError: the script failed or did not write the clip (its output
            is in the message).
    """
    folder = cache_dir()
    path = folder / f"{name}.mp4"
    if path.is_file():
        return path
    if not quiet:
        print(f"making {name}.mp4 into {folder} (once; about a minute)", file=sys.stderr)
    cmd = [sys.executable, str(SCRIPT), "--only", name, "--out", str(folder)]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True,
                          timeout=MAKE_TIMEOUT_S, check=False)  # fmt: skip
    if done.returncode != 0 or not path.is_file():
        tail = (done.stdout + done.stderr).strip()[-2000:]
        raise RuntimeError(f"scripts/make-footage --only {name} failed ({done.returncode}): {tail}")
    return path
