"""One notification through Apprise, within a total deadline that nothing inside can stretch.

Apprise's plugins make their own HTTP (``requests``) or SMTP calls with
per-socket timeouts: a server that answers one byte at a time, or an SMTP
server that accepts and then says nothing, would hold a call far longer. Two
bounds apply:

1. Apprise's own call ``timeout`` (it stops waiting for the service), with each
   plugin's connect and read timeouts set no longer than the deadline;
2. the call runs in a worker thread that is *abandoned* when the deadline
   passes: the attempt fails and is retried later. An abandoned call that
   still succeeds afterwards makes a duplicate notification, never a lost one.
   At most :data:`MAX_HUNG` abandoned calls of one sink may still be running;
   while that many hang, new attempts fail at once.

Example:
    >>> runner = DeadlineRunner("phone")
    >>> runner.run(lambda: "ok", timeout_s=1.0)
    'ok'
"""

from __future__ import annotations

import threading
import warnings
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass
from typing import TypeVar

with warnings.catch_warnings():
    # Apprise's email plugin imports the standard library's imghdr, deprecated since
    # Python 3.11: import it once here, quietly, so the note is not printed at run time.
    warnings.simplefilter("ignore", DeprecationWarning)
    import imghdr  # noqa: F401

from apprise import Apprise, AppriseAsset, AppriseAttachment
from apprise.attachment.memory import AttachMemory

from pipeline.core.redact import redact

T = TypeVar("T")

MAX_REASON = 200
"""At most this much of Apprise's last warning is kept in a failure reason."""

MAX_HUNG = 4
"""Abandoned deliveries of one sink that may still run before new attempts wait."""


class DeliveryTimeout(TimeoutError):
    """A delivery did not end within its deadline (its thread is abandoned)."""


class DeadlineRunner:
    """Run calls in worker threads and stop waiting for them at a deadline.

    Args:
        name: used in thread names.
        max_hung: abandoned calls that may still run before :meth:`run` refuses.
    """

    def __init__(self, name: str, max_hung: int = MAX_HUNG) -> None:
        self.name = name
        self.max_hung = max_hung
        self._hung: list[threading.Thread] = []
        self._waiting: set[threading.Event] = set()
        self._aborted = threading.Event()
        self._lock = threading.Lock()

    def hung(self) -> int:
        """Abandoned calls still running."""
        with self._lock:
            self._hung = [t for t in self._hung if t.is_alive()]
            return len(self._hung)

    def run(self, fn: Callable[[], T], timeout_s: float) -> T:
        """Return ``fn()``, or raise :class:`DeliveryTimeout` once ``timeout_s`` has passed.

        Raises:
            DeliveryTimeout: no answer in time, or too many earlier calls still hang.
            Exception: whatever ``fn`` raised.
        """
        if self._aborted.is_set():
            raise DeliveryTimeout("abandoned: the sink is closing")
        if self.hung() >= self.max_hung:
            raise DeliveryTimeout(
                f"{self.max_hung} earlier deliveries still hang; not starting another"
            )
        result: Future[T] = Future()
        done = threading.Event()

        def work() -> None:
            try:
                result.set_result(fn())
            except BaseException as exc:
                result.set_exception(exc)
            finally:
                done.set()

        thread = threading.Thread(target=work, name=f"notify-{self.name}", daemon=True)
        with self._lock:
            self._waiting.add(done)
        thread.start()
        try:
            done.wait(timeout_s)
        finally:
            with self._lock:
                self._waiting.discard(done)
        if thread.is_alive():
            with self._lock:
                self._hung.append(thread)
            if self._aborted.is_set():
                raise DeliveryTimeout("abandoned: the sink is closing")
            raise DeliveryTimeout(f"no answer within {timeout_s:g} s (request_timeout_s)")
        return result.result(timeout=0)

    def abort(self) -> None:
        """Stop waiting for the calls in flight now and later (they are abandoned)."""
        self._aborted.set()
        with self._lock:
            waiting = list(self._waiting)
        for done in waiting:
            done.set()


@dataclass(frozen=True, slots=True)
class Message:
    """What one notification says.

    Attributes:
        title: the rendered title.
        body: the rendered body.
        jpeg: the snapshot to attach, or ``None``.
    """

    title: str
    body: str
    jpeg: bytes | None = None


def apprise_send(url: str, message: Message, timeout_s: float) -> str | None:
    """Send ``message`` to one Apprise URL; return ``None`` when delivered, else why not.

    Runs in the caller's thread; wrap it in :meth:`DeadlineRunner.run` for a hard
    bound. The reason never contains the URL or its secrets.

    Example:
        >>> apprise_send("json://127.0.0.1:9/", Message("t", "b"), 2.0)  # doctest: +SKIP
        'the service did not accept it (failure)'
    """
    asset = AppriseAsset(storage_mode="memory")
    plugin = Apprise.instantiate(url, asset=asset)
    if plugin is None:
        return "Apprise does not accept this URL (unknown service or a malformed part)"
    limit = max(0.1, timeout_s)
    plugin.socket_connect_timeout = min(plugin.socket_connect_timeout, limit)
    plugin.socket_read_timeout = min(limit, max(plugin.socket_read_timeout, limit))
    apobj = Apprise(asset=asset)
    apobj.add(plugin)
    attach = None
    if message.jpeg is not None:
        attach = AppriseAttachment(
            AttachMemory(  # type: ignore[no-untyped-call]
                content=message.jpeg, name="snapshot.jpg", mimetype="image/jpeg"
            ),
            asset=asset,
        )
    result = apobj.notify(body=message.body, title=message.title, attach=attach, timeout=limit)
    if result:
        return None
    status = str(getattr(result.status, "name", result.status)).lower()
    why = [e.message for e in result.logs() if e.level in ("WARNING", "ERROR")]
    detail = f": {why[-1][:MAX_REASON]}" if why else ""
    return redact(f"the service did not accept it ({status}){detail}")


def supported(url: str) -> bool:
    """Whether Apprise knows the service of ``url`` and its parts make sense.

    Example:
        >>> supported("ntfy://127.0.0.1/alerts"), supported("nosuch://x")
        (True, False)
    """
    return Apprise.instantiate(url, asset=AppriseAsset(storage_mode="memory")) is not None
