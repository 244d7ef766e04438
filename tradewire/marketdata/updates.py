"""Updates: what the market-data builder hands out after a flush, in integer units.

Like the engine's events, every amount is an ``int``: prices in quote units per whole base unit,
quantities in base units, notionals and quote volumes in quote units, times in exchange
milliseconds. Rendering to decimal strings happens at the edge (``tradewire.marketdata.binance``),
so that one update can feed several wire formats and nothing in between ever rounds.

Every update names its ``market`` and its ``stream`` (``depth``, ``trade``, ``kline_1m``, ...,
``ticker``, ``miniTicker``, ``bookTicker``: the Binance stream names, so a gateway routes an update
to ``<symbol>@<stream>`` subscribers without a table). A price of 0 means "none" (an empty book
side, a market that never traded): real prices are always positive.

The updates are frozen msgspec Structs: they are shared by reference between the builder, the bus
and every subscriber, and are cheap to encode.
"""

from __future__ import annotations

from typing import NamedTuple

import msgspec

PriceLevel = tuple[int, int]
"""``(price, qty)`` of one aggregated book level."""


class DepthUpdate(msgspec.Struct, frozen=True):
    """The levels of one market's book that its commands touched since the previous diff.

    ``first_update_id`` .. ``last_update_id`` are the book update ids (one per command that changed
    the book) that this diff covers; the next diff starts at ``last_update_id + 1``.
    ``prev_update_id`` is the ``last_update_id`` of the previous diff (``first_update_id - 1``).
    Each level carries its absolute qty after ``last_update_id``, 0 when the level is gone (also for
    a level that came and went within the diff); levels are listed best first.
    ``checksum`` is ``tradewire.marketdata.checksum.book_checksum`` of the book after this diff.
    """

    market: str
    stream: str
    event_time: int
    first_update_id: int
    last_update_id: int
    prev_update_id: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]
    checksum: int


class TradeUpdate(msgspec.Struct, frozen=True):
    """One trade, as the public sees it (no users, no fees)."""

    market: str
    stream: str
    trade_id: int
    price: int
    qty: int
    quote_qty: int
    ts: int
    buyer_is_maker: bool
    maker_order_id: int
    taker_order_id: int


class Kline(msgspec.Struct, frozen=True):
    """One bar. ``close_time`` is the bar's last millisecond: ``open_time + interval - 1``."""

    open_time: int
    close_time: int
    open: int
    high: int
    low: int
    close: int
    volume: int
    quote_volume: int
    trades: int
    taker_buy_volume: int
    taker_buy_quote_volume: int
    first_trade_id: int
    last_trade_id: int
    closed: bool


class KlineUpdate(msgspec.Struct, frozen=True):
    """The current state of one bar: ``kline.closed`` is true on the bar's final update."""

    market: str
    stream: str
    interval: str
    event_time: int
    kline: Kline


class TickerUpdate(msgspec.Struct, frozen=True):
    """Rolling 24-hour statistics, resolved to the minute (see ``tradewire.marketdata.ticker``).

    ``open_time`` is where the window starts, ``close_time`` the latest exchange time seen.
    When no trade falls in the window, open/high/low equal ``last_price``, the volumes and ``trades``
    are 0, the trade ids are -1 and ``weighted_avg_price`` is 0. ``price_change_percent`` is an exact
    decimal string with three places, rounded half away from zero (``"-1.250"``).
    """

    market: str
    stream: str
    event_time: int
    open_time: int
    close_time: int
    last_price: int
    last_qty: int
    open_price: int
    high_price: int
    low_price: int
    prev_close_price: int
    price_change: int
    price_change_percent: str
    weighted_avg_price: int
    volume: int
    quote_volume: int
    trades: int
    first_trade_id: int
    last_trade_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


class MiniTickerUpdate(msgspec.Struct, frozen=True):
    """The subset of the 24-hour ticker that does not move with the book."""

    market: str
    stream: str
    event_time: int
    last_price: int
    open_price: int
    high_price: int
    low_price: int
    volume: int
    quote_volume: int


class BookTickerUpdate(msgspec.Struct, frozen=True):
    """Best bid and ask with their qty; ``update_id`` is the book update id they belong to."""

    market: str
    stream: str
    event_time: int
    update_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


Update = DepthUpdate | TradeUpdate | KlineUpdate | TickerUpdate | MiniTickerUpdate | BookTickerUpdate


class DepthSnapshot(NamedTuple):
    """A market's book at ``last_update_id``, best levels first: what a client starts diffs from."""

    last_update_id: int
    bids: list[PriceLevel]
    asks: list[PriceLevel]


def mini_ticker(ticker: TickerUpdate) -> MiniTickerUpdate:
    """The mini ticker carried by a full ticker."""
    return MiniTickerUpdate(
        ticker.market,
        "miniTicker",
        ticker.event_time,
        ticker.last_price,
        ticker.open_price,
        ticker.high_price,
        ticker.low_price,
        ticker.volume,
        ticker.quote_volume,
    )
