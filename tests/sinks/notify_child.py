"""Child process for kill -9 tests: a NotifySink that stores N alerts, then idles.

Usage: python -m tests.sinks.notify_child OUTBOX URL COUNT
Prints "stored" once the alerts are committed.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from pipeline.core.config import NotifySinkConfig
from sinks.notify import NotifySink
from tests.support.events import make_alert


def main() -> None:
    outbox, url, count = Path(sys.argv[1]), sys.argv[2], int(sys.argv[3])
    cfg = NotifySinkConfig(
        urls=[url],
        outbox=outbox,
        backoff_initial_s=0.1,
        backoff_max_s=0.5,
        request_timeout_s=2,
        rate_limit=1000,
    )
    sink = NotifySink("phone", cfg, poll_s=0.2)
    sink.open()
    for n in range(count):
        sink.send_alert(make_alert(n, jpeg=b"\xff\xd8 snapshot %d \xff\xd9" % n))
    print("stored", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
