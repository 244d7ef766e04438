"""Limits: REST request weight per IP per minute, inbound WebSocket messages per second.

Both are fixed-window counters, pure: the caller passes the time, so tests step it by hand. The
REST window is the calendar minute, as Binance's is, and a refusal says how many seconds remain
until the next one (``Retry-After``). Counters live in each gateway process: a client spread over
several gateways gets each gateway's allowance, which is the usual trade for not paying a Redis
round trip per request.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any, Final

from tradewire.gateway.errors import ApiError
from tradewire.journal.quota import ORDERS_PER_10S, ORDERS_PER_DAY

DEFAULT_WEIGHT_PER_MINUTE: Final = 6000
DEFAULT_MESSAGES_PER_SECOND: Final = 10
DEFAULT_STREAMS_PER_CONNECTION: Final = 1024
DEFAULT_CONNECTIONS_PER_IP: Final = 300
DEFAULT_MAX_FRAME: Final = 64 * 1024


@dataclass(frozen=True)
class Limits:
    """Every limit a gateway enforces; the defaults are Binance's where Binance has one."""

    weight_per_minute: int = DEFAULT_WEIGHT_PER_MINUTE
    messages_per_second: int = DEFAULT_MESSAGES_PER_SECOND
    streams_per_connection: int = DEFAULT_STREAMS_PER_CONNECTION
    connections_per_ip: int = DEFAULT_CONNECTIONS_PER_IP
    max_frame: int = DEFAULT_MAX_FRAME
    send_buffer: int = 512 * 1024
    """Bytes a connection may have waiting in its transport before it counts as slow."""
    backlog_bytes: int = 4 * 1024 * 1024
    """Bytes a slow connection may hold queued (after conflation) before it is closed."""
    socket_send_buffer: int = 0
    """``SO_SNDBUF`` of WebSocket sockets in bytes; 0 leaves the kernel's (auto-tuned) default."""
    ping_interval: float = 20.0
    pong_timeout: float = 60.0
    """Seconds a connection may leave the gateway's pings unanswered before it is closed (1011):
    Binance pings every 20 s and waits a minute, and clients are written for that."""
    idle_timeout: float = 60.0
    """Seconds a connection may stay with no stream, no user data and no message before it is closed."""
    orders_per_10s: int = ORDERS_PER_10S
    """New orders one account may place in a 10-second window, over all gateways (``-1015``)."""
    orders_per_day: int = ORDERS_PER_DAY
    """... and in a day (UTC)."""
    session_check: float = 10.0
    """Seconds between checks that the listen keys and API keys followed here still exist: how long
    a stream may outlive an expired listen key, or a key revoked while this gateway missed the notice."""


def limits_from_env(env: Mapping[str, str]) -> Limits:
    """:class:`Limits` with overrides from ``TRADEWIRE_LIMIT_<FIELD>`` environment variables.

    For example ``TRADEWIRE_LIMIT_CONNECTIONS_PER_IP=50`` or ``TRADEWIRE_LIMIT_PING_INTERVAL=5``.
    A value that is not a number, or is negative or not finite, raises ``ValueError`` naming the
    variable (it was a traceback, or a limit that refused everything)."""
    overrides: dict[str, Any] = {}
    for item in fields(Limits):
        name = f"TRADEWIRE_LIMIT_{item.name.upper()}"
        raw = env.get(name)
        if raw:
            whole = item.type not in ("float", float)
            try:
                value: float = int(raw) if whole else float(raw)
            except ValueError:
                kind = "a whole number" if whole else "a number"
                raise ValueError(f"{name}: must be {kind} >= 0, not {raw!r}") from None
            if not 0 <= value < math.inf:
                raise ValueError(f"{name}: must be >= 0 and finite, not {raw!r}")
            overrides[item.name] = value
    return Limits(**overrides)


class WeightWindow:
    """REST weight used per key (an IP) in the current minute."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._minute = -1
        self._used: dict[str, int] = {}

    def spend(self, key: str, weight: int, now_ms: int) -> int:
        """Charge ``weight``; returns the weight used this minute or raises the 429 answer."""
        minute = now_ms // 60_000
        if minute != self._minute:
            self._minute = minute
            self._used.clear()
        used = self._used.get(key, 0) + weight
        if used > self.limit:
            retry = max(1, 60 - (now_ms % 60_000) // 1000)
            raise ApiError(
                -1003,
                f"Too many requests; current limit of IP({key}) request weight per minute is "
                f"{self.limit}. Please use WebSocket Streams for live updates to avoid polling the API.",
                429,
                retry_after=retry,
            )
        self._used[key] = used
        return used

    def used(self, key: str, now_ms: int) -> int:
        """The weight ``key`` has used this minute (what a refused request reports)."""
        return self._used.get(key, 0) if now_ms // 60_000 == self._minute else 0


class MessageRate:
    """Inbound messages of one connection in the current second."""

    __slots__ = ("_count", "_second", "limit")

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._second = -1
        self._count = 0

    def allow(self, now: float) -> bool:
        second = int(now)
        if second != self._second:
            self._second = second
            self._count = 0
        self._count += 1
        return self._count <= self.limit
