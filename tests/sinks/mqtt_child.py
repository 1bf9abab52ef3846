"""Child process for kill -9 tests: an MqttConnection that connects, then idles.

Usage: python -m tests.sinks.mqtt_child HOST PORT
Prints "connected" once the broker accepted the connection.
"""

from __future__ import annotations

import sys
import time

from pipeline.core.config import MqttConfig
from pipeline.net.mqtt_connection import MqttConnection


def main() -> None:
    cfg = MqttConfig(host=sys.argv[1], port=int(sys.argv[2]), keepalive=5)
    conn = MqttConnection(cfg)
    conn.start(wait_s=10)
    print("connected", flush=True)
    while True:
        time.sleep(1)


if __name__ == "__main__":
    main()
