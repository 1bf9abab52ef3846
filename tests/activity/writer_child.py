"""Child process for the kill -9 test: write looks through the sink hub for ever.

Prints ``FLUSHED <n>`` each time ``n`` looks are known committed, then goes on
writing until it is killed.

    python -m tests.activity.writer_child FOLDER
"""

from __future__ import annotations

import sys
from pathlib import Path

from pipeline.core.config import ActivityConfig
from sinks.activity.sink import ActivitySink
from sinks.activity.store import ActivityStore
from sinks.registry import SinkHub
from tests.support.activity_records import look, noisy_jpeg


def main() -> None:
    store = ActivityStore(Path(sys.argv[1]), ActivityConfig(), clock=lambda: 1e6)
    hub = SinkHub({})
    hub.attach(ActivitySink(store))
    hub.open()
    jpeg = noisy_jpeg(160, 120)
    i = 0
    while True:  # bounded by the parent's kill
        for _ in range(200):
            hub.send_look(look(i, f"walker {i} crossed the yard", jpeg=jpeg, t=1e6 - 5e4 + i))
            i += 1
        if store.flush(30):
            print(f"FLUSHED {i}", flush=True)


if __name__ == "__main__":
    main()
