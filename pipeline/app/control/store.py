"""The state file of persistent run-time watches (JSON, written atomically, mode 0600).

Example:
    >>> store = WatchStore(Path("/tmp/lookout-watches.json"))  # doctest: +SKIP
    >>> store.put(watch); store.load()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path
from typing import Any

import orjson

from pipeline.app.control.request import RuntimeWatchRequest
from pipeline.core.config import WatchConfig

log = logging.getLogger("lookout.control")


def state_file_path(state_file: Path, config_path: Path | None) -> Path:
    """Where persistent run-time watches are kept: ``state_file``, relative to the config's folder.

    Example:
        >>> state_file_path(Path("watches.json"), Path("/etc/lookout/pipeline.toml"))
        PosixPath('/etc/lookout/watches.json')
    """
    if state_file.is_absolute() or config_path is None:
        return state_file
    return config_path.resolve().parent / state_file


class WatchStore:
    """Persistent run-time watches in a small JSON file (written atomically).

    Example:
        >>> store = WatchStore(Path("/tmp/lookout-watches.json"))  # doctest: +SKIP
        >>> store.put(watch); store.load()  # doctest: +SKIP
    """

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()

    def load(self) -> list[dict[str, Any]]:
        """The stored watch bodies (a missing file is empty; a broken one is logged and empty)."""
        with self._lock:
            return self._read()

    def _read(self) -> list[dict[str, Any]]:
        try:
            data = orjson.loads(self.path.read_bytes())
        except FileNotFoundError:
            return []
        except (OSError, orjson.JSONDecodeError) as exc:
            log.error("control: cannot read %s (%s); starting without it", self.path, exc)
            return []
        watches = data.get("watches") if isinstance(data, dict) else None
        return [w for w in watches if isinstance(w, dict)] if isinstance(watches, list) else []

    def _write(self, watches: list[dict[str, Any]]) -> None:
        """Replace the file atomically; it is created 0600 (it may hold webhook secrets)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        data = orjson.dumps({"version": 1, "watches": watches}, option=orjson.OPT_INDENT_2)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            os.fchmod(f.fileno(), 0o600)  # an old .tmp may have had other modes
            f.write(data)
        os.replace(tmp, self.path)

    def put(self, watch: WatchConfig) -> None:
        """Store (or replace) a watch by name (a webhook's secret included)."""
        if isinstance(watch, RuntimeWatchRequest):
            body = watch.stored_body()
        else:
            body = watch.model_dump(mode="json", exclude_defaults=True)
        with self._lock:
            watches = [w for w in self._read() if w.get("name") != watch.name]
            watches.append(body)
            self._write(watches)

    def remove(self, name: str) -> bool:
        """Forget a watch; returns whether it was stored."""
        with self._lock:
            watches = self._read()
            kept = [w for w in watches if w.get("name") != name]
            if len(kept) == len(watches):
                return False
            self._write(kept)
            return True
