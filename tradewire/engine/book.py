"""The order book of one market: price levels in price-time priority.

Theory of operation
-------------------
Each side keeps ``levels`` (tick index -> Level) and ``keys``, the levels as a sorted list of *keys*
whose last element is the best price: bids use ``key = price // tick``, asks ``key = -(price // tick)``.
Levels are indexed by tick count, not by price units: prices in units are multiples of a power of ten,
so their hashes share their low bits and a dict keyed by them collides on nearly every probe. The
best level is therefore ``keys[-1]`` on either side, taking or dropping it is O(1), and a level near
the top of the book (where nearly all activity is) is inserted or removed with a short ``memmove``.
Walking the side from the best price outwards is ``reversed(keys)``.

A level is a FIFO ``deque`` of orders. Cancelling from the middle of a queue is O(1) by tombstone: the
order's ``qty`` becomes 0, the level's ``total`` and ``live`` counts drop, and the dead entry is
discarded when it reaches the front (or when tombstones outnumber live orders, by compaction).
A level with no live order is removed at once, so ``levels`` and ``keys`` hold live prices only.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections import deque
from collections.abc import Iterator

import msgspec


class Order(msgspec.Struct, gc=False):
    """A resting order. ``qty`` is what remains open; 0 marks a tombstone.

    A msgspec Struct rather than a slotted class: it is built in C, several times faster, and the
    book creates one for every resting order.
    """

    order_id: int
    user: str
    market: str
    is_buy: bool
    price: int
    qty: int
    client_id: str | None


class Level(msgspec.Struct, gc=False):
    price: int
    orders: deque[Order]
    total: int = 0
    live: int = 0


class BookSide:
    __slots__ = ("keys", "levels", "sign", "tick")

    def __init__(self, is_buy: bool, tick: int) -> None:
        self.sign = 1 if is_buy else -1
        self.tick = tick
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def add(self, order: Order) -> None:
        index = order.price // self.tick
        level = self.levels.get(index)
        if level is None:
            level = self.levels[index] = Level(order.price, deque())
            insort(self.keys, index * self.sign)
        level.orders.append(order)
        level.total += order.qty
        level.live += 1

    def remove(self, order: Order) -> None:
        """Take a resting order out (cancel); the caller releases its reservation."""
        level = self.levels[order.price // self.tick]
        level.total -= order.qty
        level.live -= 1
        order.qty = 0
        if level.live == 0:
            self.drop(level)
        elif len(level.orders) > 2 * level.live + 16:
            level.orders = deque(o for o in level.orders if o.qty)

    def drop(self, level: Level) -> None:
        """Forget an empty level."""
        index = level.price // self.tick
        del self.levels[index]
        keys = self.keys
        key = index * self.sign
        if keys[-1] == key:
            keys.pop()
        else:
            del keys[bisect_left(keys, key)]

    def best(self) -> Level | None:
        return self.levels[self.keys[-1] * self.sign] if self.keys else None

    def walk(self) -> Iterator[Level]:
        """Levels from the best price outwards."""
        levels, sign = self.levels, self.sign
        for key in reversed(self.keys):
            yield levels[key * sign]

    def depth(self, limit: int | None = None) -> list[tuple[int, int]]:
        """``(price, total qty)`` per level, best first."""
        keys = self.keys if limit is None else self.keys[-limit:]
        levels, sign = self.levels, self.sign
        return [(levels[k * sign].price, levels[k * sign].total) for k in reversed(keys)]

    def orders(self) -> Iterator[Order]:
        """Live orders in priority order."""
        for level in self.walk():
            for order in level.orders:
                if order.qty:
                    yield order


class OrderBook:
    __slots__ = ("asks", "bids", "market", "next_trade_id")

    def __init__(self, market: str, tick: int) -> None:
        self.market = market
        self.bids = BookSide(is_buy=True, tick=tick)
        self.asks = BookSide(is_buy=False, tick=tick)
        self.next_trade_id = 1
