"""The aggregated (L2) book of one market, rebuilt from engine events alone, and its depth diffs.

Theory of operation. Market data never looks inside the engine: it sees the events of one command
at a time and keeps ``price -> total qty`` per side. Three kinds of event move a level:

- a ``Trade`` takes its qty off the maker's level: the maker sits on the side opposite the taker
  (``taker_side == "buy"`` -> asks), at the trade price (always the maker's price);
- a ``Canceled`` (by the user, or by self-trade prevention in the middle of a walk) takes its
  ``remaining_qty`` off its level (``side``, ``price``);
- an ``Accepted`` GTC limit order rests, at the end of its command, with its qty minus what it took
  as a taker in that command, unless an ``Expired`` for it closes the command (self-trade
  prevention ending the taker). IOC, FOK and market orders never rest.

The caller (``MarketData``) applies those changes and calls ``end_command`` once per command, so
that every command that changed the book gets the next ``update_id``. Changes are then conflated
until ``take_diff``: the diff lists every level that any of its commands touched, with its absolute
qty after the last of them (0 when gone). A level that moved and came back within one diff is
listed too: a client whose snapshot was taken at an update id inside the diff's ``U..u`` (Binance's
procedure allows exactly that) holds the level as it stood in between, and only this diff can set it
right. A diff is therefore issued whenever update ids advanced, so that they stay gap-free for
clients that check ``U == previous u + 1``.

A reduction below zero means the events do not belong to this book (a builder started mid-journal,
or events applied twice); it raises ``InconsistentEvents`` rather than publish a wrong book, and the
builder must then be rebuilt from a snapshot.
"""

from __future__ import annotations

import zlib
from bisect import bisect_left, insort
from math import inf

import msgspec

from tradewire.marketdata.checksum import CHECKSUM_DEPTH, join_parts, level_parts
from tradewire.marketdata.updates import DepthSnapshot, DepthUpdate, PriceLevel

try:
    from tradewire.marketdata._checksum import book_checksum as native_checksum
except ImportError:  # not built (no C compiler at install): the checksum is taken in Python
    native_checksum = None  # type: ignore[assignment]


class InconsistentEvents(ValueError):
    """The events cannot come from the book this builder holds."""


class BookSide:
    """One side: ``price -> qty``, plus price keys sorted so that the best level is last.

    Keys are ``price`` for bids and ``-price`` for asks (as in the engine's book), so the best level
    is ``keys[-1]`` on either side and walking best-first is ``reversed(keys)``. Activity clusters
    at the top of the book, where inserting into or deleting from the sorted list is a short move.

    The best ``CHECKSUM_DEPTH`` levels, which every diff's checksum covers, are kept between diffs
    (:meth:`head`): in a deep book most changes land below them.
    """

    __slots__ = ("_floor", "_head", "keys", "levels", "sign")

    def __init__(self, is_bid: bool, levels: dict[int, int] | None = None) -> None:
        self.sign = 1 if is_bid else -1
        self.levels: dict[int, int] = dict(levels) if levels else {}
        self.keys: list[int] = sorted(price * self.sign for price in self.levels)
        self._head: list[PriceLevel] | None = None
        """``top(CHECKSUM_DEPTH)`` as last computed; ``None`` once a change may have moved it."""
        self._floor: float = inf
        """A change at a key below this one cannot move ``_head`` (see :meth:`head`): the key of its
        last level, ``-inf`` when it is shorter than ``CHECKSUM_DEPTH``, ``inf`` when there is none."""

    def change(self, price: int, delta: int) -> None:
        """Add ``delta`` (negative: take off) to the level at ``price``."""
        key = price * self.sign
        if key >= self._floor:
            self._head = None
            self._floor = inf
        levels = self.levels
        old = levels.get(price, 0)
        qty = old + delta
        if qty > 0:
            levels[price] = qty
            if not old:
                insort(self.keys, key)
        elif qty == 0:
            del levels[price]
            keys = self.keys
            if keys[-1] == key:
                keys.pop()
            else:
                del keys[bisect_left(keys, key)]
        else:
            side = "bid" if self.sign > 0 else "ask"
            raise InconsistentEvents(f"{side} level {price} would fall to {qty}")

    def top(self, limit: int | None = None) -> list[PriceLevel]:
        """The best ``limit`` levels (all when ``None``), best first."""
        keys = self.keys if limit is None else self.keys[max(0, len(self.keys) - limit) :]
        levels = self.levels
        if self.sign > 0:  # a bid's key is its price: the dict's own key object, no arithmetic
            return [(price, levels[price]) for price in reversed(keys)]
        return [(-key, levels[-key]) for key in reversed(keys)]

    def head(self) -> list[PriceLevel]:
        """``top(CHECKSUM_DEPTH)``, as the same list object until a change may have moved it.

        The kept list is still right when the side had ``CHECKSUM_DEPTH`` levels and every change
        since was at a price strictly worse than the last of them: such a change cannot enter, leave
        or move the best levels. Callers compare heads by identity, so the list must not be mutated.
        """
        head = self._head
        if head is None:
            head = self._head = self.top(CHECKSUM_DEPTH)
            keys = self.keys
            # with fewer levels, any change may add one to the head: every key is >= -inf
            self._floor = keys[-CHECKSUM_DEPTH] if len(keys) >= CHECKSUM_DEPTH else -inf
        return head

    def best(self) -> PriceLevel:
        """The best level, or ``(0, 0)`` when the side is empty."""
        if not self.keys:
            return (0, 0)
        price = self.keys[-1] * self.sign
        return (price, self.levels[price])


class DepthState(msgspec.Struct, array_like=True):
    """Everything a ``DepthBook`` needs to resume; its sorted keys are rebuilt from the levels."""

    bids: dict[int, int]
    asks: dict[int, int]
    update_id: int
    published_id: int
    event_time: int
    touched_bids: list[int]
    touched_asks: list[int]


_PARTS_KEPT = 1 << 14
"""Rendered levels a depth book remembers before it starts over (a memo never changes the output)."""


class DepthBook:
    """One market's L2 book, its update id, and the levels changed since the last diff."""

    __slots__ = (
        "_ask_parts",
        "_asks_touched",
        "_bid_parts",
        "_bids_touched",
        "_changed",
        "_checksum",
        "_part_of",
        "asks",
        "base_precision",
        "bids",
        "event_time",
        "market",
        "published_id",
        "quote_precision",
        "top",
        "update_id",
    )

    def __init__(self, market: str, base_precision: int, quote_precision: int) -> None:
        self.market = market
        self.base_precision = base_precision
        self.quote_precision = quote_precision
        self.bids = BookSide(is_bid=True)
        self.asks = BookSide(is_bid=False)
        self.update_id = 0
        """The id of the last command that changed this book (0: none yet)."""
        self.published_id = 0
        """``last_update_id`` of the last diff taken (``prev_update_id`` of the next one)."""
        self.event_time = 0
        """Exchange time of the last command that changed this book."""
        self._bids_touched: set[int] = set()
        """The prices of the bid levels touched since the last diff."""
        self._asks_touched: set[int] = set()
        self._changed = False
        self.top: tuple[list[PriceLevel], list[PriceLevel]] = ([], [])
        """The best ``CHECKSUM_DEPTH`` levels of each side when the last diff was taken (heads:
        one list object per side for as long as its levels stay the same; never mutated)."""
        self._bid_parts: tuple[list[PriceLevel] | None, list[str]] = (None, [])
        """A bid head and its checksum parts (``level_parts``), rendered once per head."""
        self._ask_parts: tuple[list[PriceLevel] | None, list[str]] = (None, [])
        self._checksum: tuple[list[PriceLevel] | None, list[PriceLevel] | None, int] = (None, None, 0)
        """The two heads the last checksum was taken over, and that checksum."""
        self._part_of: dict[PriceLevel, str] = {}
        """``"price:qty"`` of the levels rendered lately: a head that changed shares most of its
        levels with the one before, and a lookup costs a third of rendering one."""

    def change(self, is_bid: bool, price: int, delta: int) -> None:
        """Move one level within the current command (a zero ``delta`` changes nothing)."""
        if not delta:
            return
        if is_bid:
            self.bids.change(price, delta)
            self._bids_touched.add(price)
        else:
            self.asks.change(price, delta)
            self._asks_touched.add(price)
        self._changed = True

    def end_command(self, ts: int) -> bool:
        """Close the current command; true (and a new update id) when it changed the book."""
        if not self._changed:
            return False
        self._changed = False
        self.update_id += 1
        self.event_time = ts
        return True

    @property
    def pending(self) -> bool:
        """Whether update ids advanced since the last diff."""
        return self.update_id != self.published_id

    def take_diff(self) -> DepthUpdate | None:
        """The diff since the previous one, or ``None`` when the book did not change."""
        if not self.pending:
            return None
        bids = _changed_levels(self.bids, self._bids_touched, reverse=True)
        asks = _changed_levels(self.asks, self._asks_touched, reverse=False)
        self._bids_touched, self._asks_touched = set(), set()
        first = self.published_id + 1
        diff = DepthUpdate(
            self.market,
            "depth",
            self.event_time,
            first,
            self.update_id,
            self.published_id,
            bids,
            asks,
            self.checksum(),
        )
        self.published_id = self.update_id
        return diff

    def settle(self) -> None:
        """What :meth:`take_diff` does to the state, without building the diff."""
        self._bids_touched, self._asks_touched = set(), set()
        self.top = (self.bids.head(), self.asks.head())
        self.published_id = self.update_id

    def checksum(self) -> int:
        """The checksum of the book now; ``top`` keeps the levels it was taken over.

        ``book_checksum`` of the heads, reused when neither head changed; taken in C when built
        (``_checksum.pyx``), else with work only for a head that changed: a side's text parts are
        rendered once per head.
        """
        bids, asks = self.top = (self.bids.head(), self.asks.head())
        last_bids, last_asks, checksum = self._checksum
        if bids is last_bids and asks is last_asks:
            return checksum
        if native_checksum is not None:  # the whole string in C: faster than reusing a side's parts
            checksum = native_checksum(bids, asks, self.base_precision, self.quote_precision)
            self._checksum = (bids, asks, checksum)
            return checksum
        head, bid_parts = self._bid_parts
        if head is not bids:
            bid_parts = self._parts(bids)
            self._bid_parts = (bids, bid_parts)
        head, ask_parts = self._ask_parts
        if head is not asks:
            ask_parts = self._parts(asks)
            self._ask_parts = (asks, ask_parts)
        checksum = zlib.crc32(join_parts(bid_parts, ask_parts).encode("ascii"))
        self._checksum = (bids, asks, checksum)
        return checksum

    def _parts(self, head: list[PriceLevel]) -> list[str]:
        """``level_parts`` of a head, each level rendered once while it stays in the memo."""
        memo = self._part_of
        parts: list[str] = []
        for level in head[:CHECKSUM_DEPTH]:
            part = memo.get(level)
            if part is None:
                if len(memo) >= _PARTS_KEPT:
                    memo.clear()
                part = memo[level] = level_parts((level,), self.base_precision, self.quote_precision)[0]
            parts.append(part)
        return parts

    def snapshot(self, limit: int | None = None) -> DepthSnapshot:
        return DepthSnapshot(self.update_id, self.bids.top(limit), self.asks.top(limit))

    def to_state(self) -> DepthState:
        return DepthState(
            dict(sorted(self.bids.levels.items())),  # in price order: the same book, the same bytes
            dict(sorted(self.asks.levels.items())),
            self.update_id,
            self.published_id,
            self.event_time,
            sorted(self._bids_touched),
            sorted(self._asks_touched),
        )

    @classmethod
    def from_state(
        cls, market: str, base_precision: int, quote_precision: int, state: DepthState
    ) -> DepthBook:
        book = cls(market, base_precision, quote_precision)
        book.bids = BookSide(is_bid=True, levels=state.bids)
        book.asks = BookSide(is_bid=False, levels=state.asks)
        book.update_id = state.update_id
        book.published_id = state.published_id
        book.event_time = state.event_time
        book._bids_touched = set(state.touched_bids)
        book._asks_touched = set(state.touched_asks)
        # the levels as of the last diff unless changes are pending, and then the next diff sets it
        book.top = (book.bids.head(), book.asks.head())
        return book


def _changed_levels(side: BookSide, touched: set[int], *, reverse: bool) -> list[PriceLevel]:
    """The ``touched`` levels, best first, with their qty now (0: gone)."""
    levels = side.levels
    changed = [(price, levels.get(price, 0)) for price in touched]
    changed.sort(reverse=reverse)
    return changed
