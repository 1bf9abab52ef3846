"""Refuse URLs that resolve to private, loopback or link-local addresses (SSRF guard).

Used for webhook URLs created at run time: a URL is resolved with DNS and
*every* address it resolves to must be public, unless it falls inside a
network the config allows.

Example:
    >>> check_url("http://127.0.0.1:8080/hook")
    Traceback (most recent call last):
    ...
    pipeline.net.ssrf.UnsafeUrlError: URL host 127.0.0.1 resolves to 127.0.0.1, a loopback \
address; allow it in the config to use it.
    >>> check_url("http://127.0.0.1:8080/hook", allowed=["127.0.0.0/8"])
    ['127.0.0.1']
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

Resolver = Callable[[str, int], list[str]]


class UnsafeUrlError(ValueError):
    """The URL points at an address that is not allowed."""


def resolve(host: str, port: int) -> list[str]:
    """Return the addresses ``host`` resolves to (IPv4 and IPv6)."""
    infos: list[Any] = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return sorted({str(info[4][0]) for info in infos})


def address_kind(addr: str) -> str | None:
    """Return why ``addr`` is not public (``loopback``, ``private``...), or None when it is.

    Example:
        >>> address_kind("169.254.169.254"), address_kind("8.8.8.8")
        ('link-local', None)
    """
    ip = ipaddress.ip_address(addr.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    for kind, flag in (
        ("loopback", ip.is_loopback),
        ("link-local", ip.is_link_local),
        ("unspecified", ip.is_unspecified),
        ("multicast", ip.is_multicast),
        ("private", ip.is_private),
        ("reserved", ip.is_reserved),
    ):
        if flag:
            return kind
    return None


def check_host(
    host: str,
    port: int,
    allowed: Sequence[str] = (),
    resolver: Resolver = resolve,
    hint: str = "allow it in the config to use it",
) -> list[str]:
    """Resolve ``host`` and refuse it unless every address is public or allowed.

    Example:
        >>> check_host("127.0.0.1", 80, ["127.0.0.0/8"])
        ['127.0.0.1']

    Returns:
        The resolved addresses (every one of them passed the check).

    Raises:
        UnsafeUrlError: unresolvable, or an address that is not allowed.
    """
    try:
        addrs = resolver(host, port)
    except OSError as exc:
        raise UnsafeUrlError(f"URL host {host} does not resolve ({exc}).") from None
    if not addrs:
        raise UnsafeUrlError(f"URL host {host} does not resolve.")
    nets = [ipaddress.ip_network(n, strict=False) for n in allowed]
    for addr in addrs:
        try:
            kind = address_kind(addr)
        except ValueError:
            raise UnsafeUrlError(f"URL host {host} resolves to {addr!r}, not an address.") from None
        if kind is None:
            continue
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
        if any(ip in net for net in nets):
            continue
        raise UnsafeUrlError(f"URL host {host} resolves to {addr}, a {kind} address; {hint}.")
    return addrs


def _host_port(url: str) -> tuple[str, int]:
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrlError("URL is not valid.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrlError("URL must be http:// or https:// with a host.")
    return parts.hostname, port


def check_url(
    url: str,
    allowed: Sequence[str] = (),
    resolver: Resolver = resolve,
    hint: str = "allow it in the config to use it",
) -> list[str]:
    """Resolve ``url``'s host and refuse it unless every address is public or allowed.

    Args:
        url: an http(s) URL.
        allowed: networks (CIDR, e.g. ``"192.168.1.0/24"``) that are allowed anyway.
        resolver: ``(host, port) -> addresses``; DNS by default.
        hint: how to allow a refused address (the end of the error message, e.g.
            ``"allow it with control.allow_webhook_networks"``).

    Returns:
        The resolved addresses.

    Raises:
        UnsafeUrlError: not http(s), no host, unresolvable, or a forbidden address.
    """
    host, port = _host_port(url)
    return check_host(host, port, allowed, resolver, hint)


@dataclass(frozen=True, slots=True)
class SsrfPolicy:
    """Which addresses a URL may reach, checked again at every connection (DNS rebinding).

    A check before a connection is not enough on its own: the connection would
    resolve the name again, and a DNS answer that changed in between could
    reach a private address. :class:`pipeline.net.http_post.HttpPoster` given a
    policy resolves once per connection with :meth:`addresses`, refuses the
    connection unless every address passes, and connects to a checked address
    (the ``Host`` header and TLS name stay the URL's host).

    Example:
        >>> policy = SsrfPolicy(allowed=("127.0.0.0/8",), resolver=lambda h, p: ["127.0.0.1"])
        >>> policy.check("http://hook.example:8080/h")
        ['127.0.0.1']
        >>> SsrfPolicy().addresses("127.0.0.1", 80)
        Traceback (most recent call last):
        ...
        pipeline.net.ssrf.UnsafeUrlError: URL host 127.0.0.1 resolves to 127.0.0.1, a loopback \
address; allow it in the config to use it.

    Attributes:
        allowed: networks (CIDR) allowed although private, loopback or link-local.
        resolver: ``(host, port) -> addresses``; DNS by default (inject one in tests).
        hint: how to allow a refused address (the end of the error message).
    """

    allowed: tuple[str, ...] = ()
    resolver: Resolver = resolve
    hint: str = "allow it in the config to use it"

    def __post_init__(self) -> None:
        for net in self.allowed:
            try:
                ipaddress.ip_network(net, strict=False)
            except ValueError:
                raise ValueError(f"'{net}' is not a network (expected CIDR).") from None

    def check(self, url: str) -> list[str]:
        """:func:`check_url` under this policy."""
        return check_url(url, self.allowed, self.resolver, self.hint)

    def addresses(self, host: str, port: int) -> list[str]:
        """:func:`check_host` under this policy: the addresses to connect to, all checked."""
        return check_host(host, port, self.allowed, self.resolver, self.hint)
