"""The service URLs of a notify sink: read them, keep their secrets out of every text, name them.

Apprise URLs carry their secrets in every part: ``tgram://<bot token>/<chat>``,
``ntfy://<topic>`` (on a public server the topic is the password),
``mailto://user:<password>@host``, ``discord://<id>/<token>``. So a URL is never
logged or stored: the outbox keeps a *reference* to the sink's URL
(``apprise://<scheme>.<n>``, stored by reference with the sink's name) that the
sink resolves against its configured URLs, and logs name a URL by its scheme
and position (``sinks.phone.urls[1] (ntfy)``).

Example:
    >>> urls = service_urls(NotifySinkConfig(urls=["ntfy://127.0.0.1:8080/alerts"]))
    >>> urls[0].label("phone"), urls[0].ref
    ('sinks.phone.urls[0] (ntfy)', 'apprise://ntfy.0')
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, unquote

from pipeline.core.config import NotifySinkConfig, read_secret
from pipeline.core.redact import register_secret

_SCHEME = re.compile(r"[^a-z0-9+\-]")
_NOT_SECRET_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})


@dataclass(frozen=True, slots=True)
class ServiceUrl:
    """One Apprise URL of a sink, with its position.

    Attributes:
        index: its position: ``urls`` first, then the lines of ``urls_file``.
        scheme: the service scheme (``ntfy``, ``mailto``...), safe to show.
        url: the URL itself; a secret (``repr`` hides it).
    """

    index: int
    scheme: str
    url: str = field(repr=False)

    def label(self, sink: str) -> str:
        """How logs and errors name it: ``sinks.<sink>.urls[<n>] (<scheme>)``."""
        return f"sinks.{sink}.urls[{self.index}] ({self.scheme})"

    @property
    def ref(self) -> str:
        """What the outbox keeps instead of the URL: ``apprise://<scheme>.<n>`` (no secret)."""
        return f"apprise://{self.scheme}.{self.index}"


def register_service_url(url: str) -> None:
    """Register every part of an Apprise URL that may be a secret, for redaction.

    The whole URL, its user and password, a host that is not a DNS name or an
    address (``ntfy://<topic>``, ``discord://<webhook id>/...``), every path
    segment and query value of 4 characters or more.

    Example:
        >>> from pipeline.core.redact import redact
        >>> register_service_url("tgram://123456:AAbbCCdd/987654")
        >>> redact("sending to 123456:AAbbCCdd failed")
        'sending to *** failed'
    """
    register_secret(url)
    rest = url.split("://", 1)[-1]
    netloc, _, tail = rest.partition("/")
    userinfo, at, host = netloc.rpartition("@")
    if at:
        user, _, password = userinfo.partition(":")
        for part in (user, password, unquote(password)):
            register_secret(part)
    bare = host.rsplit(":", 1)[0] if host.count(":") == 1 else host
    if bare and bare not in _NOT_SECRET_HOSTS and not _dns_or_address(bare):
        register_secret(host)
        register_secret(bare)
    path, _, query = tail.partition("?")
    for segment in path.split("/"):
        if len(segment) >= 4:
            register_secret(segment)
            register_secret(unquote(segment))
    for _key, value in parse_qsl(query):
        if len(value) >= 4:
            register_secret(value)


def _dns_or_address(host: str) -> bool:
    """Whether ``host`` looks like a DNS name or an IP address (not like a token or topic)."""
    return "." in host.strip("[]") or host.startswith("[")


def service_urls(config: NotifySinkConfig) -> list[ServiceUrl]:
    """The sink's URLs (``urls``, then ``urls_file`` lines), each registered as a secret.

    Blank lines and lines starting with ``#`` in the file are skipped.

    Raises:
        OSError: the file cannot be read.
    """
    texts = [u.get_secret_value().strip() for u in config.urls]
    if config.urls_file is not None:
        content = read_secret(None, config.urls_file) or ""
        texts += [s.strip() for s in content.splitlines()]
    out: list[ServiceUrl] = []
    for text in texts:
        if not text or text.startswith("#"):
            continue
        register_service_url(text)
        scheme = _SCHEME.sub("", text.split("://", 1)[0].lower()) or "unknown"
        out.append(ServiceUrl(len(out), scheme, text))
    return out


def resolve_ref(ref: str, urls: list[ServiceUrl]) -> ServiceUrl | None:
    """The URL an outbox reference names, or ``None`` when the config no longer has it.

    The position must still hold a URL of the same scheme; when the list was
    reordered, the only URL of that scheme is taken.

    Example:
        >>> urls = [ServiceUrl(0, "mailto", "mailto://a"), ServiceUrl(1, "ntfy", "ntfy://b")]
        >>> resolve_ref("apprise://ntfy.0", urls).index
        1
        >>> resolve_ref("apprise://tgram.0", urls) is None
        True
    """
    prefix = "apprise://"
    if not ref.startswith(prefix):
        return None
    scheme, _, index_text = ref[len(prefix) :].rpartition(".")
    if index_text.isdigit():
        index = int(index_text)
        if index < len(urls) and urls[index].scheme == scheme:
            return urls[index]
    same = [u for u in urls if u.scheme == scheme]
    return same[0] if len(same) == 1 else None
