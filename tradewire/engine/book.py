"""The order book of one market: price levels in price-time priority.

Theory of operation
-------------------
Each side keeps ``levels`` (price -> Level) and ``keys``, the level prices as a sorted list of
*keys* whose last element is the best price: bids use ``key = price``, asks ``key = -price``. The
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


class Order:
    """A resting order. ``qty`` is what remains open; 0 marks a tombstone."""

    __slots__ = ("client_id", "is_buy", "market", "order_id", "price", "qty", "user")

    def __init__(
        self, order_id: int, user: str, market: str, is_buy: bool, price: int, qty: int, client_id: str | None
    ) -> None:
        self.order_id = order_id
        self.user = user
        self.market = market
        self.is_buy = is_buy
        self.price = price
        self.qty = qty
        self.client_id = client_id


class Level:
    __slots__ = ("live", "orders", "price", "total")

    def __init__(self, price: int) -> None:
        self.price = price
        self.orders: deque[Order] = deque()
        self.total = 0
        self.live = 0


class BookSide:
    __slots__ = ("keys", "levels", "sign")

    def __init__(self, is_buy: bool) -> None:
        self.sign = 1 if is_buy else -1
        self.levels: dict[int, Level] = {}
        self.keys: list[int] = []

    def add(self, order: Order) -> None:
        level = self.levels.get(order.price)
        if level is None:
            level = self.levels[order.price] = Level(order.price)
            insort(self.keys, order.price * self.sign)
        level.orders.append(order)
        level.total += order.qty
        level.live += 1

    def remove(self, order: Order) -> None:
        """Take a resting order out (cancel); the caller releases its reservation."""
        level = self.levels[order.price]
        level.total -= order.qty
        level.live -= 1
        order.qty = 0
        if level.live == 0:
            self.drop(level)
        elif len(level.orders) > 2 * level.live + 16:
            level.orders = deque(o for o in level.orders if o.qty)

    def drop(self, level: Level) -> None:
        """Forget an empty level."""
        del self.levels[level.price]
        keys = self.keys
        key = level.price * self.sign
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

    def __init__(self, market: str) -> None:
        self.market = market
        self.bids = BookSide(is_buy=True)
        self.asks = BookSide(is_buy=False)
        self.next_trade_id = 1
