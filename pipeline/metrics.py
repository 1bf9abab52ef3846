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
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import orjson

from pipeline.redact import redact

if TYPE_CHECKING:
    from pipeline.runner import Pipeline

log = logging.getLogger("lookout.metrics")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
"""Default buckets of the look latency histogram, in seconds."""

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
            log.error("metrics: %s failed: %s", path, redact(f"{type(exc).__name__}: {exc}"))
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


# ---------------------------------------------------------------- a running pipeline


def pipeline_metrics(p: Pipeline, extra: Callable[[MetricsText], None] | None = None) -> str:
    """The Prometheus text of a running :class:`~pipeline.runner.Pipeline`.

    Families: ``lookout_camera_*`` (connected, held, frames decoded, decode
    seconds, packets, reconnects, connects, offline seconds, last frame age;
    read from each camera's ``stats()``), ``lookout_watch_*`` (looks by answer
    kind, alerts, look latency histogram, state, looks in flight),
    ``lookout_backend_*`` (looks, requests, errors, retries, in flight, circuit
    state) and ``lookout_sink_*`` / ``lookout_mqtt_*`` (delivered, failures,
    sent, retried, dropped, queue depth). ``extra`` adds more families.
    """
    now = time.time()
    t = MetricsText()
    t.add("lookout_up", "gauge", "1 while the pipeline runs.", [({}, 1)])
    t.add("lookout_start_time_seconds", "gauge", "Start time (epoch).", [({}, p.started_at)])
    cameras = p.cameras
    running, ended = p.runs.snapshot()
    watches = {**ended, **running}
    stats = dict(p.watch_stats)
    backends = p.backends
    hub = p.sinks
    cs = {n: c.stats() for n, c in cameras.items()}
    cam = [(n, {"camera": n}) for n in sorted(cameras)]
    t.add(
        "lookout_camera_connected",
        "gauge",
        "1 while frames flow from the camera.",
        [(lab, 1 if cs[n].connected else 0) for n, lab in cam],
    )
    t.add(
        "lookout_camera_held",
        "gauge",
        "1 while some watch or detector holds the camera open.",
        [(lab, 1 if cameras[n].connected else 0) for n, lab in cam],
    )
    t.add(
        "lookout_camera_frames_decoded_total",
        "counter",
        "Frames decoded (follows the look rate with on_demand decoding).",
        [(lab, cs[n].frames_decoded) for n, lab in cam],
    )
    t.add(
        "lookout_camera_decode_seconds_total",
        "counter",
        "Seconds spent in the decoder (monotonic time around decode calls, all threads).",
        [(lab, cs[n].decode_seconds) for n, lab in cam],
    )
    t.add(
        "lookout_camera_packets_total",
        "counter",
        "Video packets read from the camera (Frigate snapshots: JPEGs fetched).",
        [(lab, cs[n].packets) for n, lab in cam],
    )
    t.add(
        "lookout_camera_reconnects_total",
        "counter",
        "Reconnect attempts.",
        [(lab, cs[n].reconnects) for n, lab in cam],
    )
    t.add(
        "lookout_camera_connects_total",
        "counter",
        "Times the camera came online (one per successful connection).",
        [(lab, p.camera_connects[n]) for n, lab in cam],
    )
    offline = dict(p.offline_since)
    t.add(
        "lookout_camera_offline_seconds",
        "gauge",
        "Seconds the camera has been offline (0 while online).",
        [(lab, max(0.0, now - offline[n]) if n in offline else 0.0) for n, lab in cam],
    )
    last_video = [(n, lab, cs[n].last_video_time) for n, lab in cam]
    t.add(
        "lookout_camera_last_frame_age_seconds",
        "gauge",
        "Seconds since the camera's newest video packet or frame arrived (absent before one).",
        [(lab, max(0.0, now - last)) for _, lab, last in last_video if last is not None],
    )
    names = sorted(stats)
    t.add(
        "lookout_watch_looks_total",
        "counter",
        "Looks by answer kind (met, not_met, empty, unparseable, no_frame, unavailable, error).",
        [({"watch": n, "kind": k}, v) for n in names for k, v in sorted(stats[n].looks.items())],
    )
    t.add(
        "lookout_watch_wakes_total",
        "counter",
        "Looks by trigger (start, timer or wake).",
        [
            ({"watch": n, "trigger": k}, v)
            for n in names
            for k, v in sorted(stats[n].triggers.items())
        ],
    )
    t.add(
        "lookout_watch_alerts_total",
        "counter",
        "Alerts sent.",
        [({"watch": n}, stats[n].alerts) for n in names],
    )
    t.add(
        "lookout_watch_runs_total",
        "counter",
        "Runs started (restarts and reloads start a new run).",
        [({"watch": n}, stats[n].runs) for n in names],
    )
    t.add(
        "lookout_watch_state",
        "gauge",
        "1 for the watch's current status.",
        [
            ({"watch": n, "camera": stats[n].camera, "status": s}, 1 if stats[n].status == s else 0)
            for n in names
            if n in watches
            for s in ("queued", "running", "success", "failed", "cancelled")
        ],
    )
    t.add(
        "lookout_watch_looks_in_flight",
        "gauge",
        "Looks started and not finished.",
        [({"watch": n}, w.gate.in_flight) for n, w in sorted(watches.items())],
    )
    t.add_histograms(
        "lookout_watch_look_seconds",
        "Look latency: frame, encode and model answer, in seconds.",
        [({"watch": n}, stats[n].latency) for n in names],
    )
    _backend_metrics(t, stats, backends)
    _sink_metrics(t, p, hub)
    if extra is not None:
        extra(t)
    return t.render()


def _backend_metrics(t: MetricsText, stats: Mapping[str, Any], backends: Mapping[str, Any]) -> None:
    looks: dict[str, float] = {}
    errors: dict[str, float] = {}
    for s in stats.values():
        looks[s.backend] = looks.get(s.backend, 0) + sum(s.looks.values())
        bad = sum(v for k, v in s.looks.items() if k in ("error", "unavailable"))
        errors[s.backend] = errors.get(s.backend, 0) + bad
    t.add(
        "lookout_backend_looks_total",
        "counter",
        "Looks judged, by the backend name the watches use.",
        [({"backend": n}, v) for n, v in sorted(looks.items())],
    )
    t.add(
        "lookout_backend_look_errors_total",
        "counter",
        "Looks that ended with error or unavailable.",
        [({"backend": n}, v) for n, v in sorted(errors.items())],
    )
    own = {n: getattr(b, "stats", None) for n, b in sorted(backends.items())}
    with_stats = {n: s for n, s in own.items() if s is not None and hasattr(s, "attempts")}
    for metric, attr, kind, text in (
        ("lookout_backend_requests_total", "attempts", "counter", "HTTP requests sent."),
        ("lookout_backend_errors_total", "failures", "counter", "Requests that failed."),
        ("lookout_backend_retries_total", "retries", "counter", "Retries."),
        ("lookout_backend_in_flight", "in_flight", "gauge", "Requests in flight."),
    ):
        t.add(
            metric, kind, text, [({"backend": n}, getattr(s, attr)) for n, s in with_stats.items()]
        )
    circuits = []
    for n, b in sorted(backends.items()):
        circuit = getattr(b, "circuit", None)
        state = getattr(circuit, "state", None)
        if state is None:
            continue
        value = str(getattr(state, "value", state))
        for s in ("closed", "open", "half_open"):
            circuits.append(({"backend": n, "state": s}, 1 if value == s else 0))
    t.add("lookout_backend_circuit_state", "gauge", "1 for the circuit's state.", circuits)


def _sink_metrics(t: MetricsText, p: Pipeline, hub: Any) -> None:
    names = sorted(hub.sinks)
    t.add(
        "lookout_sink_delivered_total",
        "counter",
        "Messages handed to the sink without error (queued or sent).",
        [({"sink": n}, hub.delivered[n]) for n in names],
    )
    t.add(
        "lookout_sink_failures_total",
        "counter",
        "Deliveries that raised.",
        [({"sink": n}, hub.failures[n]) for n in names],
    )
    t.add(
        "lookout_sink_failing",
        "gauge",
        "1 while every recent delivery to the sink failed.",
        [({"sink": n}, 0 if p.sink_failing_since(n) is None else 1) for n in names],
    )
    per_sink = [(n, c) for n in names if (c := sink_counters(hub.sinks[n])) is not None]
    for metric, kind, text, key in (
        (
            "lookout_sink_sent_total",
            "counter",
            "Messages the far end accepted (webhook 2xx, MQTT acknowledgement).",
            "sent",
        ),
        (
            "lookout_sink_retried_total",
            "counter",
            "Attempts that did not deliver and will be retried (webhook).",
            "retried",
        ),
        (
            "lookout_sink_dropped_total",
            "counter",
            "Messages given up (webhook dead letters; MQTT overflow, refusal or loss at stop).",
            "dropped",
        ),
        (
            "lookout_sink_queue_depth",
            "gauge",
            "Messages waiting for delivery or an acknowledgement.",
            "queued",
        ),
    ):
        t.add(metric, kind, text, [({"sink": n}, c[key]) for n, c in per_sink if key in c])
    mqtt = p.mqtt
    if mqtt is not None:
        m = mqtt.stats()
        t.add("lookout_mqtt_connected", "gauge", "1 while connected.", [({}, int(m.connected))])
        t.add("lookout_mqtt_connects_total", "counter", "Connections.", [({}, m.connects)])
        t.add("lookout_mqtt_sent_total", "counter", "Messages acknowledged.", [({}, m.sent)])
        t.add("lookout_mqtt_dropped_total", "counter", "Messages lost.", [({}, m.dropped)])
        t.add("lookout_mqtt_rejected_total", "counter", "Messages refused.", [({}, m.rejected)])
        t.add("lookout_mqtt_queue_depth", "gauge", "Messages awaiting an ack.", [({}, m.queued)])
        since = mqtt.disconnected_since
        t.add(
            "lookout_mqtt_disconnected_seconds",
            "gauge",
            "Seconds without a broker (0 while connected).",
            [({}, 0.0 if since is None else max(0.0, time.time() - since))],
        )


def sink_counters(sink: Any) -> dict[str, float] | None:
    """Per-sink delivery counters from a sink's ``stats()``, or ``None`` without one.

    Webhook sinks give sent, retried, dropped and queued; MQTT sinks sent,
    dropped and queued (paho retries on its own, so nothing counts as retried).

    Example:
        >>> from sinks.mqtt_connection import MqttTally
        >>> class S:
        ...     def stats(self): return MqttTally().stats()
        >>> sink_counters(S())
        {'sent': 0, 'dropped': 0, 'queued': 0}
    """
    stats_fn = getattr(sink, "stats", None)
    if stats_fn is None:
        return None
    s = stats_fn()
    if hasattr(s, "failed_attempts"):  # sinks.webhook
        return {
            "sent": s.delivered,
            "retried": s.failed_attempts,
            "dropped": s.dead,
            "queued": max(0, s.stored - s.delivered - s.dead),
        }
    if hasattr(s, "accepted") and hasattr(s, "rejected"):  # sinks.mqtt
        return {"sent": s.sent, "dropped": s.dropped + s.rejected, "queued": s.queued}
    return None


def pipeline_health(p: Pipeline, camera_offline_s: float, sink_failing_s: float) -> Health:
    """Decide ``/healthz``: fail on a camera offline too long, or a failing sink or MQTT.

    A camera counts only while held (used by a watch or detector) and offline for
    more than ``camera_offline_s``; a sink when every delivery failed for more
    than ``sink_failing_s`` (or a webhook endpoint is disabled); MQTT when
    disconnected for more than ``sink_failing_s`` (the connection's
    ``disconnected_since``).
    """
    now = time.time()
    problems = []
    cameras = p.cameras
    sinks = dict(p.sinks.sinks)
    sink_names = list(sinks)
    offline = dict(p.offline_since)
    for n, c in sorted(cameras.items()):
        since = offline.get(n)
        if c.connected and since is not None and now - since > camera_offline_s:
            error = c.state.last_error
            problems.append(
                f"camera {n}: offline for {now - since:.0f} s" + (f" ({error})" if error else "")
            )
    for n in sink_names:
        since = p.sink_failing_since(n)
        if since is not None and now - since > sink_failing_s:
            problems.append(f"sink {n}: failing for {now - since:.0f} s")
        stats_fn = getattr(sinks[n], "stats", None)
        disabled = getattr(stats_fn(), "disabled", None) if stats_fn is not None else None
        if disabled:
            problems.append(f"sink {n}: disabled ({disabled})")
    mqtt_down_since = p.mqtt.disconnected_since if p.mqtt is not None else None
    if mqtt_down_since is not None and now - mqtt_down_since > sink_failing_s:
        problems.append(f"mqtt: disconnected for {now - mqtt_down_since:.0f} s")
    return Health(not problems, tuple(problems))
