"""Where the activity store lives, and the sink that the runner attaches to its hub.

Example:
    >>> from pipeline.core.config_loader import load_config_text
    >>> cfg = load_config_text('[cameras.a]\\nurl = "a.mp4"\\n')
    >>> store_folder(cfg, Path("/etc/lookout/pipeline.toml")).as_posix()
    '/etc/lookout/lookout-data'
    >>> store_folder(cfg, None) is None
    True
"""

from __future__ import annotations

import logging
from pathlib import Path

from pipeline.core.config import LookoutConfig
from pipeline.core.logs import log_unexpected
from sinks.activity.sink import ActivitySink
from sinks.activity.store import DB_NAME, ActivityStore

log = logging.getLogger("lookout.activity")


def store_folder(config: LookoutConfig, config_path: Path | None) -> Path | None:
    """The store's folder: ``[activity] path``, relative to the config file's folder.

    ``None`` when the store is off, or when there is no config file to be next to
    and the path is relative (a config built in code keeps no store unless told where).
    """
    cfg = config.activity
    if not cfg.enabled:
        return None
    if cfg.path.is_absolute():
        return cfg.path
    if config_path is None:
        return None
    return Path(config_path).resolve().parent / cfg.path


def store_db(config: LookoutConfig, config_path: Path | None) -> Path | None:
    """The store's SQLite file (``None`` as for :func:`store_folder`)."""
    folder = store_folder(config, config_path)
    return None if folder is None else folder / DB_NAME


def open_activity(config: LookoutConfig, config_path: Path | None) -> ActivitySink | None:
    """Open the store and its sink; ``None`` when off or when it cannot be opened (logged).

    A store that cannot be opened (a read-only disk, a corrupt file) must not stop
    the watches: it is logged once and the process runs without it.
    """
    folder = store_folder(config, config_path)
    if folder is None:
        return None
    sink = ActivitySink(ActivityStore(folder, config.activity))
    try:
        sink.open()
    except Exception as exc:
        log_unexpected(log, f"activity: store {folder} cannot be opened", exc)
        return None
    log.info("activity: keeping looks, alerts and changes in %s", folder)
    return sink
