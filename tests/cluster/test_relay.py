"""The relay of a camera actor: batches in order, alerts handed over before the watch goes on."""

import threading

from pipeline.app.cluster.relay import Item, Relay
from pipeline.core.events import Alert, CameraState, WatchState, WatchStatus
from tests.support.waiting import wait_until


class Link:
    """A hub that can be down, recording what it took."""

    def __init__(self) -> None:
        self.batches: list[list[Item]] = []
        self.alerts: list[str] = []
        self.down = False
        self.lock = threading.Lock()

    def intake(self, items: list[Item]) -> None:
        if self.down:
            raise ConnectionError("hub unreachable")
        with self.lock:
            self.batches.append(items)

    def alert(self, alert: Alert) -> None:
        if self.down:
            raise ConnectionError("hub unreachable")
        with self.lock:
            self.alerts.append(alert.event_id)

    def kinds(self) -> list[str]:
        with self.lock:
            return [kind for batch in self.batches for kind, _ in batch]


def _state(status: WatchStatus = WatchStatus.RUNNING) -> WatchState:
    return WatchState(id="j", name="w", camera="c", condition="x", status=status)


def _alert(event: str) -> Alert:
    return Alert(event, "w", "j", "c", "x", "m", "r", 0.0, 1)


def test_states_go_in_batches_and_queued_ones_go_before_an_alert() -> None:
    link = Link()
    relay = Relay(link, flush_interval_s=3600)
    relay.open()
    relay.send_camera_state(CameraState("c", True))
    relay.send_state(_state())
    relay.send_alert(_alert("e1"))
    assert link.kinds() == ["camera", "state"] and link.alerts == ["e1"]
    relay.send_state(_state(WatchStatus.SUCCESS))  # a final state goes at once
    wait_until(lambda: link.kinds()[-1:] == ["state"] and len(link.batches) == 2, 5, "final state")
    relay.close()


def test_an_alert_waits_until_the_hub_takes_it() -> None:
    link = Link()
    link.down = True
    relay = Relay(link, flush_interval_s=3600, retry_s=0.01)
    relay.open()
    relay.send_state(_state())
    done = threading.Event()
    sender = threading.Thread(target=lambda: (relay.send_alert(_alert("e2")), done.set()))
    sender.start()
    wait_until(lambda: relay.failed_attempts >= 3, 5, "failed hand-overs")
    assert not done.is_set() and link.alerts == []
    link.down = False
    wait_until(done.is_set, 10, "the alert handed over")
    sender.join(5)
    assert link.alerts == ["e2"] and link.kinds() == ["state"]  # nothing lost, order kept
    relay.close()


def test_looks_are_forwarded_only_when_the_head_keeps_them_and_close_flushes() -> None:
    link = Link()
    relay = Relay(link, flush_interval_s=3600, looks=False)
    relay.open()
    relay.send_state(_state())
    relay.close()
    assert link.kinds() == ["state"] and relay.stats()["queued"] == 0


def test_a_full_batch_goes_before_its_time_and_nothing_queued_is_lost_while_the_hub_is_down() -> (
    None
):
    link = Link()
    relay = Relay(link, flush_interval_s=3600, batch_max=5, retry_s=0.01)
    relay.open()
    for _ in range(4):
        relay.send_camera_state(CameraState("c", True))
    link.down = True
    relay.send_camera_state(CameraState("c", False))  # the fifth: a batch is due
    wait_until(lambda: relay.failed_attempts >= 1, 5, "a batch tried while the hub is down")
    assert link.kinds() == [] and relay.stats()["queued"] == 5
    link.down = False
    relay.send_alert(_alert("e3"))  # what waited goes first, in order, then the alert
    assert link.kinds() == ["camera"] * 5 and link.alerts == ["e3"]
    relay.close()
