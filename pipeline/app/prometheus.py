"""Prometheus text exposition and a tiny HTTP server for ``/metrics`` and ``/healthz``.

Pure pieces first (:class:`Histogram`, :class:`MetricsText`), the server second
(:class:`MetricsServer`, stdlib ``http.server`` in a daemon thread). The runner
collects the values at scrape time; nothing here knows about cameras or watches.

Example:
    >>> text = MetricsText()
    >>> text.add("lookout_watch_looks_total", "counter", "Looks made.",
    ...          [({"watch": "porch"}, 3)])
    >>> print(text.render(), end="")
    # HELP lookout_watch_looks_total Looks made.
    # TYPE lookout_watch_looks_total counter
    lookout_watch_looks_total{watch="porch"} 3
"""

from __future__ import annotations

import bisect
import logging
import math
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson

from pipeline.core.logs import log_unexpected
from pipeline.core.redact import redact

log = logging.getLogger("lookout.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Default buckets of the look latency histogram, in seconds."""

READ_TIMEOUT_S = 10.0
"""Longest wait for each read of a request; a stalled client then loses its connection."""

Labels = Mapping[str, str]
Sample = tuple[Labels, float]


def escape_label(value: str) -> str:
    r"""Escape a label value for the text format (backslash, quote, newline).

    Example:
        >>> escape_label('a "b"\n')
        'a \\"b\\"\\n'
    """
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def format_value(value: float) -> str:
    """Format a sample value: integers without a decimal point, NaN and infinities by name.

    Example:
        >>> format_value(3.0), format_value(0.25), format_value(float("inf"))
        ('3', '0.25', '+Inf')
    """
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


def format_labels(labels: Labels) -> str:
    """``{a="x",b="y"}``, or an empty string without labels (values are redacted)."""
    if not labels:
        return ""
    inner = ",".join(f'{k}="{escape_label(redact(str(v)))}"' for k, v in labels.items())
    return "{" + inner + "}"


@dataclass
class Histogram:
    """A cumulative histogram with fixed buckets (thread-safe).

    Example:
        >>> h = Histogram((1.0, 5.0))
        >>> h.observe(0.5); h.observe(3.0); h.observe(9.0)
        >>> h.cumulative(), h.count, h.total
        ([1, 2, 3], 3, 12.5)
    """

    buckets: Sequence[float] = LATENCY_BUCKETS
    counts: list[int] = field(default_factory=list)
    count: int = 0
    total: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __post_init__(self) -> None:
        if list(self.buckets) != sorted(self.buckets) or not self.buckets:
            raise ValueError("Histogram buckets must be a non-empty increasing sequence.")
        self.counts = [0] * len(self.buckets)

    def observe(self, value: float) -> None:
        """Count one observation."""
        with self._lock:
            i = bisect.bisect_left(self.buckets, value)
            if i < len(self.counts):
                self.counts[i] += 1
            self.count += 1
            self.total += value

    def cumulative(self) -> list[int]:
        """Counts per bucket including everything below it, plus the ``+Inf`` bucket."""
        with self._lock:
            out, running = [], 0
            for c in self.counts:
                running += c
                out.append(running)
            out.append(self.count)
            return out


class MetricsText:
    """Build one Prometheus text exposition, family by family."""

    def __init__(self) -> None:
        self._lines: list[str] = []
        self._seen: set[str] = set()

    def add(self, name: str, kind: str, help_text: str, samples: Iterable[Sample]) -> None:
        """Add a ``counter`` or ``gauge`` family (written even without samples).

        Raises:
            ValueError: the family was added before, or the kind is unknown.
        """
        self._header(name, kind, help_text, ("counter", "gauge"))
        for labels, value in samples:
            self._lines.append(f"{name}{format_labels(labels)} {format_value(value)}")

    def add_histograms(
        self, name: str, help_text: str, histograms: Iterable[tuple[Labels, Histogram]]
    ) -> None:
        """Add a histogram family: ``_bucket``, ``_sum`` and ``_count`` per label set."""
        self._header(name, "histogram", help_text, ("histogram",))
        for labels, h in histograms:
            cumulative = h.cumulative()
            bounds = [format_value(b) for b in h.buckets] + ["+Inf"]
            for bound, count in zip(bounds, cumulative, strict=True):
                lab = format_labels({**labels, "le": bound})
                self._lines.append(f"{name}_bucket{lab} {count}")
            self._lines.append(f"{name}_sum{format_labels(labels)} {format_value(h.total)}")
            self._lines.append(f"{name}_count{format_labels(labels)} {h.count}")

    def _header(self, name: str, kind: str, help_text: str, kinds: tuple[str, ...]) -> None:
        if kind not in kinds:
            raise ValueError(f"Metric kind must be one of {', '.join(kinds)}, got {kind!r}.")
        if name in self._seen:
            raise ValueError(f"Metric family {name!r} was added twice.")
        self._seen.add(name)
        self._lines.append(f"# HELP {name} {help_text}")
        self._lines.append(f"# TYPE {name} {kind}")

    def render(self) -> str:
        """The exposition text, ending with a newline."""
        return "\n".join(self._lines) + "\n"


@dataclass(frozen=True, slots=True)
class Health:
    """The answer of ``/healthz``: ok, and one line per problem."""

    ok: bool
    problems: tuple[str, ...] = ()

    def to_json(self) -> bytes:
        """``{"status": "ok"|"failing", "problems": [...]}``."""
        status = "ok" if self.ok else "failing"
        return orjson.dumps({"status": status, "problems": [redact(p) for p in self.problems]})


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    owner: MetricsServer


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    timeout = READ_TIMEOUT_S  # a client that stalls or dribbles its request is dropped

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: scrapes are not events worth a log line."""

    def do_GET(self) -> None:
        """Serve ``/metrics`` and ``/healthz``; anything else is a 404."""
        owner = self.server.owner
        path = self.path.split("?", 1)[0]
        try:
            if path == "/metrics":
                self._send(200, owner.collect().encode(), CONTENT_TYPE)
            elif path in ("/healthz", "/health"):
                health = owner.health()
                self._send(200 if health.ok else 503, health.to_json(), "application/json")
            else:
                self._send(404, b"not found: try /metrics or /healthz\n", "text/plain")
        except Exception as exc:  # a collection bug must not kill the server
            log_unexpected(log, f"metrics: {path} failed", exc)
            self._send(500, b"internal error\n", "text/plain")

    def _send(self, code: int, body: bytes, content_type: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class MetricsServer:
    """Serve ``/metrics`` (Prometheus text) and ``/healthz`` (200 or 503 JSON) over HTTP.

    Example:
        >>> srv = MetricsServer(lambda: "up 1\\n", lambda: Health(True), port=0).start()
        >>> srv.port > 0
        True
        >>> srv.close()

    Args:
        collect: builds the exposition text at each scrape.
        health: decides ``/healthz`` at each request.
        host: address to listen on.
        port: port; 0 picks a free one (read :attr:`port` after ``start()``).
    """

    def __init__(
        self,
        collect: Callable[[], str],
        health: Callable[[], Health],
        host: str = "127.0.0.1",
        port: int = 9108,
    ) -> None:
        if not 0 <= port <= 65535:
            raise ValueError(f"The port must be in 0..65535, got {port}.")
        self.collect = collect
        self.health = health
        self.host = host
        self._port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        """The bound port (the requested one before ``start()``)."""
        return self._httpd.server_address[1] if self._httpd is not None else self._port

    def start(self) -> MetricsServer:
        """Bind and serve in a daemon thread.

        Raises:
            OSError: the address cannot be bound.
        """
        httpd = _Server((self.host, self._port), _Handler)
        httpd.owner = self
        self._httpd = httpd
        self._thread = threading.Thread(target=httpd.serve_forever, name="metrics", daemon=True)
        self._thread.start()
        log.info("metrics on http://%s:%d/metrics and /healthz", self.host, self.port)
        return self

    def close(self) -> None:
        """Stop serving and close the socket. Safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(5)
