"""Small copies of the frames a replay's looks judged, for the report.

A replay keeps every alert's JPEG as sent, but a long replay makes hundreds
of looks: each not-met look keeps a copy at most :data:`THUMB_WIDTH` pixels
wide (a few kilobytes) so that the report can show every look's frame.

Example:
    >>> from io import BytesIO
    >>> from PIL import Image
    >>> buf = BytesIO(); Image.new("RGB", (640, 480)).save(buf, "JPEG")
    >>> Image.open(BytesIO(thumbnail_jpeg(buf.getvalue()))).size
    (240, 180)
"""

from __future__ import annotations

from io import BytesIO

from PIL import Image

THUMB_WIDTH = 240
"""Width in pixels of the copy kept of each look's frame."""


def thumbnail_jpeg(jpeg: bytes, width: int = THUMB_WIDTH, quality: int = 70) -> bytes | None:
    """``jpeg`` shrunk to at most ``width`` pixels wide; ``None`` when it cannot be read."""
    try:
        with Image.open(BytesIO(jpeg)) as img:
            img.thumbnail((width, width * 4))
            out = BytesIO()
            img.convert("RGB").save(out, format="JPEG", quality=quality)
    except (OSError, ValueError):
        return None
    return out.getvalue()
