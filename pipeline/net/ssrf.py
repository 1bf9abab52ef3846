"""Refuse URLs that resolve to addresses that are not globally routable (SSRF guard).

Used for webhook URLs created at run time: a URL is resolved with DNS and
*every* address it resolves to must be globally routable, unless it falls
inside a network the config allows. "Globally routable" is decided by explicit
tables (:data:`V4_NOT_GLOBAL`, :data:`V6_NOT_GLOBAL`: private, loopback,
link-local, carrier-grade NAT 100.64.0.0/10, site-local fec0::/10,
documentation, multicast, reserved...) so that every supported Python gives
the same answer, with ``ipaddress``'s ``is_global`` as a last check. IPv6
addresses that carry an IPv4 address are judged by it: IPv4-mapped
``::ffff:a.b.c.d``, NAT64 ``64:ff9b::a.b.c.d``, 6to4 ``2002:AABB:CCDD::`` and
Teredo ``2001:0:...`` (server and client).

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


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def _nets(*table: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(net), kind) for net, kind in table)


V4_NOT_GLOBAL = _nets(
    ("0.0.0.0/8", "unspecified"),
    ("10.0.0.0/8", "private"),
    ("100.64.0.0/10", "carrier-grade NAT (shared)"),
    ("127.0.0.0/8", "loopback"),
    ("169.254.0.0/16", "link-local"),
    ("172.16.0.0/12", "private"),
    ("192.0.0.0/24", "IETF protocol assignment"),
    ("192.0.2.0/24", "documentation"),
    ("192.88.99.0/24", "6to4 relay anycast"),
    ("192.168.0.0/16", "private"),
    ("198.18.0.0/15", "benchmarking"),
    ("198.51.100.0/24", "documentation"),
    ("203.0.113.0/24", "documentation"),
    ("224.0.0.0/4", "multicast"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved"),
)
"""IPv4 networks that are not globally routable (IANA special-purpose registry), first match
naming the kind. A superset of what ``is_global`` refuses on every supported Python (3.11.0
to 3.13 differ on 192.0.0.0/24), plus what it accepts although it should not (multicast,
192.88.99.0/24); 100.64.0.0/10 is listed because ``is_private`` never held it."""

V6_NOT_GLOBAL = _nets(
    ("::1/128", "loopback"),
    ("::/128", "unspecified"),
    ("64:ff9b:1::/48", "local-use NAT64"),
    ("100::/64", "discard-only"),
    ("2001::/23", "IETF protocol assignment"),
    ("2001:db8::/32", "documentation"),
    ("3fff::/20", "documentation"),
    ("fc00::/7", "private"),
    ("fe80::/10", "link-local"),
    ("fec0::/10", "site-local"),
    ("ff00::/8", "multicast"),
)
"""IPv6 networks that are not globally routable; outside them only global unicast (2000::/3)
passes. Addresses that embed an IPv4 address (IPv4-mapped, NAT64 64:ff9b::/96, 6to4
2002::/16, Teredo 2001::/32) are judged by that address instead (:func:`not_global_reason`).
2001::/23 is refused whole, although newer Pythons call a few anycast blocks in it global,
so that every supported Python gives the same answer."""

GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
NAT64 = ipaddress.IPv6Network("64:ff9b::/96")


def _embedded(ip: ipaddress.IPv6Address) -> tuple[str, list[ipaddress.IPv4Address]] | None:
    """``(what, addresses)`` for an IPv6 address that carries IPv4 ones, else ``None``."""
    if ip.ipv4_mapped is not None:
        return "an IPv4-mapped address of", [ip.ipv4_mapped]
    if ip in NAT64:
        return "a NAT64 address of", [ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)]
    if ip.sixtofour is not None:
        return "a 6to4 address embedding", [ip.sixtofour]
    if ip.teredo is not None:
        server, client = ip.teredo
        return "a Teredo address embedding", [client, server]
    return None


def _listed_kind(ip: IPAddress) -> str | None:
    """The kind of the first deny-table network holding ``ip``, or ``None``.

    An IPv6 address outside global unicast (2000::/3) and the tables is ``reserved``.
    """
    table = V4_NOT_GLOBAL if isinstance(ip, ipaddress.IPv4Address) else V6_NOT_GLOBAL
    for net, kind in table:
        if ip in net:
            return kind
    if isinstance(ip, ipaddress.IPv6Address) and ip not in GLOBAL_UNICAST:
        return "reserved"
    return None


def _verdict(ip: IPAddress) -> tuple[str, str] | None:
    """``(kind, reason)`` when ``ip`` is not globally routable, else ``None``."""
    wrapped = _embedded(ip) if isinstance(ip, ipaddress.IPv6Address) else None
    if wrapped is not None:
        what, inner = wrapped
        for v4 in inner:
            found = _verdict(v4)
            if found is not None:
                return found[0], f"{what} {v4}, {found[1]}"
        return None
    kind = _listed_kind(ip)
    if kind is not None:
        return kind, f"a {kind} address"
    if not ip.is_global:  # a range a later Python knows and the tables do not
        return "not globally routable", "an address that is not globally routable"
    return None


def parse_address(addr: str) -> IPAddress:
    """The address of ``addr`` without an IPv6 zone (``fe80::1%eth0``).

    Raises:
        ValueError: not an IP address.
    """
    return ipaddress.ip_address(addr.split("%", 1)[0])


def address_kind(addr: str) -> str | None:
    """Return why ``addr`` is not globally routable (``loopback``, ``private``...), or None.

    "Globally routable" is the IANA special-purpose registry's *globally
    reachable*, decided by the tables :data:`V4_NOT_GLOBAL` and
    :data:`V6_NOT_GLOBAL` (the same answer on every supported Python), with
    ``is_global`` as a last check. An IPv6 address that embeds an IPv4 one
    (IPv4-mapped, NAT64, 6to4, Teredo) gets the kind of that IPv4 address.

    Example:
        >>> address_kind("169.254.169.254"), address_kind("8.8.8.8")
        ('link-local', None)
        >>> address_kind("100.100.100.100"), address_kind("2002:7f00:1::")
        ('carrier-grade NAT (shared)', 'loopback')

    Raises:
        ValueError: not an IP address.
    """
    found = _verdict(parse_address(addr))
    return found[0] if found is not None else None


def not_global_reason(addr: str) -> str | None:
    """Why ``addr`` is refused, as words for an error message, or None when it is global.

    Example:
        >>> not_global_reason("2002:a9fe:a9fe::1")
        'a 6to4 address embedding 169.254.169.254, a link-local address'
        >>> not_global_reason("2002:808:808::1") is None
        True

    Raises:
        ValueError: not an IP address.
    """
    found = _verdict(parse_address(addr))
    return found[1] if found is not None else None


def _allowed(addr: str, nets: Sequence[IPNetwork]) -> bool:
    """Whether ``addr`` (or the IPv4 address it maps) is in one of ``nets``."""
    ip = parse_address(addr)
    candidates: list[IPAddress] = [ip]
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        candidates.append(ip.ipv4_mapped)
    return any(c in net for c in candidates for net in nets)


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
            reason = not_global_reason(addr)
        except ValueError:
            raise UnsafeUrlError(f"URL host {host} resolves to {addr!r}, not an address.") from None
        if reason is None or _allowed(addr, nets):
            continue
        raise UnsafeUrlError(f"URL host {host} resolves to {addr}, {reason}; {hint}.")
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
    reach a private address. :class:`pipeline.net.http.HttpClient` given a
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
