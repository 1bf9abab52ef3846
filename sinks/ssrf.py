"""Refuse URLs that resolve to private, loopback or link-local addresses (SSRF guard).

Used for webhook URLs created at run time: a URL is resolved with DNS and
*every* address it resolves to must be public, unless it falls inside a
network the config allows.

Example:
    >>> check_url("http://127.0.0.1:8080/hook")
    Traceback (most recent call last):
    ...
    sinks.ssrf.UnsafeUrlError: URL host 127.0.0.1 resolves to 127.0.0.1, a loopback address; \
allow it in the config to use it.
    >>> check_url("http://127.0.0.1:8080/hook", allowed=["127.0.0.0/8"])
    ['127.0.0.1']
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable, Sequence
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
    try:
        parts = urlsplit(url)
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrlError("URL is not valid.") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeUrlError("URL must be http:// or https:// with a host.")
    host = parts.hostname
    try:
        addrs = resolver(host, port)
    except OSError as exc:
        raise UnsafeUrlError(f"URL host {host} does not resolve ({exc}).") from None
    if not addrs:
        raise UnsafeUrlError(f"URL host {host} does not resolve.")
    nets = [ipaddress.ip_network(n, strict=False) for n in allowed]
    for addr in addrs:
        kind = address_kind(addr)
        if kind is None:
            continue
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
        if any(ip in net for net in nets):
            continue
        raise UnsafeUrlError(f"URL host {host} resolves to {addr}, a {kind} address; {hint}.")
    return addrs
