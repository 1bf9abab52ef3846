"""Logging setup: one line per event, no secrets, text or JSON lines."""

from __future__ import annotations

import logging
import sys
import time
from typing import TextIO

import orjson

from pipeline.core.redact import RedactingFilter


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
