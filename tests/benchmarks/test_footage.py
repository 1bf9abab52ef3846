"""The footage shipped in the repository is there, real H.264, and agrees with its labels.

Demuxing only (no decode): a few thousand packets, well under a second. A clip
made at benchmark time (``cached = true``) is made into the cache (about a
minute) and probed, unless it is longer than ``MAKE_IN_TESTS_S`` (the 15-minute
``busyday``, three minutes to make, is made by the same code from a longer
schedule, and probed by ``benchmarks.looks`` when it makes it); the committed
labels and TOML of every cached clip are checked against the script that makes it.
"""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import av
import pytest

from benchmarks.footage_cache import cache_key, ensure_clip
from benchmarks.labelled_model import answer_at, events, load_labels

ROOT = Path(__file__).resolve().parents[2]
FOOTAGE = ROOT / "benchmarks" / "footage"
DESCRIPTIONS = sorted(FOOTAGE.glob("*.toml"))
CACHED = [p for p in DESCRIPTIONS if tomllib.loads(p.read_text(encoding="utf-8")).get("cached")]
MAKE_IN_TESTS_S = 300
"""Cached clips up to this long (seconds) are made and probed here."""
PROBED = [
    p
    for p in DESCRIPTIONS
    if p not in CACHED
    or tomllib.loads(p.read_text(encoding="utf-8"))["duration_s"] <= MAKE_IN_TESTS_S
]


def _probe(path: Path) -> dict[str, Any]:
    with av.open(str(path)) as c:
        s = c.streams.video[0]
        keys = []
        n = 0
        for packet in c.demux(s):
            if packet.size == 0:  # the demuxer's flush packet
                continue
            if packet.is_keyframe:
                keys.append(n)
            n += 1
        return {
            "codec": s.codec_context.name,
            "size": (s.width, s.height),
            "pix_fmt": s.format.name,
            "fps": float(s.average_rate or 0),
            "frames": n,
            "keys": keys,
        }


def test_every_clip_is_described() -> None:
    assert {p.stem for p in DESCRIPTIONS} >= {"walkway", "vtest", "parcels", "busypath", "busyday"}
    assert [p.stem for p in CACHED] == ["busyday", "busypath"]
    assert "busypath" in {p.stem for p in PROBED}


def _clip_path(desc: Path, meta: dict[str, Any]) -> Path:
    if meta.get("cached"):
        # Made from the repository's footage on first use (about a minute), then cached.
        return ensure_clip(desc.stem, quiet=True)
    clip: Path = (desc.parent / str(meta["clip"])).resolve()
    assert clip.is_file() and clip.is_relative_to(ROOT)
    return clip


@pytest.mark.timeout(900)
@pytest.mark.parametrize("desc", PROBED, ids=[p.stem for p in PROBED])
def test_clip_matches_its_description(desc: Path) -> None:
    meta = tomllib.loads(desc.read_text(encoding="utf-8"))
    info = _probe(_clip_path(desc, meta))
    fps = meta["fps"]
    assert info["codec"] == "h264" and info["pix_fmt"] == "yuv420p"
    assert info["size"] == (meta["width"], meta["height"]) and info["fps"] == fps
    assert info["frames"] == round(meta["duration_s"] * fps)
    # A keyframe every 2 s exactly, from the first frame.
    assert info["keys"] == list(range(0, info["frames"], 2 * fps))

    labels = load_labels(desc.parent / meta["labels"])
    assert labels and all(0 <= lb.start < lb.end <= meta["duration_s"] for lb in labels)
    assert events(labels), "a labelled clip has at least one event"
    zones = meta["watch"]["zones"]
    assert meta["watch"]["condition"] and zones
    for points in (z["points"] for z in zones.values()):
        assert len(points) >= 3 and all(0 <= v <= 1 for pt in points for v in pt)


def test_the_long_clip() -> None:
    """At least 3 minutes, at least 2 short events, and frames the model can tell apart."""
    meta = tomllib.loads((FOOTAGE / "parcels.toml").read_text(encoding="utf-8"))
    assert meta["duration_s"] >= 180
    labels = load_labels(FOOTAGE / meta["labels"])
    found = events(labels)
    assert len(found) >= 2 and all(4 <= ev.end - ev.start <= 10 for ev in found)
    # Composited: every label time is a whole second, so the HTTP path's HH:MM:SS clock is exact.
    assert all(float(lb.start).is_integer() and float(lb.end).is_integer() for lb in labels)
    states = {answer_at(labels, k / 10).state for k in range(meta["duration_s"] * 10)}
    assert states == {"empty", "forming", "relevant", "met"}


@pytest.mark.parametrize("desc", DESCRIPTIONS, ids=[p.stem for p in DESCRIPTIONS])
def test_labels_and_watch(desc: Path) -> None:
    meta = tomllib.loads(desc.read_text(encoding="utf-8"))
    labels = load_labels(desc.parent / meta["labels"])
    assert labels and all(0 <= lb.start < lb.end <= meta["duration_s"] for lb in labels)
    assert events(labels), "a labelled clip has at least one event"
    assert meta["watch"]["condition"] and meta["watch"]["zones"]


@pytest.mark.parametrize("desc", CACHED, ids=[p.stem for p in CACHED])
def test_cached_clip_labels_are_the_scripts(desc: Path, tmp_path: Path) -> None:
    """The committed labels and TOML are what ``make-footage --labels`` writes from its schedule."""
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "make-footage"), "--labels",
                           str(tmp_path)], capture_output=True, text=True, timeout=120,
                          check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    meta = tomllib.loads(desc.read_text(encoding="utf-8"))
    for name in (desc.name, meta["labels"]):
        assert (tmp_path / name).read_text(encoding="utf-8") == (FOOTAGE / name).read_text(
            encoding="utf-8"
        ), f"{name} differs from the script's schedule: run scripts/make-footage --only busypath"
    # Composited: whole seconds, and every kind of answer occurs.
    labels = load_labels(FOOTAGE / meta["labels"])
    assert all(float(lb.start).is_integer() and float(lb.end).is_integer() for lb in labels)
    states = {answer_at(labels, k / 10).state for k in range(meta["duration_s"] * 10)}
    assert states == {"empty", "forming", "relevant", "met"}


def test_cache_key_follows_the_script_and_the_source(tmp_path: Path) -> None:
    script, source = tmp_path / "script", tmp_path / "source"
    script.write_bytes(b"one")
    source.write_bytes(b"clip")
    key = cache_key(script, source)
    assert len(key) == 16 and key == cache_key(script, source)
    script.write_bytes(b"two")
    assert cache_key(script, source) != key
    script.write_bytes(b"one")
    source.write_bytes(b"clip2")
    assert cache_key(script, source) != key


def test_repository_footage_is_small() -> None:
    added = [ROOT / "tests" / "footage" / "vtest.mp4", *FOOTAGE.glob("*.mp4")]
    assert sum(p.stat().st_size for p in added) < 14_000_000
