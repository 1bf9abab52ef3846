"""The ledger kept outside the hub's process, so that a hub Ray restarts goes on where it was.

Ray restarts a crashed hub by running its ``__init__`` again; a ledger only in
its memory would come back empty: the watches the cluster runs, where each run
stands, the run-time watches and the recent alert ids would be gone, and a
group that died with the hub (``hub_hosts_cameras``) would start its watches
as new runs. :class:`LedgerKeeper` writes the ledger's image
(:meth:`~pipeline.app.cluster.ledger.Ledger.image`) to Ray's control store
(its internal key-value store, which lives on the head and outlives every
worker process) once a second when it changed, and at once after an alert;
a restarted hub reads it back (:func:`kept_ledger`). The key names the
driver's run, so a new run starts from an empty ledger; a graceful stop
deletes it.

Example:
    >>> keeper = LedgerKeeper(ledger, RayKeep("run-1"))  # doctest: +SKIP
    >>> keeper.start(); keeper.save_soon(); keeper.close(forget=True)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import threading
from typing import Protocol

from ray.experimental import internal_kv

from pipeline.app.cluster.ledger import Ledger
from pipeline.core.logs import log_unexpected

log = logging.getLogger("lookout.cluster")

SAVE_INTERVAL_S = 1.0
"""The longest a change waits to be kept (an alert is kept at once)."""
NAMESPACE = "lookout"


class Keep(Protocol):
    """Where an image is kept (one value)."""

    def get(self) -> bytes | None:
        """The kept image, if any."""
        ...

    def put(self, image: bytes) -> None:
        """Keep ``image`` (replacing the one kept)."""
        ...

    def delete(self) -> None:
        """Forget the kept image."""
        ...


class RayKeep:
    """One key of Ray's internal key-value store (in the control store on the head)."""

    def __init__(self, run_id: str) -> None:
        self.key = f"ledger/{run_id}"

    def get(self) -> bytes | None:
        """The kept image, if any."""
        value = internal_kv._internal_kv_get(self.key, namespace=NAMESPACE)
        return bytes(value) if value is not None else None

    def put(self, image: bytes) -> None:
        """Keep ``image``."""
        internal_kv._internal_kv_put(self.key, image, overwrite=True, namespace=NAMESPACE)

    def delete(self) -> None:
        """Forget the kept image."""
        internal_kv._internal_kv_del(self.key, namespace=NAMESPACE)


def kept_ledger(keep: Keep) -> Ledger:
    """The ledger an earlier hub of this run kept, else a new one."""
    image = keep.get()
    if image is None:
        return Ledger()
    ledger = Ledger.restore(image)
    log.warning("hub: started again; %d watches taken from the kept ledger", len(ledger.names()))
    return ledger


class LedgerKeeper:
    """Keeps a ledger's image up to date in a :class:`Keep` (a thread of its own)."""

    def __init__(self, ledger: Ledger, keep: Keep, interval_s: float = SAVE_INTERVAL_S) -> None:
        self.ledger = ledger
        self.keep = keep
        self.interval_s = interval_s
        self.saved = ledger.version
        self._soon = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="ledger-keeper", daemon=True)

    def start(self) -> None:
        """Begin keeping."""
        self._thread.start()

    def save_soon(self) -> None:
        """Keep the image now rather than at the next interval (after an alert)."""
        self._soon.set()

    def save(self) -> bool:
        """Keep the image if it changed since the last; returns whether it wrote."""
        if self.ledger.version == self.saved:
            return False
        version, image = self.ledger.image()
        self.keep.put(image)
        self.saved = version
        return True

    def _run(self) -> None:
        while not self._stop.is_set():
            self._soon.wait(self.interval_s)
            self._soon.clear()
            try:
                self.save()
            except Exception as exc:
                log_unexpected(log, "hub: keeping the ledger failed", exc)

    def close(self, forget: bool = False) -> None:
        """Stop keeping; ``forget``: the run ended, delete the kept image."""
        self._stop.set()
        self._soon.set()
        if self._thread.is_alive():
            self._thread.join(5)
        try:
            if forget:
                self.keep.delete()
            else:
                self.save()
        except Exception as exc:
            log_unexpected(log, "hub: the kept ledger", exc)
