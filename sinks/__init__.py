"""Sinks: where alerts, watch state and camera state go (MQTT, webhooks, files, console)."""
