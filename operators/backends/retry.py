"""Which HTTP failures of a model server are worth retrying.

How long to wait comes from :mod:`pipeline.core.backoff` (``backoff_delay``,
``parse_retry_after``), shared with the cameras and the webhook sink.

Example:
    >>> is_retryable_status(503), is_retryable_status(400)
    (True, False)
"""

from __future__ import annotations

RETRYABLE_STATUS = frozenset({408, 425, 429, 500, 502, 503, 504})


def is_retryable_status(status: int) -> bool:
    """Whether an HTTP status is worth retrying: 408, 425, 429 and 5xx (not 501)."""
    return status in RETRYABLE_STATUS or (500 <= status < 600 and status != 501)
