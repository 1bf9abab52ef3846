"""The picture an entry keeps: the look's own thumbnail, a JPEG shrunk, or an alert's whole JPEG.

The store writes it as a BLOB in the same transaction as its entry (see
:mod:`sinks.activity.schema`): no file per look, and a picture is there
exactly when its entry is.

A look brings its thumbnail, made from its decoded frame
(``LookRecord.thumbnail``, about 0.2 ms of the watch's time): it is kept as it
is. Without one (captions, looks of other origins) the JPEG is shrunk
(:func:`thumbnail`), where libjpeg-turbo's Huffman decode of the whole JPEG is
the cost whatever the DCT scale: about 0.6 ms of a 480p JPEG at quality 85.

Example:
    >>> from sinks.activity.entries import Entry
    >>> kept(Entry(time=0.0, kind="alert", jpeg=b"...", thumbnail=False), 120)
    Kept(role='whole', jpeg=b'...')
    >>> kept(Entry(time=0.0, kind="look", jpeg=b"...", small=b"s"), 120)
    Kept(role='thumbnail', jpeg=b's')
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass

from PIL import Image

from sinks.activity.entries import Entry
from sinks.activity.schema import THUMBNAIL, WHOLE

log = logging.getLogger("lookout.activity")


@dataclass(frozen=True, slots=True)
class Kept:
    """One entry's picture as the store keeps it.

    Attributes:
        role: :data:`~sinks.activity.schema.THUMBNAIL` (a small copy, kept
            ``thumbnail_keep_s``) or :data:`~sinks.activity.schema.WHOLE` (an
            alert's picture as judged, kept as long as its alert).
        jpeg: the JPEG bytes.
    """

    role: str
    jpeg: bytes


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


def kept(entry: Entry, height: int, *, thumbnails: bool = True) -> Kept | None:
    """The picture to keep for ``entry``, if any.

    An alert keeps its JPEG whole; a look or caption its thumbnail (the look's
    own, else ``entry.jpeg`` shrunk to ``height``), unless ``thumbnails`` is
    False (``thumbnail_keep_s = 0``). A JPEG that cannot be shrunk is logged and
    nothing is kept.
    """
    if entry.jpeg is None:
        return None
    if not entry.thumbnail:
        return Kept(WHOLE, entry.jpeg)
    if not thumbnails:
        return None
    if entry.small is not None:
        return Kept(THUMBNAIL, entry.small)
    try:
        return Kept(THUMBNAIL, thumbnail(entry.jpeg, height))
    except (OSError, ValueError, Image.DecompressionBombError) as exc:
        log.warning("activity: no thumbnail of a %s: %s", entry.kind, exc)
        return None
