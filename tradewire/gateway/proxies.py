"""The client's address behind trusted proxies, for the WebSocket connections.

uvicorn rewrites the client address of HTTP requests from ``X-Forwarded-For`` when the peer is a
trusted proxy (``--forwarded-allow-ips`` / ``FORWARDED_ALLOW_IPS``, loopback by default). WebSocket
upgrades bypass that (the gateway's own protocol class takes the socket), so the same rule is
applied here: without it, every client behind the load balancer would share the balancer's address
for the per-IP limits, the journal's ``ip`` field and the audit log.
"""

from __future__ import annotations

import functools
import ipaddress
from typing import Any


class TrustedProxies:
    """``*``, addresses and networks (``10.0.0.0/8``), as uvicorn reads ``forwarded_allow_ips``."""

    def __init__(self, spec: str | list[str] | None) -> None:
        items = spec.split(",") if isinstance(spec, str) else list(spec or [])
        items = [item.strip() for item in items if item.strip()]
        self.everyone = "*" in items
        self.literals: set[str] = set()
        self.networks: list[ipaddress.IPv4Network | ipaddress.IPv6Network] = []
        for item in items:
            try:
                self.networks.append(ipaddress.ip_network(item, strict=False))
            except ValueError:
                self.literals.add(item)

    def __contains__(self, host: str) -> bool:
        if self.everyone or host in self.literals:
            return True
        try:
            address = ipaddress.ip_address(host)
        except ValueError:
            return False
        return any(address in network for network in self.networks)


@functools.lru_cache(maxsize=8)
def _trusted(spec: str) -> TrustedProxies:
    return TrustedProxies(spec)


def trusted_proxies(config: Any) -> TrustedProxies:
    """The trusted proxies of a uvicorn ``Config`` (none when its proxy headers are off)."""
    if not getattr(config, "proxy_headers", False):
        return _trusted("")
    spec = getattr(config, "forwarded_allow_ips", None) or ""
    return _trusted(spec if isinstance(spec, str) else ",".join(spec))


def client_address(peer: str, forwarded_for: str | None, trusted: TrustedProxies) -> str:
    """``peer``, or when ``peer`` is a trusted proxy the nearest address in ``X-Forwarded-For``
    that is not (each proxy appends the address it got the request from)."""
    if not forwarded_for or peer not in trusted:
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if hop not in trusted:
            return hop[:64]
    return hops[0][:64] if hops else peer
