"""Child process for kill -9 tests: a WebhookSink that stores N alerts, then idles.

Usage: python -m tests.sinks.webhook_child OUTBOX URL COUNT
Prints "stored" once the alerts are committed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pipeline.core.config import WebhookSinkConfig
from sinks.webhook import WebhookSink
from tests.support.events import make_alert


def main() -> None:
    outbox, url, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    cfg = WebhookSinkConfig(
        url=url,
        outbox=outbox,
        backoff_initial_s=0.1,
        backoff_max_s=0.5,
        connect_timeout_s=1,
        read_timeout_s=2,
    )
    sink = WebhookSink("hook", cfg, poll_s=0.2)
    sink.open()
    for n in range(count):
        sink.send_alert(make_alert(n))
    print("stored", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
