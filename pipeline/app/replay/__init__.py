"""Replay a watch over a video file on virtual time and evaluate it against labels.

``python -m pipeline replay CLIP --watch NAME [--labels LABELS.csv] [--report DIR]``

Modules, one idea each:

- :mod:`~pipeline.app.replay.clip_reader`: a video file as a camera on a virtual clock.
- :mod:`~pipeline.app.replay.engine`: run one watch over a clip and record what happened.
- :mod:`~pipeline.app.replay.labels`: the ``LABELS.csv`` intervals.
- :mod:`~pipeline.app.replay.metrics`: pure functions from a run and labels to figures.
- :mod:`~pipeline.app.replay.timeline`: the PNG timeline (Pillow).
- :mod:`~pipeline.app.replay.report`: the JSON, PNG and HTML report folder.
- :mod:`~pipeline.app.replay.compare`: figures of several variants side by side.
- :mod:`~pipeline.app.replay.progress`: a progress bar on stderr.
- :mod:`~pipeline.app.replay.command`: the ``replay`` subcommand.
"""
