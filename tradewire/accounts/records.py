"""One order's account view and the Binance shapes rendered from it.

An ``OrderState`` holds an order in integer units, the way the engine counts; the functions below turn
it into the JSON objects Binance clients expect: the ``GET /api/v3/order`` record kept in
``tw:orders:<user>``, the ``executionReport`` of the user data stream, the ``myTrades`` item. Decimals
are canonical strings at the precision of their asset (``tradewire.engine.decimals.to_text``).

Order statuses and the changes between them (Binance's names)::

    NEW ──TRADE──▶ PARTIALLY_FILLED ──TRADE──▶ FILLED
     │                   │
     ├──────────────────┴──▶ CANCELED          (cancel by the user)
     ├──────────────────┴──▶ EXPIRED           (IOC/FOK/market remainder)
     └──────────────────┴──▶ EXPIRED_IN_MATCH  (self-trade prevention)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import msgspec

from tradewire.engine.config import ExchangeConfig, Market
from tradewire.engine.decimals import to_text

NEW: Final = "NEW"
PARTIALLY_FILLED: Final = "PARTIALLY_FILLED"
FILLED: Final = "FILLED"
CANCELED: Final = "CANCELED"
EXPIRED: Final = "EXPIRED"
EXPIRED_IN_MATCH: Final = "EXPIRED_IN_MATCH"

OPEN_STATUSES: Final = frozenset({NEW, PARTIALLY_FILLED})
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    NEW: frozenset({PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, EXPIRED_IN_MATCH}),
    PARTIALLY_FILLED: frozenset({PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED, EXPIRED_IN_MATCH}),
    FILLED: frozenset(),
    CANCELED: frozenset(),
    EXPIRED: frozenset(),
    EXPIRED_IN_MATCH: frozenset(),
}
"""The allowed status changes; a terminal status has none."""

EXECUTION_TYPE: Final = {
    CANCELED: "CANCELED",
    EXPIRED: "EXPIRED",
    EXPIRED_IN_MATCH: "TRADE_PREVENTION",
}
"""The ``executionReport`` ``x`` that ends an order without a fill (Binance's names)."""

STP_MODES: Final = {
    "expire_maker": "EXPIRE_MAKER",
    "expire_taker": "EXPIRE_TAKER",
    "expire_both": "EXPIRE_BOTH",
    "none": "NONE",
}
SIDES: Final = {"buy": "BUY", "sell": "SELL"}


def order_type(kind: str, post_only: bool) -> str:
    """Binance's order ``type``: ``LIMIT``, ``MARKET`` or ``LIMIT_MAKER`` (a post-only limit)."""
    if kind == "market":
        return "MARKET"
    return "LIMIT_MAKER" if post_only else "LIMIT"


class OrderState(msgspec.Struct, array_like=True, gc=False):
    """An order as the account views know it, amounts in integer units."""

    order_id: int
    user: str
    market: str
    client_id: str
    side: str
    """``BUY`` or ``SELL``."""
    type: str
    tif: str
    stp: str
    """Binance's ``selfTradePreventionMode``."""
    price: int
    qty: int
    """Base quantity asked for; 0 for a market buy by quote quantity."""
    quote_qty: int
    time: int
    update_time: int
    executed: int = 0
    cum_quote: int = 0
    status: str = NEW
    listed: bool = False
    """Whether the last flush left it in ``tw:open:<user>``."""

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    @property
    def rests(self) -> bool:
        """Whether it can sit on the book: a good-till-canceled limit order."""
        return self.tif == "GTC" and self.type != "MARKET"


@dataclass(frozen=True, slots=True)
class Symbol:
    """What rendering needs of one market: the Binance symbol, its assets and their precisions."""

    market: str
    symbol: str
    base: str
    quote: str
    base_places: int
    quote_places: int
    base_scale: int
    lot: int

    @classmethod
    def of(cls, market: Market) -> Symbol:
        return cls(
            market.name,
            market.base.name + market.quote.name,
            market.base.name,
            market.quote.name,
            market.base.precision,
            market.quote.precision,
            market.base_scale,
            market.lot,
        )


def symbols(config: ExchangeConfig) -> dict[str, Symbol]:
    return {name: Symbol.of(market) for name, market in config.markets.items()}


def order_record(order: OrderState, sym: Symbol) -> dict[str, Any]:
    """The ``GET /api/v3/order`` object. A market buy by quote shows what it bought as ``origQty``."""
    bp, qp = sym.base_places, sym.quote_places
    return {
        "symbol": sym.symbol,
        "orderId": order.order_id,
        "orderListId": -1,
        "clientOrderId": order.client_id,
        "price": to_text(order.price, qp),
        "origQty": to_text(order.qty or order.executed, bp),
        "executedQty": to_text(order.executed, bp),
        "cummulativeQuoteQty": to_text(order.cum_quote, qp),
        "status": order.status,
        "timeInForce": order.tif,
        "type": order.type,
        "side": order.side,
        "stopPrice": "0",
        "icebergQty": "0",
        "time": order.time,
        "updateTime": order.update_time,
        "isWorking": True,
        "workingTime": order.time,
        "origQuoteOrderQty": to_text(order.quote_qty, qp),
        "selfTradePreventionMode": order.stp,
    }


def execution_report(
    order: OrderState,
    sym: Symbol,
    execution: str,
    ts: int,
    last_qty: int = 0,
    last_price: int = 0,
    commission: int = 0,
    commission_asset: str | None = None,
    commission_places: int = 0,
    trade_id: int = -1,
    maker: bool = False,
) -> dict[str, Any]:
    """The user data stream's ``executionReport`` after ``order`` changed by ``execution``."""
    bp, qp = sym.base_places, sym.quote_places
    canceled = execution == "CANCELED"
    return {
        "e": "executionReport",
        "E": ts,
        "s": sym.symbol,
        "c": order.client_id,
        "S": order.side,
        "o": order.type,
        "f": order.tif,
        "q": to_text(order.qty or order.executed, bp),
        "p": to_text(order.price, qp),
        "P": "0",
        "F": "0",
        "g": -1,
        "C": order.client_id if canceled else "",
        "x": execution,
        "X": order.status,
        "r": "NONE",
        "i": order.order_id,
        "l": to_text(last_qty, bp),
        "z": to_text(order.executed, bp),
        "L": to_text(last_price, qp),
        "n": to_text(commission, commission_places),
        "N": commission_asset,
        "T": ts,
        "t": trade_id,
        "I": 0,
        "w": order.is_open and order.rests,
        "m": maker,
        "M": False,
        "O": order.time,
        "Z": to_text(order.cum_quote, qp),
        "Y": to_text(last_price * last_qty // sym.base_scale, qp),
        "Q": to_text(order.quote_qty, qp),
        "W": order.time,
        "V": order.stp,
    }


def my_trade(
    sym: Symbol,
    trade_id: int,
    order_id: int,
    price: int,
    qty: int,
    notional: int,
    commission: int,
    is_buyer: bool,
    is_maker: bool,
    ts: int,
) -> dict[str, Any]:
    """A ``GET /api/v3/myTrades`` item: the commission is in the asset the side received."""
    asset, places = (sym.base, sym.base_places) if is_buyer else (sym.quote, sym.quote_places)
    return {
        "symbol": sym.symbol,
        "id": trade_id,
        "orderId": order_id,
        "orderListId": -1,
        "price": to_text(price, sym.quote_places),
        "qty": to_text(qty, sym.base_places),
        "quoteQty": to_text(notional, sym.quote_places),
        "commission": to_text(commission, places),
        "commissionAsset": asset,
        "time": ts,
        "isBuyer": is_buyer,
        "isMaker": is_maker,
        "isBestMatch": True,
    }
