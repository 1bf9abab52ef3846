"""The store's pictures on disk: a small JPEG per look or caption, and each alert's whole JPEG.

Files live under ``<store>/pictures/<UTC hour>/<id>.jpg`` (thumbnails) and
``<store>/alerts/<UTC hour>/<id>.jpg`` (alert pictures), so thumbnails past
their keep time go an hour folder at a time. Each file is written to a
temporary name and renamed: a reader never sees half a picture.

Example:
    >>> relative_path("pictures", 42, 0.0)
    'pictures/1970010100/42.jpg'
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import time
from pathlib import Path

from PIL import Image

THUMBS = "pictures"
ALERTS = "alerts"


def hour_bucket(epoch_s: float) -> str:
    """The UTC hour folder of a time, e.g. ``1970010100``."""
    return time.strftime("%Y%m%d%H", time.gmtime(max(0.0, epoch_s)))


def relative_path(root: str, entry_id: int, epoch_s: float) -> str:
    """Where the picture of entry ``entry_id`` goes, relative to the store's folder."""
    return f"{root}/{hour_bucket(epoch_s)}/{entry_id}.jpg"


def thumbnail(jpeg: bytes, height: int, quality: int = 70) -> bytes:
    """A JPEG shrunk to ``height`` pixels high (aspect kept), decoded at reduced size.

    libjpeg decodes at 1/2, 1/4 or 1/8 scale directly (``Image.draft``), so a
    480p picture costs about a millisecond.

    Raises:
        OSError: ``jpeg`` is not a readable picture.
    """
    with Image.open(io.BytesIO(jpeg)) as img:
        if img.height > height:
            width = max(2, round(img.width * height / img.height))
            img.draft("RGB", (width, height))
            small = img.convert("RGB")
            small.thumbnail((width, height), Image.Resampling.BILINEAR)
        else:
            small = img.convert("RGB")
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=quality)
        return out.getvalue()


def write_atomic(folder: Path, relative: str, data: bytes) -> int:
    """Write ``data`` to ``folder / relative`` through a temporary file; return its size."""
    path = folder / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    with open(tmp, "wb") as f:
        f.write(data)
    os.replace(tmp, path)
    return len(data)


def remove(folder: Path, relative: str | None) -> None:
    """Remove one picture (missing is fine)."""
    if relative:
        with contextlib.suppress(OSError):
            (folder / relative).unlink()


def remove_hours_before(folder: Path, root: str, cutoff_s: float) -> int:
    """Remove whole hour folders of ``root`` that end before ``cutoff_s``; return how many."""
    base = folder / root
    if not base.is_dir():
        return 0
    limit = hour_bucket(cutoff_s)
    removed = 0
    for child in base.iterdir():
        if child.is_dir() and child.name < limit:
            shutil.rmtree(child, ignore_errors=True)
            removed += 1
    return removed


def remove_empty_hours(folder: Path, root: str) -> None:
    """Remove hour folders of ``root`` that are empty."""
    base = folder / root
    if not base.is_dir():
        return
    for child in base.iterdir():
        with contextlib.suppress(OSError):
            child.rmdir()  # only succeeds when empty
