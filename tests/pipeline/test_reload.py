"""Reload: the config diff, the file watcher, and a live reload that leaves untouched cameras alone."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

from pipeline.app.process import App
from pipeline.app.reload import FileWatcher, diff_tables, plan_reload
from pipeline.core.config_loader import load_config, load_config_text
from tests.support.clips import Clip
from tests.support.waiting import wait_until

BASE = """
[cameras.a]
url = "a.mp4"
[cameras.b]
url = "b.mp4"
[backends.vlm]
type = "none"
[backends.other]
type = "none"
[sinks.console]
type = "console"
[sinks.log]
type = "jsonl"
path = "x.jsonl"
"""


def watch(name: str, camera: str = "a", condition: str = "a cat", **extra: Any) -> str:
    lines = [f'name = "{name}"', f'camera = "{camera}"', f'condition = "{condition}"']
    lines += [f"{k} = {v!r}".replace("'", '"') for k, v in extra.items()]
    return "\n[[watches]]\n" + "\n".join(lines) + "\n"


def cfg(*watches: str, base: str = BASE) -> Any:
    return load_config_text(base + "".join(watches))


def test_diff_tables() -> None:
    d = diff_tables({"a": 1, "b": 2, "c": 3}, {"b": 2, "c": 4, "d": 5})
    assert (d.added, d.removed, d.changed) == (("d",), ("a",), ("c",))
    assert d.touched == {"a", "c"}


@pytest.mark.parametrize(
    ("old", "new", "added", "removed", "changed"),
    [
        ([watch("w")], [watch("w")], (), (), ()),
        ([watch("w")], [watch("w"), watch("v")], ("v",), (), ()),
        ([watch("w"), watch("v")], [watch("v")], (), ("w",), ()),
        ([watch("w")], [watch("w", condition="a dog")], (), (), ("w",)),
        ([watch("w", backend="vlm")], [watch("w", backend="other")], (), (), ("w",)),
        ([watch("w")], [watch("w", camera="b")], (), (), ("w",)),
    ],
)
def test_plan_reload_watches(
    old: list[str],
    new: list[str],
    added: tuple[str, ...],
    removed: tuple[str, ...],
    changed: tuple[str, ...],
) -> None:
    plan = plan_reload(cfg(*old), cfg(*new))
    assert (plan.watches_added, plan.watches_removed, plan.watches_changed) == (
        added,
        removed,
        changed,
    )
    assert plan.empty == (not (added or removed or changed))


def test_plan_reload_restarts_watches_whose_camera_or_backend_changed() -> None:
    ws = [watch("on_a"), watch("on_b", camera="b"), watch("v", camera="b", backend="vlm")]
    new_base = BASE.replace('url = "a.mp4"', 'url = "a2.mp4"').replace(
        '[backends.vlm]\ntype = "none"', '[backends.vlm]\ntype = "none"\nnext_run_in_s = 5'
    )
    plan = plan_reload(cfg(*ws), cfg(*ws, base=new_base))
    assert plan.cameras.changed == ("a",)
    assert plan.backends.changed == ("vlm",)
    # on_a: its camera changed; v: its backend changed; on_b uses auto -> any backend change.
    assert set(plan.watches_changed) == {"on_a", "v", "on_b"}
    assert "cameras changed: a" in plan.summary()


def test_plan_reload_sink_removal_restarts_only_watches_naming_it() -> None:
    ws = [watch("named", sinks=["log"]), watch("all")]
    plan = plan_reload(
        cfg(*ws),
        cfg(
            watch("named", sinks=["console"]),
            watch("all"),
            base=BASE.replace('path = "x.jsonl"', 'path = "y.jsonl"'),
        ),
    )
    assert plan.sinks.changed == ("log",)
    assert plan.watches_changed == ("named",)


def test_plan_reload_names_restart_only_tables() -> None:
    plan = plan_reload(cfg(), cfg(base=BASE + "\n[metrics]\nenabled = true\n"))
    assert plan.restart_only == ("metrics",)
    assert plan.empty


def test_file_watcher_calls_back_on_content_change_only(tmp_path: Path) -> None:
    path = tmp_path / "p.toml"
    path.write_text("a = 1\n")
    changes = threading.Semaphore(0)
    watcher = FileWatcher(path, changes.release, interval_s=0.05).start()
    try:
        path.write_text("a = 1\n")  # same content: no call
        path.touch()
        assert not changes.acquire(timeout=0.3)
        path.write_text("a = 2\n")
        assert changes.acquire(timeout=5)
        tmp = tmp_path / "p.toml.new"  # an editor's atomic replace
        tmp.write_text("a = 3\n")
        tmp.replace(path)
        assert changes.acquire(timeout=5)
    finally:
        watcher.stop()
    with pytest.raises(ValueError, match="positive"):
        FileWatcher(path, changes.release, interval_s=0)


def _live_config(clip: Clip, watches: str, extra: str = "") -> str:
    return f"""
[cameras.a]
url = "{clip.path}"
loop = true
[cameras.b]
url = "{clip.path}"
loop = true
[backends.vlm]
type = "none"
next_run_in_s = 1
[sinks.console]
type = "console"
states = false
[reload]
watch_file = true
poll_interval_s = 0.1
{extra}
{watches}
"""


def test_live_reload_keeps_untouched_cameras_and_watches(
    tmp_path: Path, h264_clip: Clip, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "pipeline.toml"
    w_a = watch("wa", camera="a", backend="vlm")
    w_b = watch("wb", camera="b", backend="vlm")
    path.write_text(_live_config(h264_clip, w_a + w_b))
    app = App(load_config(path), path)
    app.start()
    try:
        p = app.pipeline
        cam_a, cam_b = p.cameras["a"], p.cameras["b"]
        wait_until(lambda: cam_a.state.online and cam_b.state.online, 15, "both cameras online")
        job_b = p.watches["wb"].job_id

        # Change only camera a's watch, add one on b: b's camera and watch stay as they are.
        w_a2 = watch("wa", camera="a", condition="a dog", backend="vlm")
        w_b2 = watch("wb2", camera="b", backend="vlm")
        path.write_text(_live_config(h264_clip, w_a2 + w_b + w_b2))
        wait_until(lambda: app.reload_results["ok"] == 1, 10, "a good reload")
        assert p.cameras["b"] is cam_b and p.cameras["a"] is cam_a
        assert p.camera_connects["b"] == 1 and p.camera_connects["a"] == 1
        assert cam_b.state.online and cam_b.state.reconnects == 0
        assert p.watches["wb"].job_id == job_b
        assert p.watches["wa"].config.condition == "a dog"
        assert app.reload_results["ok"] == 1

        # An invalid file keeps the running graph and logs every problem.
        path.write_text(_live_config(h264_clip, w_a2 + watch("bad", camera="nowhere")))
        wait_until(lambda: app.reload_results["invalid"] == 1, 10, "an invalid reload")
        assert set(p.watches) == {"wa", "wb", "wb2"}
        assert p.config.watches[-1].name == "wb2"

        # SIGHUP-style reload that removes camera b's watches: camera b is released.
        path.write_text(_live_config(h264_clip, w_a2))
        assert app.reload("test") or app.reload_results["ok"] == 2
        wait_until(lambda: set(p.watches) == {"wa"}, 10, "only watch wa")
        wait_until(lambda: not cam_b.held, 10, "camera b released")
        assert p.cameras["a"] is cam_a and p.camera_connects["a"] == 1
    finally:
        app.stop()
    assert "Traceback" not in capsys.readouterr().err
