"""Order-count limits per account (Binance's ``ORDERS`` rate limits), shared by every gateway.

A gateway's request-weight limit is per IP and per gateway; it does not stop one account that sends
its orders from many addresses, through many gateways, from taking the engine's whole capacity. So
each new order of an account is counted in Redis, in a 10-second and a 1-day window, and one that
would pass either limit is refused with ``-1015`` ("Too many new orders; current limit is 100
orders per 10 SECOND.") before it reaches the journal.

The count and the append are one server-side script (:data:`SCRIPT`), sent in the submitter's
pipeline in place of the plain ``XADD``: no extra round trip, and no window in which two gateways
could both let the hundred-and-first order through. A refused order is not counted. The windows
are fixed (Unix time divided by the window's length, from the gateway's stamp), as Binance's
counters reset on the interval. Keys carry the journal's hash tag so that the script's keys share a
Redis Cluster slot with the journal.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Final

from tradewire import keys

ORDERS_PER_10S: Final = 100
ORDERS_PER_DAY: Final = 200_000
TEN_SECONDS_MS: Final = 10_000
DAY_MS: Final = 86_400_000

SCRIPT: Final = b"""
local tens = redis.call('INCR', KEYS[2])
if tens == 1 then redis.call('PEXPIRE', KEYS[2], ARGV[3]) end
local days = redis.call('INCR', KEYS[3])
if days == 1 then redis.call('PEXPIRE', KEYS[3], ARGV[4]) end
local over = 0
if tens > tonumber(ARGV[1]) then over = 1 elseif days > tonumber(ARGV[2]) then over = 2 end
if over > 0 then
  redis.call('DECR', KEYS[2])
  redis.call('DECR', KEYS[3])
  return {0, tens - 1, days - 1, over}
end
local id = redis.call('XADD', KEYS[1], '*', unpack(ARGV, 5))
return {id, tens, days, 0}
"""
"""KEYS: the journal, the account's 10-second and 1-day counters. ARGV: the two limits, the two
counters' lifetimes (ms), then the entry's fields and values. Returns ``{id, count 10 s, count 1 d,
0}``, or ``{0, count 10 s, count 1 d, 1 | 2}`` when the order would pass the 10-second (1) or the
daily (2) limit and was not appended."""

SHA: Final = hashlib.sha1(SCRIPT).hexdigest().encode()
LOAD: Final = (b"SCRIPT", b"LOAD", SCRIPT)


@dataclass(frozen=True, slots=True)
class OrderQuota:
    """Whose order it is, and the limits it is counted against."""

    user: str
    per_10s: int = ORDERS_PER_10S
    per_day: int = ORDERS_PER_DAY


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


def counters(user: str, ts: int) -> tuple[str, str]:
    """The account's counter keys for the windows holding exchange time ``ts`` (ms)."""
    return (
        f"tw:{{0}}:quota:{user}:10s:{ts // TEN_SECONDS_MS}",
        f"tw:{{0}}:quota:{user}:1d:{ts // DAY_MS}",
    )


def append_op(quota: OrderQuota, ts: int, fields: list[bytes | str]) -> tuple[Any, ...]:
    """The ``EVALSHA`` that counts the order and appends its entry (``fields``) if it may pass."""
    ten, day = counters(quota.user, ts)
    return (
        b"EVALSHA", SHA, 3, keys.COMMANDS, ten, day, quota.per_10s, quota.per_day,
        TEN_SECONDS_MS + 10_000, DAY_MS + 3_600_000, *fields,
    )  # fmt: skip


def appended(quota: OrderQuota, reply: Any) -> tuple[str, OrderCounts]:
    """The entry id and counts of :data:`SCRIPT`'s reply; raises :class:`TooManyOrders`."""
    entry, ten, day, over = reply
    counts = OrderCounts(int(ten), int(day))
    if over == 1:
        raise TooManyOrders(quota.per_10s, "10 SECOND", counts)
    if over:
        raise TooManyOrders(quota.per_day, "DAY", counts)
    return (entry.decode() if isinstance(entry, bytes) else str(entry)), counts


__all__ = [
    "ORDERS_PER_10S",
    "ORDERS_PER_DAY",
    "OrderCounts",
    "OrderQuota",
    "TooManyOrders",
    "append_op",
    "appended",
    "counters",
]
