"""Logging setup: one line per event, no secrets, text or JSON lines; unexpected exceptions."""

from __future__ import annotations

import logging
import sys
import threading
import time
import traceback
from typing import TextIO

import orjson

from pipeline.core.redact import RedactingFilter, redact


class JsonLineFormatter(logging.Formatter):
    """Format a record as one JSON object per line.

    Extra fields ``camera`` and ``watch`` (``log.info(..., extra={"camera": c})``)
    are kept as keys.
    """

    def format(self, record: logging.LogRecord) -> str:
        """Render the record as JSON."""
        data = {
            "time": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in ("camera", "watch", "backend", "sink"):
            value = getattr(record, key, None)
            if value is not None:
                data[key] = value
        return orjson.dumps(data).decode()


def setup_logging(
    level: str = "INFO", json_lines: bool = False, stream: TextIO | None = None
) -> None:
    """Send logs to stderr (default) with redaction; replaces earlier handlers.

    Example:
        >>> setup_logging("DEBUG", json_lines=True)  # doctest: +SKIP
    """
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(RedactingFilter())
    if json_lines:
        handler.setFormatter(JsonLineFormatter())
    else:
        handler.setFormatter(
            logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s", "%H:%M:%S")
        )
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Libraries that are chatty at INFO.
    for noisy in ("libav", "av", "urllib3"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


_kinds_seen: set[tuple[str, type[BaseException], str, int]] = set()
_kinds_lock = threading.Lock()


def log_unexpected(
    logger: logging.Logger,
    what: str,
    exc: BaseException,
    *,
    expected: tuple[type[BaseException], ...] = (),
) -> None:
    """Log an exception that a broad ``except`` caught, with its redacted traceback.

    Every call logs the traceback at DEBUG, except the first of a new kind (this
    logger, this exception type, this ``except`` site), which is logged at ERROR:
    a fault nobody expected is seen once at the default level without flooding the
    log when it repeats. Exceptions of the ``expected`` types (faults the site
    already reports in its own words, such as a camera that cannot be opened) are
    logged at DEBUG only. The text is redacted here, so no handler can print a
    password from a URL in the traceback. Call it from the ``except`` block; the
    site goes on as it did (a default value, a failed verdict, the next item).

    Example:
        >>> log = logging.getLogger("lookout.example")
        >>> try:
        ...     {}["missing"]
        ... except Exception as exc:  # a listener's bug must not stop the others
        ...     log_unexpected(log, "listener failed", exc)

    Args:
        logger: the module's logger.
        what: what failed, in plain words (no secrets needed: it is redacted too).
        exc: the exception caught.
        expected: exception types that are ordinary failures at this site.
    """
    caller = sys._getframe(1)
    kind = (logger.name, type(exc), caller.f_code.co_filename, caller.f_lineno)
    first = False
    if not isinstance(exc, expected):
        with _kinds_lock:
            first = kind not in _kinds_seen
            _kinds_seen.add(kind)
    if not logger.isEnabledFor(logging.ERROR if first else logging.DEBUG):
        return  # no traceback is rendered for a record nobody will see
    rendered = redact("".join(traceback.format_exception(exc)).rstrip())
    if first:
        logger.error(
            "%s (first %s here; repeats are logged at DEBUG)\n%s",
            redact(what),
            type(exc).__name__,
            rendered,
            stacklevel=2,
        )
    else:
        logger.debug("%s\n%s", redact(what), rendered, stacklevel=2)
