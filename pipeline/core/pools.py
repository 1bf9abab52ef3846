"""Process-wide thread pools for blocking work (looks, ONNX inference), created on first use.

Example:
    >>> pool = shared_pool("looks", 16)
    >>> pool is shared_pool("looks", 16)
    True
"""

from __future__ import annotations

import threading

from reactivex.scheduler import ThreadPoolScheduler

_pools: dict[str, ThreadPoolScheduler] = {}
_lock = threading.Lock()


def shared_pool(name: str, max_workers: int) -> ThreadPoolScheduler:
    """Return the pool called ``name``, creating it with ``max_workers`` threads the first time."""
    with _lock:
        pool = _pools.get(name)
        if pool is None:
            pool = _pools[name] = ThreadPoolScheduler(max_workers=max_workers)
        return pool
