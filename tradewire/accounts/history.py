"""How much order history Redis keeps per user, and how the oldest closed orders leave it.

Every order's record stays in ``tw:orders:<user>`` while it is open and after it closes, so that
``GET /api/v3/order`` and ``allOrders`` find it. Kept for ever, a market maker placing a million
orders a day would hold a million records in Redis's memory, and ``allOrders`` would read them all
while the engine waited. So each user keeps at most ``history`` *closed* orders (open orders always
stay). The engine's flush adds each order to ``tw:closed:<user>`` when it closes (its id, symbol and
client order id: ``allOrders`` pages through that set and ``tw:open:<user>`` instead of every
record), counts what each user keeps, and in a batch that takes a user past the limit runs
:data:`TRIM_SCRIPT` for that user inside the batch's transaction. The script removes the oldest
closed orders beyond the limit: their records, their members, and their client order ids where those
still name them. Once a user is at the limit that is a few orders per batch, never a burst.

Binance drops old orders too (canceled and expired ones without fills after 90 days); a query for a
trimmed order answers ``-2013`` ("Order does not exist."), as for one never placed.
"""

from __future__ import annotations

import hashlib
from typing import Final

from tradewire import keys

ORDER_HISTORY: Final = 10_000
"""Closed orders kept per user (the same as the fills kept per market in ``tw:mytrades:<user>:<symbol>``)."""

TRIM_SCRIPT: Final = b"""
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
if excess <= 0 then return 0 end
local oldest = redis.call('ZRANGE', KEYS[1], 0, excess - 1)
for _, member in ipairs(oldest) do
  local id, cid = string.match(member, '^(%d+) %S+ (.*)$')
  if id then
    redis.call('HDEL', KEYS[2], id)
    if cid ~= '' and redis.call('HGET', KEYS[3], cid) == id then
      redis.call('HDEL', KEYS[3], cid)
    end
  end
end
redis.call('ZREMRANGEBYRANK', KEYS[1], 0, excess - 1)
return excess
"""
"""KEYS: the user's closed set, order records, client ids. ARGV: the number of closed orders to keep.
Returns how many orders left."""

TRIM_SHA: Final = hashlib.sha1(TRIM_SCRIPT).hexdigest()


def closed_member(order_id: int, symbol: str, client_id: str) -> str:
    """An order's member in ``tw:closed:<user>``: what the script needs to remove it everywhere."""
    return f"{order_id} {symbol} {client_id}"


def trim_op(user: str, history: int) -> tuple[str | int, ...]:
    """The ``EVALSHA`` that trims ``user``'s closed orders to ``history`` (after ``SCRIPT LOAD``)."""
    return (
        "EVALSHA",
        TRIM_SHA,
        3,
        keys.closed_orders(user),
        keys.orders(user),
        keys.client_ids(user),
        history,
    )


LOAD_OP: Final = ("SCRIPT", "LOAD", TRIM_SCRIPT.decode())
"""Sent before the first :func:`trim_op` of a transaction: a Redis restarted since may have lost the
script, and an ``EVALSHA`` failing inside ``EXEC`` would not stop the rest of it."""


__all__ = ["LOAD_OP", "ORDER_HISTORY", "TRIM_SCRIPT", "closed_member", "trim_op"]
