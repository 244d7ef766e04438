"""The client's address behind trusted proxies (uvicorn's rule, applied to WebSocket upgrades)."""

from __future__ import annotations

from types import SimpleNamespace

from tradewire.gateway.proxies import TrustedProxies, client_address, trusted_proxies

LOOPBACK = TrustedProxies("127.0.0.1,::1")


def test_a_trusted_peer_gives_the_nearest_untrusted_forwarded_address() -> None:
    assert client_address("127.0.0.1", "203.0.113.7", LOOPBACK) == "203.0.113.7"
    assert client_address("127.0.0.1", "198.51.100.1, 203.0.113.7", LOOPBACK) == "203.0.113.7"
    chain = TrustedProxies(["10.0.0.0/8", "127.0.0.1"])
    assert client_address("127.0.0.1", "198.51.100.1, 203.0.113.7, 10.1.2.3", chain) == "203.0.113.7"
    assert client_address("127.0.0.1", "10.9.9.9, 10.1.2.3", chain) == "10.9.9.9"  # all proxies: the first


def test_an_untrusted_peer_or_no_header_keeps_the_peer() -> None:
    assert client_address("198.51.100.9", "203.0.113.7", LOOPBACK) == "198.51.100.9"  # spoofed header
    assert client_address("127.0.0.1", None, LOOPBACK) == "127.0.0.1"
    assert client_address("127.0.0.1", " , ", LOOPBACK) == "127.0.0.1"
    assert client_address("198.51.100.9", "203.0.113.7", TrustedProxies("*")) == "203.0.113.7"


def test_the_trust_follows_uvicorns_config() -> None:
    on = trusted_proxies(SimpleNamespace(proxy_headers=True, forwarded_allow_ips="127.0.0.1"))
    off = trusted_proxies(SimpleNamespace(proxy_headers=False, forwarded_allow_ips="*"))
    assert "127.0.0.1" in on and "10.0.0.1" not in on
    assert "127.0.0.1" not in off and "::1" not in LOOPBACK.__class__("")
    assert "::1" in LOOPBACK and "not-an-ip" not in LOOPBACK
