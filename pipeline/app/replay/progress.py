"""A progress bar on stderr for replays that may take minutes with a real model.

On a terminal the bar redraws in place (at most ten times a second); into a
file or pipe it writes a plain line every 10 % instead, so logs stay short.

Example:
    >>> import io
    >>> out = io.StringIO()
    >>> bar = ProgressBar(60.0, label="porch", stream=out, tty=False)
    >>> bar.update(30.0, "looks 4, alerts 1")
    >>> bar.close()
    >>> out.getvalue().splitlines()[0]
    'porch   50%  0:30 / 1:00  looks 4, alerts 1'
"""

from __future__ import annotations

import sys
import time
from typing import TextIO


def format_clock(seconds: float) -> str:
    """``M:SS`` (or ``H:MM:SS``) for a number of seconds.

    Example:
        >>> format_clock(75.4), format_clock(3725)
        ('1:15', '1:02:05')
    """
    s = max(0, int(seconds))
    h, rest = divmod(s, 3600)
    m, sec = divmod(rest, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def render_bar(done: float, total: float | None, width: int = 28) -> str:
    """The bar itself: ``[#####-----]``; a total of ``None`` or 0 gives an empty bar.

    Example:
        >>> render_bar(1, 4, width=8)
        '[##------]'
    """
    share = min(1.0, max(0.0, done / total)) if total else 0.0
    filled = round(share * width)
    return "[" + "#" * filled + "-" * (width - filled) + "]"


class ProgressBar:
    """Clip time done out of the total, the speed, and a short status text.

    Args:
        total_s: clip seconds to replay (``None`` when unknown).
        label: what is replayed (the watch name).
        stream: where to write (default ``sys.stderr``).
        tty: force terminal mode on or off (default: ``stream.isatty()``).
    """

    def __init__(
        self,
        total_s: float | None,
        *,
        label: str = "",
        stream: TextIO | None = None,
        tty: bool | None = None,
    ) -> None:
        self.total_s = total_s
        self.label = label
        self.stream = stream if stream is not None else sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self._t0 = time.monotonic()
        self._last_draw = float("-inf")
        self._last_decile = -1
        self._width = 0
        self._closed = False

    def line(self, done_s: float, status: str = "") -> str:
        """The text of one update (without the bar on non-terminals)."""
        parts = [self.label] if self.label else []
        if self.total_s:
            parts.append(f"{min(100, int(100 * done_s / self.total_s)):3d}%")
        clock = format_clock(done_s)
        if self.total_s:
            clock += f" / {format_clock(self.total_s)}"
        parts.append(clock)
        if self.tty:
            parts.insert(1 if self.label else 0, render_bar(done_s, self.total_s))
            elapsed = time.monotonic() - self._t0
            if elapsed > 0 and done_s > 0:
                parts.append(f"{done_s / elapsed:5.1f}x")
        if status:
            parts.append(status)
        return "  ".join(parts)

    def update(self, done_s: float, status: str = "") -> None:
        """Show ``done_s`` clip seconds done, with ``status`` (looks, alerts...)."""
        if self._closed:
            return
        if self.tty:
            now = time.monotonic()
            if now - self._last_draw < 0.1 and not (self.total_s and done_s >= self.total_s):
                return
            self._last_draw = now
            text = self.line(done_s, status)
            pad = " " * max(0, self._width - len(text))
            self._width = len(text)
            self.stream.write("\r" + text + pad)
        else:
            decile = int(10 * done_s / self.total_s) if self.total_s else 0
            if decile <= self._last_decile:
                return
            self._last_decile = decile
            self.stream.write(self.line(done_s, status) + "\n")
        self.stream.flush()

    def close(self) -> None:
        """End the bar's line (terminal mode). Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self.tty and self._width:
            self.stream.write("\n")
            self.stream.flush()
