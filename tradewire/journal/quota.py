"""Order-count limits per account (Binance's ``ORDERS`` rate limits), shared by every gateway.

A gateway's request-weight limit is per IP and per gateway; it does not stop one account that sends
its orders from many addresses, through many gateways, from taking the engine's whole capacity. So
each new order of an account is counted in Redis, in a 10-second and a 1-day window, and one that
would pass either limit is refused with ``-1015`` ("Too many new orders; current limit is 100
orders per 10 SECOND.") before it reaches the journal.

The count and the append are one server-side script (:data:`SCRIPT`), sent in the submitter's
pipeline in place of the plain ``XADD``: no extra round trip, and no window in which two gateways
could both let the hundred-and-first order through. The windows are fixed (Unix time divided by the
window's length), as Binance's counters reset on the interval, and their time is Redis's own
(``TIME`` in the script), not the gateways': two gateways whose clocks differ count in the same
windows. A refused order is not counted and writes nothing (nothing reaches the append-only file
for an account that keeps knocking). An account's counts are one hash with the journal's hash tag,
so the script's keys share a Redis Cluster slot with the journal.

The limit is on *unfilled* orders, as Binance's is: when an order trades for the first time (as
taker or maker), its account's counts in the current windows drop by one, never below zero, so an
account whose orders trade can go on placing them. The engine counts those orders in the same hash
(field ``f``, a plain ``HINCRBY`` in its batch's transaction: no script, no clock, the same journal
gives the same writes); the counting script keeps, per window, the ``f`` it last saw (``b10``,
``b1d``), and a window's count is ``max(count - (f - base), 0)``. Taking the fills off at the next
order rather than at each fill gives the same counts: between two orders only fills come, and
``max(c - k, 0)`` is ``k`` decrements that stop at zero.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from tradewire import keys

ORDERS_PER_10S: Final = 100
ORDERS_PER_DAY: Final = 200_000

SCRIPT: Final = b"""
local clock = redis.call('TIME')
local now = tonumber(clock[1]) * 1000 + math.floor(tonumber(clock[2]) / 1000)
local ten, day = math.floor(now / 10000), math.floor(now / 86400000)
local held = redis.call('HMGET', KEYS[2], 'w10', 'c10', 'b10', 'w1d', 'c1d', 'b1d', 'f')
local filled = tonumber(held[7]) or 0
local tens, days = 0, 0
if tonumber(held[1]) == ten then
  tens = math.max(tonumber(held[2]) - (filled - (tonumber(held[3]) or 0)), 0)
end
if tonumber(held[4]) == day then
  days = math.max(tonumber(held[5]) - (filled - (tonumber(held[6]) or 0)), 0)
end
local per10, perday = tonumber(ARGV[1]), tonumber(ARGV[2])
if per10 > 0 and tens >= per10 then return {0, tens, days, 1} end
if perday > 0 and days >= perday then return {0, tens, days, 2} end
tens, days = tens + 1, days + 1
redis.call('HSET', KEYS[2], 'w10', ten, 'c10', tens, 'b10', filled, 'w1d', day, 'c1d', days, 'b1d', filled)
redis.call('PEXPIRE', KEYS[2], 90000000)
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 3))
return {id, tens, days, 0}
"""
"""KEYS: the journal, the account's counts (hash: window, count and base of each interval, and the
orders that traded ``f``). ARGV: the two limits (0: none), then the entry's fields and values.
Returns ``{id, count 10 s, count 1 d, 0}``, or ``{0, count 10 s, count 1 d, 1 | 2}`` when the
order would pass the 10-second (1) or the daily (2) limit and was not appended (the counts are then
those before it)."""

SHA: Final = hashlib.sha1(SCRIPT).hexdigest().encode()
LOAD: Final = (b"SCRIPT", b"LOAD", SCRIPT)


@dataclass(frozen=True, slots=True)
class OrderQuota:
    """Whose order it is, and the limits it is counted against."""

    user: str
    per_10s: int = ORDERS_PER_10S
    """0: no 10-second limit."""
    per_day: int = ORDERS_PER_DAY
    """0: no daily limit."""


@dataclass(frozen=True, slots=True)
class OrderCounts:
    """The account's orders in the current windows, this one included (Binance's
    ``X-MBX-ORDER-COUNT-10S`` and ``X-MBX-ORDER-COUNT-1D``)."""

    ten_seconds: int
    day: int


class TooManyOrders(Exception):
    """The order would pass an order-count limit; it was not journalled."""

    def __init__(self, limit: int, interval: str, counts: OrderCounts) -> None:
        super().__init__(f"Too many new orders; current limit is {limit} orders per {interval}.")
        self.limit = limit
        self.interval = interval
        self.counts = counts


def counts_key(user: str) -> str:
    """The account's counts: a hash of each interval's current window and count."""
    return f"tw:{{0}}:quota:{user}"


def append_op(quota: OrderQuota, fields: list[bytes | str]) -> tuple[Any, ...]:
    """The ``EVALSHA`` that counts the order and appends its entry (``fields``) if it may pass."""
    return (b"EVALSHA", SHA, 2, keys.COMMANDS, counts_key(quota.user), quota.per_10s, quota.per_day, *fields)


COUNT_FIELDS: Final = ("w10", "c10", "b10", "w1d", "c1d", "b1d", "f")
"""The fields :func:`counts_at` reads, in its order (``HMGET``)."""


def counts_at(now_ms: int, held: list[bytes | None]) -> OrderCounts:
    """The counts of the windows ``now_ms`` falls in, from the account's hash as ``HMGET`` of
    :data:`COUNT_FIELDS` reads it (a window that has passed counts 0), as the script counts."""
    w10, c10, b10, w1d, c1d, b1d, filled = (int(v) if v is not None else None for v in held)
    filled = filled or 0
    ten = max(c10 - (filled - (b10 or 0)), 0) if c10 is not None and w10 == now_ms // 10_000 else 0
    day = max(c1d - (filled - (b1d or 0)), 0) if c1d is not None and w1d == now_ms // 86_400_000 else 0
    return OrderCounts(ten, day)


def filled_ops(first_fills: dict[str, int]) -> list[tuple[Any, ...]]:
    """The ``HINCRBY`` that counts, per account, its orders that traded for the first time (see the
    module); none for none."""
    return [(b"HINCRBY", counts_key(user), b"f", first_fills[user]) for user in sorted(first_fills)]


def appended(quota: OrderQuota, reply: Any) -> tuple[str, OrderCounts]:
    """The entry id and counts of :data:`SCRIPT`'s reply; raises :class:`TooManyOrders`."""
    entry, ten, day, over = reply
    counts = OrderCounts(int(ten), int(day))
    if over == 1:
        raise TooManyOrders(quota.per_10s, "10 SECOND", counts)
    if over:
        raise TooManyOrders(quota.per_day, "1 DAY", counts)
    return (entry.decode() if isinstance(entry, bytes) else str(entry)), counts


__all__ = [
    "COUNT_FIELDS",
    "ORDERS_PER_10S",
    "ORDERS_PER_DAY",
    "OrderCounts",
    "OrderQuota",
    "TooManyOrders",
    "append_op",
    "appended",
    "counts_at",
    "counts_key",
    "filled_ops",
]
