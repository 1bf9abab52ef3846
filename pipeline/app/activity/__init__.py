"""The activity store in the running application: where it lives, captions, the CLI.

- :mod:`pipeline.app.activity.setup`: the store's folder next to the config, and its sink.
- :mod:`pipeline.app.activity.captions`: ``[cameras.NAME.captions]`` (describe, paced, budgeted).
- :mod:`pipeline.app.activity.command`: ``python -m pipeline activity``.
"""
