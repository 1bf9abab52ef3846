"""Look pools: one thread pool per backend, as many threads as watches use it.

Example:
    >>> pools = LookPools()
    >>> pool = pools.reserve("vlm"); pools.size("vlm")
    1
    >>> pools.release("vlm"); pools.close()
"""

from __future__ import annotations

import threading
from collections import Counter

from reactivex.scheduler import ThreadPoolScheduler


class LookPools:
    """One thread pool per backend, with as many threads as watches that use the backend.

    A watch has at most one look in flight, so a pool never needs more threads
    than watches; the backend's ``max_concurrency`` bounds the real work. Pools
    only grow (threads are started on demand and idle ones are reused).

    Example:
        >>> pools = LookPools()
        >>> pool = pools.reserve("vlm"); pools.size("vlm")
        1
        >>> pools.release("vlm"); pools.close()
    """

    def __init__(self) -> None:
        self._pools: dict[str, ThreadPoolScheduler] = {}
        self._users: Counter[str] = Counter()
        self._lock = threading.Lock()

    def reserve(self, backend: str) -> ThreadPoolScheduler:
        """Count one more watch on ``backend``; return the pool its looks run on."""
        with self._lock:
            self._users[backend] += 1
            need = self._users[backend]
            pool = self._pools.get(backend)
            if pool is None:
                pool = ThreadPoolScheduler(need)
                self._pools[backend] = pool
            elif pool.executor._max_workers < need:
                # ThreadPoolExecutor starts threads lazily up to this bound.
                pool.executor._max_workers = need
            return pool

    def release(self, backend: str) -> None:
        """Count one watch fewer on ``backend`` (its pool keeps its threads for the next)."""
        with self._lock:
            if self._users[backend] > 0:
                self._users[backend] -= 1

    def size(self, backend: str) -> int:
        """Threads the pool of ``backend`` may run (0 without a pool)."""
        with self._lock:
            pool = self._pools.get(backend)
            return 0 if pool is None else pool.executor._max_workers

    def close(self) -> None:
        """Shut every pool down without waiting (looks in flight are abandoned)."""
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        for pool in pools:
            pool.executor.shutdown(wait=False, cancel_futures=True)
