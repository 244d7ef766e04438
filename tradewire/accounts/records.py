"""One order's account view: its state in integer units, its statuses, and what rendering needs.

An ``OrderState`` holds an order the way the engine counts; ``tradewire.accounts.payloads`` renders it
as the JSON Binance clients expect. Decimals are canonical strings at the precision of their asset
(``tradewire.engine.decimals.to_text``, memoized as ``tradewire.engine.decimals.Texts``).

Order statuses and the changes between them (Binance's names)::

    NEW ──TRADE──▶ PARTIALLY_FILLED ──TRADE──▶ FILLED
     │                   │
     ├──────────────────┴──▶ CANCELED          (cancel by the user)
     ├──────────────────┴──▶ EXPIRED           (IOC/FOK/market remainder)
     └──────────────────┴──▶ EXPIRED_IN_MATCH  (self-trade prevention)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import msgspec
import orjson

from tradewire.engine.config import MAX_PRECISION, ExchangeConfig, Market
from tradewire.engine.decimals import Texts, texts

NEW: Final = "NEW"
PARTIALLY_FILLED: Final = "PARTIALLY_FILLED"
FILLED: Final = "FILLED"
CANCELED: Final = "CANCELED"
EXPIRED: Final = "EXPIRED"
UNFILLABLE_FOK: Final = "fok_unfillable"
"""The engine's reason for an FOK it refused: on Binance an order that expired at once."""
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


TEXTS: Final = tuple(texts(places) for places in range(MAX_PRECISION + 1))
"""The memoized canonical texts of every precision."""


def json_text(value: str) -> str:
    """``value`` as a JSON string literal (quoted, escaped), to splice into rendered JSON."""
    return orjson.dumps(value).decode()


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


def spent_to_the_lot(remaining_quote: int, last_price: int, lot: int, base_scale: int) -> bool:
    """Whether a market buy by quote quantity that expired with ``remaining_quote`` left had spent all
    it could: the rest cannot pay one lot even at its last fill's price (each further order asks at
    least that). Binance calls such an order FILLED; one that ran out of book, EXPIRED."""
    return remaining_quote * base_scale < last_price * lot


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
    base_text: Texts
    quote_text: Texts
    symbol_json: str
    """The symbol as a JSON string literal, quotes included."""

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
            TEXTS[market.base.precision],
            TEXTS[market.quote.precision],
            json_text(market.base.name + market.quote.name),
        )


def symbols(config: ExchangeConfig) -> dict[str, Symbol]:
    return {name: Symbol.of(market) for name, market in config.markets.items()}
