from __future__ import annotations

import base64
from pathlib import Path

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipeline.core.config import JsonlSinkConfig, SnapshotSinkConfig
from pipeline.core.events import CameraState
from pipeline.net.ssrf import UnsafeUrlError, address_kind, check_url
from sinks.jsonl import JsonlSink
from sinks.outbox import Outbox
from sinks.registry import SinkHub
from sinks.signing import parse_secret, parse_secrets, sign, verify
from sinks.snapshot import SnapshotSink, snapshot_files
from tests.support.events import make_alert, make_state


def test_jsonl_rotation_keeps_backups(tmp_path: Path) -> None:
    path = tmp_path / "log" / "alerts.jsonl"
    cfg = JsonlSinkConfig(path=path, max_bytes=2048, backups=2)
    with JsonlSink("j", cfg) as sink:
        for n in range(40):
            sink.send_alert(make_alert(n))
        sink.send_camera_state(CameraState(camera="front", online=True))
    files = sorted(p.name for p in path.parent.iterdir())
    assert files == ["alerts.jsonl", "alerts.jsonl.1", "alerts.jsonl.2"]
    for p in path.parent.iterdir():
        assert p.stat().st_size <= 2048
        for line in p.read_bytes().splitlines():
            assert orjson.loads(line)["kind"] in ("alert", "camera_state")
    last = [orjson.loads(x) for x in path.read_bytes().splitlines()]
    assert last[-1]["kind"] == "camera_state"
    assert last[-2]["event_id"] == "evt-39"


def test_jsonl_appends_across_reopen(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    for n in range(2):
        with JsonlSink("j", JsonlSinkConfig(path=path, states=False)) as sink:
            sink.send_alert(make_alert(n))
            sink.send_state(make_state())
    assert len(path.read_bytes().splitlines()) == 2


def test_snapshot_retention_and_path_in_alert(tmp_path: Path) -> None:
    snaps = SnapshotSink("s", SnapshotSinkConfig(directory=tmp_path / "snaps", keep=3))
    jsonl = JsonlSink("j", JsonlSinkConfig(path=tmp_path / "a.jsonl"))
    hub = SinkHub({"s": snaps, "j": jsonl})
    hub.open()
    for n in range(5):
        out = hub.send_alert(make_alert(n, jpeg=b"\xff\xd8jpeg%d" % n))
        assert out.snapshot_path is not None and Path(out.snapshot_path).is_file()
    hub.send_alert(make_alert(9))  # no JPEG: no file, no path
    hub.close()
    files = snapshot_files(tmp_path / "snaps")
    assert len(files) == 3
    assert files[-1].read_bytes() == b"\xff\xd8jpeg4"
    lines = [orjson.loads(x) for x in (tmp_path / "a.jsonl").read_bytes().splitlines()]
    assert lines[4]["snapshot_path"] == str(files[-1])
    assert lines[5]["snapshot_path"] is None
    assert not list((tmp_path / "snaps").glob("*.tmp"))


def test_signing_matches_standard_webhooks_example() -> None:
    # The example from the Standard Webhooks specification.
    key = parse_secret("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw")
    body = b'{"test": 2432232314}'
    sig = sign(key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body)
    assert sig == "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="
    assert verify([key], "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body, f"v1,bad {sig}")


def test_secret_errors_do_not_echo_the_secret() -> None:
    with pytest.raises(ValueError, match="must start with 'whsec_'") as err:
        parse_secret("hunter2-plain-secret")
    assert "hunter2" not in str(err.value)
    with pytest.raises(ValueError, match="not valid base64"):
        parse_secret("whsec_!!!notbase64!!!")
    assert len(parse_secrets("# old\nwhsec_" + base64.b64encode(b"k" * 24).decode() + "\n")) == 1


@given(st.binary(max_size=200), st.text(min_size=1, max_size=20), st.integers(0, 2**40))
def test_signature_verifies_only_the_same_message(body: bytes, msg_id: str, ts: int) -> None:
    key = b"k" * 32
    sig = sign(key, msg_id, ts, body)
    assert verify([key], msg_id, ts, body, sig)
    assert not verify([key], msg_id, ts + 1, body, sig)
    assert not verify([key], msg_id, ts, body + b"x", sig)


@pytest.mark.parametrize(
    ("addr", "kind"),
    [
        ("127.0.0.1", "loopback"),
        ("10.1.2.3", "private"),
        ("192.168.1.10", "private"),
        ("169.254.169.254", "link-local"),
        ("::1", "loopback"),
        ("fe80::1", "link-local"),
        ("::ffff:127.0.0.1", "loopback"),
        ("0.0.0.0", "unspecified"),
        ("93.184.216.34", None),
        ("2606:4700::1111", None),
    ],
)
def test_address_kind(addr: str, kind: str | None) -> None:
    assert address_kind(addr) == kind


def test_check_url_uses_every_resolved_address() -> None:
    def rebinding(host: str, port: int) -> list[str]:
        return ["93.184.216.34", "10.0.0.5"]

    with pytest.raises(UnsafeUrlError, match=r"10\.0\.0\.5, a private address"):
        check_url("https://hooks.example.com/x", resolver=rebinding)
    assert check_url("https://h.example/x", ["10.0.0.0/8"], resolver=rebinding)
    assert check_url("https://h.example/x", resolver=lambda h, p: ["93.184.216.34"])
    with pytest.raises(UnsafeUrlError, match="loopback"):
        check_url("http://localhost:9/x")
    with pytest.raises(UnsafeUrlError, match="http"):
        check_url("ftp://example.com/x")


def test_outbox_survives_reopen_and_keeps_ids(tmp_path: Path) -> None:
    path = tmp_path / "o.sqlite3"
    with Outbox(path) as box:
        ids = [box.add("a", "http://x/", b"%d" % n, "application/json", now=n).id for n in range(3)]
        box.mark_delivered(ids[0], 5.0, 200)
        box.mark_retry(ids[1], 100.0, "HTTP 500", 500)
    with Outbox(path) as box:
        assert [e.id for e in box.due("a", now=10.0)] == [ids[2]]
        assert box.next_due("a") == 2.0
        assert box.counts("a") == {"pending": 2, "delivered": 1, "dead": 0}
        assert box.get(ids[1]) is not None
        assert box.due("b", now=1e9) == []
