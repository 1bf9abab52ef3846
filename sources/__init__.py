"""Sources: camera streams (PyAV) and detection sources (motion, Frigate, ONNX, MQTT)."""
