"""Which addresses a run-time webhook may reach: globally routable only, the same on every Python.

One case per range of the deny tables, the IPv6 forms that carry an IPv4
address (IPv4-mapped, NAT64, 6to4, Teredo) judged by that address, and the
networks that ``ipaddress`` judges differently across Python versions.
"""

from __future__ import annotations

import ipaddress

import pytest

from pipeline.net.ssrf import UnsafeUrlError, address_kind, check_url, not_global_reason


def _teredo(server: str, client: str) -> str:
    """A Teredo address (2001:0::/32) for ``server`` and ``client`` (stored inverted)."""
    s = int(ipaddress.IPv4Address(server))
    c = int(ipaddress.IPv4Address(client)) ^ 0xFFFFFFFF
    return str(ipaddress.IPv6Address((0x20010000 << 96) | (s << 64) | (0x8000 << 48) | c))


@pytest.mark.parametrize(
    ("addr", "kind"),
    [
        # IPv4, one per range (first and last address of the ones this issue names).
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("10.1.2.3", "private"),
        ("100.64.0.0", "carrier-grade NAT (shared)"),
        ("100.100.100.100", "carrier-grade NAT (shared)"),  # Tailscale's resolver
        ("100.127.255.255", "carrier-grade NAT (shared)"),
        ("127.0.0.1", "loopback"),
        ("169.254.169.254", "link-local"),
        ("172.16.0.1", "private"),
        ("172.31.255.254", "private"),
        ("192.0.0.8", "IETF protocol assignment"),
        ("192.0.0.9", "IETF protocol assignment"),
        ("192.0.0.170", "IETF protocol assignment"),
        ("192.0.2.1", "documentation"),
        ("192.88.99.1", "6to4 relay anycast"),
        ("192.168.1.10", "private"),
        ("198.18.0.1", "benchmarking"),
        ("198.51.100.1", "documentation"),
        ("203.0.113.1", "documentation"),
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "broadcast"),
        # IPv6, one per range.
        ("::1", "loopback"),
        ("::", "unspecified"),
        ("::7f00:1", "reserved"),  # IPv4-compatible (deprecated)
        ("64:ff9b:1::1", "local-use NAT64"),
        ("100::1", "discard-only"),
        ("2001:2::1", "IETF protocol assignment"),
        ("2001:3::1", "IETF protocol assignment"),  # global for Python >= 3.11.10 only
        ("2001:db8::1", "documentation"),
        ("3fff::1", "documentation"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fe80::1", "link-local"),
        ("fe80::1%eth0", "link-local"),
        ("fec0::1", "site-local"),
        ("feff::1", "site-local"),
        ("ff02::1", "multicast"),
        ("ff0e::1", "multicast"),
        ("4000::1", "reserved"),
        # IPv6 that carries IPv4: judged by the IPv4 address.
        ("::ffff:127.0.0.1", "loopback"),
        ("::ffff:100.64.0.1", "carrier-grade NAT (shared)"),
        ("64:ff9b::7f00:1", "loopback"),
        ("64:ff9b::a9fe:a9fe", "link-local"),
        ("64:ff9b::a00:1", "private"),
        ("2002:7f00:1::", "loopback"),
        ("2002:a9fe:a9fe::1", "link-local"),
        ("2002:6440:1::", "carrier-grade NAT (shared)"),
        (_teredo("65.54.227.120", "127.0.0.1"), "loopback"),
        (_teredo("65.54.227.120", "192.168.0.2"), "private"),
        (_teredo("10.0.0.1", "8.8.8.8"), "private"),
        # Globally routable.
        ("8.8.8.8", None),
        ("93.184.216.34", None),
        ("100.63.255.255", None),
        ("100.128.0.0", None),
        ("2606:4700::1111", None),
        ("2a00:1450:4001::1", None),
        ("::ffff:8.8.8.8", None),
        ("64:ff9b::808:808", None),
        ("2002:808:808::1", None),
        (_teredo("65.54.227.120", "8.8.8.8"), None),
    ],
)
def test_each_range(addr: str, kind: str | None) -> None:
    assert address_kind(addr) == kind


def test_the_reason_names_the_embedded_address() -> None:
    assert not_global_reason("2002:7f00:1::") == (
        "a 6to4 address embedding 127.0.0.1, a loopback address"
    )
    assert not_global_reason("64:ff9b::a9fe:a9fe") == (
        "a NAT64 address of 169.254.169.254, a link-local address"
    )
    assert not_global_reason(_teredo("65.54.227.120", "127.0.0.1")) == (
        "a Teredo address embedding 127.0.0.1, a loopback address"
    )
    assert not_global_reason("::ffff:10.0.0.1") == (
        "an IPv4-mapped address of 10.0.0.1, a private address"
    )
    assert not_global_reason("100.64.0.1") == "a carrier-grade NAT (shared) address"


# What ``ipaddress`` calls private (not global) on CPython 3.11.0-3.11.9 and on 3.11.10+,
# 3.12.4+, 3.13 (gh-113171), and the exceptions the newer ones call global again.
PRIVATE_BY_VERSION = [
    # IPv4, older
    "0.0.0.0/8", "10.0.0.0/8", "127.0.0.0/8", "169.254.0.0/16", "172.16.0.0/12",
    "192.0.0.0/29", "192.0.0.170/31", "192.0.2.0/24", "192.168.0.0/16", "198.18.0.0/15",
    "198.51.100.0/24", "203.0.113.0/24", "240.0.0.0/4", "255.255.255.255/32",
    # IPv4, newer (and is_global's own 100.64.0.0/10 on both)
    "192.0.0.0/24", "100.64.0.0/10",
    # IPv4, newer exceptions (global there, private before)
    "192.0.0.9/32", "192.0.0.10/32",
    # IPv6, older
    "::1/128", "::/128", "::ffff:0:0/96", "100::/64", "2001::/23", "2001:2::/48",
    "2001:db8::/32", "2001:10::/28", "fc00::/7", "fe80::/10",
    # IPv6, newer
    "64:ff9b:1::/48", "2002::/16", "3fff::/20",
    # IPv6, newer exceptions
    "2001:1::1/128", "2001:1::2/128", "2001:1::3/128", "2001:3::/32", "2001:4:112::/48",
    "2001:20::/28", "2001:30::/28",
]  # fmt: skip


def _running_pythons_private() -> list[str]:
    consts = (ipaddress._IPv4Constants, ipaddress._IPv6Constants)  # type: ignore[attr-defined]
    nets = [n for c in consts for n in c._private_networks]
    nets += [n for c in consts for n in getattr(c, "_private_networks_exceptions", [])]
    return [str(n) for n in nets]


@pytest.mark.parametrize("network", sorted(set(PRIVATE_BY_VERSION + _running_pythons_private())))
def test_the_tables_decide_what_python_versions_disagree_on(network: str) -> None:
    """Every network some Python calls private is refused by the tables, not by ``is_global``.

    ``is_global`` is only the last check; were it to decide any of these, the
    answer would depend on the Python version.
    """
    net = ipaddress.ip_network(network)
    for ip in (net.network_address, net.broadcast_address):
        kind = address_kind(str(ip))
        assert kind is not None and kind != "not globally routable", (str(ip), kind)


def test_check_url_refuses_each_new_range_and_allows_mapped_by_its_ipv4() -> None:
    for addr, words in (
        ("100.64.0.1", "a carrier-grade NAT (shared) address"),
        ("fec0::1", "a site-local address"),
        ("2002:a9fe:a9fe::", "a 6to4 address embedding 169.254.169.254, a link-local address"),
        ("64:ff9b::7f00:1", "a NAT64 address of 127.0.0.1, a loopback address"),
    ):

        def resolver(host: str, port: int, found: str = addr) -> list[str]:
            return [found]

        with pytest.raises(UnsafeUrlError) as err:
            check_url("https://hook.example/x", resolver=resolver)
        assert str(err.value) == (
            f"URL host hook.example resolves to {addr}, {words}; allow it in the config to use it."
        )
    mapped = ["::ffff:10.0.0.5"]
    assert check_url("https://h.example/x", ["10.0.0.0/8"], lambda h, p: mapped) == mapped
    assert check_url("https://h.example/x", ["100.64.0.0/10"], lambda h, p: ["100.64.0.1"])
