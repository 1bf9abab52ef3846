"""The store's pictures on disk: a small JPEG per look or caption, and each alert's whole JPEG.

Files live under ``<store>/pictures/<UTC hour>/<id>.jpg`` (thumbnails) and
``<store>/alerts/<UTC hour>/<id>.jpg`` (alert pictures), so thumbnails past
their keep time go an hour folder at a time. Each file is written to a
temporary name and renamed: a reader never sees half a picture.

A look brings its thumbnail, made from its decoded frame
(``LookRecord.thumbnail``, about 0.2 ms of the watch's time): :func:`save`
only writes it. Without one (captions, looks of other origins) it shrinks the
JPEG (:func:`thumbnail`), where libjpeg-turbo's Huffman decode of the whole
JPEG is the cost whatever the DCT scale: about 0.6 ms of a 480p JPEG at
quality 85.

Example:
    >>> relative_path("pictures", 42, 0.0)
    'pictures/1970010100/42.jpg'
"""

from __future__ import annotations

import contextlib
import io
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

log = logging.getLogger("lookout.activity")

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

    libjpeg decodes at 1/2, 1/4 or 1/8 scale in the DCT (``Image.draft``); when
    that scale lands on ``height`` (a 480p picture and 120 pixels) nothing is
    resized. What is left is the Huffman decode of the whole JPEG, about 0.6 ms
    of a 480p picture: a look's own thumbnail (made from its frame) spares it.

    Example:
        >>> import io
        >>> big = io.BytesIO()
        >>> Image.new("RGB", (640, 480), "red").save(big, format="JPEG")
        >>> Image.open(io.BytesIO(thumbnail(big.getvalue(), 120))).size
        (160, 120)

    Raises:
        OSError: ``jpeg`` is not a readable JPEG.
    """
    with Image.open(io.BytesIO(jpeg), formats=("JPEG",)) as img:
        size = img.size
        if img.height > height:
            size = (max(2, round(img.width * height / img.height)), height)
            img.draft("RGB", size)
        small = img.convert("RGB")
        if small.size != size:
            small = small.resize(size, Image.Resampling.BILINEAR)
        out = io.BytesIO()
        small.save(out, format="JPEG", quality=quality)
        return out.getvalue()


def write_atomic(folder: Path, relative: str, data: bytes) -> int:
    """Write ``data`` to ``folder / relative`` through a temporary file; return its size.

    Plain ``os`` calls (measured: a fifth of ``pathlib``'s cost per file); the folder is
    made when missing.
    """
    path = os.path.join(folder, relative)
    tmp = path + ".tmp"
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    except FileNotFoundError:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return len(data)


@dataclass(frozen=True, slots=True)
class Job:
    """One picture to keep: where it goes, and the JPEG it comes from.

    Attributes:
        relative: its path under the store's folder (:func:`relative_path`).
        jpeg: the picture as judged.
        shrink: True: keep a thumbnail of ``jpeg`` (looks, captions); False:
            keep ``jpeg`` itself (alerts).
        kind: the entry's kind, for the log.
        small: the thumbnail, when the look made it from its frame: written
            as it is (nothing decoded).
    """

    relative: str
    jpeg: bytes
    shrink: bool
    kind: str
    small: bytes | None = None


Saved = tuple[str | None, int]
"""A picture's relative path and size in bytes; ``(None, 0)`` when none was kept."""


def save(folder: Path, job: Job, height: int) -> Saved:
    """Write ``job``'s picture under ``folder`` (its thumbnail: given, else made ``height`` high).

    A picture that cannot be read or written is logged and not kept.

    Example:
        >>> job = Job("pictures/1970010100/1.jpg", jpeg, shrink=True, kind="look")  # doctest: +SKIP
        >>> save(Path("lookout-data"), job, 120)  # doctest: +SKIP
        ('pictures/1970010100/1.jpg', 4268)
    """
    data = job.jpeg if job.small is None else job.small
    if job.shrink and job.small is None:
        try:
            data = thumbnail(job.jpeg, height)
        except (OSError, ValueError, Image.DecompressionBombError) as exc:
            log.warning("activity: no thumbnail of a %s: %s", job.kind, exc)
            return None, 0
    try:
        return job.relative, write_atomic(folder, job.relative, data)
    except OSError as exc:
        log.warning("activity: picture %s not kept: %s", job.relative, exc)
        return None, 0


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
