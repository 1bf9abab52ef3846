"""Lookout: watch camera streams with vision models.

The ``pipeline`` package holds the core types, the ``pipeline.toml`` schema, the
graph builder and runner, and the command line (``python -m pipeline``).
"""

__version__ = "0.1.0"
