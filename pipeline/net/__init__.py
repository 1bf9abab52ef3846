"""Network connections shared by sources, operators and sinks.

One HTTP client (:mod:`pipeline.net.http`), one MQTT connection
(:mod:`pipeline.net.mqtt_connection`) and the address check for URLs given at
run time (:mod:`pipeline.net.ssrf`). Built on :mod:`pipeline.core` only.
"""
