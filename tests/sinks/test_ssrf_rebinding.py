"""DNS rebinding: run-time webhooks connect only to addresses checked at connect time.

Resolvers are injected into the policy: a name that is not in any DNS
("hook.example") answers what each test scripts, and the receivers listen on
127.0.0.1, so a POST that arrives proves the socket went to the checked address.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Callable
from pathlib import Path

import pytest

from pipeline.core.config import WebhookSinkConfig
from pipeline.net.http import HttpClient, TransportError
from pipeline.net.ssrf import SsrfPolicy, UnsafeUrlError
from sinks.outbox import list_events
from sinks.webhook import WebhookSink
from tests.support.certs import Certs, make_certs
from tests.support.events import make_alert
from tests.support.http_receiver import HttpReceiver, Reply
from tests.support.waiting import wait_until

PUBLIC = "93.184.216.34"
LOOP = ("127.0.0.0/8",)


class ScriptedResolver:
    """Answers ``answers[i]`` on call i (the last one from then on); records the calls."""

    def __init__(self, *answers: list[str]) -> None:
        self.answers = list(answers)
        self.calls: list[tuple[str, int]] = []
        self._lock = threading.Lock()

    def __call__(self, host: str, port: int) -> list[str]:
        with self._lock:
            self.calls.append((host, port))
            return list(self.answers[min(len(self.calls), len(self.answers)) - 1])

    def set(self, *answers: list[str]) -> None:
        with self._lock:
            self.answers = list(answers)
            self.calls.clear()


def post(
    url: str, *, policy: SsrfPolicy | None = None, ctx: ssl.SSLContext | None = None
) -> tuple[int | None, str]:
    """POST ``{}`` once with the one HTTP client; return (status or None, error text)."""
    client = HttpClient(
        url, connect_timeout_s=2, read_timeout_s=2, policy=policy, ssl_context=ctx, secret_path=True
    )
    try:
        return client.request("POST", body=b"{}").status, ""
    except TransportError as exc:
        return None, str(exc)
    finally:
        client.close()


def _hook_url(rec: HttpReceiver, host: str = "hook.example") -> str:
    return f"http://{host}:{rec.port}/hook"


def test_pinned_post_reaches_checked_address_with_host_header(
    receiver_factory: Callable[..., HttpReceiver],
) -> None:
    rec = receiver_factory()
    resolver = ScriptedResolver(["127.0.0.1"])
    status, error = post(_hook_url(rec), policy=SsrfPolicy(LOOP, resolver))
    assert status == 200, error
    assert [r.headers["host"] for r in rec.all()] == [f"hook.example:{rec.port}"]
    assert resolver.calls == [("hook.example", rec.port)]


def test_rebinding_to_loopback_after_the_check_is_refused(
    receiver_factory: Callable[..., HttpReceiver],
) -> None:
    rec = receiver_factory()
    resolver = ScriptedResolver([PUBLIC], ["127.0.0.1"])
    policy = SsrfPolicy((), resolver, hint="allow it with control.allow_webhook_networks")
    url = _hook_url(rec)
    assert policy.check(url) == [PUBLIC]  # the check when the watch is created passes
    status, error = post(url, policy=policy)
    assert status is None
    assert "refused" in error and "127.0.0.1, a loopback address" in error
    assert "control.allow_webhook_networks" in error
    assert rec.all() == []


def test_any_forbidden_address_among_several_refuses(
    receiver_factory: Callable[..., HttpReceiver],
) -> None:
    rec = receiver_factory()
    resolver = ScriptedResolver(["127.0.0.1", "10.1.2.3"])
    status, error = post(_hook_url(rec), policy=SsrfPolicy(LOOP, resolver))
    assert status is None and "10.1.2.3, a private address" in error
    assert rec.all() == []


def test_without_policy_the_name_is_resolved_by_the_system(
    receiver_factory: Callable[..., HttpReceiver],
) -> None:
    rec = receiver_factory()  # config-file webhooks: no policy, loopback allowed as before
    assert post(rec.url) == (200, "")


def test_policy_rejects_bad_networks() -> None:
    with pytest.raises(ValueError, match="not a network"):
        SsrfPolicy(("nonsense",))
    with pytest.raises(UnsafeUrlError, match="does not resolve"):
        SsrfPolicy((), lambda h, p: []).addresses("hook.example", 80)


def test_sink_rechecks_every_attempt_and_retries_a_refused_one(
    receiver_factory: Callable[..., HttpReceiver], tmp_path: Path
) -> None:
    rec = receiver_factory()
    rec.default = Reply(headers={"connection": "close"})  # every attempt opens a connection
    resolver = ScriptedResolver(["127.0.0.1"])
    cfg = WebhookSinkConfig(
        url=_hook_url(rec),
        outbox=tmp_path / "outbox.sqlite3",
        backoff_initial_s=0.05,
        backoff_max_s=0.2,
        connect_timeout_s=1.0,
        read_timeout_s=2.0,
    )
    sink = WebhookSink("hook", cfg, poll_s=0.05, ssrf=SsrfPolicy(LOOP, resolver))
    with sink:
        sink.send_alert(make_alert(1))
        wait_until(lambda: len(rec.ok()) == 1, what="first delivery")
        resolver.set(["10.9.9.9"])  # DNS now points at a private address
        sink.send_alert(make_alert(2))
        wait_until(lambda: sink.stats().failed_attempts >= 2, what="refused attempts")
        assert len(rec.all()) == 1
        errors = [e["last_error"] or "" for e in list_events(cfg.outbox, status="pending")]
        assert errors and "10.9.9.9, a private address" in errors[0]
        resolver.set(["127.0.0.1"])
        wait_until(lambda: len(rec.ok()) == 2, what="delivery after DNS came back")
    assert resolver.calls and all(c == ("hook.example", rec.port) for c in resolver.calls)


# -- https: SNI and certificate check on the host name, socket on the checked address ------


@pytest.fixture(scope="module")
def certs(tmp_path_factory: pytest.TempPathFactory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_receiver(certs: Certs, receiver_factory: Callable[..., HttpReceiver]) -> HttpReceiver:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certs.server_cert, certs.server_key)
    return receiver_factory(tls=ctx)


def _client_ctx(certs: Certs) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(certs.ca))


def test_https_pinned_verifies_the_host_name(tls_receiver: HttpReceiver, certs: Certs) -> None:
    port = tls_receiver.port
    resolver = ScriptedResolver(["127.0.0.1"])
    status, error = post(
        f"https://localhost:{port}/hook", policy=SsrfPolicy(LOOP, resolver), ctx=_client_ctx(certs)
    )
    assert status == 200, error
    assert [r.headers["host"] for r in tls_receiver.all()] == [f"localhost:{port}"]


def test_https_pinned_refuses_a_certificate_for_the_address_only(
    tls_receiver: HttpReceiver, certs: Certs
) -> None:
    # The server's certificate names 127.0.0.1 and localhost; the URL's host is
    # hook.example. Were the socket's address used as the TLS name, it would pass.
    port = tls_receiver.port
    resolver = ScriptedResolver(["127.0.0.1"])
    status, error = post(
        f"https://hook.example:{port}/hook",
        policy=SsrfPolicy(LOOP, resolver),
        ctx=_client_ctx(certs),
    )
    assert status is None
    assert "TLS error" in error
    assert tls_receiver.all() == []
