"""The outbox database is not a secret: no webhook URL in it, in clear, in any of its files.

A config webhook's events refer to the sink (the URL is in the config); a
run-time webhook's URL is sealed with the key kept next to the database (0600);
a disabled endpoint is a keyed fingerprint; a file written by an older version
is converted when opened, its old pages overwritten.
"""

from __future__ import annotations

import sqlite3
import stat
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from pipeline.core.config import WebhookSinkConfig
from pipeline.net.ssrf import SsrfPolicy
from sinks.outbox import Outbox, list_events
from sinks.outbox_key import key_path
from sinks.webhook import WebhookSink
from tests.support.events import make_alert
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.waiting import wait_until


def secret_url(port: int) -> tuple[str, list[str]]:
    """A Discord-like URL with a password and a path token, and the parts that must not leak."""
    password = f"pw-{uuid.uuid4().hex[:12]}"
    token = f"Tok{uuid.uuid4().hex}"
    path = f"/api/webhooks/{uuid.uuid4().int % 10**18:018d}/{token}"
    return f"http://bot:{password}@127.0.0.1:{port}{path}", [password, token, path]


def database_bytes(outbox: Path) -> bytes:
    """Every byte of the database and its WAL and shared-memory files."""
    files = [outbox, outbox.with_name(outbox.name + "-wal"), outbox.with_name(outbox.name + "-shm")]
    return b"".join(f.read_bytes() for f in files if f.exists())


def stored_urls(outbox: Path) -> list[str]:
    with sqlite3.connect(outbox) as db:
        return [row[0] for row in db.execute("SELECT url FROM events")]


@pytest.fixture
def open_sink(tmp_path: Path) -> Iterator[Callable[..., WebhookSink]]:
    made: list[WebhookSink] = []

    def factory(url: str, *, runtime: bool, **kw: object) -> WebhookSink:
        cfg = WebhookSinkConfig(
            url=url, outbox=tmp_path / "outbox.sqlite3", backoff_initial_s=0.05, **kw
        )
        policy = SsrfPolicy(("127.0.0.0/8",)) if runtime else None
        sink = WebhookSink("hook", cfg, poll_s=0.1, ssrf=policy)
        made.append(sink)
        sink.open()
        return sink

    yield factory
    for sink in made:
        sink.close()


@pytest.mark.parametrize("runtime", [False, True], ids=["config", "runtime"])
def test_no_url_secret_in_the_database_files(
    receiver_factory: Callable[..., HttpReceiver],
    open_sink: Callable[..., WebhookSink],
    tmp_path: Path,
    runtime: bool,
) -> None:
    rec = receiver_factory([Reply(500), Reply(410)])
    url, secrets = secret_url(rec.port)
    sink = open_sink(url, runtime=runtime)
    sink.send_alert(make_alert(1))
    wait_until(lambda: sink.stats().disabled is not None, what="the 410")
    sink.send_alert(make_alert(2))  # stored as a dead letter of the disabled endpoint
    assert [r.path for r in rec.all()] == [secrets[2]] * 2  # the URL did work
    outbox = tmp_path / "outbox.sqlite3"
    data = database_bytes(outbox)
    for secret in secrets:
        assert secret.encode() not in data, secret
    prefix = "fernet:" if runtime else "sink:"
    assert all(u.startswith(prefix) for u in stored_urls(outbox)), stored_urls(outbox)
    assert {e["url"] for e in list_events(outbox, status=None)} == {
        f"http://127.0.0.1:{rec.port}/..."
    }
    assert sink.outbox.disabled("hook", url) is not None  # the fingerprint still matches


def test_runtime_url_opens_with_the_key_file_only(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    url, secrets = secret_url(9)
    with Outbox(outbox) as box:
        ev = box.add("watch-gate", url, b"{}", "application/json", now=0.0)
    key = key_path(outbox)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    with Outbox(outbox) as box:
        got = box.get(ev.id)
        assert got is not None and got.url == url
    key.rename(tmp_path / "elsewhere.key")
    with Outbox(outbox) as box:  # a new key: the old URL cannot be opened, nothing breaks
        got = box.get(ev.id)
        assert got is not None and got.url == ""
        assert "key file missing" in got.summary()["url"]
    for secret in secrets:
        assert secret.encode() not in database_bytes(outbox)


def test_a_key_file_others_can_read_is_narrowed(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    Outbox(outbox).close()
    key_path(outbox).chmod(0o644)
    Outbox(outbox).close()
    assert stat.S_IMODE(key_path(outbox).stat().st_mode) == 0o600


def test_an_older_file_with_urls_in_clear_is_converted(tmp_path: Path) -> None:
    outbox = tmp_path / "outbox.sqlite3"
    url, secrets = secret_url(9)
    with Outbox(outbox) as box:  # make the schema, then write rows as older versions did
        pass
    with sqlite3.connect(outbox) as db:
        db.execute(
            "INSERT INTO events (id, sink, url, body, content_type, created, next_attempt) "
            "VALUES ('msg_old', 'hook', ?, x'7b7d', 'application/json', 0, 0)",
            (url,),
        )
        db.execute(
            "INSERT INTO endpoints (sink, url, disabled_at, reason) VALUES ('hook', ?, 0, 'gone')",
            (url,),
        )
    assert secrets[1].encode() in database_bytes(outbox)  # the check below can fail
    with Outbox(outbox) as box:
        got = box.get("msg_old")
        assert got is not None and got.url == url  # still known, now sealed
        assert box.disabled("hook", url) == "gone"
    for secret in secrets:
        assert secret.encode() not in database_bytes(outbox), secret
