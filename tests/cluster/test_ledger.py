"""The ledger that outlives camera actors: resume points, alert ids, ended runs (pure)."""

from pipeline.app.cluster.ledger import Ledger
from pipeline.app.cluster.ledger_keep import LedgerKeeper, kept_ledger
from pipeline.core.config import WatchConfig
from pipeline.core.events import Alert, WatchState, WatchStatus


def _w(**kw: object) -> WatchConfig:
    return WatchConfig(**{"name": "gate", "camera": "c", "condition": "a van", **kw})  # type: ignore[arg-type]


def _state(status: WatchStatus = WatchStatus.RUNNING, **kw: object) -> WatchState:
    base: dict[str, object] = {"id": "j1", "name": "gate", "camera": "c", "condition": "a van"}
    return WatchState(**{**base, "status": status, **kw})  # type: ignore[arg-type]


def _alert(event: str, looks: int = 3) -> Alert:
    return Alert(event, "gate", "j1", "c", "a van", "Van!", "A van.", 100.0, looks)


def test_resume_carries_the_last_state_and_counts_the_restart() -> None:
    led = Ledger()
    led.want(_w(), "config")
    assert led.resume(_w()) is None  # never ran
    led.state(_state(iterations=4, alerts=0, started_at=10.0, budget_tokens=2.0), at=50.0)
    r = led.resume(_w())
    assert r is not None and (r.job_id, r.iterations, r.restarts, r.started_at) == (
        "j1",
        4,
        1,
        10.0,
    )
    assert (r.budget_tokens, r.at) == (2.0, 50.0)
    led.state(_state(iterations=5, restarts=1), at=60.0)
    assert led.resume(_w()).restarts == 2  # type: ignore[union-attr]


def test_an_alert_is_recorded_once_and_starts_the_quiet_period_of_repeat() -> None:
    led = Ledger()
    led.want(_w(mode="repeat", quiet_period_s=300), "config")
    led.state(_state(iterations=2), at=90.0)
    assert led.alert(_alert("e1"), at=101.0) is True
    assert led.alert(_alert("e1"), at=102.0) is False  # the same id again: not sent again
    r = led.resume(_w(mode="repeat", quiet_period_s=300))
    # The alert is counted although the state that says so never arrived.
    assert r is not None and r.alerts == 1 and r.iterations == 3 and r.quiet_until == 401.0


def test_once_mode_ends_with_its_alert_and_an_ended_run_is_not_resumed() -> None:
    led = Ledger()
    led.want(_w(), "runtime")
    led.state(_state(), at=1.0)
    led.alert(_alert("e2"), at=2.0)
    assert led.resume(_w()) is None and led.ended_names() == {"gate"}
    assert led.runtime_watches() == []
    led.state(_state(WatchStatus.SUCCESS), at=3.0)
    (ended,) = led.take_ended()
    assert (ended.name, ended.status, ended.origin) == ("gate", "success", "runtime")
    assert led.take_ended() == []


def test_a_changed_watch_or_a_new_run_starts_afresh() -> None:
    led = Ledger()
    led.want(_w(), "config", sinks=("mqtt",))
    led.state(_state(iterations=9), at=1.0)
    led.want(_w(), "config", sinks=("mqtt",))  # the same again (a reload): kept
    assert led.resume(_w()) is not None and led.sinks_of("gate") == ("mqtt",)
    led.want(_w(condition="a red van"), "config")
    assert led.resume(_w(condition="a red van")) is None
    led.state(_state(iterations=1, condition="a red van"), at=2.0)
    led.restart("gate")
    assert led.resume(_w(condition="a red van")) is None
    led.drop("gate")
    assert led.listing() == [] and led.names() == []


def test_listing_shows_the_restart_and_a_state_of_an_unknown_watch_is_ignored() -> None:
    led = Ledger()
    led.state(_state(), at=1.0)
    assert led.listing() == []
    led.want(_w(), "config", extra={"webhook": "https://x.example/..."})
    led.state(_state(iterations=3, restarts=1), at=2.0)
    (row,) = led.listing()
    assert row["restarts"] == 1 and row["status"] == "running" and row["webhook"]


class MemoryKeep:
    """A kept image in memory (the hub keeps it in Ray's control store)."""

    def __init__(self) -> None:
        self.image: bytes | None = None
        self.puts = 0

    def get(self) -> bytes | None:
        return self.image

    def put(self, image: bytes) -> None:
        self.image, self.puts = image, self.puts + 1

    def delete(self) -> None:
        self.image = None


def test_a_restored_ledger_resumes_runs_keeps_quiet_periods_and_alert_ids() -> None:
    led = Ledger()
    led.want(_w(mode="repeat", quiet_period_s=300), "config")
    led.want(_w(name="other", camera="d"), "runtime", ("mqtt",))
    led.state(_state(iterations=4, started_at=10.0), at=50.0)
    assert led.alert(_alert("e1", looks=5), at=120.0)
    version, image = led.image()
    assert version == led.version
    back = Ledger.restore(image)
    r = back.resume(_w(mode="repeat", quiet_period_s=300))
    assert r is not None and (r.job_id, r.iterations, r.alerts, r.quiet_until) == (
        "j1",
        5,
        1,
        420.0,
    )
    assert back.alert(_alert("e1"), at=130.0) is False  # already sent before the crash
    assert [w.name for w in back.runtime_watches()] == ["other"]
    assert back.sinks_of("other") == ("mqtt",)
    # A config change after the image is in the next one (the configs are pickled again).
    led.want(_w(mode="once"), "config")
    assert Ledger.restore(led.image()[1]).resume(_w(mode="once")) is None  # a new run


def test_the_keeper_writes_only_changes_and_a_new_hub_starts_from_them() -> None:
    led, keep = Ledger(), MemoryKeep()
    keeper = LedgerKeeper(led, keep)
    assert keeper.save() is False and keep.puts == 0  # nothing changed yet
    led.want(_w(), "config")
    led.state(_state(iterations=2), at=5.0)
    assert keeper.save() is True and keeper.save() is False and keep.puts == 1
    again = kept_ledger(keep)
    assert again.resume(_w()).job_id == "j1"  # type: ignore[union-attr]
    keeper.close(forget=True)
    assert keep.image is None and kept_ledger(keep).names() == []
