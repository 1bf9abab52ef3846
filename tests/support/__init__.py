"""Real-service helpers for Lookout's tests: Mosquitto, RTSP, clips, a scripted model server."""
