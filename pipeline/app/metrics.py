"""What a running pipeline exposes: every component's figures as Prometheus metrics, and health.

:func:`pipeline_metrics` reads a :class:`~pipeline.app.runner.Pipeline` at scrape
time into :class:`~pipeline.app.prometheus.MetricsText`; :func:`pipeline_health`
decides ``/healthz``. The text format and the HTTP server are in
:mod:`pipeline.app.prometheus`, which knows nothing of cameras or watches.

Example:
    >>> text = pipeline_metrics(pipeline)  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import platform
import time
from collections.abc import Callable, Mapping
from typing import Any

from pipeline import __version__
from pipeline.app.prometheus import Health, MetricsText
from pipeline.app.runner import Pipeline

log = logging.getLogger("lookout.metrics")


# ---------------------------------------------------------------- a running pipeline


def pipeline_metrics(p: Pipeline, extra: Callable[[MetricsText], None] | None = None) -> str:
    """The Prometheus text of a running :class:`~pipeline.app.runner.Pipeline`.

    Families: ``lookout_up``, ``lookout_build_info``, ``lookout_start_time_seconds``;
    ``lookout_camera_*`` (connected, held, frames decoded, decode seconds,
    packets, reconnects, connects, offline-since and last-frame timestamps; read
    from each camera's ``stats()``), ``lookout_watch_*`` (looks by answer kind,
    alerts, look latency histogram, state, looks in flight),
    ``lookout_backend_*`` (looks, requests, errors, retries, in flight, unauthorized, circuit
    state) and ``lookout_sink_*`` / ``lookout_mqtt_*`` (delivered, failures,
    sent, retried, dropped, queue depth, disconnected-since timestamp). ``extra``
    adds more families.

    Times are exported as epoch ``*_timestamp_seconds`` gauges (absent while
    they do not apply), never as ages computed at scrape time: an age is
    ``time() - lookout_camera_last_frame_timestamp_seconds`` in PromQL.
    """
    t = MetricsText()
    t.add("lookout_up", "gauge", "1 while the pipeline runs.", [({}, 1)])
    t.add(
        "lookout_build_info",
        "gauge",
        "Always 1; the labels say which Lookout and which Python run.",
        [({"version": __version__, "python": platform.python_version()}, 1)],
    )
    t.add("lookout_start_time_seconds", "gauge", "Start time (epoch).", [({}, p.started_at)])
    _camera_metrics(t, p)
    _watch_metrics(t, p)
    _backend_metrics(t, dict(p.watch_stats), p.backends)
    _sink_metrics(t, p, p.sinks)
    _mqtt_metrics(t, p)
    if extra is not None:
        extra(t)
    return t.render()


def _camera_metrics(t: MetricsText, p: Pipeline) -> None:
    cameras = p.cameras
    cs = {n: c.stats() for n, c in cameras.items()}
    cam = [(n, {"camera": n}) for n in sorted(cameras)]
    t.add(
        "lookout_camera_connected",
        "gauge",
        "1 while frames flow from the camera.",
        [(lab, 1 if cs[n].online else 0) for n, lab in cam],
    )
    t.add(
        "lookout_camera_held",
        "gauge",
        "1 while some watch or detector holds the camera open.",
        [(lab, 1 if cameras[n].held else 0) for n, lab in cam],
    )
    for metric, kind, text, attr in (
        (
            "lookout_camera_frames_decoded_total",
            "counter",
            "Frames decoded (follows the look rate with on_demand decoding).",
            "frames_decoded",
        ),
        (
            "lookout_camera_decode_seconds_total",
            "counter",
            "Seconds spent in the decoder (monotonic time around decode calls, all threads).",
            "decode_seconds",
        ),
        (
            "lookout_camera_packets_total",
            "counter",
            "Video packets read from the camera (Frigate snapshots: JPEGs fetched).",
            "packets",
        ),
        ("lookout_camera_reconnects_total", "counter", "Reconnect attempts.", "reconnects"),
    ):
        t.add(metric, kind, text, [(lab, getattr(cs[n], attr)) for n, lab in cam])
    t.add(
        "lookout_camera_connects_total",
        "counter",
        "Times the camera came online (one per successful connection).",
        [(lab, p.camera_connects[n]) for n, lab in cam],
    )
    offline = dict(p.offline_since)
    t.add(
        "lookout_camera_offline_since_timestamp_seconds",
        "gauge",
        "When the camera went offline (epoch; absent while online).",
        [(lab, offline[n]) for n, lab in cam if n in offline],
    )
    last_video = [(lab, cs[n].last_video_time) for n, lab in cam]
    t.add(
        "lookout_camera_last_frame_timestamp_seconds",
        "gauge",
        "When the camera's newest video packet or frame arrived (epoch; absent before one).",
        [(lab, last) for lab, last in last_video if last is not None],
    )


def _watch_metrics(t: MetricsText, p: Pipeline) -> None:
    running, ended = p.runs.snapshot()
    watches = {**ended, **running}
    stats = dict(p.watch_stats)
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
    states = [(n, w.last_state) for n, w in sorted(watches.items()) if w.last_state is not None]
    budgets = [(n, s) for n, s in states if s.budget_per_hour is not None]
    t.add(
        "lookout_watch_budget_tokens",
        "gauge",
        "Looks the refilling look budget allows now (absent without max_looks_per_hour).",
        [({"watch": n}, s.budget_tokens) for n, s in budgets if s.budget_tokens is not None],
    )
    t.add(
        "lookout_watch_budget_exhausted_timestamp_seconds",
        "gauge",
        "When the look budget last ran dry (epoch; absent while a look is allowed).",
        [({"watch": n}, s.budget_exhausted_at) for n, s in budgets
         if s.budget_exhausted_at is not None],
    )  # fmt: skip
    t.add(
        "lookout_watch_budget_deferred_looks",
        "gauge",
        "Looks of the current run that waited for the look budget.",
        [({"watch": n}, s.looks_deferred) for n, s in budgets],
    )
    t.add_histograms(
        "lookout_watch_look_seconds",
        "Look latency: frame, encode and model answer, in seconds.",
        [({"watch": n}, stats[n].latency) for n in names],
    )


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
    refused = [
        ({"backend": n}, 1 if getattr(b, "unauthorized", None) else 0)
        for n, b in sorted(backends.items())
        if hasattr(b, "unauthorized")
    ]
    t.add(
        "lookout_backend_unauthorized",
        "gauge",
        "1 while the model server refuses the API key (401/403): check the API key.",
        refused,
    )


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


def _mqtt_metrics(t: MetricsText, p: Pipeline) -> None:
    mqtt = p.mqtt
    if mqtt is None:
        return
    m = mqtt.stats()
    t.add("lookout_mqtt_connected", "gauge", "1 while connected.", [({}, int(m.connected))])
    t.add("lookout_mqtt_connects_total", "counter", "Connections.", [({}, m.connects)])
    t.add("lookout_mqtt_sent_total", "counter", "Messages acknowledged.", [({}, m.sent)])
    t.add("lookout_mqtt_dropped_total", "counter", "Messages lost.", [({}, m.dropped)])
    t.add("lookout_mqtt_rejected_total", "counter", "Messages refused.", [({}, m.rejected)])
    t.add("lookout_mqtt_queue_depth", "gauge", "Messages awaiting an ack.", [({}, m.queued)])
    since = mqtt.disconnected_since
    t.add(
        "lookout_mqtt_disconnected_since_timestamp_seconds",
        "gauge",
        "When the broker connection was lost (epoch; absent while connected).",
        [({}, since)] if since is not None else [],
    )


def sink_counters(sink: Any) -> dict[str, float] | None:
    """Per-sink delivery counters from a sink's ``stats()``, or ``None`` without one.

    Webhook sinks give sent, retried, dropped and queued; MQTT sinks sent,
    dropped and queued (paho retries on its own, so nothing counts as retried).

    Example:
        >>> from pipeline.net.mqtt_connection import MqttTally
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
        if c.held and since is not None and now - since > camera_offline_s:
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
