"""The head's half of a cluster: sinks, activity store, ledger and backend slots, in one actor.

Every camera actor sends its watch states, camera states and looks here in
batches, and each alert at once (:mod:`pipeline.app.cluster.relay`). The hub
runs a :class:`~pipeline.app.runner.Pipeline` without watches: its MQTT
connection, sinks (MQTT, webhooks with their SQLite outbox, JSONL, console,
notify, snapshots) and activity store are exactly those of a single process,
and so are their metrics, health and reload. It also leases the backends'
slots to the camera actors (:class:`~pipeline.app.cluster.slots.Slots`, its
renewals that wait on threads of their own:
:data:`~pipeline.app.cluster.slots.SLOTS_GROUP`), so the head runs one
actor process of Lookout's, not two (each Ray worker process costs CPU even
when idle: Ray checks for signals every 10 ms).

Why on the head, next to the driver: the head is the one node whose loss
already ends the cluster (Ray's control store lives there unless GCS fault
tolerance is set up), so what must outlive a camera node (the webhook outbox,
the ledger of watch runs and alerts) adds no new way to fail there, and the
outbox file stays on the head's disk for the next start. One broker
connection for the whole cluster (measured in ``benchmarks.cluster``: a
batch every ``flush_interval_s`` per actor is a few calls a second even at
200 cameras).

Example:
    >>> hub = Hub(config, config_path)  # doctest: +SKIP
    >>> hub.start(); hub.alert("g1", alert); hub.stop()  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import os
import time
from collections import Counter
from pathlib import Path
from typing import Any

from operators.resume import Resume
from pipeline.app.cluster.lease_book import Grant, Report
from pipeline.app.cluster.ledger import Ended, Ledger, Origin
from pipeline.app.cluster.ledger_keep import LedgerKeeper, RayKeep, kept_ledger
from pipeline.app.cluster.relay import Item
from pipeline.app.cluster.slots import Slots, backend_drains, backend_limits
from pipeline.app.control.request import RuntimeWatchRequest, webhook_sink_name
from pipeline.app.metrics import pipeline_health, pipeline_metrics
from pipeline.app.prometheus import MetricsText
from pipeline.app.reload import apply_config
from pipeline.app.runner import Pipeline
from pipeline.app.watch_sinks import close_own_sinks
from pipeline.core.config import LookoutConfig, WatchConfig, WebhookSinkConfig
from pipeline.core.events import Alert, WatchState
from pipeline.core.logs import log_unexpected, setup_logging
from pipeline.net.ssrf import SsrfPolicy
from sinks.registry import SinkHub
from sinks.webhook import WebhookSink

log = logging.getLogger("lookout.cluster")


def sink_config(cfg: LookoutConfig) -> LookoutConfig:
    """The config the hub's pipeline runs: every sink, MQTT and the activity store, no watches."""
    return cfg.model_copy(update={"watches": []})


class Hub:
    """Sinks, activity store and ledger of a cluster (one actor, on the driver's node).

    Args:
        config: the whole config.
        config_path: its file (relative outbox, activity and state paths are next to it).
        cwd: the driver's working folder (relative sink paths are read from it).
        log_level, json_logs: logging of this process.
        run_id: the driver's run: the ledger is kept under it outside this process
            (:mod:`~pipeline.app.cluster.ledger_keep`), so a hub Ray restarts goes on.
    """

    def __init__(
        self,
        config: LookoutConfig,
        config_path: str | None = None,
        cwd: str | None = None,
        log_level: str = "INFO",
        json_logs: bool = False,
        run_id: str | None = None,
    ) -> None:
        if cwd is not None and os.path.isdir(cwd):
            os.chdir(cwd)
        setup_logging(log_level, json_logs)
        self.config = config
        self.config_path = Path(config_path) if config_path else None
        self.pipeline = Pipeline(sink_config(config), self.config_path)
        keep = RayKeep(run_id) if run_id else None
        self.ledger = kept_ledger(keep) if keep else Ledger()
        self.keeper = LedgerKeeper(self.ledger, keep) if keep else None
        if self.keeper is not None:
            self.keeper.start()
        self.own: dict[str, SinkHub] = {}
        self.received: Counter[str] = Counter()
        # Not fresh: a hub Ray starts again waits for old leases (the driver's begin_slots).
        self.slots = Slots(
            backend_limits(config), backend_drains(config), config.cluster.lost_after_s, False
        )
        # Started here, not by a call: Ray restarts a crashed hub by running __init__ again.
        self.pipeline.start()

    def start(self) -> None:
        """Nothing: the hub starts in ``__init__``; the driver calls this to wait for it."""

    def pid(self) -> int:
        """The id of the hub's process (the benchmark measures it)."""
        return os.getpid()

    # ------------------------------------------------------------ backend slots

    def begin_slots(self) -> None:
        """No lease was granted before this hub (the driver's first call): grant at once."""
        self.slots.begin()

    def begin_slots_after(self, holders: list[str]) -> None:
        """Every camera actor alive holds slots as one of ``holders``.

        A restarted hub then grants once each has reported, instead of waiting for
        the old hub's leases to run out.
        """
        self.slots.begin_after(holders)

    def renew(
        self, holder: str, reports: dict[str, Report], wait_s: float = 0.0
    ) -> dict[str, Grant]:
        """A camera actor's report and lease renewal (:meth:`Slots.renew`).

        One that waits (``wait_s``) is called in the hub's ``slots`` concurrency group.
        """
        return self.slots.renew(holder, reports, wait_s)

    def release_holder(self, holder: str) -> int:
        """Free the slots of ``holder`` (its actor died or stopped); returns how many."""
        return self.slots.release_holder(holder)

    def slots_stats(self) -> dict[str, dict[str, int]]:
        """Per limited backend: limit, leased, reserved, peak, in_use, waits, holders."""
        return self.slots.stats()

    # ------------------------------------------------------------ events from the actors

    def intake(self, group: str, items: list[Item]) -> None:
        """Deliver a batch from a camera actor to the sinks, recording watch states."""
        now = time.time()
        sinks = self.pipeline.sinks
        for kind, event in items:
            self.received[kind] += 1
            if kind == "state":
                self._state(event, now)
            elif kind == "camera":
                sinks.send_camera_state(event)
            elif kind == "look":
                sinks.send_look(event, self.ledger.sinks_of(event.watch))
            elif kind == "caption":
                sinks.send_caption(event)

    def _state(self, state: WatchState, now: float) -> None:
        self.ledger.state(state, now)
        self.pipeline.sinks.send_state(state, self.ledger.sinks_of(state.name))
        own = self.own.get(state.name)
        if own is not None:
            own.send_state(state)
            if state.status.ended:
                self._close_own(state.name)

    def alert(self, group: str, alert: Alert) -> bool:
        """Record an alert, then send it to the sinks; False for an id already sent."""
        self.received["alert"] += 1
        if not self.ledger.alert(alert, time.time()):
            self.received["duplicate_alert"] += 1
            return False
        if self.keeper is not None:
            self.keeper.save_soon()  # its quiet period outlives a crash of this process
        sent = self.pipeline.sinks.send_alert(alert, self.ledger.sinks_of(alert.watch))
        own = self.own.get(alert.watch)
        if own is not None:
            own.send_alert(sent)
        return True

    # ------------------------------------------------------------ watches (from the driver)

    def want(self, watch: WatchConfig, origin: Origin, fresh: bool = False) -> None:
        """The cluster runs ``watch`` (``fresh``: as a new run); a run-time webhook opens here."""
        extra = watch.listing_extra() if isinstance(watch, RuntimeWatchRequest) else {}
        sinks = tuple(watch.sinks) if watch.sinks is not None else None
        self.ledger.want(watch, origin, sinks, extra)
        if fresh:
            self.ledger.restart(watch.name)
        if isinstance(watch, RuntimeWatchRequest) and (fresh or watch.name not in self.own):
            self._close_own(watch.name)
            hooks = self._runtime_webhook(watch)
            if hooks:
                own = SinkHub({s.name: s for s in hooks})
                own.open()
                self.own[watch.name] = own

    def _runtime_webhook(self, watch: RuntimeWatchRequest) -> list[WebhookSink]:
        """The webhook a run-time watch brings (as :class:`~pipeline.app.control.WatchControl`)."""
        hook = watch.webhook
        if hook is None:
            return []
        control = self.config.control
        outbox = control.webhook_outbox
        if not outbox.is_absolute() and self.config_path is not None:
            outbox = self.config_path.resolve().parent / outbox
        cfg = WebhookSinkConfig(
            url=hook.url, secret=hook.secret, attach_image=hook.attach_image, outbox=outbox
        )
        policy = SsrfPolicy(
            tuple(control.allow_webhook_networks),
            hint="allow it with control.allow_webhook_networks",
        )
        return [WebhookSink(webhook_sink_name(watch.name, hook.url), cfg, ssrf=policy)]

    def _close_own(self, name: str) -> None:
        own = self.own.pop(name, None)
        if own is not None:
            close_own_sinks(name, own, self.config.shutdown.flush_s)

    def forget(self, name: str) -> None:
        """The watch is gone for good: out of the ledger, sinks drop what they keep of it."""
        self.ledger.drop(name)
        self.pipeline.sinks.forget_watch(name)
        self._close_own(name)

    def resumes(self, watches: list[WatchConfig]) -> dict[str, Resume]:
        """Where each of ``watches`` left off, for those that ran before."""
        return {w.name: r for w in watches if (r := self.ledger.resume(w)) is not None}

    def ended_names(self) -> set[str]:
        """Watches whose run ended (a moved group does not start them again)."""
        return self.ledger.ended_names()

    def runtime_watches(self) -> list[WatchConfig]:
        """The run-time watches that should run (plain)."""
        return self.ledger.runtime_watches()

    def listing(self) -> list[dict[str, Any]]:
        """Every watch with its last state (``watches/list``)."""
        return self.ledger.listing()

    def alert_ids(self) -> list[str]:
        """Ids of the alerts the hub recorded and sent on (oldest first)."""
        return self.ledger.alert_ids()

    def take_ended(self) -> list[Ended]:
        """Runs that ended since the last call."""
        return self.ledger.take_ended()

    def started(self, watches: list[str]) -> None:
        """Tell the sinks which watches run (the MQTT sink sweeps vanished discovery)."""
        self.pipeline.sinks.started(watches)

    # ------------------------------------------------------------ reload, figures, stop

    def apply(self, config: LookoutConfig) -> None:
        """Take a reloaded config: sinks added, changed or removed as in one process."""
        self.config = config
        apply_config(self.pipeline, sink_config(config))
        self.slots.set_limits(
            backend_limits(config), backend_drains(config), config.cluster.lost_after_s
        )

    def metrics_text(self) -> str:
        """The sinks', MQTT's and the hub's own figures as Prometheus text."""

        def extra(t: MetricsText) -> None:
            t.add(
                "lookout_cluster_hub_received_total",
                "counter",
                "Events the hub received from camera actors, by kind.",
                [({"kind": k}, v) for k, v in sorted(self.received.items())],
            )

        return pipeline_metrics(self.pipeline, extra)

    def health(self) -> list[str]:
        """Problems of the sinks and MQTT (empty: healthy)."""
        m = self.config.metrics
        return list(pipeline_health(self.pipeline, m.camera_offline_s, m.sink_failing_s).problems)

    def stop(self) -> None:
        """Flush and close the sinks (within ``shutdown.flush_s``), publish offline."""
        for name in list(self.own):
            self._close_own(name)
        if self.keeper is not None:
            self.keeper.close(forget=True)  # the run ends: the next starts afresh
        try:
            self.pipeline.stop(grace_s=0)
        except Exception as exc:
            log_unexpected(log, "hub: stop failed", exc)
