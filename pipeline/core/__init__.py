"""The vocabulary every other package speaks: frames, detections, verdicts, events, config.

Nothing here imports the application (:mod:`pipeline.app`), the sources, the
operators or the sinks, so ``import pipeline.core.frame`` is cheap and safe
from anywhere.
"""
