"""Helpers of Lookout's tests: real services, fakes and the one of each shared tool.

Real services on loopback: Mosquitto, RTSP servers, a scripted model server, SMTP,
a fake Frigate. Shared tools: ``waiting.wait_until``, ``mqtt_recorder`` (recorder,
publish, retained), ``http_receiver`` (a scripted HTTP server). Test modules import
from here, never from another test module or a conftest; fixtures that start these
helpers live in the ``conftest.py`` files.
"""
